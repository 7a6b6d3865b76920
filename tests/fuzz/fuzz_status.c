/* libFuzzer harness: a member's answer to query factomd-status (status.c),
 * then both renderings of whatever it parsed to; the same bytes as an answer
 * to serfhand-check (check --cluster) and as any answer `serfhand query`
 * shows (escaped for a terminal and for JSON). */
#include <string.h>

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
    struct status_check c;
    if (status_check_parse(L, (const char *)data, size, &c, err, sizeof err) == 0) {
        if (c.problems.n > STATUS_CHECK_PROBLEMS || c.failed.n > STATUS_CHECK_PROBLEMS)
            __builtin_trap();
        for (size_t i = 0; i < c.problems.n; i++) {
            if (strlen(c.problems.v[i]) > STATUS_CHECK_TEXT)
                __builtin_trap();
            status_term_bytes(&o, c.problems.v[i], strlen(c.problems.v[i]), 100);
        }
    }
    status_check_free(&c);
    status_term_bytes(&o, (const char *)data, size, 200);
    for (size_t i = 0; i < o.len; i++)
        if ((unsigned char)o.data[i] < 0x20 || (unsigned char)o.data[i] > 0x7e)
            __builtin_trap(); /* printable ASCII only on a terminal */
    o.len = 0;
    status_json_bytes(&o, (const char *)data, size);
    if (!status_utf8_valid(o.data, o.len))
        __builtin_trap(); /* JSON is UTF-8 whatever a member sent */
    for (size_t i = 0; i < o.len; i++)
        if ((unsigned char)o.data[i] < 0x20)
            __builtin_trap();
    buf_free(&o);
    if (lua_gettop(L) != 0)
        __builtin_trap();
    return 0;
}
