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

static int exec_check(const struct args *a, const struct config *cfg)
{
    bool json = args_has(a, "--json");
    const char *dir = config_str(cfg, "bundle");
    struct trust_report r;
    enum check_result res = check_bundle(cfg, dir, &r);
    trust_report_print(&r, dir, json);
    trust_report_free(&r);
    return res == CHECK_OK ? SH_EXIT_OK : res == CHECK_REFUSED ? SH_EXIT_TRUST : SH_EXIT_FAIL;
}

static const struct cmd_opt opts[] = {
    {.name = "--json", .kind = OPT_FLAG, .help = "one line of JSON instead of the text report"},
    {NULL},
};

const struct cmd_entry cmd_check_entry = {
    .name = "check",
    .summary = "check the active bundle: signatures, threshold, hashes, files, expiry, version, "
               "Lua syntax",
    .opts = opts,
    .exec = exec_check,
    .needs_config = true,
};
