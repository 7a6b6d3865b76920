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

#include "serfhand.h"

static const char propose_chunk[] =
    "local act, delay, ttl, dry = ...\n"
    "return require('factom.restart').propose{act = act, in_s = math.tointeger(tonumber(delay)),\n"
    "  ttl_s = math.tointeger(tonumber(ttl)), dry_run = dry == '1'}\n";

/* "90", "90s", "2m", "1h" -> seconds; -1 if malformed. */
static long parse_duration(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || v < 0 || v > 86400)
        return -1;
    if (*end == '\0' || strcmp(end, "s") == 0)
        return v;
    if (strcmp(end, "m") == 0)
        return v * 60;
    if (strcmp(end, "h") == 0)
        return v * 3600;
    return -1;
}

static bool valid_act(const char *a)
{
    size_t n = strlen(a);
    if (n == 0 || n > 32 || a[0] < 'a' || a[0] > 'z')
        return false;
    return strspn(a, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

static int exec_propose(int argc, char **argv, const struct config *cfg)
{
    const char *act = NULL, *bundle = NULL;
    char delay[32] = "", ttl[32] = "";
    bool dry = false, verify = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--dry-run") == 0) {
            dry = true;
        } else if (strcmp(a, "--unsigned") == 0) {
            verify = false;
        } else if ((strcmp(a, "--in") == 0 || strcmp(a, "--ttl") == 0) && i + 1 < argc) {
            long v = parse_duration(argv[++i]);
            if (v < 0) {
                fprintf(stderr, "serfhand propose: %s: bad duration '%s' (e.g. 90s, 2m, 1h)\n", a,
                        argv[i]);
                return SH_EXIT_USAGE;
            }
            snprintf(strcmp(a, "--in") == 0 ? delay : ttl, 32, "%ld", v);
        } else if (strcmp(a, "--bundle") == 0 && i + 1 < argc) {
            bundle = argv[++i];
        } else if (a[0] != '-' && !act) {
            act = a;
        } else {
            fprintf(stderr,
                    "serfhand propose: unexpected argument '%s'\nusage: serfhand propose %s\n", a,
                    cmd_propose_entry.usage);
            return SH_EXIT_USAGE;
        }
    }
    if (!act || !valid_act(act)) {
        fprintf(stderr, "usage: serfhand propose %s\n", cmd_propose_entry.usage);
        return SH_EXIT_USAGE;
    }
    const char *args[] = {act, delay, ttl, dry ? "1" : "0"};
    struct run_req r = {
        .cfg = cfg,
        .bundle_dir = bundle,
        .verify = verify,
        .deadline_ms = (int)config_int(cfg, "limits.tick_ms"),
        .chunk = propose_chunk,
        .args = args,
        .nargs = 4,
    };
    struct buf out = {0};
    char err[1024];
    int rc = cmd_exit_run(run_exec(&r, &out, err, sizeof err));
    if (rc == SH_EXIT_OK)
        printf("%s\n", out.data ? out.data : "");
    else
        fprintf(stderr, "serfhand propose: %s\n", err);
    buf_free(&out);
    return rc;
}

const struct cmd_entry cmd_propose_entry = {
    .name = "propose",
    .usage = "ACTION [--in 2m] [--ttl 15m] [--dry-run] [--bundle DIR]\n\n"
             "Sign (with this node's factomd identity) and send a proposal that the\n"
             "authority set votes on; ACTION is restart. --in: the agreed time from now\n"
             "(default reboot.delay_seconds); --ttl: how long the proposal stays open\n"
             "(default reboot.ttl_minutes, at most 1h); --dry-run prints the payload.\n"
             "It prints how many nodes voted (the ballot) and on how many the vote\n"
             "was decided (the relay); exit 1 when the proposal reached no node.",
    .summary = "propose a coordinated action (restart) to the authority set",
    .exec = exec_propose,
    .needs_config = true,
};
