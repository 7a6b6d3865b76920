/*
 * llog.c: require "serfhand.log", the handler's log lines. They go where the
 * host's log goes (syslog, a file), never to a query's response.
 */
#include <lauxlib.h>

#include "serfhand.h"

static int log_at(lua_State *L, enum log_level lvl)
{
    int n = lua_gettop(L);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (int i = 1; i <= n; i++) {
        luaL_tolstring(L, i, NULL);
        if (i > 1)
            luaL_addchar(&b, ' ');
        luaL_addvalue(&b);
    }
    luaL_pushresult(&b);
    sandbox_log(L, lvl, -1);
    return 0;
}

static int l_debug(lua_State *L)
{
    return log_at(L, LOG_LVL_DEBUG);
}
static int l_error(lua_State *L)
{
    return log_at(L, LOG_LVL_ERROR);
}
static int l_info(lua_State *L)
{
    return log_at(L, LOG_LVL_INFO);
}
static int l_warn(lua_State *L)
{
    return log_at(L, LOG_LVL_WARN);
}

static const luaL_Reg funcs[] = {
    {"debug", l_debug}, {"error", l_error}, {"info", l_info}, {"warn", l_warn}, {NULL, NULL},
};

int luaopen_serfhand_log(lua_State *L)
{
    luaL_newlib(L, funcs);
    return 1;
}
