/* test_manifest.c: the strict manifest parser and the bundle paths of
 * manifest.c, without the binary. */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "serfhand.h"
#include "t.h"

static int parse(const char *json, char *err)
{
    struct manifest m;
    int rc = manifest_parse(&m, json, strlen(json), err, 300);
    if (rc == 0)
        manifest_free(&m);
    return rc;
}

#define H64 "0000000000000000000000000000000000000000000000000000000000000000"
#define HEAD "{\"format\":1,\"bundle\":\"b\",\"version\":3,\"created\":1,\"expires\":9,"

static void test_manifest(void)
{
    char err[300];
    struct manifest m;
    const char *good = HEAD "\"files\":{\"lua/z.lua\":{\"size\":1,\"blake2b\":\"" H64 "\"},"
                            "\"handlers/a.lua\":{\"blake2b\":\"" H64 "\",\"size\":0}}}";
    T_OK(manifest_parse(&m, good, strlen(good), err, sizeof err) == 0, "good manifest");
    T_OK(m.nfiles == 2 && strcmp(m.files[0].path, "handlers/a.lua") == 0, "files sorted");
    T_OK(manifest_find(&m, "lua/z.lua") != NULL, "find");
    T_OK(manifest_find(&m, "lua/y.lua") == NULL, "find absent");
    struct buf out = {0};
    manifest_write(&m, &out);
    struct manifest m2;
    T_OK(manifest_parse(&m2, out.data, out.len, err, sizeof err) == 0, "write/parse round trip");
    T_OK(m2.version == 3 && m2.nfiles == 2, "round trip fields");
    manifest_free(&m2);
    manifest_free(&m);
    buf_free(&out);

    struct {
        const char *json, *want;
    } bad[] = {
        {HEAD "\"files\":{},\"version\":4}", "duplicate key \"version\""},
        {HEAD "\"files\":{\"lua/a.lua\":{\"size\":1,\"size\":1,\"blake2b\":\"" H64 "\"}}}",
         "duplicate"},
        {HEAD "\"files\":{\"lua/a.lua\":{\"size\":1,\"blake2b\":\"" H64
              "\"},\"lua/a.lua\":{\"size\":1,\"blake2b\":\"" H64 "\"}}}",
         "duplicate"},
        {HEAD "\"files\":{\"lua/../x.lua\":{\"size\":1,\"blake2b\":\"" H64 "\"}}}", "invalid path"},
        {HEAD "\"files\":{\"/etc/passwd\":{\"size\":1,\"blake2b\":\"" H64 "\"}}}", "invalid path"},
        {HEAD "\"files\":{\"lua//x.lua\":{\"size\":1,\"blake2b\":\"" H64 "\"}}}", "invalid path"},
        {HEAD "\"files\":{\"other/x.lua\":{\"size\":1,\"blake2b\":\"" H64 "\"}}}", "invalid path"},
        {HEAD "\"files\":{\"lua/x.lua\":{\"size\":1.5,\"blake2b\":\"" H64 "\"}}}", "integers"},
        {HEAD "\"files\":{\"lua/x.lua\":{\"size\":-1,\"blake2b\":\"" H64 "\"}}}", "non-negative"},
        {HEAD "\"files\":{\"lua/x.lua\":{\"size\":1,\"blake2b\":\"ABC\"}}}", "64 lowercase"},
        {HEAD "\"files\":{\"lua/x.lua\":{\"size\":1,\"blake2b\":\"" H64 "\",\"mode\":1}}}",
         "unknown key"},
        {HEAD "\"files\":{},\"extra\":1}", "unknown key"},
        {HEAD "\"files\":{}} x", "trailing"},
        {HEAD "\"files\":{}", "expected"},
        {"{\"format\":1,\"bundle\":\"b\",\"version\":0,\"created\":1,\"expires\":9,\"files\":{}}",
         "at least 1"},
        {"{\"format\":1,\"bundle\":\"b\",\"version\":99999999999999999999,\"created\":1,"
         "\"expires\":9,\"files\":{}}",
         "out of range"},
        {"{\"format\":1,\"bundle\":\"b\",\"version\":1,\"created\":9,\"expires\":9,\"files\":{}}",
         "not after"},
        {"{\"format\":2,\"bundle\":\"b\",\"version\":1,\"created\":1,\"expires\":9,\"files\":{}}",
         "format 2"},
        {"{\"format\":1,\"bundle\":\"../"
         "b\",\"version\":1,\"created\":1,\"expires\":9,\"files\":{}}",
         "bundle"},
        {"{\"format\":1,\"bundle\":\"b\xc3\xa9\",\"version\":1,\"created\":1,\"expires\":9,"
         "\"files\":{}}",
         "non-ASCII"},
        {"{\"format\":1,\"bundle\":\"b\\u0000\",\"version\":1,\"created\":1,\"expires\":9,"
         "\"files\":{}}",
         "escape"},
        {"{\"format\":1,\"version\":1,\"created\":1,\"expires\":9,\"files\":{}}", "bundle"},
        {"[1]", "not a JSON object"},
        {"{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{}}}}}}}}}}", "deeply"},
        {"{\"format\":01}", "leading zero"},
        /* issue 13.3: numbers are read exactly or refused, never wrapped */
        {"{\"format\":1,\"bundle\":\"b\",\"version\":18446744073709551621,\"created\":1,"
         "\"expires\":9,\"files\":{}}",
         "out of range"},
        {HEAD "\"files\":{\"lua/x.lua\":{\"size\":18446744073709551617,\"blake2b\":\"" H64 "\"}}}",
         "out of range"},
        {"{\"format\":1,\"bundle\":\"b\",\"version\":9223372036854775808,\"created\":1,"
         "\"expires\":9,\"files\":{}}",
         "out of range"},
        {"{\"format\":1,\"bundle\":\"b\",\"version\":9007199254740992,\"created\":1,"
         "\"expires\":9,\"files\":{}}",
         "out of range"},
        {"{\"format\":1,\"bundle\":\"b\",\"version\":1,\"created\":-0,\"expires\":9,"
         "\"files\":{}}",
         "-0"},
        {"{\"format\":1,\"bundle\":\"b\",\"version\":1,\"created\":-9223372036854775809,"
         "\"expires\":9,\"files\":{}}",
         "out of range"},
        {"{\"format\":1,\"bundle\":\"b\",\"version\":+1,\"created\":1,\"expires\":9,"
         "\"files\":{}}",
         "expected an object"},
        {"{\"format\":1,\"bundle\":\"b\",\"version\":1e0,\"created\":1,\"expires\":9,"
         "\"files\":{}}",
         "integers"},
        {"{\"format\":1,\"bundle\":\"b\",\"version\":1.0,\"created\":1,\"expires\":9,"
         "\"files\":{}}",
         "integers"},
        {"{\"format\":1,\"bundle\":\"b\\ud800\",\"version\":1,\"created\":1,\"expires\":9,"
         "\"files\":{}}",
         "escape"},
        {"{\"format\":1,\"bundle\":\"b\",\"bundl\\u0065\":\"c\",\"version\":1,\"created\":1,"
         "\"expires\":9,\"files\":{}}",
         "duplicate key \"bundle\""},
        {"{\"format\":true}", "expected an object"},
    };
    /* the largest integer every JSON reader reads exactly is accepted */
    const char *edge = "{\"format\":1,\"bundle\":\"b\",\"version\":9007199254740991,\"created\":0,"
                       "\"expires\":9007199254740991,\"files\":{\"lua/a.lua\":{\"size\":"
                       "9007199254740991,\"blake2b\":\"" H64 "\"}}}";
    T_OK(manifest_parse(&m, edge, strlen(edge), err, sizeof err) == 0 &&
             m.version == MANIFEST_INT_MAX && m.expires == MANIFEST_INT_MAX &&
             m.files[0].size == (uint64_t)MANIFEST_INT_MAX,
         "2^53-1 read exactly");
    manifest_free(&m);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = parse(bad[i].json, err);
        T_OK(rc < 0 && strstr(err, bad[i].want), bad[i].json);
        if (rc == 0 || !strstr(err, bad[i].want))
            printf("  got: %s\n", rc == 0 ? "accepted" : err);
    }
}

static void test_paths(void)
{
    T_OK(manifest_valid_rel("handlers/user/deploy.lua"), "handler path");
    T_OK(manifest_valid_rel("lua/factom/vote.lua"), "module path");
    const char *bad[] = {"handlers/../x.lua",
                         "/handlers/x.lua",
                         "handlers/./x.lua",
                         "handlers/",
                         "lua",
                         "lua/a b.lua",
                         "lua/a\\b.lua",
                         "bin/x",
                         "handlers//x.lua",
                         ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        T_OK(!manifest_valid_rel(bad[i]), bad[i]);
}

/* One key, two key ids (the id is not signed): counted once. */

int main(void)
{
    test_manifest();
    test_paths();
    return t_done();
}
