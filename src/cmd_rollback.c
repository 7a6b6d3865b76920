/*
 * cmd_rollback.c: `serfhand rollback --allow-downgrade`, the operator's way
 * back: switch <state_dir>/current to the kept previous bundle (verified
 * again, not expired) and lower the recorded version to it; logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serfhand.h"

static int exec_rollback(int argc, char **argv, const struct config *cfg)
{
    bool allow = false;
    int wait_ms = 30000;
    char msg[2048];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--allow-downgrade") == 0) {
            allow = true;
        } else if (strcmp(argv[i], "--wait") == 0 && i + 1 < argc) {
            char *end;
            long s = strtol(argv[++i], &end, 10);
            if (*end || s < 0 || s > 86400)
                goto usage;
            wait_ms = (int)s * 1000;
        } else {
            goto usage;
        }
    }
    int rc = cmd_exit_install(install_rollback(cfg, allow, wait_ms, msg, sizeof msg));
    if (rc == SH_EXIT_OK) {
        printf("%s\n", msg);
        return rc;
    }
    log_msg(LOG_LVL_ERROR, "rollback failed, nothing changed: %s", msg);
    if (strcmp(config_str(cfg, "log.target"), "stderr") != 0)
        fprintf(stderr, "serfhand rollback: %s\n", msg);
    return rc;
usage:
    fprintf(stderr, "usage: serfhand rollback --allow-downgrade [--wait SECONDS]\n");
    return SH_EXIT_USAGE;
}

const struct cmd_entry cmd_rollback_entry = {
    "rollback",
    "--allow-downgrade [--wait SECONDS]\n\n"
    "Switch <state_dir>/current back to the bundle that was active before the last\n"
    "install (<state_dir>/previous), after verifying it again, and lower the recorded\n"
    "version to it. A downgrade is an explicit operator act: without --allow-downgrade\n"
    "nothing happens.",
    "switch back to the previous bundle (needs --allow-downgrade)",
    exec_rollback,
    true,
};
