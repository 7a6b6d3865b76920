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

    T_OK(load(&c, "trust = { keys = { \"a\", \"b\" }, threshold = 2 }\n", err, sizeof err) == 0,
         "list loads");
    size_t n;
    char *const *keys = config_list(&c, "trust.keys", &n);
    T_OK(n == 2 && strcmp(keys[1], "b") == 0, "list value");
    config_free(&c);

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
