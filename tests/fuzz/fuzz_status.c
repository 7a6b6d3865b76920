/* libFuzzer harness: a member's answer to query factomd-status (status.c),
 * then both renderings of whatever it parsed to. */
#include <lauxlib.h>

#include "serfhand.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lua_State *L;
    if (!L)
        L = luaL_newstate();
    struct status_answer a;
    char err[96];
    struct buf o = {0};
    int rc = status_answer_parse(L, (const char *)data, size, &a, err, sizeof err);
    status_row_text(&o, "n1", rc == 0 ? &a : NULL, rc == 0 ? NULL : err, 1700000000000);
    status_row_json(&o, rc == 0 ? &a : NULL, rc == 0 ? NULL : err);
    for (size_t i = 0; i < o.len; i++)
        if ((unsigned char)o.data[i] < 0x20 && o.data[i] != '\n')
            __builtin_trap(); /* nothing but our own bytes reaches the terminal */
    buf_free(&o);
    if (lua_gettop(L) != 0)
        __builtin_trap();
    return 0;
}
