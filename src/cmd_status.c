/*
 * cmd_status.c: `serfhand status [--json]`: sends query factomd-status to
 * every alive member over the local agent's RPC (serfrpc.c), returns as soon
 * as each of them answered, and prints one row per node (the answers are the
 * compact JSON of handlers/query/factomd-status.lua).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

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

/* Field k of the table on top as text into out ("-" if absent). */
static void field(lua_State *L, const char *k, char *out, size_t n)
{
    int t = lua_getfield(L, -1, k);
    if (t == LUA_TBOOLEAN)
        snprintf(out, n, "%s", lua_toboolean(L, -1) ? "yes" : "no");
    else if (t == LUA_TNUMBER && lua_isinteger(L, -1))
        snprintf(out, n, "%lld", (long long)lua_tointeger(L, -1));
    else if (t == LUA_TSTRING || t == LUA_TNUMBER)
        snprintf(out, n, "%s", lua_tostring(L, -1));
    else
        snprintf(out, n, "-");
    lua_pop(L, 1);
}

static void print_row(lua_State *L, const struct row *r, int64_t now_ms)
{
    char err[256];
    if (!r->answer) {
        printf("%-16s %s\n", r->name, "(no answer)");
        return;
    }
    if (ljson_decode(L, r->answer->data, r->answer->len, err, sizeof err) < 0 ||
        !lua_istable(L, -1)) {
        if (lua_gettop(L) > 0 && !lua_istable(L, -1))
            lua_pop(L, 1);
        printf("%-16s (bad answer: %.60s)\n", r->name, r->answer->data);
        return;
    }
    char role[32], state[16], h[24], saved[24], minute[8], stalled[24], sick[8], bundle[24],
        last[48] = "-";
    field(L, "role", role, sizeof role);
    field(L, "state", state, sizeof state);
    field(L, "h", h, sizeof h);
    field(L, "saved", saved, sizeof saved);
    field(L, "minute", minute, sizeof minute);
    field(L, "stalled_s", stalled, sizeof stalled);
    field(L, "sick", sick, sizeof sick);
    field(L, "bundle", bundle, sizeof bundle);
    if (strcmp(stalled, "-") != 0)
        strcat(stalled, "s");
    if (lua_getfield(L, -1, "last_restart") == LUA_TNUMBER) {
        long long t = (long long)lua_tonumber(L, -1);
        lua_getfield(L, -2, "last_ok");
        snprintf(last, sizeof last, "%llds ago%s", (long long)(now_ms - t) / 1000,
                 lua_toboolean(L, -1) ? " ok" : " failed");
        lua_pop(L, 1);
    }
    lua_pop(L, 2);
    printf("%-16s %-10s %-8s %8s %8s %3s %8s %-4s %-7s %s\n", r->name, role, state, saved, h,
           minute, stalled, sick, bundle, last);
}

static int exec_status(int argc, char **argv, const struct config *cfg)
{
    bool json = false;
    long timeout_ms = DEFAULT_TIMEOUT_MS;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc) {
            timeout_ms = strtol(argv[++i], NULL, 10);
            if (timeout_ms < 1 || timeout_ms > 600000) {
                fprintf(stderr, "serfhand status: --timeout-ms must be 1..600000\n");
                return SH_EXIT_USAGE;
            }
        } else {
            fprintf(stderr, "usage: serfhand status %s\n", cmd_status_entry.usage);
            return SH_EXIT_USAGE;
        }
    }
    const char *addr = config_str(cfg, "serf.rpc_addr");
    const char *token = config_str(cfg, "serf.rpc_auth");
    if (!addr || !*addr)
        addr = getenv("SERF_RPC_ADDR");
    if (!addr || !*addr)
        addr = "127.0.0.1:7373";
    if (!token || !*token)
        token = getenv("SERF_RPC_AUTH");

    char err[512];
    struct serfrpc *c = NULL;
    struct serf_member *m = NULL;
    size_t nm = 0, alive = 0;
    struct serf_query_result res = {0};
    struct row *rows = NULL;
    struct sandbox *sb = NULL;
    int rc = SH_EXIT_USAGE;
    int64_t rpc_ms = config_int(cfg, "serf.timeout_ms");

    if (serfrpc_open(&c, addr, token, util_mono_ms() + rpc_ms, err, sizeof err) < 0 ||
        serfrpc_members(c, &m, &nm, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand status: %s\n", err);
        goto out;
    }
    for (size_t i = 0; i < nm; i++)
        if (strcmp(m[i].status, "alive") == 0)
            alive++;
    struct serf_query q = {
        .name = QUERY_NAME,
        .payload = "",
        .len = 0,
        .timeout_ms = timeout_ms,
        .expect = alive,
    };
    serfrpc_set_deadline(c, util_mono_ms() + timeout_ms + rpc_ms);
    if (serfrpc_query(c, &q, &res, err, sizeof err) < 0) {
        fprintf(stderr, "serfhand status: %s\n", err);
        goto out;
    }
    rows = xmalloc((alive + res.nresp + 1) * sizeof *rows);
    size_t nrows = 0;
    for (size_t i = 0; i < nm; i++) {
        if (strcmp(m[i].status, "alive") != 0)
            continue;
        rows[nrows].name = m[i].name;
        rows[nrows].answer = NULL;
        for (size_t k = 0; k < res.nresp; k++)
            if (strcmp(res.resp[k].from, m[i].name) == 0)
                rows[nrows].answer = &res.resp[k].payload;
        nrows++;
    }
    qsort(rows, nrows, sizeof *rows, row_cmp);
    size_t answered = 0;
    for (size_t i = 0; i < nrows; i++)
        if (rows[i].answer)
            answered++;

    if (json) {
        struct buf o = {0};
        buf_printf(&o, "{\"alive\":%zu,\"answered\":%zu,\"nodes\":{", alive, answered);
        for (size_t i = 0; i < nrows; i++) {
            if (i)
                buf_addstr(&o, ",");
            trust_json_str(&o, rows[i].name);
            buf_addstr(&o, ":");
            if (!rows[i].answer)
                buf_addstr(&o, "null");
            else if (rows[i].answer->len > 0 && rows[i].answer->data[0] == '{')
                buf_add(&o, rows[i].answer->data, rows[i].answer->len);
            else
                trust_json_str(&o, rows[i].answer->data);
        }
        buf_addstr(&o, "}}");
        printf("%s\n", o.data);
        buf_free(&o);
    } else {
        struct sandbox_limits lim = {.memory = 16u << 20, .deadline_ms = 10000, .grace_ms = 500};
        sb = sandbox_new(&lim, NULL, cfg, err, sizeof err);
        if (!sb) {
            fprintf(stderr, "serfhand status: %s\n", err);
            goto out;
        }
        lua_State *L = sandbox_state(sb);
        printf("%-16s %-10s %-8s %8s %8s %3s %8s %-4s %-7s %s\n", "NODE", "ROLE", "STATE", "HEIGHT",
               "LEADER", "MIN", "STALLED", "SICK", "BUNDLE", "LAST RESTART");
        int64_t now = util_now_ms();
        for (size_t i = 0; i < nrows; i++)
            print_row(L, &rows[i], now);
        printf("%zu of %zu alive members answered\n", answered, alive);
    }
    rc = answered == alive ? SH_EXIT_OK : SH_EXIT_FAIL;
out:
    sandbox_free(sb);
    free(rows);
    serfrpc_query_result_free(&res);
    serfrpc_members_free(m, nm);
    serfrpc_close(c);
    return rc;
}

const struct cmd_entry cmd_status_entry = {
    .name = "status",
    .usage = "[--json] [--timeout-ms N]\n\n"
             "Asks every alive member (query factomd-status) and prints one row per\n"
             "node: role, state, saved and leader height, minute, stalled for, sick,\n"
             "bundle version, last restart. Returns once every alive member answered\n"
             "(at most N ms, default 5000); exit 1 if some did not.",
    .summary = "factomd health of every node, over the Serf agent",
    .exec = exec_status,
    .needs_config = true,
};
