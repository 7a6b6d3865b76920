/*
 * cmd_check.c: `serfhand check`, the full check of the active bundle
 * (config "bundle"): signatures, threshold, every hash, unlisted or missing
 * files, expiry, the recorded highest version, every Lua file compiled in
 * text mode, and every handler file loaded (its top level run, never its
 * handler) to see that it returns a function. check.c does the work.
 */
#include <stdio.h>
#include <string.h>

#include "serfhand.h"

static int exec_check(int argc, char **argv, const struct config *cfg)
{
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else {
            fprintf(stderr, "usage: serfhand check [--json]\n");
            return SH_EXIT_USAGE;
        }
    }
    const char *dir = config_str(cfg, "bundle");
    struct trust_report r;
    enum check_result res = check_bundle(cfg, dir, &r);
    trust_report_print(&r, dir, json);
    trust_report_free(&r);
    return res == CHECK_OK ? SH_EXIT_OK : res == CHECK_REFUSED ? SH_EXIT_TRUST : SH_EXIT_FAIL;
}

const struct cmd_entry cmd_check_entry = {
    "check",
    "[--json]",
    "check the active bundle: signatures, threshold, hashes, files, expiry, version, Lua syntax",
    exec_check,
    true,
};
