/*
 * cmd_tick.c: `serfhand tick`, run by a systemd timer or cron: handlers/tick.lua
 * of the active bundle, through the same path as a Serf event (run.c)
 * with the tick deadline (limits.tick_ms).
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "serfhand.h"

static int exec_tick(int argc, char **argv, const struct config *cfg)
{
    const char *name = NULL, *bundle = NULL;
    bool verify = true;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) {
            name = argv[++i];
        } else if (strcmp(argv[i], "--bundle") == 0 && i + 1 < argc) {
            bundle = argv[++i];
        } else if (strcmp(argv[i], "--unsigned") == 0) {
            verify = false;
        } else {
            fprintf(stderr, "usage: serfhand tick %s\n", cmd_tick_entry.usage);
            return SH_EXIT_USAGE;
        }
    }
    char host[256] = "";
    if (!name) {
        gethostname(host, sizeof host - 1);
        name = host;
    }
    struct event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = EV_TICK;
    ev.type_name = xstrdup("tick");
    ev.self_name = xstrdup(name);
    ev.self_role = xstrdup("");
    log_set_context("tick");
    char err[16];
    struct run_req r = {
        .cfg = cfg,
        .bundle_dir = bundle,
        .verify = verify,
        .ev = &ev,
        .out_fd = 1,
    };
    int rc = cmd_exit_run(run_exec(&r, NULL, err, sizeof err));
    event_free(&ev);
    return rc;
}

const struct cmd_entry cmd_tick_entry = {
    .name = "tick",
    .usage = "[--name NODE] [--bundle DIR]\n\n"
             "Runs handlers/tick.lua: records factomd's health, refreshes the cached\n"
             "authority set and, with reboot.auto_propose, proposes a restart when this\n"
             "node is a sick authority. NODE defaults to the host name.",
    .summary = "periodic work: health record, authority set refresh, auto-propose",
    .exec = exec_tick,
    .needs_config = true,
};
