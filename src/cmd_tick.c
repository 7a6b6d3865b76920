/*
 * cmd_tick.c: `serfhand tick`, run by a systemd timer or cron: handlers/tick.lua
 * of the active bundle, through the same path as a Serf event (run.c)
 * with the tick deadline (limits.tick_ms).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "serfhand.h"

static int exec_tick(const struct args *a, const struct config *cfg)
{
    const char *name = args_str(a, "--name", NULL), *bundle = args_str(a, "--bundle", NULL);
    bool verify = !args_has(a, "--unsigned");
    char host[256] = "";
    if (!name) {
        gethostname(host, sizeof host - 1);
        name = host;
    }
    struct event ev;
    event_local(&ev, EV_TICK, NULL, NULL, name, NULL, 0);
    log_set_context("tick");
    char err[16]; /* RUN_SERF: failures are logged */
    struct run_req r = {
        .cfg = cfg,
        .bundle_dir = bundle,
        .verify = verify,
        .mode = RUN_SERF,
        .ev = &ev,
        .out_fd = 1,
    };
    int64_t t0 = util_mono_ms();
    int rc = cmd_exit_run(run_exec(&r, NULL, err, sizeof err));
    metrics_record(cfg, "tick", rc, util_mono_ms() - t0);
    event_free(&ev);
    return rc;
}

static const struct cmd_opt opts[] = {
    {.name = "--name",
     .kind = OPT_STR,
     .arg = "NODE",
     .help = "this node's name (default: the host name)"},
    ARGS_OPT_BUNDLE,
    ARGS_OPT_UNSIGNED,
    {NULL},
};

const struct cmd_entry cmd_tick_entry = {
    .name = "tick",
    .summary = "periodic work: health record, authority set refresh, auto-propose",
    .opts = opts,
    .description = "Runs handlers/tick.lua: records factomd's health, refreshes the cached\n"
                   "authority set and, with reboot.auto_propose, proposes a restart when this\n"
                   "node is a sick authority.",
    .exec = exec_tick,
    .needs_config = true,
};
