/*
 * lconfig.c: require "serfhand.config", a read-only view of the settings the
 * host loaded (defaults included): config.get("reboot.stall_minutes") and
 * config.table() for a nested copy. Passwords and tokens read as "(set)"
 * (config_secret); the file's path is not exposed.
 */
#include <string.h>

#include <lauxlib.h>

#include "serfhand.h"

static void push_value(lua_State *L, const struct cfg_item *it, const struct cfg_value *v)
{
    /* Secrets stay with the C modules that use them; Lua sees only whether
     * they are set. */
    if (config_secret(it->path)) {
        lua_pushstring(L, *v->str ? "(set)" : "");
        return;
    }
    switch (it->type) {
    case CFG_STR: lua_pushstring(L, v->str); break;
    case CFG_INT: lua_pushinteger(L, v->num); break;
    case CFG_BOOL: lua_pushboolean(L, v->num != 0); break;
    case CFG_STRLIST:
        lua_createtable(L, (int)v->nlist, 0);
        for (size_t i = 0; i < v->nlist; i++) {
            lua_pushstring(L, v->list[i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        break;
    }
}

/* config.get(path) -> value; an unknown path raises */
static int l_get(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    const struct config *c = sandbox_config(L);
    const struct cfg_item *s = config_schema();
    for (size_t i = 0; s[i].path; i++) {
        if (strcmp(s[i].path, path) == 0) {
            push_value(L, &s[i], config_value(c, i));
            return 1;
        }
    }
    return luaL_error(L, "config: unknown key '%s'", path);
}

/* config.table() -> {section = {key = value}, key = value} (a copy) */
static int l_table(lua_State *L)
{
    const struct config *c = sandbox_config(L);
    const struct cfg_item *s = config_schema();
    lua_newtable(L);
    for (size_t i = 0; s[i].path; i++) {
        const char *dot = strchr(s[i].path, '.');
        if (dot) {
            lua_pushlstring(L, s[i].path, (size_t)(dot - s[i].path));
            if (lua_rawget(L, -2) != LUA_TTABLE) {
                lua_pop(L, 1);
                lua_newtable(L);
                lua_pushlstring(L, s[i].path, (size_t)(dot - s[i].path));
                lua_pushvalue(L, -2);
                lua_rawset(L, -4);
            }
            push_value(L, &s[i], config_value(c, i));
            lua_setfield(L, -2, dot + 1);
            lua_pop(L, 1);
        } else {
            push_value(L, &s[i], config_value(c, i));
            lua_setfield(L, -2, s[i].path);
        }
    }
    return 1;
}

static const luaL_Reg funcs[] = {
    {"get", l_get},
    {"table", l_table},
    {NULL, NULL},
};

int luaopen_serfhand_config(lua_State *L)
{
    /* No config.file: the path to the file that holds the secrets is none
     * of a handler's business (DESIGN 4b). */
    luaL_newlib(L, funcs);
    return 1;
}
