/* libFuzzer harness: factomd's JSON-RPC replies (lfactomd.c), sent by
 * whatever answers at factomd.url. http_post is replaced by one that
 * answers with the fuzz bytes (the first byte picks the HTTP status), and
 * every factomd.* call runs its whole decode path under lua_pcall. */
#include <lauxlib.h>
#include <lualib.h>
#include <string.h>

#include "serfhand.h"

static const uint8_t *g_data;
static size_t g_size;

int http_post(const struct http_req *req, struct buf *body_out, long *status, char *err,
              size_t errlen)
{
    (void)req, (void)err, (void)errlen;
    static const long st[] = {200, 200, 200, 401, 500, 404};
    *status = g_size ? st[g_data[0] % 6] : 200;
    if (g_size > 1)
        buf_add(body_out, g_data + 1, g_size - 1);
    else
        buf_add(body_out, "", 0);
    return HTTP_OK;
}

int http_get(const struct http_req *req, struct buf *body_out, long *status, char *err,
             size_t errlen)
{
    return http_post(req, body_out, status, err, errlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lua_State *L;
    static const char *const calls[] = {
        "return f.call('properties')",
        "return f.current_minute()",
        "return f.heights()",
        "return f.properties()",
        "return f.diagnostics()",
        "return f.authorities()",
        "return f.dblock_by_height(42)",
        NULL,
    };
    if (!L) {
        L = luaL_newstate();
        *(void **)lua_getextraspace(L) = NULL; /* no sandbox: built-in settings */
        luaL_openlibs(L);
        luaL_requiref(L, "f", luaopen_serfhand_factomd, 1);
        lua_pop(L, 1);
    }
    g_data = data;
    g_size = size;
    for (int i = 0; calls[i]; i++) {
        if (luaL_loadstring(L, calls[i]) == LUA_OK)
            lua_pcall(L, 0, LUA_MULTRET, 0);
        for (int k = 1, n = lua_gettop(L); k <= n; k++) { /* what a handler would print */
            if (lua_type(L, k) != LUA_TTABLE || !luaL_getmetafield(L, k, "__tostring"))
                continue;
            lua_pop(L, 1);
            luaL_tolstring(L, k, NULL);
            lua_pop(L, 1);
        }
        lua_settop(L, 0);
    }
    lua_gc(L, LUA_GCCOLLECT);
    return 0;
}
