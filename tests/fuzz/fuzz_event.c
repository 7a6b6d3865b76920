/* libFuzzer harness: the event a Serf agent hands the handler (event.c):
 * the environment (SERF_EVENT, SERF_SELF_*, SERF_TAG_*, user event and query
 * names, LTimes) and stdin (a payload, or member lines "name\taddr\trole\ttags"
 * that other members' names and tags fill). Input: environment lines
 * ("K=V\n"), a NUL byte, then stdin. The parsed event is pushed into Lua as a
 * handler would see it. */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "serfhand.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static lua_State *L;
    if (!L)
        L = luaL_newstate();
    const char *nul = memchr(data, 0, size);
    size_t envlen = nul ? (size_t)(nul - (const char *)data) : size;
    char *envtext = malloc(envlen + 1);
    memcpy(envtext, data, envlen);
    envtext[envlen] = 0;
    char *envp[65];
    size_t ne = 0;
    for (char *s = envtext, *save = NULL, *tok; ne < 64 && (tok = strtok_r(s, "\n", &save));
         s = NULL)
        envp[ne++] = tok;
    envp[ne] = NULL;
    const char *in = nul ? nul + 1 : "";
    size_t inlen = nul ? size - envlen - 1 : 0;
    struct event ev;
    char err[256];
    if (event_parse(&ev, envp, in, inlen, err, sizeof err) == 0) {
        char *h = event_handler_path(&ev);
        if (h && !manifest_valid_rel(h))
            abort(); /* a handler path stays inside the bundle */
        free(h);
        event_push(L, &ev, NULL);
        lua_settop(L, 0);
    }
    event_free(&ev);
    free(envtext);
    return 0;
}
