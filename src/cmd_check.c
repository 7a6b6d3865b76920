/*
 * cmd_check.c: `serfhand check`, the full check of the active bundle
 * (config "bundle"): signatures, threshold, every hash, unlisted or missing
 * files, expiry, the recorded highest version, every Lua file compiled in
 * text mode, and every handler file loaded (its top level run, never its
 * handler) to see that it returns a function. check.c does the work.
 * `check --cluster` asks every alive member the built-in query
 * serfhand-check instead (status.c) and prints one row per node.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serfhand.h"

#define PROBLEM_SHOWN 100 /* bytes of a member's first problem in the table */

struct row {
    const char *node;
    const struct buf *answer; /* NULL: no answer */
    struct status_check c;
    bool parsed;
    char error[96]; /* why the answer was refused */
};

static int row_cmp(const void *a, const void *b)
{
    return strcmp(((const struct row *)a)->node, ((const struct row *)b)->node);
}

static bool has_problem(const struct row *r)
{
    return !r->parsed || !r->c.ok || r->c.nproblems > 0;
}

static void json_lines(struct buf *o, const struct util_lines *l)
{
    buf_addstr(o, "[");
    for (size_t i = 0; i < l->n; i++) {
        if (i)
            buf_addstr(o, ",");
        status_json_bytes(o, l->v[i], strlen(l->v[i]));
    }
    buf_addstr(o, "]");
}

static void row_json(struct buf *o, const struct row *r)
{
    buf_addstr(o, "{\"node\":");
    status_json_bytes(o, r->node, strlen(r->node));
    if (!r->parsed) {
        buf_addstr(o, ",\"error\":");
        util_json_str(o, r->error); /* our words */
        buf_addstr(o, "}");
        return;
    }
    const struct status_check *c = &r->c;
    buf_addstr(o, ",\"bundle\":");
    if (c->bundle[0])
        util_json_str(o, c->bundle); /* a valid name: nothing to escape */
    else
        buf_addstr(o, "null");
    if (c->version == STATUS_ABSENT)
        buf_addstr(o, ",\"version\":null");
    else
        buf_printf(o, ",\"version\":%lld", (long long)c->version);
    buf_printf(o, ",\"manifest\":\"%s\",\"ok\":%s,\"failed\":", c->manifest,
               c->ok ? "true" : "false");
    json_lines(o, &c->failed);
    buf_addstr(o, ",\"problems\":");
    json_lines(o, &c->problems);
    buf_printf(o, ",\"problem_count\":%zu}", c->nproblems);
}

static void row_text(struct buf *o, const struct row *r)
{
    struct buf node = {0};
    status_term_bytes(&node, r->node, strlen(r->node), 64);
    buf_printf(o, "%-16s ", node.data);
    buf_free(&node);
    if (!r->answer) {
        buf_addstr(o, "(no answer)\n");
        return;
    }
    if (!r->parsed) {
        buf_printf(o, "(bad answer: %s)\n", r->error);
        return;
    }
    char version[24] = "-";
    if (r->c.version != STATUS_ABSENT)
        snprintf(version, sizeof version, "%lld", (long long)r->c.version);
    buf_printf(o, "%-16s %7s  ", r->c.bundle[0] ? r->c.bundle : "-", version);
    if (!has_problem(r)) {
        buf_addstr(o, "-\n");
        return;
    }
    if (r->c.problems.n)
        status_term_bytes(o, r->c.problems.v[0], strlen(r->c.problems.v[0]), PROBLEM_SHOWN);
    else
        buf_addstr(o, "not ok (no problem named)");
    if (r->c.nproblems > 1)
        buf_printf(o, " (+%zu more)", r->c.nproblems - 1);
    buf_addstr(o, "\n");
}

static int check_cluster(const struct args *a, const struct config *cfg, bool json)
{
    char err[512];
    struct status_round r;
    struct status_ask q = {
        .name = "serfhand-check",
        .payload = "",
        .timeout_ms = args_num(a, "--timeout", 0) * 1000,
        .expect = -1,
    };
    if (status_ask(cfg, &q, &r, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand check: %s\n", err);
        status_round_free(&r);
        return SH_EXIT_USAGE;
    }
    struct sandbox_limits lim = {.memory = 16u << 20, .deadline_ms = 10000, .grace_ms = 500};
    struct sandbox *sb = sandbox_new(&lim, NULL, cfg, err, sizeof err);
    if (!sb) {
        fprintf(stderr, "serfhand check: %s\n", err);
        status_round_free(&r);
        return SH_EXIT_USAGE;
    }
    struct row *rows = xmalloc((r.ntargets + r.res.nresp + 1) * sizeof *rows);
    size_t nrows = 0, answered = 0, bad = 0, missing = 0;
    for (size_t i = 0; i < r.ntargets + r.res.nresp; i++) {
        /* every alive member, then anyone else who answered */
        const char *node = i < r.ntargets ? r.targets[i] : r.res.resp[i - r.ntargets].from;
        const struct serf_reply *rep = status_round_reply(&r, node, NULL);
        bool listed = false;
        for (size_t k = 0; i >= r.ntargets && k < r.ntargets && !listed; k++)
            listed = strcmp(r.targets[k], node) == 0;
        if (listed)
            continue;
        struct row *w = &rows[nrows++];
        memset(w, 0, sizeof *w);
        w->node = node;
        w->answer = rep ? &rep->payload : NULL;
        if (!rep) {
            missing++;
            continue;
        }
        answered++;
        w->parsed = status_check_parse(sandbox_state(sb), rep->payload.data, rep->payload.len,
                                       &w->c, w->error, sizeof w->error) == 0;
        bad += has_problem(w);
    }
    qsort(rows, nrows, sizeof *rows, row_cmp);
    struct buf o = {0};
    if (json) {
        buf_printf(&o, "{\"alive\":%zu,\"answered\":%zu,\"problems\":%zu,\"nodes\":[", r.alive,
                   answered, bad);
        const char *sep = "";
        for (size_t i = 0; i < nrows; i++)
            if (rows[i].answer) {
                buf_addstr(&o, sep);
                sep = ",";
                row_json(&o, &rows[i]);
            }
        buf_addstr(&o, "],\"missing\":[");
        sep = "";
        for (size_t i = 0; i < nrows; i++)
            if (!rows[i].answer) {
                buf_addstr(&o, sep);
                sep = ",";
                status_json_bytes(&o, rows[i].node, strlen(rows[i].node));
            }
        buf_addstr(&o, "]}\n");
    } else {
        buf_printf(&o, "%-16s %-16s %7s  %s\n", "NODE", "BUNDLE", "VERSION", "PROBLEMS");
        for (size_t i = 0; i < nrows; i++)
            row_text(&o, &rows[i]);
        buf_printf(&o, "%zu of %zu alive members answered, %zu with problems, in %lld ms\n",
                   answered, r.alive, bad, (long long)r.elapsed_ms);
    }
    fwrite(o.data, 1, o.len, stdout);
    buf_free(&o);
    for (size_t i = 0; i < nrows; i++)
        status_check_free(&rows[i].c);
    free(rows);
    sandbox_free(sb);
    status_round_free(&r);
    return missing || bad ? SH_EXIT_FAIL : SH_EXIT_OK;
}

static int exec_check(const struct args *a, const struct config *cfg)
{
    bool json = args_has(a, "--json");
    if (args_has(a, "--cluster"))
        return check_cluster(a, cfg, json);
    if (args_has(a, "--timeout")) {
        fprintf(stderr, "serfhand check: --timeout only applies to --cluster\n");
        return SH_EXIT_USAGE;
    }
    const char *dir = config_str(cfg, "bundle");
    struct trust_report r;
    enum check_result res = check_bundle(cfg, dir, &r);
    trust_report_print(&r, dir, json);
    trust_report_free(&r);
    return res == CHECK_OK ? SH_EXIT_OK : res == CHECK_REFUSED ? SH_EXIT_TRUST : SH_EXIT_FAIL;
}

static const struct cmd_opt opts[] = {
    {.name = "--cluster",
     .kind = OPT_FLAG,
     .help = "ask every alive member (query serfhand-check), one row per node"},
    {.name = "--timeout",
     .kind = OPT_DURATION,
     .arg = "DURATION",
     .help = "--cluster: Serf's query timeout (default: the agent's, 3.2 s up to 9 nodes)",
     .min = 1,
     .max = 3600},
    {.name = "--json", .kind = OPT_FLAG, .help = "one line of JSON instead of the text report"},
    {NULL},
};

const struct cmd_entry cmd_check_entry = {
    .name = "check",
    .summary = "check the active bundle in full (--cluster: every node's bundle, version, "
               "problems)",
    .opts = opts,
    .description = "--json: {bundle, version, manifest, ok, threshold, valid_keys, created,\n"
                   "expires, files, signatures, failed, problems}; failed lists codes (manifest,\n"
                   "signatures, files, expired, compile, version, handlers, keys), problems the\n"
                   "prose.\n"
                   "--cluster asks every alive member the built-in query serfhand-check through\n"
                   "the local agent (serf.rpc_addr) and prints NODE, BUNDLE, VERSION and the\n"
                   "first PROBLEM of each, returning as soon as every alive member answered.\n"
                   "--json: {alive, answered, problems, nodes: [{node, bundle, version, manifest,\n"
                   "ok, failed, problems, problem_count}], missing}.",
    .exits = "  0 ok; --cluster: every alive member answered, none reports a problem\n"
             "  1 the bundle verifies but a handler's top level raises or returns no\n"
             "    handler; --cluster: a member reports a problem or did not answer\n"
             "  2 usage, configuration; --cluster: the agent cannot be reached\n"
             "  3 the bundle fails verification or does not compile (a node refuses it)",
    .exec = exec_check,
    .needs_config = true,
};
