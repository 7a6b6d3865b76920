/*
 * ljson.c: require "serfhand.json", Debian's lua-cjson 2.1.0 set up strictly
 * (no NaN/Infinity/hex numbers, bounded nesting), with integral numbers
 * coming back as Lua integers. The host uses ljson_encode for table query
 * responses; other modules use ljson_decode for replies from the world.
 */
#include <math.h>
#include <string.h>

#include <lauxlib.h>
#include <lua-cjson.h>

#include "serfhand.h"

#define CJSON_KEY "serfhand.cjson"
#define MAX_DEPTH 64
#define EXACT_LIMIT 9007199254740992.0 /* 2^53 */

/* Push the configured cjson instance, creating it on first use. */
static void push_cjson(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, CJSON_KEY) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    luaL_requiref(L, "cjson", luaopen_cjson, 0);
    static const struct {
        const char *fn;
        int arg;
    } setup[] = {
        {"decode_invalid_numbers", 0},
        {"encode_invalid_numbers", 0},
        {"decode_max_depth", MAX_DEPTH},
        {"encode_max_depth", MAX_DEPTH},
    };
    for (size_t i = 0; i < sizeof setup / sizeof *setup; i++) {
        lua_getfield(L, -1, setup[i].fn);
        if (setup[i].arg)
            lua_pushinteger(L, setup[i].arg);
        else
            lua_pushboolean(L, 0);
        lua_call(L, 1, 0);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, CJSON_KEY);
}

/* Turn integral floats that a double holds exactly into integers, in place. */
static void integerize(lua_State *L, int idx, int depth)
{
    if (depth > MAX_DEPTH + 1)
        return;
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1)) {
            lua_Number n = lua_tonumber(L, -1);
            if (n == floor(n) && fabs(n) <= EXACT_LIMIT) {
                lua_pushvalue(L, -2);
                lua_pushinteger(L, (lua_Integer)n);
                lua_rawset(L, idx);
            }
        } else if (lua_type(L, -1) == LUA_TTABLE) {
            integerize(L, -1, depth + 1);
        }
        lua_pop(L, 1);
    }
}

static int decode_value(lua_State *L)
{
    /* lua-cjson's string buffer (malloc'ed) holds up to the input's length. */
    size_t len;
    luaL_checklstring(L, 1, &len);
    if (sandbox_reserve(L, len) < 0)
        return luaL_error(L, "not enough memory to decode (limits.memory_mb)");
    push_cjson(L);
    lua_getfield(L, -1, "decode");
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    if (lua_type(L, -1) == LUA_TTABLE) {
        integerize(L, -1, 0);
    } else if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1)) {
        lua_Number n = lua_tonumber(L, -1);
        if (n == floor(n) && fabs(n) <= EXACT_LIMIT) {
            lua_pop(L, 1);
            lua_pushinteger(L, (lua_Integer)n);
        }
    }
    return 1;
}

/* An upper bound of the bytes lua-cjson's encoder writes for the value at
 * idx, counting each reference to a shared string again, as the encoder
 * does; it stops counting once over `stop`. Raw access only, like cjson.
 * Escapes: control characters and DEL take up to 6 bytes, '"' '\\' '/' 2. */
static size_t encoded_bound(lua_State *L, int idx, int depth, size_t stop)
{
    size_t n = 0;
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t len;
        const unsigned char *p = (const unsigned char *)lua_tolstring(L, idx, &len);
        n = 2 + len; /* at least one byte a byte: a huge string needs no scan */
        if (n > stop)
            return n;
        n = 2;
        for (size_t i = 0; i < len && n <= stop; i++)
            n += p[i] < 0x20 || p[i] == 0x7f                    ? 6
                 : (p[i] == '"' || p[i] == '\\' || p[i] == '/') ? 2
                                                                : 1;
        return n;
    }
    case LUA_TNUMBER: return 32;
    case LUA_TBOOLEAN: return 5;
    case LUA_TTABLE: break;
    default: return 4; /* null; cjson refuses the rest */
    }
    if (depth > MAX_DEPTH || !lua_checkstack(L, 3))
        return 2; /* cjson refuses it before writing much */
    idx = lua_absindex(L, idx);
    n = 2;
    lua_pushnil(L);
    while (n <= stop && lua_next(L, idx)) {
        n += 1 + (lua_type(L, -2) == LUA_TSTRING ? encoded_bound(L, -2, depth + 1, stop - n) : 34);
        if (n <= stop)
            n += encoded_bound(L, -1, depth + 1, stop - n);
        lua_pop(L, 1);
    }
    if (n > stop)
        lua_settop(L, idx); /* left the loop early: drop the key */
    return n;
}

static int encode_value(lua_State *L)
{
    /* lua-cjson builds its text in a malloc'ed buffer the Lua allocator never
     * sees: count it against the memory cap before it is written. Its buffer doubles as it grows,
     * so it may hold twice the text. */
    size_t left = sandbox_mem_left(L) / 2;
    if (sandbox_reserve(L, 2 * encoded_bound(L, 1, 0, left)) < 0)
        return luaL_error(L, "not enough memory to encode (limits.memory_mb)");
    push_cjson(L);
    lua_getfield(L, -1, "encode");
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    return 1;
}

int ljson_decode(lua_State *L, const char *s, size_t len, char *err, size_t errlen)
{
    lua_pushcfunction(L, decode_value);
    lua_pushlstring(L, s, len);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        util_errf(err, errlen, "json: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    return 0;
}

int ljson_encode(lua_State *L, int idx, struct buf *out, char *err, size_t errlen)
{
    idx = lua_absindex(L, idx);
    lua_pushcfunction(L, encode_value);
    lua_pushvalue(L, idx);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        util_errf(err, errlen, "json: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return -1;
    }
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    buf_add(out, s, n);
    lua_pop(L, 1);
    return 0;
}

/* json.decode(s) -> value | nil, err */
static int l_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    char err[256];
    if (ljson_decode(L, s, len, err, sizeof err) < 0) {
        luaL_pushfail(L);
        lua_pushstring(L, err);
        return 2;
    }
    return 1;
}

/* json.encode(v) -> string; raises for values JSON cannot hold */
static int l_encode(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    lua_pushcfunction(L, encode_value);
    lua_insert(L, 1);
    lua_call(L, 1, 1);
    return 1;
}

static const luaL_Reg funcs[] = {
    {"decode", l_decode},
    {"encode", l_encode},
    {NULL, NULL},
};

int luaopen_serfhand_json(lua_State *L)
{
    luaL_newlib(L, funcs);
    push_cjson(L);
    lua_getfield(L, -1, "null");
    lua_setfield(L, -3, "null");
    lua_pop(L, 1);
    return 1;
}
