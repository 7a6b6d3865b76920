/* libFuzzer harness: the msgpack decoder (msgpack.c) on bytes a Serf agent
 * (or anything listening on serf.rpc_addr) sends: one object decoded, its
 * tree walked, what was consumed within the input. */
#include <stdlib.h>

#include "serfhand.h"

static size_t walk(const struct mp_value *v, int depth)
{
    if (depth > 1000)
        abort(); /* the decoder bounds depth */
    size_t n = 1;
    if (v->type == MP_ARRAY || v->type == MP_MAP)
        for (size_t i = 0; i < v->v.a.n * (v->type == MP_MAP ? 2 : 1); i++)
            n += walk(&v->v.a.items[i], depth + 1);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    size_t off = 0;
    while (off < size) {
        struct mp_value *v = NULL;
        size_t used = 0;
        char err[128];
        int r = msgpack_decode(p + off, size - off, &used, &v, err, sizeof err);
        if (r != 1)
            break;
        if (used == 0 || used > size - off)
            abort();
        walk(v, 0);
        uint64_t u;
        msgpack_uint_of(msgpack_get(v, "Seq"), &u);
        msgpack_get(v, "Members");
        msgpack_free(v);
        off += used;
    }
    return 0;
}
