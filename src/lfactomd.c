/*
 * lfactomd.c: require "serfhand.factomd", a JSON-RPC 2.0 client for factomd's
 * v2 API (over http.c), used by the Factom bundle for heights, minutes, the
 * authority set and the node's own identity. Failures of the world return nil
 * and an error table {kind, code, message, method}; misuse raises.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <sodium.h>

#include "serfhand.h"

#define ERR_MT "serfhand.factomd.error"
#define DEF_URL "http://127.0.0.1:8088/v2"
#define DEF_TIMEOUT_MS 800
#define DEF_MAX_BYTES (4 * 1024 * 1024)
#define MAX_PARAMS_BYTES (1024 * 1024) /* factomd's own params are a few hundred bytes */
#define MAX_TIMEOUT_MS 600000

/* Debug methods that leak the signing key (configuration) or change the
 * node's behaviour; never sent, whatever the URL points at. */
static const char *const refused[] = {
    "configuration", "message-filter",      "reload-configuration",
    "sim-ctrl",      "write-configuration", NULL,
};
static const char *const refused_prefix[] = {"set-", "wait-", NULL};

static bool method_refused(const char *m)
{
    for (int i = 0; refused[i]; i++)
        if (strcmp(m, refused[i]) == 0)
            return true;
    for (int i = 0; refused_prefix[i]; i++)
        if (strncmp(m, refused_prefix[i], strlen(refused_prefix[i])) == 0)
            return true;
    return false;
}

static bool method_valid(const char *m, size_t len)
{
    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = m[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

/* Per-call settings from the config, the opts table and the run's deadline. */
struct settings {
    const char *url, *user, *password, *ca_file, *pin, *conf;
    long timeout_ms;
    size_t max_bytes;
    int64_t deadline_ms; /* monotonic, the reserve taken off; 0 = none */
    bool deadline_hit;
};

/* opts at idx: nil or {timeout_ms = 1..600000}; anything else raises. */
static long opt_timeout(lua_State *L, int idx)
{
    long t = 0;
    if (lua_isnoneornil(L, idx))
        return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING || strcmp(lua_tostring(L, -2), "timeout_ms") != 0)
            luaL_error(L, "factomd: unknown option '%s'", luaL_tolstring(L, -2, NULL));
        lua_pop(L, 1);
    }
    if (lua_getfield(L, idx, "timeout_ms") != LUA_TNIL) {
        int isint;
        lua_Integer v = lua_tointegerx(L, -1, &isint);
        isint = isint && lua_type(L, -1) == LUA_TNUMBER; /* no "100" strings */
        luaL_argcheck(L, isint && v >= 1 && v <= MAX_TIMEOUT_MS, idx,
                      "timeout_ms must be an integer from 1 to 600000");
        t = (long)v;
    }
    lua_pop(L, 1);
    return t;
}

static void get_settings(lua_State *L, int opts_idx, struct settings *s)
{
    long opt = opt_timeout(L, opts_idx);
    struct sandbox *sb = sandbox_of(L);
    const struct config *cfg = sb ? sandbox_config(L) : NULL;

    s->url = cfg ? config_str(cfg, "factomd.url") : DEF_URL;
    s->user = cfg ? config_str(cfg, "factomd.user") : "";
    s->password = cfg ? config_str(cfg, "factomd.password") : "";
    s->ca_file = cfg ? config_str(cfg, "factomd.tls.ca_file") : "";
    s->pin = cfg ? config_str(cfg, "factomd.tls.pin") : "";
    s->conf = cfg ? config_str(cfg, "factomd.conf") : "";
    s->timeout_ms = cfg ? (long)config_int(cfg, "factomd.timeout_ms") : DEF_TIMEOUT_MS;
    s->max_bytes = cfg ? (size_t)config_int(cfg, "factomd.max_response_bytes") : DEF_MAX_BYTES;
    if (opt > 0)
        s->timeout_ms = opt;
    s->deadline_hit = false;
    s->deadline_ms = 0;
    int64_t dl = sandbox_deadline_ms(sb);
    if (dl > 0) { /* keep SANDBOX_RESERVE_MS for the handler to react */
        s->deadline_ms = dl - SANDBOX_RESERVE_MS;
        s->deadline_hit = s->deadline_ms <= util_mono_ms();
    }
}

/* The exact int64 value of the first "key": <integer> in a flat JSON text,
 * read from the bytes themselves (cjson passes numbers through doubles). */
static bool scan_int64(const char *s, size_t len, const char *key, int64_t *out)
{
    char pat[64];
    size_t plen = (size_t)snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *end = s + len, *p = memmem(s, len, pat, plen);
    if (!p)
        return false;
    p += plen;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    if (p >= end || *p++ != ':')
        return false;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    bool neg = p < end && *p == '-';
    if (neg)
        p++;
    uint64_t v = 0;
    int ndig = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++, ndig++) {
        if (v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (ndig == 0 || (p < end && (*p == '.' || *p == 'e' || *p == 'E')))
        return false;
    if (v > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return true;
}

/* The current-minute times, read exactly; have[i] says which were found. */
static const char *const minute_keys[] = {"currenttime", "currentminutestarttime",
                                          "currentblockstarttime"};
struct exact_times {
    int64_t v[3];
    bool have[3];
};

static void status_msg(char *err, size_t errlen, long status)
{
    snprintf(err, errlen, "unexpected HTTP status %ld%s", status,
             status == 401 ? " (check factomd.user and factomd.password, or FactomdRpcUser "
                             "and FactomdRpcPass in factomd.conf)"
                           : "");
}

/* The credentials factomd itself was given, when serfhand's config sets no
 * user: FactomdRpcUser/FactomdRpcPass of factomd.conf, so an operator
 * enters them once. A missing or unreadable file means none (a follower
 * may have no factomd.conf); the 401 that follows says what to check. */
static void conf_auth(const struct settings *s, char *user, size_t ulen, char *pass, size_t plen)
{
    char err[300];
    user[0] = pass[0] = '\0';
    if (*s->user || !*s->conf)
        return;
    if (identity_rpc_auth(s->conf, user, ulen, pass, plen, err, sizeof err) < 0)
        log_msg(LOG_LVL_DEBUG, "factomd: no RPC credentials from factomd.conf: %s", err);
}

/* Push nil and an error table; returns 2 for `return push_err(...)`. */
static int push_err(lua_State *L, const char *method, const char *kind, long code, const char *msg)
{
    lua_pushnil(L);
    lua_createtable(L, 0, 4);
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
    if (code) {
        lua_pushinteger(L, code);
        lua_setfield(L, -2, "code");
    }
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "message");
    lua_pushstring(L, method);
    lua_setfield(L, -2, "method");
    luaL_setmetatable(L, ERR_MT);
    return 2;
}

/* Call method with params at params_idx (0 = none) and opts at opts_idx.
 * Pushes the result (1) or nil + error table (2). With times != NULL the
 * current-minute times are also read exactly from the reply's bytes. */
static int do_call(lua_State *L, const char *method, int params_idx, int opts_idx,
                   struct exact_times *times)
{
    struct settings s;
    struct buf req = {0}, body = {0};
    char err[256] = "";
    long status = 0;

    if (method_refused(method))
        return luaL_error(L,
                          "factomd: method '%s' is refused (debug method that leaks "
                          "keys or changes the node)",
                          method);
    get_settings(L, opts_idx, &s);
    if (s.deadline_hit)
        return push_err(L, method, "timeout", 0, "the handler deadline has passed");

    buf_printf(&req, "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"%s\",\"params\":", method);
    if (params_idx) { /* the text goes straight into the request, never longer than the cap */
        int rc = ljson_encode_max(L, params_idx, MAX_PARAMS_BYTES, &req, err, sizeof err);
        if (rc != 0) {
            buf_free(&req);
            if (rc == LJSON_NO_MEMORY)
                return sandbox_memory_error(L, "factomd: encoding params");
            if (rc == LJSON_TOO_LONG)
                return luaL_error(L, "factomd: params of %s are longer than %d bytes", err,
                                  MAX_PARAMS_BYTES);
            return luaL_error(L, "factomd: params cannot be encoded: %s", err);
        }
    } else {
        req.len -= strlen(",\"params\":"); /* no params member */
    }
    buf_addstr(&req, "}");
    /* The request is held until the reply is in: charged. */
    size_t req_held = req.cap;
    if (sandbox_charge(L, req_held) < 0) {
        buf_free(&req);
        return sandbox_memory_error(L, "factomd: the request");
    }

    char cuser[256], cpass[256]; /* from factomd.conf; wiped below */
    conf_auth(&s, cuser, sizeof cuser, cpass, sizeof cpass);
    struct http_req hr = {
        .url = s.url,
        .body = req.data,
        .body_len = req.len,
        .user = *cuser ? cuser : s.user,
        .password = *cuser ? cpass : s.password,
        .timeout_ms = s.timeout_ms,
        .max_bytes = s.max_bytes,
        /* The body counts against the memory cap: half of what is left for
         * it, the rest for the copy and the tables decoding makes. */
        .mem_max = sandbox_mem_left(L) / 2 ? sandbox_mem_left(L) / 2 : 1,
        .deadline_ms = s.deadline_ms,
        .ca_file = s.ca_file,
        .pinned_pubkey = s.pin,
    };
    int hrc = http_post(&hr, &body, &status, err, sizeof err);
    sodium_memzero(cpass, sizeof cpass);
    buf_free(&req);
    sandbox_release(L, req_held);
    if (hrc == HTTP_NO_MEMORY)
        return sandbox_memory_error(L, "factomd: the reply");
    if (hrc == HTTP_TIMEOUT)
        return push_err(L, method, "timeout", 0, err);
    if (hrc == HTTP_TOO_BIG)
        return push_err(L, method, "http", 0, err);
    if (hrc != HTTP_OK)
        return push_err(L, method, "http", status, err);

    if (times)
        for (int i = 0; i < 3; i++)
            times->have[i] = scan_int64(body.data, body.len, minute_keys[i], &times->v[i]);
    /* The body stays held while it is decoded (Lua allocations, which may
     * run finalizers): charged. */
    size_t held = body.cap;
    if (sandbox_charge(L, held) < 0) {
        buf_free(&body);
        return sandbox_memory_error(L, "factomd: the reply");
    }
    int drc = ljson_decode(L, body.data, body.len, err, sizeof err); /* never raises */
    buf_free(&body);
    sandbox_release(L, held);
    /* From here on no C memory is held: Lua calls may raise. */
    if (drc == LJSON_NO_MEMORY)
        return sandbox_memory_error(L, "factomd: decoding the reply");
    if (drc != 0) {
        if (status != 200) {
            status_msg(err, sizeof err, status);
            return push_err(L, method, "http", status, err);
        }
        return push_err(L, method, "decode", 0, err);
    }
    int reply = lua_gettop(L);
    if (!lua_istable(L, reply)) {
        if (status != 200)
            return push_err(L, method, "http", status, "unexpected HTTP status");
        return push_err(L, method, "decode", 0, "reply is not a JSON-RPC object");
    }
    if (lua_getfield(L, reply, "error") == LUA_TTABLE) {
        lua_getfield(L, -1, "code");
        lua_getfield(L, -2, "message");
        int isint;
        lua_Integer code = lua_tointegerx(L, -2, &isint);
        const char *msg = lua_isstring(L, -1) ? lua_tostring(L, -1) : "(no message)";
        push_err(L, method, "rpc", isint ? (long)code : 0, msg);
        if (lua_getfield(L, -5, "data") != LUA_TNIL) /* error.data, if any */
            lua_setfield(L, -2, "data");
        else
            lua_pop(L, 1);
        return 2;
    }
    lua_pop(L, 1);
    if (status != 200) {
        status_msg(err, sizeof err, status);
        return push_err(L, method, "http", status, err);
    }
    if (lua_getfield(L, reply, "result") == LUA_TNIL)
        return push_err(L, method, "decode", 0, "reply has neither result nor error");
    return 1;
}

/* factomd.call(method, params, opts) */
static int l_call(lua_State *L)
{
    size_t len;
    lua_settop(L, 3);
    const char *m = luaL_checklstring(L, 1, &len);
    luaL_argcheck(L, method_valid(m, len), 1, "method must match [a-z0-9-]{1,64}");
    luaL_argcheck(L, lua_isnoneornil(L, 2) || lua_istable(L, 2), 2,
                  "params must be a table or nil");
    return do_call(L, m, lua_istable(L, 2) ? 2 : 0, 3, NULL);
}

/* Call a method without params; the result must be a table. */
static int call_table(lua_State *L, const char *method, int params_idx, int opts_idx,
                      struct exact_times *t)
{
    int n = do_call(L, method, params_idx, opts_idx, t);
    if (n == 1 && !lua_istable(L, -1))
        return push_err(L, method, "decode", 0, "result is not an object");
    return n;
}

static int l_current_minute(lua_State *L)
{
    struct exact_times t = {0};
    lua_settop(L, 1);
    int n = call_table(L, "current-minute", 0, 1, &t);
    if (n != 1)
        return n;
    for (int i = 0; i < 3; i++) { /* replace the rounded doubles */
        /* only where the text scan agrees with the decoded value (a guard
         * against the key appearing elsewhere in the reply) */
        lua_getfield(L, -1, minute_keys[i]);
        int isnum;
        lua_Number d = lua_tonumberx(L, -1, &isnum);
        lua_pop(L, 1);
        t.have[i] = t.have[i] && isnum && fabs(d - (lua_Number)t.v[i]) <= 4096;
        if (t.have[i]) {
            lua_pushinteger(L, t.v[i]);
            lua_setfield(L, -2, minute_keys[i]);
        }
    }
    /* 0 only before the first block since factomd started: MoveStateToHeight
     * (state/stateConsensus.go) sets both for every block, also for blocks
     * loaded from the database or synced by DBStates. */
    bool booting = (t.have[1] && t.v[1] == 0) || (t.have[2] && t.v[2] == 0);
    lua_pushboolean(L, booting);
    lua_setfield(L, -2, "booting");
    if (t.have[0] && t.have[1]) {
        lua_pushinteger(L, booting ? 0 : (t.v[0] - t.v[1]) / 1000000);
        lua_setfield(L, -2, "minute_age_ms");
    }
    if (t.have[0] && t.have[2]) {
        lua_pushinteger(L, booting ? 0 : (t.v[0] - t.v[2]) / 1000000);
        lua_setfield(L, -2, "block_age_ms");
    }
    return 1;
}

static int l_heights(lua_State *L)
{
    lua_settop(L, 1);
    return call_table(L, "heights", 0, 1, NULL);
}

static int l_properties(lua_State *L)
{
    lua_settop(L, 1);
    return call_table(L, "properties", 0, 1, NULL);
}

static int l_diagnostics(lua_State *L)
{
    lua_settop(L, 1);
    return call_table(L, "diagnostics", 0, 1, NULL);
}

/* The list result.authorities ({} when factomd sends null). */
static int l_authorities(lua_State *L)
{
    lua_settop(L, 1);
    int n = call_table(L, "authorities", 0, 1, NULL);
    if (n != 1)
        return n;
    int t = lua_getfield(L, -1, "authorities");
    if (t == LUA_TTABLE)
        return 1;
    if (t == LUA_TNIL || t == LUA_TLIGHTUSERDATA) { /* absent or JSON null */
        lua_newtable(L);
        return 1;
    }
    return push_err(L, "authorities", "decode", 0, "authorities is not a list");
}

/* The result's dblock of the directory block at height h (no raw data). */
static int l_dblock_by_height(lua_State *L)
{
    lua_settop(L, 2);
    lua_Integer h = luaL_checkinteger(L, 1);
    luaL_argcheck(L, h >= 0 && h <= 0xFFFFFFFF, 1, "height must be from 0 to 2^32-1");
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, h);
    lua_setfield(L, -2, "height");
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "noraw");
    int params = lua_gettop(L);
    int n = call_table(L, "dblock-by-height", params, 2, NULL);
    if (n != 1)
        return n;
    if (lua_getfield(L, -1, "dblock") != LUA_TTABLE)
        return push_err(L, "dblock-by-height", "decode", 0, "result has no dblock");
    return 1;
}

/* err:__tostring(): "factomd: <method>: <kind>[ <code>]: <message>" */
static int l_err_tostring(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "method");
    lua_getfield(L, 1, "kind");
    lua_getfield(L, 1, "code");
    lua_getfield(L, 1, "message");
    const char *method = luaL_optstring(L, 2, "?"), *kind = luaL_optstring(L, 3, "?");
    const char *msg = luaL_optstring(L, 5, "");
    if (lua_isinteger(L, 4))
        lua_pushfstring(L, "factomd: %s: %s %I: %s", method, kind, lua_tointeger(L, 4), msg);
    else
        lua_pushfstring(L, "factomd: %s: %s: %s", method, kind, msg);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"authorities", l_authorities},       {"call", l_call},
    {"current_minute", l_current_minute}, {"dblock_by_height", l_dblock_by_height},
    {"diagnostics", l_diagnostics},       {"heights", l_heights},
    {"properties", l_properties},         {NULL, NULL},
};

int luaopen_serfhand_factomd(lua_State *L)
{
    if (luaL_newmetatable(L, ERR_MT)) {
        lua_pushcfunction(L, l_err_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
