/*
 * cmd_action.c: `serfhand action ACT PID`, the detached executor that a
 * decided proposal spawns on each authority (lua/factom/restart.lua spawns
 * it, lua/factom/executor.lua is what it runs). It runs
 * handlers/action/<ACT>.lua of the verified bundle with ev.payload = PID,
 * under a deadline long enough to wait for the agreed time.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "serfhand.h"

#define ACTION_DEADLINE_MS (2 * 3600 * 1000) /* a proposal lives at most 1 h */

static int exec_action(const struct args *a, const struct config *cfg)
{
    const char *const *pos = (const char *const *)a->pos, *bundle = args_str(a, "--bundle", NULL);
    bool verify = !args_has(a, "--unsigned");
    if (strlen(pos[0]) > 32 || !util_valid_name(pos[0])) {
        fprintf(stderr, "serfhand action: '%s' is not an action name\n", pos[0]);
        return SH_EXIT_USAGE;
    }
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    char ctx[64];
    snprintf(ctx, sizeof ctx, "action:%s", pos[0]);
    log_set_context(ctx);
    const char *args[] = {pos[1]};
    struct event ev; /* handlers/action/<ACT>.lua, ev.payload = DIGEST */
    event_local(&ev, EV_TOOL, "action", pos[0], host, args, 1);
    struct run_req r = {
        .cfg = cfg,
        .bundle_dir = bundle,
        .verify = verify,
        .mode = RUN_TOOL,
        .ev = &ev,
        .deadline_ms = ACTION_DEADLINE_MS,
        .deadline_name = "the action's deadline (2 h)",
    };
    struct buf out = {0};
    char err[1024];
    int rc = cmd_exit_run(run_exec(&r, &out, err, sizeof err));
    event_free(&ev);
    if (rc == SH_EXIT_OK) {
        log_msg(LOG_LVL_INFO, "%s", out.data ? out.data : "done");
        printf("%s\n", out.data ? out.data : "");
    } else {
        log_msg(LOG_LVL_ERROR, "%s", err);
        fprintf(stderr, "serfhand action: %s\n", err);
    }
    buf_free(&out);
    return rc;
}

static const struct cmd_opt opts[] = {
    ARGS_OPT_BUNDLE,
    ARGS_OPT_UNSIGNED,
    {NULL},
};

const struct cmd_entry cmd_action_entry = {
    .name = "action",
    .summary = "the detached executor of a decided proposal (started by the bundle)",
    .opts = opts,
    .operands = "ACT DIGEST",
    .min_operands = 2,
    .max_operands = 2,
    .description = "Started detached by a decided proposal (DIGEST: its ph, 64 hex): runs\n"
                   "handlers/action/ACT.lua, which waits for the agreed time and acts once.\n"
                   "Not for interactive use.",
    .exec = exec_action,
    .needs_config = true,
};
