/*
 * cmd_rollback.c: `serfhand rollback --allow-downgrade`, the operator's way
 * back: switch <state_dir>/current to the kept previous bundle (verified
 * again, not expired) and lower the recorded version to it; logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serfhand.h"

static int exec_rollback(const struct args *a, const struct config *cfg)
{
    bool allow = args_has(a, "--allow-downgrade");
    int wait_ms = (int)args_num(a, "--wait", 30) * 1000;
    char msg[2048];
    enum install_result res = install_rollback(cfg, allow, wait_ms, msg, sizeof msg);
    int rc = cmd_exit_install(res);
    if (rc != SH_EXIT_OK)
        log_msg(LOG_LVL_ERROR, "rollback failed, nothing changed: %s", msg);
    if (args_has(a, "--json")) {
        static const char *const results[] = {
            [INSTALL_OK] = "rolled back",
            [INSTALL_REFUSED] = "refused",
            [INSTALL_FAILED] = "failed",
            [INSTALL_ERROR] = "error",
        };
        struct buf o = {0};
        buf_printf(&o,
                   "{\"ok\":%s,\"result\":\"%s\",\"message\":", rc == SH_EXIT_OK ? "true" : "false",
                   results[res]);
        util_json_str(&o, msg);
        buf_addstr(&o, "}\n");
        fwrite(o.data, 1, o.len, stdout);
        buf_free(&o);
    } else if (rc == SH_EXIT_OK) {
        printf("%s\n", msg);
    } else if (strcmp(config_str(cfg, "log.target"), "stderr") != 0) {
        fprintf(stderr, "serfhand rollback: %s\n", msg);
    }
    return rc;
}

static const struct cmd_opt opts[] = {
    {.name = "--allow-downgrade",
     .kind = OPT_FLAG,
     .help = "the operator's consent (nothing happens without)"},
    ARGS_OPT_WAIT,
    {.name = "--json", .kind = OPT_FLAG, .help = "one line of JSON, also when it fails"},
    {NULL},
};

const struct cmd_entry cmd_rollback_entry = {
    .name = "rollback",
    .summary = "switch back to the previous bundle (needs --allow-downgrade)",
    .opts = opts,
    .description =
        "Switch <state_dir>/current back to the bundle that was active before the last\n"
        "install (<state_dir>/previous), after verifying it again, and lower the recorded\n"
        "version to it. A downgrade is an explicit operator act: without --allow-downgrade\n"
        "nothing happens.\n"
        "--json: {ok, result (rolled back, refused, failed, error), message}.",
    .exits = "  0 rolled back\n"
             "  1 nothing to roll back to, or the disk or the lock failed\n"
             "  2 usage, no --allow-downgrade, an unusable state_dir or trust.keys\n"
             "  3 the previous bundle no longer verifies or has expired",
    .exec = exec_rollback,
    .needs_config = true,
};
