/* libFuzzer harness: values read back from the store (lstore.c's decode of a
 * stored JSON value, ljson_decode). A handler of an earlier bundle, or
 * anything that can write serfhand.db, chose these bytes. */
#include <lauxlib.h>

#include "serfhand.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lua_State *L;
    if (!L)
        L = luaL_newstate();
    char err[256];
    int top = lua_gettop(L);
    int r = ljson_decode(L, (const char *)data, size, err, sizeof err);
    if ((r == 0 && lua_gettop(L) != top + 1) || (r != 0 && lua_gettop(L) != top))
        __builtin_trap(); /* exactly one value on success, none on failure */
    if (r == 0) {         /* and what was read encodes again */
        struct buf b = {0};
        ljson_encode(L, -1, &b, err, sizeof err);
        buf_free(&b);
    }
    lua_settop(L, 0);
    return 0;
}
