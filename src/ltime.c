/*
 * ltime.c: require "serfhand.time": wall clock with milliseconds, a
 * monotonic clock, and a sleep that never passes the handler's deadline.
 */
#include <errno.h>
#include <time.h>

#include <lauxlib.h>

#include "serfhand.h"

/* time.mono() -> seconds (float) of CLOCK_MONOTONIC */
static int l_mono(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    /* whole milliseconds on purpose */
    // NOLINTNEXTLINE(bugprone-integer-division)
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)(ts.tv_nsec / 1000000) / 1000.0);
    return 1;
}

/* time.now() -> Unix seconds (float, millisecond resolution) */
static int l_now(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)util_now_ms() / 1000.0);
    return 1;
}

/* time.now_ms() -> Unix milliseconds (integer) */
static int l_now_ms(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)util_now_ms());
    return 1;
}

/* time.sleep(ms): sleeps at most until the deadline, which then raises. */
static int l_sleep(lua_State *L)
{
    lua_Integer ms = luaL_checkinteger(L, 1);
    luaL_argcheck(L, ms >= 0, 1, "must not be negative");
    int64_t deadline = sandbox_deadline_ms(sandbox_of(L));
    int64_t now = util_mono_ms();
    int64_t end = ms > INT64_MAX - now ? INT64_MAX : now + (int64_t)ms; /* no overflow */
    if (deadline && end > deadline)
        end = deadline;
    for (;;) {
        int64_t left = end - util_mono_ms();
        if (left <= 0)
            break;
        struct timespec ts = {left / 1000, (long)(left % 1000) * 1000000L};
        if (nanosleep(&ts, NULL) == 0)
            break;
        if (errno != EINTR || sandbox_timed_out(sandbox_of(L)))
            break;
    }
    return 0;
}

static const luaL_Reg funcs[] = {
    {"mono", l_mono}, {"now", l_now}, {"now_ms", l_now_ms}, {"sleep", l_sleep}, {NULL, NULL},
};

int luaopen_serfhand_time(lua_State *L)
{
    luaL_newlib(L, funcs);
    return 1;
}
