/*
 * cmd_status.c: `serfhand status [--json]`: sends query factomd-status to
 * every alive member over the local agent's RPC (serfrpc.c), returns as soon
 * as each of them answered, and prints one row per node. The answers (the
 * compact JSON of handlers/query/factomd-status.lua) come from other members:
 * status.c reads them strictly, and only what it parsed is printed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serfhand.h"

#define QUERY_NAME "factomd-status"
#define DEFAULT_TIMEOUT_MS 5000

struct row {
    const char *name;
    const struct buf *answer; /* NULL: no answer */
};

static int row_cmp(const void *a, const void *b)
{
    return strcmp(((const struct row *)a)->name, ((const struct row *)b)->name);
}

/* Read each answer once, strictly (status.c): the table and --json show only
 * the parsed fields, never a member's own bytes. */
struct parsed {
    bool ok;
    struct status_answer a;
    char problem[96];
};

static void parse_rows(lua_State *L, const struct row *rows, size_t n, struct parsed *out)
{
    for (size_t i = 0; i < n; i++) {
        char err[80];
        out[i].ok = false;
        out[i].problem[0] = 0;
        if (!rows[i].answer)
            continue;
        if (status_answer_parse(L, rows[i].answer->data, rows[i].answer->len, &out[i].a, err,
                                sizeof err) == 0)
            out[i].ok = true;
        else
            snprintf(out[i].problem, sizeof out[i].problem, "%s", err);
    }
}

static int exec_status(const struct args *a, const struct config *cfg)
{
    bool json = args_has(a, "--json");
    char err[512];
    struct status_round r = {0};
    struct row *rows = NULL;
    struct parsed *parsed = NULL;
    struct sandbox *sb = NULL;
    int rc = SH_EXIT_USAGE;

    /* Every alive member is a target (the round's own memory bound holds
     * against a member answering under many names). */
    struct status_ask q = {
        .name = QUERY_NAME,
        .payload = "",
        .len = 0,
        .timeout_ms = (long)args_num(a, "--timeout-ms", DEFAULT_TIMEOUT_MS),
        .expect = -1,
    };
    if (status_ask(cfg, &q, &r, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand status: %s\n", err);
        goto out;
    }
    size_t alive = r.alive;
    rows = xmalloc((r.ntargets + 1) * sizeof *rows);
    size_t nrows = 0;
    for (size_t i = 0; i < r.ntargets; i++) {
        const struct serf_reply *reply = status_round_reply(&r, r.targets[i], NULL);
        rows[nrows].name = r.targets[i];
        rows[nrows].answer = reply ? &reply->payload : NULL;
        nrows++;
    }
    qsort(rows, nrows, sizeof *rows, row_cmp);
    size_t answered = 0;
    for (size_t i = 0; i < nrows; i++)
        if (rows[i].answer)
            answered++;

    struct sandbox_limits lim = {.memory = 16u << 20, .deadline_ms = 10000, .grace_ms = 500};
    sb = sandbox_new(&lim, NULL, cfg, err, sizeof err);
    if (!sb) {
        fprintf(stderr, "serfhand status: %s\n", err);
        goto out;
    }
    parsed = xmalloc((nrows + 1) * sizeof *parsed);
    parse_rows(sandbox_state(sb), rows, nrows, parsed);
    struct buf o = {0};
    if (json) {
        buf_printf(&o, "{\"alive\":%zu,\"answered\":%zu,\"nodes\":{", alive, answered);
        for (size_t i = 0; i < nrows; i++) {
            if (i)
                buf_addstr(&o, ",");
            util_json_str(&o, rows[i].name);
            buf_addstr(&o, ":");
            status_row_json(&o, parsed[i].ok ? &parsed[i].a : NULL,
                            parsed[i].problem[0] ? parsed[i].problem : NULL);
        }
        buf_addstr(&o, "}}\n");
    } else {
        buf_printf(&o, "%-16s %-10s %-8s %8s %8s %3s %8s %-4s %-7s %s\n", "NODE", "ROLE", "STATE",
                   "HEIGHT", "LEADER", "MIN", "STALLED", "SICK", "BUNDLE", "LAST RESTART");
        int64_t now = util_now_ms();
        for (size_t i = 0; i < nrows; i++)
            status_row_text(&o, rows[i].name, parsed[i].ok ? &parsed[i].a : NULL,
                            parsed[i].problem[0] ? parsed[i].problem : NULL, now);
        buf_printf(&o, "%zu of %zu alive members answered\n", answered, alive);
        if (answered == 0 && alive > 0) /* a cluster without the Factom bundle */
            fprintf(stderr,
                    "serfhand status: no member answered query %s (is the Factom "
                    "bundle active?); `serfhand check --cluster` shows every node's "
                    "bundle\n",
                    QUERY_NAME);
    }
    fwrite(o.data, 1, o.len, stdout);
    buf_free(&o);
    rc = answered == alive ? SH_EXIT_OK : SH_EXIT_FAIL;
out:
    sandbox_free(sb);
    free(parsed);
    free(rows);
    status_round_free(&r);
    return rc;
}

static const struct cmd_opt opts[] = {
    {.name = "--json", .kind = OPT_FLAG, .help = "one line of JSON instead of the table"},
    {.name = "--timeout-ms",
     .kind = OPT_INT,
     .arg = "N",
     .help = "wait at most N ms for the answers (default 5000)",
     .min = 1,
     .max = 600000},
    {NULL},
};

const struct cmd_entry cmd_status_entry = {
    .name = "status",
    .summary = "factomd health of every node, over the Serf agent",
    .opts = opts,
    .description = "Asks every alive member (query factomd-status) and prints one row per\n"
                   "node: role, state, saved and leader height, minute, stalled for, sick,\n"
                   "bundle version, last restart. Returns once every alive member answered\n"
                   "(at most N ms, default 5000).",
    .exits = "  0 every alive member answered\n"
             "  1 some did not\n"
             "  2 usage, configuration, or the agent cannot be reached",
    .exec = exec_status,
    .needs_config = true,
};
