/* test_config.c: config.c loads data, refuses code, names keys and lines. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "serfhand.h"
#include "t.h"

static char path[] = "/tmp/serfhand-test-config-XXXXXX";

static int load(struct config *c, const char *text, char *err, size_t errlen)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return config_load(c, path, err, errlen);
}

/* trust.keys is checked at load: each entry names its own line, a key listed
 * twice counts once toward the threshold. */
static void test_trust_keys(struct config *c, char *err, size_t errlen)
{
    struct minisign_pubkey pk;
    struct minisign_seckey *sk = NULL;
    char k1[57], k2[57], text[1024];
    T_OK(minisign_init() == 0 && minisign_keygen(&pk, &sk) == 0, "keygen");
    minisign_pubkey_base64(&pk, k1);
    minisign_seckey_free(sk);
    T_OK(minisign_keygen(&pk, &sk) == 0, "keygen 2");
    minisign_pubkey_base64(&pk, k2);
    minisign_seckey_free(sk);

    snprintf(text, sizeof text, "trust = {\n  keys = {\n    \"%s\",\n    '%s',\n  },\n", k1, k2);
    strcat(text, "  threshold = 2,\n}\n");
    T_OK(load(c, text, err, errlen) == 0, "two valid inline keys, threshold 2");
    size_t ki = 0;
    while (strcmp(config_schema()[ki].path, "trust.keys") != 0)
        ki++;
    const struct cfg_value *v = config_value(c, ki);
    T_OK(v->nlist == 2 && v->lines[0] == 3 && v->lines[1] == 4, "each entry has its line");
    T_OK(v->line == 2, "the list has the line of `keys =`");
    config_free(c);

    snprintf(text, sizeof text, "trust = { keys = {\n\"%s\",\n\"%s\",\n\"RWbad\" } }\n", k1, k1);
    T_OK(load(c, text, err, errlen) < 0, "a bad third entry is refused");
    T_OK(strstr(err, ":4: trust.keys[3] \"RWbad\": taken for an inline key") != NULL, err);
    config_free(c);

    snprintf(text, sizeof text, "trust = { keys = {\n\"%s\",\n\"%s\" },\nthreshold = 2 }\n", k1,
             k1);
    T_OK(load(c, text, err, errlen) < 0, "a key listed twice counts once");
    T_OK(strstr(err, ":4: trust.threshold is 2, but trust.keys (line 1) holds 1 distinct key "
                     "(entries 1 and 2 are the same key)") != NULL,
         err);
    config_free(c);

    snprintf(text, sizeof text, "trust = { keys = { \"%s\", \"%s\" } }\n", k1, k1);
    T_OK(load(c, text, err, errlen) == 0, "a key listed twice, threshold 1: fine");
    config_free(c);

    T_OK(load(c, "trust = { keys = { }, threshold = 3 }\n", err, errlen) == 0,
         "no keys: no trust root, not an error (nothing signed runs)");
    config_free(c);
}

int main(void)
{
    struct config c;
    char err[512];
    int fd = mkstemp(path);
    if (fd >= 0)
        close(fd);

    T_OK(load(&c, "state_dir = \"/s\"\nlimits = { query_ms = 300 }\n", err, sizeof err) == 0,
         "valid file loads");
    T_STR(config_str(&c, "state_dir"), "/s", "string value");
    T_STR(config_str(&c, "bundle"), "/s/current", "bundle derived from state_dir");
    T_OK(config_int(&c, "limits.query_ms") == 300, "int value");
    T_OK(config_int(&c, "limits.event_ms") == 2000, "default kept");
    T_OK(!config_bool(&c, "update.auto"), "update.auto defaults to false");
    config_free(&c);

    /* (a list of strings that are no keys: trust.keys is checked, see below) */
    T_OK(load(&c, "factomd = { restart = { \"a\", \"b\" } }\n", err, sizeof err) == 0,
         "list loads");
    size_t n;
    char *const *keys = config_list(&c, "factomd.restart", &n);
    T_OK(n == 2 && strcmp(keys[1], "b") == 0, "list value");
    config_free(&c);

    test_trust_keys(&c, err, sizeof err);

    T_OK(load(&c, "\n\nreboot = {\n  stall = 3,\n}\n", err, sizeof err) < 0, "unknown nested key");
    T_OK(strstr(err, ":4: unknown key reboot.stall") != NULL, err);
    config_free(&c);

    T_OK(load(&c, "limits = { query_ms = 1.5 }\n", err, sizeof err) < 0, "fraction refused");
    T_OK(strstr(err, "limits.query_ms must be an integer, not a fractional number") != NULL, err);
    config_free(&c);

    T_OK(load(&c, "log = \"x\"\n", err, sizeof err) < 0, "section must be a table");
    T_OK(strstr(err, ":1: log must be a table of settings") != NULL, err);
    config_free(&c);

    T_OK(load(&c, "update = { auto = \"yes\" }\n", err, sizeof err) < 0, "bool type");
    T_OK(strstr(err, "update.auto must be a boolean, not string") != NULL, err);
    config_free(&c);

    T_OK(load(&c, "state_dir = \"a\\0b\"\n", err, sizeof err) < 0, "NUL in a string refused");
    config_free(&c);

    T_OK(load(&c, "x = string.rep('a', 10)\n", err, sizeof err) < 0, "no library in reach");
    config_free(&c);

    T_OK(load(&c, "return 5\n", err, sizeof err) < 0, "return of a non-table refused");
    config_free(&c);

    T_OK(config_load(&c, "/nonexistent/serfhand.conf", err, sizeof err) < 0, "missing file");
    config_free(&c);

    unlink(path);
    return t_done();
}
