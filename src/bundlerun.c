/*
 * bundlerun.c: run Lua of the verified bundle for the Factom subcommands
 * (propose, action): either a handler file (handlers/action/<act>.lua) called
 * with an ev table, or a short trusted chunk from the C code that requires
 * bundle modules. Same sandbox, limits and verification as `handle`.
 */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "serfhand.h"

/* Push ev = {type, name, payload, args = {...}, self = {name}, bundle = {name, version}}. */
static void push_ev(lua_State *L, const struct bundlerun *r, const struct bundle *b)
{
    lua_createtable(L, 0, 8);
    lua_pushstring(L, r->ev_type ? r->ev_type : "cli");
    lua_setfield(L, -2, "type");
    if (r->ev_name) {
        lua_pushstring(L, r->ev_name);
        lua_setfield(L, -2, "name");
    }
    lua_pushinteger(L, 0);
    lua_setfield(L, -2, "ltime");
    lua_pushstring(L, r->nargs > 0 ? r->args[0] : "");
    lua_setfield(L, -2, "payload");
    lua_createtable(L, (int)r->nargs, 0);
    for (size_t i = 0; i < r->nargs; i++) {
        lua_pushstring(L, r->args[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "args");
    lua_createtable(L, 0, 3);
    lua_pushstring(L, r->self_name ? r->self_name : "");
    lua_setfield(L, -2, "name");
    lua_pushstring(L, "");
    lua_setfield(L, -2, "role");
    lua_newtable(L);
    lua_setfield(L, -2, "tags");
    lua_setfield(L, -2, "self");
    lua_createtable(L, 0, 2);
    lua_pushstring(L, b->name ? b->name : "");
    lua_setfield(L, -2, "name");
    lua_pushstring(L, b->version ? b->version : "");
    lua_setfield(L, -2, "version");
    lua_setfield(L, -2, "bundle");
    lua_newtable(L);
    lua_setfield(L, -2, "members");
}

int bundlerun_exec(const struct bundlerun *r, struct buf *out, char *err, size_t errlen)
{
    struct bundle b;
    struct sandbox *sb = NULL;
    const char *dir = r->bundle_dir ? r->bundle_dir : config_str(r->cfg, "bundle");
    int rc = SH_EXIT_FAIL, status;

    if (bundle_open(&b, dir, r->cfg, r->verify, err, errlen) < 0)
        return SH_EXIT_TRUST;
    struct sandbox_limits lim = {
        .memory = (size_t)config_int(r->cfg, "limits.memory_mb") * 1024 * 1024,
        .deadline_ms = r->deadline_ms,
        .grace_ms = (int)config_int(r->cfg, "limits.grace_ms"),
    };
    sb = sandbox_new(&lim, &b, r->cfg, err, errlen);
    if (!sb) {
        rc = SH_EXIT_USAGE;
        goto out;
    }
    sandbox_set_handler(sb, r->in_handler);
    sandbox_set_query(sb, false);
    sandbox_start_clock(sb);
    lua_State *L = sandbox_state(sb);
    int nargs = 0;
    if (r->rel) {
        int lrc = sandbox_load_handler(sb, r->rel, &status, err, errlen);
        if (lrc == -3)
            goto lua_failed;
        if (lrc != 0) {
            if (lrc == 1)
                util_errf(err, errlen, "%s: no such file in bundle %s", r->rel, b.dir);
            else if (lrc == -4)
                util_errf(err, errlen, "%s must return a function (or a table with handle)",
                          r->rel);
            rc = lrc == -2 ? SH_EXIT_TRUST : SH_EXIT_FAIL;
            goto out;
        }
        push_ev(L, r, &b);
        nargs = 1;
    } else {
        if (sandbox_load_buffer(sb, r->chunk, strlen(r->chunk), "=serfhand", err, errlen) < 0)
            goto out;
        for (size_t i = 0; i < r->nargs; i++)
            lua_pushstring(L, r->args[i]);
        nargs = (int)r->nargs;
    }
    status = sandbox_pcall(sb, nargs, 2);
    if (status != LUA_OK)
        goto lua_failed;
    if (lua_isnil(L, -2)) { /* nil, err */
        util_errf(err, errlen, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "failed");
        goto out;
    }
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        buf_add(out, s, n);
    } else if (lua_istable(L, -1)) {
        if (ljson_encode(L, -1, out, err, errlen) < 0)
            goto out;
    } else if (!lua_isnil(L, -1) && sandbox_tostring(sb, -1, out) < 0) {
        goto lua_failed;
    }
    sandbox_stop_clock(sb);
    rc = SH_EXIT_OK;
    goto out;
lua_failed:
    rc = sandbox_timed_out(sb)       ? SH_EXIT_TIMEOUT
         : sandbox_out_of_memory(sb) ? SH_EXIT_MEMORY
                                     : SH_EXIT_FAIL;
    util_errf(err, errlen, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "error");
out:
    /* A refused module ends the run as a refusal whatever the Lua code did
     * with the error; finalizers run at the close, so it is asked after. */
    sandbox_close(sb);
    if (sandbox_refusal(sb)) {
        util_errf(err, errlen, "refused: %s", sandbox_refusal(sb));
        out->len = 0;
        rc = SH_EXIT_TRUST;
    }
    sandbox_free(sb);
    bundle_close(&b);
    return rc;
}
