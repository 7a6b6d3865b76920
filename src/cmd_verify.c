/*
 * cmd_verify.c: `serfhand verify DIR`, an offline report on a bundle
 * against the configured trust root: signatures, threshold, every listed
 * file, unlisted files, expiry, every Lua file compiled (check.c). Exit 0
 * ok, 3 the bundle fails (a node would refuse it), 2 usage.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "serfhand.h"

static int exec_verify(int argc, char **argv, const struct config *cfg)
{
    const char *dir = NULL;
    bool json = false;
    char err[512];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = true;
        else if (argv[i][0] != '-' && !dir)
            dir = argv[i];
        else
            goto usage;
    }
    if (!dir)
        goto usage;
    struct trust_keyset ks;
    if (trust_keyset_load(&ks, cfg, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand verify: %s\n", err);
        return SH_EXIT_USAGE;
    }
    struct trust_report r;
    enum check_result res = check_verify(&r, dir, &ks, (size_t)config_int(cfg, "limits.file_bytes"),
                                         (int64_t)time(NULL));
    trust_report_print(&r, dir, json);
    int rc = res == CHECK_OK ? SH_EXIT_OK : SH_EXIT_TRUST;
    trust_report_free(&r);
    trust_keyset_free(&ks);
    return rc;
usage:
    fprintf(stderr, "usage: serfhand verify [--json] DIR\n");
    return SH_EXIT_USAGE;
}

const struct cmd_entry cmd_verify_entry = {
    "verify",
    "[--json] DIR",
    "check a bundle's signatures, threshold, files and Lua syntax against trust.keys (offline)",
    exec_verify,
    true,
};
