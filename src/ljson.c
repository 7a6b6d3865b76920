/*
 * ljson.c: require "serfhand.json", Debian's lua-cjson 2.1.0 set up strictly
 * (no NaN/Infinity/hex numbers, bounded nesting), with integral numbers
 * coming back as Lua integers. The host uses ljson_encode for table query
 * responses; other modules use ljson_decode for replies from the world.
 */
#include <limits.h>
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

/* lua-cjson 2.1.0 keeps its buffers in malloc'ed memory the Lua allocator
 * never sees, sizes them in int, and exit()s the process when malloc fails
 * (strbuf.c's die()). So every buffer it will allocate is charged against
 * the memory cap before it runs (sandbox_charge), sizes that an int cannot
 * hold are refused, and nothing it allocates can outlive the charge. */

#if defined(__SANITIZE_ADDRESS__)
/* make SANITIZE=1: LeakSanitizer's defaults, read at exit by every process
 * of the sanitized build (the agents' handlers too, whatever their
 * environment). The decode scratch buffer described at decode_value stays
 * allocated, charged, until the process ends: by design, not a leak to
 * report. strbuf_new is cjson's one buffer allocator, so this would also
 * hide a lost encode buffer (that one lives in cjson's config and is freed
 * with the Lua state); no other allocation is suppressed. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:strbuf_new\n";
}
/* ... without a table of the suppressions used, which tests/run would count
 * as a report */
const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
    return "print_suppressions=0";
}
#endif

/* A decode or encode and what its protected part found. */
struct job {
    const char *s; /* decode from C: the text, copied into a Lua string */
    size_t len;
    bool no_memory; /* the cap refused it */
};

/* Protected: decode the string at 2 (or job->s) into a Lua value, pushed;
 * job at 1. cjson's scratch buffer holds len + 1 bytes (at least its
 * default 1023) while it runs. A memory error raised inside cjson (a table
 * or string it builds) skips its free: that buffer stays allocated until the
 * process ends, so its charge stays too, and a handler that repeats this
 * reaches the cap (sandbox_limits.sh json_decode_leak). */
static int decode_value(lua_State *L)
{
    struct job *j = lua_touserdata(L, 1);
    if (lua_isnoneornil(L, 2)) {
        lua_settop(L, 1);
        lua_pushlstring(L, j->s, j->len);
    }
    size_t len;
    luaL_checklstring(L, 2, &len);
    size_t scratch = (len < 1023 ? 1023 : len + 1) + 64; /* the text, its NUL, the strbuf_t */
    if (len > INT_MAX / 2) {
        j->no_memory = true;
        return sandbox_memory_error(L, "json.decode: the text is too long");
    }
    if (sandbox_charge(L, scratch) < 0) {
        j->no_memory = true;
        return sandbox_memory_error(L, "json.decode");
    }
    push_cjson(L);
    lua_getfield(L, -1, "decode");
    lua_pushvalue(L, 2);
    int status = lua_pcall(L, 1, 1, 0);
    if (status == LUA_OK || status == LUA_ERRRUN)
        sandbox_release(L, scratch); /* freed by cjson: a parse error frees it too */
    if (status != LUA_OK) {
        if (status == LUA_ERRMEM)
            j->no_memory = true;
        return lua_error(L);
    }
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

/* What walking a value for its encoded size found. */
enum walk { WALK_OK, WALK_TOO_BIG, WALK_CYCLE, WALK_TOO_DEEP };

/* The walk: each table is visited once (a memo maps it to its size and
 * height; small tables of plain values are simply measured again), so a
 * table shared by many fields, nested deep, costs one visit, not one per
 * path. `work` counts the bytes of strings scanned and the
 * entries visited: every one of them is in the encoded text at least once,
 * so past `stop` the text is too. */
struct bound {
    int memo;       /* stack index: table -> size << 7 | height, or -1 while open */
    size_t stop;    /* the most bytes the text may have */
    size_t work;    /* bytes scanned, entries visited */
    size_t longest; /* the longest string (key or value): cjson reserves 6 bytes a byte */
    enum walk why;
};

#define NUMBER_BYTES 32 /* %.14g writes at most 21; cjson reserves 32 */
#define MEMO_MAX_SIZE ((size_t)1 << 55)

static size_t add_sat(const struct bound *b, size_t a, size_t n)
{
    return a > b->stop || n > b->stop - a ? b->stop + 1 : a + n;
}

/* The most bytes the string at idx takes as JSON: control characters and
 * DEL become \u00XX, '"' '\\' '/' two bytes. */
static size_t string_bound(lua_State *L, int idx, struct bound *b)
{
    size_t len;
    const unsigned char *p = (const unsigned char *)lua_tolstring(L, idx, &len);
    if (len > b->longest)
        b->longest = len;
    b->work = add_sat(b, b->work, len);
    if (len + 2 > b->stop || b->work > b->stop) {
        b->why = WALK_TOO_BIG;
        return b->stop + 1;
    }
    size_t n = 2;
    for (size_t i = 0; i < len; i++)
        n += p[i] < 0x20 || p[i] == 0x7f ? 6 : (p[i] == '"' || p[i] == '\\' || p[i] == '/') ? 2 : 1;
    return n;
}

/* The most bytes the value at idx takes as JSON, raw access only like cjson;
 * *height is its nesting (a table 1 more than its deepest field). depth is
 * the nesting of this value's table. */
static size_t value_bound(lua_State *L, int idx, int depth, struct bound *b, int *height)
{
    *height = 0;
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: return string_bound(L, idx, b);
    case LUA_TNUMBER: return NUMBER_BYTES;
    case LUA_TBOOLEAN: return 5;
    case LUA_TTABLE: break;
    default: return 4; /* null; cjson refuses the rest */
    }
    idx = lua_absindex(L, idx);
    lua_pushvalue(L, idx);
    if (lua_rawget(L, b->memo) == LUA_TNUMBER) {
        lua_Integer m = lua_tointeger(L, -1);
        lua_pop(L, 1);
        if (m < 0) {
            b->why = WALK_CYCLE;
            return 0;
        }
        *height = (int)(m & 127);
        if (depth + *height - 1 > MAX_DEPTH)
            b->why = WALK_TOO_DEEP;
        return (size_t)m >> 7;
    }
    lua_pop(L, 1);
    if (depth > MAX_DEPTH || !lua_checkstack(L, 4)) {
        b->why = WALK_TOO_DEEP;
        return 0;
    }
    size_t n = 2, entries = 0;
    int h = 0;
    bool open = false;
    lua_pushnil(L);
    while (b->why == WALK_OK && lua_next(L, idx)) {
        int vh;
        size_t k = lua_type(L, -2) == LUA_TSTRING ? string_bound(L, -2, b) : NUMBER_BYTES + 2;
        if (!open && lua_type(L, -1) == LUA_TTABLE) {
            /* Only a table with a table in it can be on a cycle. */
            lua_pushvalue(L, idx);
            lua_pushinteger(L, -1);
            lua_rawset(L, b->memo); /* open: meeting it again is a cycle */
            open = true;
        }
        entries++;
        size_t v = value_bound(L, -1, depth + 1, b, &vh);
        n = add_sat(b, n, k);
        n = add_sat(b, n, 1 + v); /* ':' and ',' */
        b->work = add_sat(b, b->work, 1);
        if (b->why == WALK_OK && (n > b->stop || b->work > b->stop))
            b->why = WALK_TOO_BIG;
        if (vh > h)
            h = vh;
        lua_pop(L, 1);
    }
    if (b->why != WALK_OK) {
        lua_settop(L, idx);
        return b->stop + 1;
    }
    *height = h + 1;
    /* A small table of plain values costs as little to measure again as to
     * look up: only the others go into the memo, which is Lua memory too. */
    if (!open && entries <= 8)
        return n;
    lua_pushvalue(L, idx);
    lua_pushinteger(L,
                    (lua_Integer)((n < MEMO_MAX_SIZE ? n : MEMO_MAX_SIZE) << 7 | (size_t)*height));
    lua_rawset(L, b->memo);
    return n;
}

/* Protected: encode the value at 1 with cjson; job at 2. */
static int encode_value(lua_State *L)
{
    struct job *j = lua_touserdata(L, 2);
    lua_settop(L, 1);
    lua_newtable(L); /* the memo, at 2 */
    /* The text may take half of what is left: cjson's buffer doubles as it
     * grows, and the string it returns is a copy. */
    struct bound b = {.memo = 2, .stop = sandbox_mem_left(L) / 2, .why = WALK_OK};
    if (b.stop > INT_MAX / 4)
        b.stop = INT_MAX / 4; /* cjson's sizes are int */
    int height;
    size_t text = value_bound(L, 1, 1, &b, &height);
    lua_settop(L, 1);
    if (b.why == WALK_CYCLE)
        return luaL_error(L, "Cannot serialise, excessive nesting (a table contains itself)");
    if (b.why == WALK_TOO_DEEP)
        return luaL_error(L, "Cannot serialise, excessive nesting (over %d levels)", MAX_DEPTH);
    /* cjson's buffer starts at 1023 bytes and doubles until it holds what it
     * has written plus what it reserves next: 6 bytes a byte of a string
     * (the worst case of escapes), 32 for a number. */
    size_t peak = b.why == WALK_OK ? text + 2 + 6 * b.longest + NUMBER_BYTES : SIZE_MAX;
    if (b.why != WALK_OK || b.longest > INT_MAX / 8 || peak > INT_MAX / 2) {
        j->no_memory = true;
        return sandbox_memory_error(L, "json.encode: the text would be too long");
    }
    size_t charge = 2 * peak + 1024;
    if (sandbox_charge(L, charge) < 0) {
        j->no_memory = true;
        return sandbox_memory_error(L, "json.encode");
    }
    push_cjson(L); /* 2 */
    lua_getfield(L, 2, "encode");
    lua_pushvalue(L, 1);
    int status = lua_pcall(L, 1, 1, 0); /* 3: the text or the error */
    /* cjson keeps its buffer for the next call: free it now, so that what
     * was charged is what is held. Toggling encode_keep_buffer frees it and
     * starts a new one of 1023 bytes. */
    for (int keep = 0; keep < 2; keep++) {
        lua_getfield(L, 2, "encode_keep_buffer");
        lua_pushboolean(L, keep);
        lua_call(L, 1, 0);
    }
    sandbox_release(L, charge);
    if (status != LUA_OK) {
        if (status == LUA_ERRMEM)
            j->no_memory = true;
        return lua_error(L);
    }
    return 1;
}

int ljson_decode(lua_State *L, const char *s, size_t len, char *err, size_t errlen)
{
    struct job j = {s, len, false};
    lua_pushcfunction(L, decode_value);
    lua_pushlightuserdata(L, &j);
    int status = lua_pcall(L, 1, 1, 0);
    if (status == LUA_OK)
        return LJSON_OK;
    util_errf(err, errlen, "json: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return status == LUA_ERRMEM || j.no_memory ? LJSON_NO_MEMORY : LJSON_ERROR;
}

int ljson_encode(lua_State *L, int idx, struct buf *out, char *err, size_t errlen)
{
    return ljson_encode_max(L, idx, SIZE_MAX, out, err, errlen);
}

int ljson_encode_max(lua_State *L, int idx, size_t max, struct buf *out, char *err, size_t errlen)
{
    struct job j = {NULL, 0, false};
    idx = lua_absindex(L, idx);
    lua_pushcfunction(L, encode_value);
    lua_pushvalue(L, idx);
    lua_pushlightuserdata(L, &j);
    int status = lua_pcall(L, 2, 1, 0);
    if (status != LUA_OK) {
        util_errf(err, errlen, "json: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
        return status == LUA_ERRMEM || j.no_memory ? LJSON_NO_MEMORY : LJSON_ERROR;
    }
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    if (n > max) { /* never copied out of the Lua heap */
        util_errf(err, errlen, "%zu bytes", n);
        lua_pop(L, 1);
        return LJSON_TOO_LONG;
    }
    buf_add(out, s, n);
    lua_pop(L, 1);
    return LJSON_OK;
}

/* json.decode(s) -> value | nil, err; the memory cap raises */
static int l_decode(lua_State *L)
{
    size_t len;
    luaL_checklstring(L, 1, &len);
    struct job j = {NULL, 0, false};
    lua_settop(L, 1);
    lua_pushcfunction(L, decode_value);
    lua_pushlightuserdata(L, &j);
    lua_pushvalue(L, 1); /* the very string, not a copy */
    int status = lua_pcall(L, 2, 1, 0);
    if (status == LUA_OK)
        return 1;
    if (status == LUA_ERRMEM || j.no_memory)
        return lua_error(L);
    luaL_pushfail(L);
    lua_pushfstring(L, "json: %s", lua_tostring(L, -2));
    return 2;
}

/* json.encode(v) -> string; raises for values JSON cannot hold */
static int l_encode(lua_State *L)
{
    struct job j = {NULL, 0, false};
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    lua_pushcfunction(L, encode_value);
    lua_insert(L, 1);
    lua_pushlightuserdata(L, &j);
    lua_call(L, 2, 1);
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
