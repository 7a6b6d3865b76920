/*
 * lserf.c: require "serfhand.serf": send user events, list members and run
 * queries through the local Serf agent's RPC (serfrpc.c). Handlers use
 * event() and members(); query() and query_many() (several queries at once
 * on one connection) are for tools (`serfhand status`, propose, tick).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "serfhand.h"

#define CALL_MT "serfhand.serf.call"
#define MAX_PAYLOAD (1 << 20)       /* far above Serf's limits: misuse, not data */
#define DEFAULT_QUERY_WAIT_MS 30000 /* when the agent picks the query timeout */

/* One RPC call in progress: owns the connection and the C results, so that
 * a raise (bad option, out of memory while pushing) frees them via __gc.
 * What they hold is charged to the run's memory cap (the connection's
 * budget; members_held for the members) until call_free. */
struct call {
    struct serfrpc *conn;
    struct serf_member *members;
    size_t nmembers, members_held;
    struct serf_query_result *qr; /* nqr results, one per query */
    size_t nqr;
};

static void call_free(lua_State *L, struct call *c)
{
    serfrpc_close(c->conn);
    c->conn = NULL;
    serfrpc_members_free(c->members, c->nmembers);
    sandbox_release(L, c->members_held);
    c->members = NULL;
    c->nmembers = c->members_held = 0;
    for (size_t i = 0; i < c->nqr; i++) {
        sandbox_release(L, c->qr[i].held);
        serfrpc_query_result_free(&c->qr[i]);
    }
    free(c->qr);
    c->qr = NULL;
    c->nqr = 0;
}

static int call_release(lua_State *L)
{
    call_free(L, luaL_checkudata(L, 1, CALL_MT));
    return 0;
}

static int budget_charge(void *L, size_t n)
{
    return sandbox_charge(L, n);
}
static void budget_release(void *L, size_t n)
{
    sandbox_release(L, n);
}

static struct call *new_call(lua_State *L)
{
    struct call *c = lua_newuserdatauv(L, sizeof *c, 0);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, CALL_MT);
    return c;
}

/* A monotonic deadline ms from now, never past the run's own deadline minus
 * reserve (at least SANDBOX_RESERVE_MS): a query that runs out of time then
 * returns what arrived, and the run has the time to use it. */
static int64_t deadline_before(lua_State *L, int64_t ms, int64_t reserve)
{
    int64_t d = util_mono_ms() + ms;
    struct sandbox *sb = sandbox_of(L);
    int64_t sd = sb ? sandbox_deadline_ms(sb) : 0;
    if (sd > 0)
        sd -= reserve > SANDBOX_RESERVE_MS ? reserve : SANDBOX_RESERVE_MS;
    return sd > 0 && sd < d ? sd : d;
}

static int64_t deadline_in(lua_State *L, int64_t ms)
{
    return deadline_before(L, ms, SANDBOX_RESERVE_MS);
}

static int64_t rpc_timeout_ms(lua_State *L)
{
    const struct config *cfg = sandbox_config(L);
    return cfg ? config_int(cfg, "serf.timeout_ms") : 2000;
}

/* Connect as configured: serf.rpc_addr, else $SERF_RPC_ADDR, else the
 * default; serf.rpc_auth, else $SERF_RPC_AUTH. */
static int open_conn(lua_State *L, struct call *c, char *err, size_t errlen)
{
    const char *addr, *token;
    serfrpc_endpoint(sandbox_config(L), &addr, &token);
    int r = serfrpc_open(&c->conn, addr, token, deadline_in(L, rpc_timeout_ms(L)), err, errlen);
    if (r == 0)
        serfrpc_set_budget(c->conn, budget_charge, budget_release, L);
    return r;
}

/* The memory cap was hit in a call (SERFRPC_NO_MEMORY; err names what
 * did not fit): raise "serf.FN: WHAT: not enough memory (...)". */
static int no_memory(lua_State *L, const char *fn, const char *err)
{
    char what[600];
    snprintf(what, sizeof what, "serf.%s: %s", fn, err);
    return sandbox_memory_error(L, what);
}

static int fail(lua_State *L, const char *err)
{
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
}

static const char *check_name(lua_State *L, int arg)
{
    luaL_checktype(L, arg, LUA_TSTRING);
    const char *name = lua_tostring(L, arg);
    luaL_argcheck(L, strlen(name) == lua_rawlen(L, arg) && util_valid_name(name), arg,
                  "invalid name (want [A-Za-z0-9][A-Za-z0-9_.-]{0,63})");
    return name;
}

static const char *check_payload(lua_State *L, int arg, size_t *len)
{
    if (lua_isnoneornil(L, arg)) {
        *len = 0;
        return "";
    }
    luaL_argexpected(L, lua_type(L, arg) == LUA_TSTRING, arg, "string");
    const char *p = lua_tolstring(L, arg, len);
    luaL_argcheck(L, *len <= MAX_PAYLOAD, arg, "payload over 1 MiB");
    return p;
}

/* Check that the options table at arg has only keys from allowed (NULL-ended). */
static void check_options(lua_State *L, int arg, const char *const *allowed)
{
    if (lua_isnoneornil(L, arg))
        return;
    luaL_checktype(L, arg, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, arg)) {
        lua_pop(L, 1); /* the value */
        const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        size_t i = 0;
        while (k && allowed[i] && strcmp(allowed[i], k) != 0)
            i++;
        if (!k || !allowed[i])
            luaL_error(L, "bad argument #%d: unknown option '%s'", arg,
                       k ? k : luaL_typename(L, -1));
    }
}

/* opts[key] as a boolean (def when absent). */
static bool opt_bool(lua_State *L, int arg, const char *key, bool def)
{
    bool v = def;
    if (lua_isnoneornil(L, arg))
        return v;
    int t = lua_getfield(L, arg, key);
    if (t != LUA_TNIL) {
        if (t != LUA_TBOOLEAN)
            luaL_error(L, "bad argument #%d: option '%s' must be a boolean", arg, key);
        v = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

/* opts[key] as an integer in [min, max] (def when absent). */
static lua_Integer opt_int(lua_State *L, int arg, const char *key, lua_Integer def, lua_Integer min,
                           lua_Integer max)
{
    lua_Integer v = def;
    int isint = 0;
    if (lua_isnoneornil(L, arg))
        return v;
    if (lua_getfield(L, arg, key) != LUA_TNIL) {
        v = lua_tointegerx(L, -1, &isint);
        if (lua_type(L, -1) != LUA_TNUMBER || !isint || v < min || v > max)
            luaL_error(L, "bad argument #%d: option '%s' must be an integer in %I..%I", arg, key,
                       min, max);
    }
    lua_pop(L, 1);
    return v;
}

/* serf.event(name, payload, {coalesce=false}) -> true | nil, err */
static int l_event(lua_State *L)
{
    static const char *const allowed[] = {"coalesce", NULL};
    char err[512];
    size_t len;
    const char *name = check_name(L, 1);
    const char *payload = check_payload(L, 2, &len);
    check_options(L, 3, allowed);
    bool coalesce = opt_bool(L, 3, "coalesce", false);
    lua_settop(L, 3);
    struct call *c = new_call(L);
    int r = open_conn(L, c, err, sizeof err);
    if (r == 0)
        r = serfrpc_event(c->conn, name, payload, len, coalesce, err, sizeof err);
    call_free(L, c);
    if (r == SERFRPC_NO_MEMORY)
        return no_memory(L, "event", err);
    if (r < 0)
        return fail(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

static void push_member(lua_State *L, const struct serf_member *m)
{
    lua_createtable(L, 0, 5);
    lua_pushstring(L, m->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, m->addr);
    lua_setfield(L, -2, "addr");
    lua_pushinteger(L, (lua_Integer)m->port);
    lua_setfield(L, -2, "port");
    lua_pushstring(L, m->status);
    lua_setfield(L, -2, "status");
    lua_createtable(L, 0, (int)m->ntags);
    for (size_t k = 0; k < m->ntags; k++) {
        lua_pushstring(L, m->tagv[k]);
        lua_setfield(L, -2, m->tagk[k]);
    }
    lua_setfield(L, -2, "tags");
}

/* serf.members() -> {{name, addr, port, tags, status}, ...} | nil, err */
static int l_members(lua_State *L)
{
    char err[512];
    lua_settop(L, 0);
    struct call *c = new_call(L);
    int r = open_conn(L, c, err, sizeof err);
    if (r == 0)
        r = serfrpc_members(c->conn, &c->members, &c->nmembers, err, sizeof err);
    serfrpc_close(c->conn);
    c->conn = NULL;
    if (r == SERFRPC_NO_MEMORY) {
        call_free(L, c);
        return no_memory(L, "members", err);
    }
    if (r < 0) {
        call_free(L, c);
        return fail(L, err);
    }
    size_t held = serfrpc_members_size(c->members, c->nmembers);
    if (sandbox_charge(L, held) < 0) {
        call_free(L, c);
        return sandbox_memory_error(L, "serf.members: the members");
    }
    c->members_held = held;
    lua_createtable(L, (int)c->nmembers, 0);
    for (size_t i = 0; i < c->nmembers; i++) {
        push_member(L, &c->members[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    call_free(L, c);
    return 1;
}

/* An option holding node names (nodes, retry_nodes): an array of non-empty
 * strings, as pointers kept in a userdata pushed on the stack. The userdata
 * anchors the strings itself (its user value): Lua code that runs later
 * (on_response, a finalizer) may change opts and drop them. */
static const char *const *opt_nodes(lua_State *L, int arg, const char *key, size_t *n)
{
    *n = 0;
    if (lua_isnoneornil(L, arg) || lua_getfield(L, arg, key) == LUA_TNIL) {
        if (!lua_isnoneornil(L, arg))
            lua_pop(L, 1);
        return NULL;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "bad argument #%d: option '%s' must be an array of names", arg, key);
    int t = lua_gettop(L);
    size_t len = (size_t)luaL_len(L, t);
    luaL_argcheck(L, len <= 4096, arg, "too many nodes");
    const char **list = lua_newuserdatauv(L, (len ? len : 1) * sizeof *list, 1);
    lua_createtable(L, (int)len, 0); /* the anchor */
    for (size_t i = 0; i < len; i++) {
        if (lua_rawgeti(L, t, (lua_Integer)i + 1) != LUA_TSTRING || lua_rawlen(L, -1) == 0)
            luaL_error(L, "bad argument #%d: option '%s' must be an array of names", arg, key);
        list[i] = lua_tostring(L, -1);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setiuservalue(L, -2, 1);
    lua_remove(L, t); /* keep only the pointer array, which anchors the strings */
    *n = len;
    return list;
}

/* The tags option: {tag = regexp} with string keys and values, as two
 * pointer arrays; the first userdata anchors a copy of the table (its user
 * value), which no Lua code can reach or change. */
static size_t opt_tags(lua_State *L, int arg, const char *const **keys, const char *const **vals)
{
    size_t n = 0;
    *keys = *vals = NULL;
    if (lua_isnoneornil(L, arg) || lua_getfield(L, arg, "tags") == LUA_TNIL) {
        if (!lua_isnoneornil(L, arg))
            lua_pop(L, 1);
        return 0;
    }
    if (!lua_istable(L, -1))
        luaL_error(L, "bad argument #%d: option 'tags' must be a table of tag = regexp", arg);
    int t = lua_gettop(L);
    lua_newtable(L); /* the copy */
    int copy = t + 1;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (lua_type(L, -1) != LUA_TSTRING || lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "bad argument #%d: option 'tags' must be a table of tag = regexp", arg);
        luaL_argcheck(L, ++n <= 256, arg, "too many tags");
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, copy); /* the key stays for lua_next */
    }
    const char **k = lua_newuserdatauv(L, (n ? n : 1) * sizeof *k, 1);
    const char **v = lua_newuserdatauv(L, (n ? n : 1) * sizeof *v, 0);
    size_t i = 0;
    lua_pushnil(L);
    while (i < n && lua_next(L, copy)) { /* no allocation while walking the copy */
        k[i] = lua_tostring(L, -2);
        v[i] = lua_tostring(L, -1);
        i++;
        lua_pop(L, 1);
    }
    lua_settop(L, copy + 2); /* the key lua_next left if it stopped early */
    lua_pushvalue(L, copy);
    lua_setiuservalue(L, copy + 1, 1); /* k anchors the copy */
    lua_remove(L, copy);
    lua_remove(L, t);
    *keys = k;
    *vals = v;
    return i;
}

/* opts.on_response: called as on_response(node, payload, i) for each new
 * response to query i (1 for serf.query); a true result ends that query. Its
 * error ends every query of the call; it is kept on the stack and raised once
 * the connection is closed. */
struct response_hook {
    lua_State *L;
    int fn;
    bool failed;
};

struct hook_ref { /* one per query: the shared hook and the query's index */
    struct response_hook *hook;
    lua_Integer index;
};

static enum serf_next query_on_response(void *ctx, const struct serf_reply *r)
{
    struct hook_ref *ref = ctx;
    struct response_hook *u = ref->hook;
    lua_pushvalue(u->L, u->fn);
    lua_pushstring(u->L, r->from);
    lua_pushlstring(u->L, r->payload.data ? r->payload.data : "", r->payload.len);
    lua_pushinteger(u->L, ref->index);
    if (lua_pcall(u->L, 3, 1, 0) != LUA_OK) {
        u->failed = true; /* the error stays on the stack */
        return SERF_ABORT;
    }
    bool stop = lua_toboolean(u->L, -1);
    lua_pop(u->L, 1);
    return stop ? SERF_STOP : SERF_MORE;
}

/* The options serf.query and serf.query_many share, read from the table at
 * arg into q (name and payload aside); pushes the values that must stay
 * anchored while the query runs. hook is filled when on_response is given;
 * *reserve is opts.reserve_ms. */
static void query_options(lua_State *L, int arg, struct serf_query *q, struct response_hook *hook,
                          int64_t *reserve)
{
    static const char *const allowed[] = {"ack",          "expect",     "nodes",      "on_response",
                                          "relay_factor", "reserve_ms", "retry_max",  "retry_nodes",
                                          "retry_ms",     "tags",       "timeout_ms", NULL};
    check_options(L, arg, allowed);
    q->ack = opt_bool(L, arg, "ack", false);
    q->timeout_ms = opt_int(L, arg, "timeout_ms", 0, 1, 3600000);
    q->expect = (size_t)opt_int(L, arg, "expect", 0, 1, 100000);
    *reserve = opt_int(L, arg, "reserve_ms", 0, 0, 3600000);
    q->nodes = opt_nodes(L, arg, "nodes", &q->nnodes);
    q->retry_nodes = opt_nodes(L, arg, "retry_nodes", &q->nretry_nodes);
    q->retry_ms = opt_int(L, arg, "retry_ms", q->nretry_nodes ? 1000 : 0, 100, 3600000);
    q->retry_max = (size_t)opt_int(L, arg, "retry_max", 0, 1, 4096);
    q->relay_factor = (uint8_t)opt_int(L, arg, "relay_factor", 0, 0, 5);
    if ((q->retry_ms || q->retry_max) && !q->nretry_nodes)
        luaL_error(L, "bad argument #%d: options 'retry_ms' and 'retry_max' need 'retry_nodes'",
                   arg);
    if (q->nretry_nodes)
        q->ack = true;
    q->ntags = opt_tags(L, arg, &q->tagk, &q->tagv);
    hook->L = L;
    hook->fn = 0;
    hook->failed = false;
    if (lua_istable(L, arg)) {
        lua_getfield(L, arg, "on_response");
        if (!lua_isnil(L, -1)) {
            luaL_argexpected(L, lua_isfunction(L, -1), arg, "on_response: a function");
            hook->fn = lua_gettop(L);
        } else {
            lua_pop(L, 1);
        }
    }
}

static void push_result(lua_State *L, const struct serf_query_result *qr)
{
    lua_createtable(L, 0, 4);
    lua_createtable(L, 0, (int)qr->nresp);
    for (size_t i = 0; i < qr->nresp; i++) {
        lua_pushlstring(L, qr->resp[i].payload.data, qr->resp[i].payload.len);
        lua_setfield(L, -2, qr->resp[i].from);
    }
    lua_setfield(L, -2, "responses");
    lua_createtable(L, (int)qr->nacks, 0);
    for (size_t i = 0; i < qr->nacks; i++) {
        lua_pushstring(L, qr->acks[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "acks");
    lua_pushinteger(L, (lua_Integer)qr->nresp);
    lua_setfield(L, -2, "n");
    lua_pushboolean(L, qr->done);
    lua_setfield(L, -2, "done");
}

/* Run the n queries of qs (their options set) on one connection and push
 * the results: one table (serf.query) or an array of them (query_many). */
static int run_queries(lua_State *L, struct serf_query *qs, size_t n, struct response_hook *hook,
                       int64_t reserve, bool many)
{
    char err[512];
    struct hook_ref *refs = lua_newuserdatauv(L, n * sizeof *refs, 0);
    for (size_t i = 0; i < n; i++) {
        refs[i].hook = hook;
        refs[i].index = (lua_Integer)i + 1;
        if (hook->fn) {
            qs[i].on_response = query_on_response;
            qs[i].on_response_ctx = &refs[i];
        }
    }
    int64_t wait = qs[0].timeout_ms ? qs[0].timeout_ms : DEFAULT_QUERY_WAIT_MS;
    int64_t deadline = deadline_before(L, wait + rpc_timeout_ms(L), reserve);
    if (deadline <= util_mono_ms()) /* nothing sent: the time is the caller's */
        return fail(L, "serf: no time left before the run's deadline (reserve_ms)");

    struct call *c = new_call(L);
    c->qr = xmalloc(n * sizeof *c->qr);
    memset(c->qr, 0, n * sizeof *c->qr);
    c->nqr = n;
    int r = open_conn(L, c, err, sizeof err);
    if (r == 0) {
        serfrpc_set_deadline(c->conn, deadline);
        r = serfrpc_query_many(c->conn, qs, n, c->qr, err, sizeof err);
    }
    serfrpc_close(c->conn);
    c->conn = NULL;
    if (hook->failed) {
        call_free(L, c);
        return lua_error(L); /* on_response's error, on top: no Lua ran after it */
    }
    if (r == SERFRPC_NO_MEMORY) {
        call_free(L, c);
        return no_memory(L, many ? "query_many" : "query", err);
    }
    if (r < 0) {
        call_free(L, c);
        return fail(L, err);
    }
    if (many)
        lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        push_result(L, &c->qr[i]);
        if (many)
            lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    call_free(L, c);
    return 1;
}

/* serf.query(name, payload, {timeout_ms, nodes, tags, expect, ack, on_response,
 * reserve_ms, retry_nodes, retry_ms, retry_max, relay_factor}) -> {responses = {node = payload},
 * acks = {node, ...}, n = count, done} | nil, err */
static int l_query(lua_State *L)
{
    struct serf_query q = {0};
    struct response_hook hook;
    int64_t reserve;
    if (sandbox_in_handler(L))
        return luaL_error(L, "serf.query cannot be used inside a handler "
                             "(the agent waits for this handler, so it would block itself)");
    q.name = check_name(L, 1);
    q.payload = check_payload(L, 2, &q.len);
    lua_settop(L, 3);
    query_options(L, 3, &q, &hook, &reserve);
    return run_queries(L, &q, 1, &hook, reserve, false);
}

#define MAX_QUERIES 64 /* per serf.query_many call */

/* serf.query_many(name, {payload, ...}, opts) -> {result, ...} | nil, err:
 * one query per payload, all started at once on one connection, with the
 * options of serf.query (each applies to every query); result i as
 * serf.query's, for payload i. */
static int l_query_many(lua_State *L)
{
    if (sandbox_in_handler(L))
        return luaL_error(L, "serf.query_many cannot be used inside a handler "
                             "(the agent waits for this handler, so it would block itself)");
    const char *name = check_name(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 3);
    lua_Integer n = luaL_len(L, 2);
    luaL_argcheck(L, n >= 1 && n <= MAX_QUERIES, 2, "want 1 to 64 payloads");
    /* The payloads, copied into a table no Lua code can reach: on_response
     * may change the caller's table and drop a string still being sent. */
    lua_createtable(L, (int)n, 0);
    int anchor = lua_gettop(L);
    struct serf_query *qs = lua_newuserdatauv(L, (size_t)n * sizeof *qs, 0);
    memset(qs, 0, (size_t)n * sizeof *qs);
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_rawgeti(L, 2, i) != LUA_TSTRING)
            luaL_error(L, "bad argument #2: payload %I is not a string", i);
        qs[i - 1].payload = lua_tolstring(L, -1, &qs[i - 1].len);
        luaL_argcheck(L, qs[i - 1].len <= MAX_PAYLOAD, 2, "payload over 1 MiB");
        lua_rawseti(L, anchor, i);
    }
    struct serf_query q = {0};
    struct response_hook hook;
    int64_t reserve;
    query_options(L, 3, &q, &hook, &reserve);
    for (lua_Integer i = 0; i < n; i++) {
        const void *p = qs[i].payload;
        size_t len = qs[i].len;
        qs[i] = q;
        qs[i].name = name;
        qs[i].payload = p;
        qs[i].len = len;
    }
    return run_queries(L, qs, (size_t)n, &hook, reserve, true);
}

static const luaL_Reg serf_funcs[] = {
    {"event", l_event},           {"members", l_members}, {"query", l_query},
    {"query_many", l_query_many}, {NULL, NULL},
};

int luaopen_serfhand_serf(lua_State *L)
{
    if (luaL_newmetatable(L, CALL_MT)) {
        lua_pushcfunction(L, call_release);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, call_release);
        lua_setfield(L, -2, "__close");
        lua_pushliteral(L, "serfhand.serf");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    luaL_newlib(L, serf_funcs);
    lua_pushinteger(L, SERF_MAX_RETRIES); /* also says the host has retry_nodes */
    lua_setfield(L, -2, "MAX_RETRIES");
    return 1;
}
