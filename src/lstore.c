/*
 * lstore.c: require "serfhand.store": the durable key-value store (store.c)
 * for handlers. The connection opens on first use, stays open for the
 * process and is closed by the __gc/__close of a userdata in the registry.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "serfhand.h"

#define REG_KEY "serfhand.store.conn" /* the userdata in the registry */
#define MT_NAME "serfhand.store connection"
#define KEYS_DEFAULT 100
#define KEYS_MAX 10000
#define TTL_MAX_S 3153600000.0 /* 100 years */

/* The per-state connection. scratch holds values, JSON and key lists while
 * they move between SQLite and Lua, so a raise (out of memory) leaks
 * nothing: __gc frees it. It is kept for the next call, its capacity
 * (held bytes of it) charged to the memory cap until then. */
struct lstore {
    struct store *s;
    struct buf scratch;
    size_t held;
    bool in_tx;
};

static int conn_gc(lua_State *L)
{
    struct lstore *ls = luaL_checkudata(L, 1, MT_NAME);
    store_close(ls->s);
    ls->s = NULL;
    ls->in_tx = false;
    buf_free(&ls->scratch);
    sandbox_release(L, ls->held);
    ls->held = 0;
    return 0;
}

/* Charge what scratch has grown by (up to a 1 MiB value, its JSON, 10000
 * keys); when the cap cannot hold it, free it and raise. */
static void charge_scratch(lua_State *L, struct lstore *ls, const char *what)
{
    if (ls->scratch.cap <= ls->held)
        return;
    if (sandbox_charge(L, ls->scratch.cap - ls->held) < 0) {
        buf_free(&ls->scratch);
        sandbox_release(L, ls->held);
        ls->held = 0;
        sandbox_memory_error(L, what);
    }
    ls->held = ls->scratch.cap;
}

static int fail(lua_State *L, const char *err)
{
    luaL_pushfail(L);
    lua_pushstring(L, err);
    return 2;
}

/* The open connection, with a busy timeout that ends before the run's
 * deadline; NULL with err if it cannot be opened (tried again next call). */
static struct store *conn(lua_State *L, char *err, size_t errlen)
{
    struct lstore *ls = lua_touserdata(L, lua_upvalueindex(1));
    struct sandbox *sb = sandbox_of(L);
    int ms = STORE_BUSY_MS;
    int64_t deadline = sandbox_deadline_ms(sb);
    if (deadline) {
        int64_t left = deadline - util_mono_ms() - SANDBOX_RESERVE_MS;
        if (left < ms)
            ms = left > 0 ? (int)left : 0;
    }
    if (ls->s) {
        store_busy_timeout(ls->s, ms);
        return ls->s;
    }
    if (!sb) {
        util_errf(err, errlen, "store: no configuration");
        return NULL;
    }
    if (store_open_ms(&ls->s, config_str(sandbox_config(L), "state_dir"), ms, err, errlen) < 0)
        return NULL;
    return ls->s;
}

static struct lstore *lstore_of(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

/* A key: a string of 1..256 bytes without NUL (misuse raises). */
static const char *check_key(lua_State *L, int arg)
{
    size_t n;
    luaL_checktype(L, arg, LUA_TSTRING);
    const char *k = lua_tolstring(L, arg, &n);
    luaL_argcheck(L, n > 0 && n <= STORE_MAX_KEY, arg, "key must be 1 to 256 bytes");
    luaL_argcheck(L, strlen(k) == n, arg, "key must not contain NUL");
    return k;
}

/* A key handlers may change: "bundle.*" belongs to the host (the recorded
 * bundle version guards against downgrades). */
static const char *check_writable_key(lua_State *L, int arg)
{
    const char *k = check_key(L, arg);
    luaL_argcheck(L, strncmp(k, "bundle.", 7) != 0, arg,
                  "keys starting with 'bundle.' belong to the host");
    return k;
}

static const char *check_prefix(lua_State *L, int arg)
{
    size_t n;
    luaL_checktype(L, arg, LUA_TSTRING);
    const char *p = lua_tolstring(L, arg, &n);
    luaL_argcheck(L, n <= STORE_MAX_KEY, arg, "prefix longer than 256 bytes");
    luaL_argcheck(L, strlen(p) == n, arg, "prefix must not contain NUL");
    return p;
}

/* ttl in seconds (optional, > 0) -> milliseconds, 0 = never expires. */
static int64_t check_ttl(lua_State *L, int arg)
{
    if (lua_isnoneornil(L, arg))
        return 0;
    lua_Number t = luaL_checknumber(L, arg);
    luaL_argcheck(L, t > 0 && t <= TTL_MAX_S, arg, "ttl must be > 0 seconds (at most 100 years)");
    int64_t ms = (int64_t)ceil(t * 1000.0);
    return ms > 0 ? ms : 1;
}

/* put/add: the value at index 2 as bytes or JSON; raises on misuse. */
static int write_value(lua_State *L, bool only_new)
{
    struct lstore *ls = lstore_of(L);
    char err[512];
    const char *key = check_writable_key(L, 1);
    int t = lua_type(L, 2);
    luaL_argexpected(L, t == LUA_TSTRING || t == LUA_TTABLE, 2, "string or table");
    int64_t ttl = check_ttl(L, 3);
    const char *val;
    size_t len;
    if (t == LUA_TSTRING) {
        val = lua_tolstring(L, 2, &len);
    } else {
        ls->scratch.len = 0;
        int jr = ljson_encode_max(L, 2, STORE_MAX_VALUE, &ls->scratch, err, sizeof err);
        if (jr == LJSON_NO_MEMORY) /* the cap, as for any allocation: exit 5 */
            return sandbox_memory_error(L, "store.put: encoding the value");
        if (jr == LJSON_TOO_LONG)
            return luaL_argerror(L, 2, "value larger than 1 MiB");
        if (jr < 0)
            return luaL_argerror(L, 2, err);
        charge_scratch(L, ls, "store.put: the value");
        val = ls->scratch.data;
        len = ls->scratch.len;
    }
    luaL_argcheck(L, len <= STORE_MAX_VALUE, 2, "value larger than 1 MiB");
    struct store *s = conn(L, err, sizeof err);
    if (!s)
        return fail(L, err);
    int rc = store_set(s, key, val, len, t == LUA_TTABLE, only_new, ttl, err, sizeof err);
    if (rc < 0)
        return fail(L, err);
    lua_pushboolean(L, only_new ? rc == 1 : 1);
    return 1;
}

/* store.add(key, value [, ttl]) -> true inserted | false present | nil, err */
static int l_add(lua_State *L)
{
    return write_value(L, true);
}

/* store.count(prefix) -> integer | nil, err */
static int l_count(lua_State *L)
{
    char err[512];
    const char *prefix = check_prefix(L, 1);
    int64_t n;
    struct store *s = conn(L, err, sizeof err);
    if (!s || store_count(s, prefix, &n, err, sizeof err) < 0)
        return fail(L, err);
    lua_pushinteger(L, (lua_Integer)n);
    return 1;
}

/* store.del(key) -> true | nil, err */
static int l_del(lua_State *L)
{
    char err[512];
    const char *key = check_writable_key(L, 1);
    struct store *s = conn(L, err, sizeof err);
    if (!s || store_del(s, key, err, sizeof err) < 0)
        return fail(L, err);
    lua_pushboolean(L, 1);
    return 1;
}

/* store.get(key) -> value | nil (absent or expired) | nil, err */
static int l_get(lua_State *L)
{
    struct lstore *ls = lstore_of(L);
    char err[512];
    const char *key = check_key(L, 1);
    struct store *s = conn(L, err, sizeof err);
    if (!s)
        return fail(L, err);
    enum store_kind kind = STORE_BYTES;
    int rc = store_get_value(s, key, &ls->scratch, &kind, err, sizeof err);
    charge_scratch(L, ls, "store.get: the value");
    if (rc < 0)
        return fail(L, err);
    if (rc == 0) {
        lua_pushnil(L);
        return 1;
    }
    if (kind == STORE_INT) { /* SQLite's own decimal text of an int64 */
        lua_pushinteger(L, (lua_Integer)strtoll(ls->scratch.data, NULL, 10));
        return 1;
    }
    if (kind == STORE_BYTES) {
        lua_pushlstring(L, ls->scratch.data, ls->scratch.len);
        return 1;
    }
    char jerr[256];
    int jr = ljson_decode(L, ls->scratch.data, ls->scratch.len, jerr, sizeof jerr);
    if (jr == LJSON_NO_MEMORY)
        return sandbox_memory_error(L, "store.get: decoding the value");
    if (jr < 0) {
        util_errf(err, sizeof err, "store: %s: stored value: %s", key, jerr);
        return fail(L, err);
    }
    return 1;
}

/* store.incr(key [, by [, ttl]]) -> the new integer | nil, err. by is an
 * integer (default 1); ttl applies to a counter this call creates. */
static int l_incr(lua_State *L)
{
    char err[512];
    const char *key = check_writable_key(L, 1);
    lua_Integer by = luaL_optinteger(L, 2, 1);
    int64_t ttl = check_ttl(L, 3);
    int64_t v;
    struct store *s = conn(L, err, sizeof err);
    if (!s)
        return fail(L, err);
    if (store_incr(s, key, (int64_t)by, ttl, &v, err, sizeof err) != STORE_INCR_OK)
        return fail(L, err);
    lua_pushinteger(L, (lua_Integer)v);
    return 1;
}

/* store.keys(prefix [, limit]) -> array of keys in byte order | nil, err */
static int l_keys(lua_State *L)
{
    struct lstore *ls = lstore_of(L);
    char err[512];
    const char *prefix = check_prefix(L, 1);
    lua_Integer limit = luaL_optinteger(L, 2, KEYS_DEFAULT);
    luaL_argcheck(L, limit > 0 && limit <= KEYS_MAX, 2, "limit must be 1 to 10000");
    size_t n;
    struct store *s = conn(L, err, sizeof err);
    if (!s)
        return fail(L, err);
    int rc = store_keys(s, prefix, limit, &ls->scratch, &n, err, sizeof err);
    charge_scratch(L, ls, "store.keys: the keys");
    if (rc < 0)
        return fail(L, err);
    lua_createtable(L, n > INT32_MAX ? 0 : (int)n, 0);
    const char *p = ls->scratch.data;
    for (size_t i = 1; i <= n; i++) {
        size_t klen = strlen(p);
        lua_pushlstring(L, p, klen);
        lua_rawseti(L, -2, (lua_Integer)i);
        p += klen + 1;
    }
    return 1;
}

/* store.put(key, value [, ttl]) -> true | nil, err */
static int l_put(lua_State *L)
{
    return write_value(L, false);
}

/* store.tx(fn) -> fn's results | nil, err (could not begin or commit).
 * fn runs inside BEGIN IMMEDIATE .. COMMIT; if it raises, the transaction
 * is rolled back and the error raised again. */
static int l_tx(lua_State *L)
{
    struct lstore *ls = lstore_of(L);
    char err[512];
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    if (ls->in_tx)
        return luaL_error(L, "store: tx cannot be nested");
    struct store *s = conn(L, err, sizeof err);
    if (!s || store_begin(s, err, sizeof err) < 0)
        return fail(L, err);
    ls->in_tx = true;
    int rc = lua_pcall(L, 0, LUA_MULTRET, 0);
    ls->in_tx = false;
    if (rc != LUA_OK) {
        store_rollback(s, err, sizeof err);
        return lua_error(L); /* the error value is on top */
    }
    if (store_commit(s, err, sizeof err) < 0) {
        char rerr[256];
        store_rollback(s, rerr, sizeof rerr);
        return fail(L, err);
    }
    return lua_gettop(L);
}

static const luaL_Reg funcs[] = {
    {"add", l_add},   {"count", l_count}, {"del", l_del}, {"get", l_get}, {"incr", l_incr},
    {"keys", l_keys}, {"put", l_put},     {"tx", l_tx},   {NULL, NULL},
};

int luaopen_serfhand_store(lua_State *L)
{
    luaL_newlibtable(L, funcs);
    if (lua_getfield(L, LUA_REGISTRYINDEX, REG_KEY) != LUA_TUSERDATA) {
        lua_pop(L, 1);
        struct lstore *ls = lua_newuserdatauv(L, sizeof *ls, 0);
        memset(ls, 0, sizeof *ls);
        if (luaL_newmetatable(L, MT_NAME)) {
            lua_pushcfunction(L, conn_gc);
            lua_setfield(L, -2, "__gc");
            lua_pushcfunction(L, conn_gc);
            lua_setfield(L, -2, "__close");
            lua_pushboolean(L, 0);
            lua_setfield(L, -2, "__metatable");
        }
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, REG_KEY); /* registry[REG_KEY] = ud */
    }
    luaL_setfuncs(L, funcs, 1); /* ud is every function's upvalue */
    return 1;
}
