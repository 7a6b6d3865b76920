/*
 * cmd_propose.c: `serfhand propose restart [--in 2m] [--ttl 15m] [--dry-run]`,
 * an authority operator's proposal of a coordinated factomd restart. The
 * protocol lives in the signed bundle (lua/factom/proposer.lua, called as
 * factom.restart's propose(), which bundles of every version have);
 * this file parses the command line and runs it through run.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "serfhand.h"

static const char propose_chunk[] =
    "local act, delay, ttl, dry = ...\n"
    "return require('factom.restart').propose{act = act, in_s = math.tointeger(tonumber(delay)),\n"
    "  ttl_s = math.tointeger(tonumber(ttl)), dry_run = dry == '1'}\n";

/* The run's deadline: the ballot (at most 5 s), the relay queries, all at
 * once (at most 8 s), then the fallback events (2 s kept for them), as
 * lua/factom/proposer.lua times them; limits.tick_ms when that is longer.
 * A tool run, not a Serf handler: nothing waits behind it. */
#define PROPOSE_MS 20000

static bool valid_act(const char *a)
{
    size_t n = strlen(a);
    if (n == 0 || n > 32 || a[0] < 'a' || a[0] > 'z')
        return false;
    return strspn(a, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static int exec_propose(const struct args *a, const struct config *cfg)
{
    const char *act = a->pos[0], *bundle = args_str(a, "--bundle", NULL);
    char delay[32] = "", ttl[32] = "";
    bool dry = args_has(a, "--dry-run"), verify = !args_has(a, "--unsigned");
    if (args_has(a, "--in"))
        snprintf(delay, sizeof delay, "%lld", args_num(a, "--in", 0));
    if (args_has(a, "--ttl"))
        snprintf(ttl, sizeof ttl, "%lld", args_num(a, "--ttl", 0));
    if (!valid_act(act)) {
        fprintf(stderr, "serfhand propose: '%s' is not an action (a-z, 0-9, _ and -)\n", act);
        return SH_EXIT_USAGE;
    }
    const char *args[] = {act, delay, ttl, dry ? "1" : "0"};
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    struct event ev;
    event_local(&ev, EV_TOOL, "propose", act, host, args, 4);
    long long tick_ms = config_int(cfg, "limits.tick_ms");
    struct run_req r = {
        .cfg = cfg,
        .bundle_dir = bundle,
        .verify = verify,
        .mode = RUN_TOOL,
        .ev = &ev,
        .deadline_ms = (int)(tick_ms > PROPOSE_MS ? tick_ms : PROPOSE_MS),
        .chunk = propose_chunk,
    };
    struct buf out = {0};
    char err[1024];
    int rc = cmd_exit_run(run_exec(&r, &out, err, sizeof err));
    event_free(&ev);
    if (rc == SH_EXIT_OK)
        printf("%s\n", out.data ? out.data : "");
    else
        fprintf(stderr, "serfhand propose: %s\n", err);
    buf_free(&out);
    return rc;
}

/* Durations as before this parser: up to 86400 hours. */
#define PROPOSE_MAX_S (86400LL * 3600)

static const struct cmd_opt opts[] = {
    {.name = "--in",
     .kind = OPT_DURATION,
     .arg = "DURATION",
     .help = "the agreed time from now (default reboot.delay_seconds; within "
             "reboot.at_min_seconds .. reboot.at_max_seconds)",
     .min = 0,
     .max = PROPOSE_MAX_S},
    {.name = "--ttl",
     .kind = OPT_DURATION,
     .arg = "DURATION",
     .help = "how long the proposal stays open (default reboot.ttl_minutes, at most 1h)",
     .min = 0,
     .max = PROPOSE_MAX_S},
    {.name = "--dry-run", .kind = OPT_FLAG, .help = "print the payload, send nothing"},
    ARGS_OPT_BUNDLE,
    ARGS_OPT_UNSIGNED,
    {NULL},
};

const struct cmd_entry cmd_propose_entry = {
    .name = "propose",
    .summary = "propose a coordinated action (restart) to the authority set",
    .opts = opts,
    .operands = "ACTION",
    .min_operands = 1,
    .max_operands = 1,
    .description = "Sign (with this node's factomd identity) and send a proposal that the\n"
                   "authority set votes on; ACTION is restart. A DURATION is seconds, or a\n"
                   "number with s, m, h, d or w (90, 2m, 1h). It prints how many nodes voted\n"
                   "(the ballot) and on how many the vote was decided (the relay); exit 1\n"
                   "when the proposal reached no node. It runs for at most 20 s (or\n"
                   "limits.tick_ms when longer).",
    .exec = exec_propose,
    .needs_config = true,
};
