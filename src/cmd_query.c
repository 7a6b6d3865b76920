/*
 * cmd_query.c: `serfhand query NAME [PAYLOAD]`, the generic cluster view: one
 * query through the local agent's RPC (status.c), returning as soon as every
 * target answered, one line per node or --json. Every answer and node name
 * comes from another member: printed escaped, never as raw bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "serfhand.h"

#define ANSWER_SHOWN 200 /* bytes of an answer shown on a terminal */
#define NAME_SHOWN 64

struct row {
    const char *node;
    const struct buf *answer; /* NULL: no answer */
    int64_t ms;
};

static int row_cmp(const void *a, const void *b)
{
    return strcmp(((const struct row *)a)->node, ((const struct row *)b)->node);
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The answer as "answer" (a JSON string, when it is valid UTF-8) or
 * "answer_base64" (when it is not), so the exact bytes always come back. */
static void json_answer(struct buf *o, const struct buf *a)
{
    if (status_utf8_valid(a->data, a->len)) {
        buf_addstr(o, "\"answer\":");
        status_json_bytes(o, a->data, a->len);
        return;
    }
    size_t n = sodium_base64_encoded_len(a->len, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = xmalloc(n);
    sodium_bin2base64(b64, n, (const unsigned char *)a->data, a->len,
                      sodium_base64_VARIANT_ORIGINAL);
    buf_printf(o, "\"answer_base64\":\"%s\"", b64);
    free(b64);
}

static void json_names(struct buf *o, char **v, size_t n)
{
    qsort(v, n, sizeof *v, str_cmp);
    buf_addstr(o, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            buf_addstr(o, ",");
        status_json_bytes(o, v[i], strlen(v[i]));
    }
    buf_addstr(o, "]");
}

static int exec_query(const struct args *a, const struct config *cfg)
{
    const char *name = a->pos[0];
    const char *payload = a->npos > 1 ? a->pos[1] : "";
    bool json = args_has(a, "--json");
    size_t nnodes, ntags;
    const char *const *nodes = args_list(a, "--node", &nnodes);
    const char *const *tags = args_list(a, "--tag", &ntags);
    char err[512];
    if (!util_valid_name(name)) {
        fprintf(stderr, "serfhand query: NAME must match [A-Za-z0-9][A-Za-z0-9_.-]{0,63}\n");
        return SH_EXIT_USAGE;
    }
    const char **tagk = xmalloc((ntags + 1) * sizeof *tagk);
    const char **tagv = xmalloc((ntags + 1) * sizeof *tagv);
    char **owned = xmalloc((ntags + 1) * sizeof *owned);
    int rc = SH_EXIT_USAGE;
    struct status_round r = {0};
    struct row *rows = NULL;
    char **missing = NULL, **acks = NULL;
    for (size_t i = 0; i < ntags; i++) {
        owned[i] = xstrdup(tags[i]);
        char *eq = strchr(owned[i], '=');
        if (!eq || eq == owned[i]) {
            fprintf(stderr, "serfhand query: --tag wants KEY=REGEXP, not '%s'\n", tags[i]);
            ntags = i + 1;
            goto out;
        }
        *eq = 0;
        tagk[i] = owned[i];
        tagv[i] = eq + 1;
    }
    struct status_ask q = {
        .name = name,
        .payload = payload,
        .len = strlen(payload),
        .nodes = nodes,
        .nnodes = nnodes,
        .tagk = tagk,
        .tagv = tagv,
        .ntags = ntags,
        .timeout_ms = args_num(a, "--timeout", 0) * 1000,
        .expect = args_num(a, "--expect", -1),
    };
    if (status_ask(cfg, &q, &r, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand query: %s\n", err);
        goto out;
    }

    /* The targets, with or without an answer, then anyone else who answered. */
    rows = xmalloc((r.ntargets + r.res.nresp + r.res.nacks + 1) * sizeof *rows);
    missing = xmalloc((r.ntargets + r.res.nacks + 1) * sizeof *missing);
    size_t nrows = 0, nmissing = 0;
    for (size_t i = 0; i < r.ntargets; i++) {
        size_t k;
        const struct serf_reply *rep = status_round_reply(&r, r.targets[i], &k);
        rows[nrows++] = (struct row){r.targets[i], rep ? &rep->payload : NULL,
                                     rep ? status_round_ms(&r, k) : -1};
        if (!rep)
            missing[nmissing++] = r.targets[i];
    }
    for (size_t k = 0; k < r.res.nresp; k++) {
        bool listed = false;
        for (size_t i = 0; i < r.ntargets && !listed; i++)
            listed = strcmp(r.targets[i], r.res.resp[k].from) == 0;
        if (!listed)
            rows[nrows++] =
                (struct row){r.res.resp[k].from, &r.res.resp[k].payload, status_round_ms(&r, k)};
    }
    if (!r.known_targets) /* tag filters: who acked is who the filter matched */
        for (size_t k = 0; k < r.res.nacks; k++)
            if (!status_round_reply(&r, r.res.acks[k], NULL)) {
                missing[nmissing++] = r.res.acks[k];
                rows[nrows++] = (struct row){r.res.acks[k], NULL, -1};
            }
    qsort(rows, nrows, sizeof *rows, row_cmp);
    acks = xmalloc((r.res.nacks + 1) * sizeof *acks);
    memcpy(acks, r.res.acks, r.res.nacks * sizeof *acks);

    struct buf o = {0};
    if (json) {
        buf_addstr(&o, "{\"query\":");
        status_json_bytes(&o, name, strlen(name));
        buf_printf(&o, ",\"answered\":%zu,\"expected\":%zu,\"elapsed_ms\":%lld,\"answers\":[",
                   r.res.nresp, r.expect, (long long)r.elapsed_ms);
        const char *sep = "";
        for (size_t i = 0; i < nrows; i++) {
            if (!rows[i].answer)
                continue;
            buf_printf(&o, "%s{\"node\":", sep);
            sep = ",";
            status_json_bytes(&o, rows[i].node, strlen(rows[i].node));
            buf_printf(&o, ",\"ms\":%lld,\"bytes\":%zu,", (long long)rows[i].ms,
                       rows[i].answer->len);
            json_answer(&o, rows[i].answer);
            buf_addstr(&o, "}");
        }
        buf_addstr(&o, "],\"acks\":");
        json_names(&o, acks, r.res.nacks);
        buf_addstr(&o, ",\"missing\":");
        json_names(&o, missing, nmissing);
        buf_addstr(&o, "}\n");
    } else {
        for (size_t i = 0; i < nrows; i++) {
            struct buf node = {0};
            status_term_bytes(&node, rows[i].node, strlen(rows[i].node), NAME_SHOWN);
            if (!rows[i].answer) {
                buf_printf(&o, "%-16s (no answer)\n", node.data);
            } else {
                buf_printf(&o, "%-16s %6lld ms %5zu B  ", node.data, (long long)rows[i].ms,
                           rows[i].answer->len);
                status_term_bytes(&o, rows[i].answer->data, rows[i].answer->len, ANSWER_SHOWN);
                buf_addstr(&o, "\n");
            }
            buf_free(&node);
        }
        buf_printf(&o, "%zu answered, %zu acks, %zu missing, in %lld ms\n", r.res.nresp,
                   r.res.nacks, nmissing, (long long)r.elapsed_ms);
    }
    fwrite(o.data, 1, o.len, stdout);
    buf_free(&o);
    rc = nmissing == 0 && r.res.nresp >= (size_t)(q.expect > 0 ? q.expect : 0) ? SH_EXIT_OK
                                                                               : SH_EXIT_FAIL;
out:
    for (size_t i = 0; i < ntags; i++)
        free(owned[i]);
    free(owned);
    free(tagk);
    free(tagv);
    free(rows);
    free(missing);
    free(acks);
    status_round_free(&r);
    return rc;
}

static const struct cmd_opt opts[] = {
    {.name = "--expect",
     .kind = OPT_INT,
     .arg = "N",
     .help = "return once N answers are in (default: every target)",
     .min = 1,
     .max = 100000},
    {.name = "--timeout",
     .kind = OPT_DURATION,
     .arg = "DURATION",
     .help = "Serf's query timeout (default: the agent's, 3.2 s up to 9 nodes)",
     .min = 1,
     .max = 3600},
    {.name = "--node", .kind = OPT_LIST, .arg = "NAME", .help = "ask only this node (repeatable)"},
    {.name = "--tag",
     .kind = OPT_LIST,
     .arg = "KEY=REGEXP",
     .help = "ask only nodes whose tag matches (repeatable)"},
    {.name = "--json", .kind = OPT_FLAG, .help = "one line of JSON instead of the table"},
    {NULL},
};

const struct cmd_entry cmd_query_entry = {
    .name = "query",
    .summary = "ask the cluster a query, return as soon as every node answered",
    .opts = opts,
    .operands = "NAME [PAYLOAD]",
    .min_operands = 1,
    .max_operands = 2,
    .description =
        "Sends query NAME with PAYLOAD through the local agent (serf.rpc_addr) and\n"
        "prints one line per node: name, ms, bytes, the answer (escaped: \\n, \\t, \\\\,\n"
        "\\xHH for every other byte that is not printable ASCII; cut after 200 bytes).\n"
        "The targets are every alive member, or the --node names; it returns as soon\n"
        "as each answered (or --expect N did), else at the timeout. With --tag the\n"
        "agents decide who matches: it waits for the timeout unless --expect is given,\n"
        "and nodes that acked without answering count as missing.\n"
        "--json: {query, answered, expected, elapsed_ms, answers: [{node, ms, bytes,\n"
        "answer}], acks, missing}, keys in this order, answers, acks and missing sorted\n"
        "by node; an answer is a JSON string when it is valid UTF-8, else\n"
        "\"answer_base64\" holds its bytes. Parse JSON answers with jq's fromjson.",
    .exits = "  0 every target answered (and at least N with --expect N)\n"
             "  1 some did not\n"
             "  2 usage, configuration, the agent cannot be reached or refused the query, or\n"
             "    the answers came to more than 64 MiB (a member answering under many names)",
    .exec = exec_query,
    .needs_config = true,
};
