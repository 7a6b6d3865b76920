/*
 * msgpack.c: the small msgpack writer (appends to a struct buf) and the
 * bounded reader that the Serf RPC client (serfrpc.c) needs. The reader
 * takes bytes from the network: depth, element count and size are capped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serfhand.h"

#define MP_MAX_DEPTH 32
#define MP_MAX_NODES 200000 /* values in one message */

/* ------------------------------------------------------------ msgpack writer */

static void put_be(struct buf *b, uint8_t tag, uint64_t v, int bytes)
{
    uint8_t out[9];
    out[0] = tag;
    for (int i = 0; i < bytes; i++)
        out[1 + i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    buf_add(b, out, (size_t)bytes + 1);
}

void msgpack_map(struct buf *b, uint32_t n)
{
    if (n < 16) {
        uint8_t t = (uint8_t)(0x80 | n);
        buf_add(b, &t, 1);
    } else if (n <= 0xffff) {
        put_be(b, 0xde, n, 2);
    } else {
        put_be(b, 0xdf, n, 4);
    }
}

void msgpack_array(struct buf *b, uint32_t n)
{
    if (n < 16) {
        uint8_t t = (uint8_t)(0x90 | n);
        buf_add(b, &t, 1);
    } else if (n <= 0xffff) {
        put_be(b, 0xdc, n, 2);
    } else {
        put_be(b, 0xdd, n, 4);
    }
}

void msgpack_str(struct buf *b, const char *s, size_t n)
{
    if (n < 32) {
        uint8_t t = (uint8_t)(0xa0 | n);
        buf_add(b, &t, 1);
    } else if (n <= 0xff) {
        put_be(b, 0xd9, n, 1);
    } else if (n <= 0xffff) {
        put_be(b, 0xda, n, 2);
    } else {
        put_be(b, 0xdb, n, 4);
    }
    buf_add(b, s, n);
}

void msgpack_cstr(struct buf *b, const char *s)
{
    msgpack_str(b, s, strlen(s));
}

void msgpack_bin(struct buf *b, const void *p, size_t n)
{
    if (n <= 0xff)
        put_be(b, 0xc4, n, 1);
    else if (n <= 0xffff)
        put_be(b, 0xc5, n, 2);
    else
        put_be(b, 0xc6, n, 4);
    buf_add(b, p, n);
}

void msgpack_bool(struct buf *b, bool v)
{
    uint8_t t = v ? 0xc3 : 0xc2;
    buf_add(b, &t, 1);
}

void msgpack_uint(struct buf *b, uint64_t v)
{
    if (v < 0x80) {
        uint8_t t = (uint8_t)v;
        buf_add(b, &t, 1);
    } else if (v <= 0xff) {
        put_be(b, 0xcc, v, 1);
    } else if (v <= 0xffff) {
        put_be(b, 0xcd, v, 2);
    } else if (v <= 0xffffffffu) {
        put_be(b, 0xce, v, 4);
    } else {
        put_be(b, 0xcf, v, 8);
    }
}

void msgpack_int(struct buf *b, int64_t v)
{
    if (v >= 0) {
        msgpack_uint(b, (uint64_t)v);
    } else if (v >= -32) {
        uint8_t t = (uint8_t)(int8_t)v;
        buf_add(b, &t, 1);
    } else if (v >= INT8_MIN) {
        put_be(b, 0xd0, (uint64_t)v, 1);
    } else if (v >= INT16_MIN) {
        put_be(b, 0xd1, (uint64_t)v, 2);
    } else if (v >= INT32_MIN) {
        put_be(b, 0xd2, (uint64_t)v, 4);
    } else {
        put_be(b, 0xd3, (uint64_t)v, 8);
    }
}

/* ------------------------------------------------------------ msgpack reader */

struct dec {
    const uint8_t *p, *end;
    size_t nodes;
    char *err;
    size_t errlen;
};

/* 1 and *out if n bytes are there, 0 if the input ends first. */
static int take(struct dec *d, size_t n, const uint8_t **out)
{
    if ((size_t)(d->end - d->p) < n)
        return 0;
    *out = d->p;
    d->p += n;
    return 1;
}

static int take_be(struct dec *d, int bytes, uint64_t *v)
{
    const uint8_t *q;
    if (!take(d, (size_t)bytes, &q))
        return 0;
    *v = 0;
    for (int i = 0; i < bytes; i++)
        *v = (*v << 8) | q[i];
    return 1;
}

static int decode_value(struct dec *d, struct mp_value *v, int depth);

/* Decode n items (2n for a map) into a fresh array. */
static int decode_items(struct dec *d, struct mp_value *v, enum mp_type t, uint64_t n, int depth)
{
    uint64_t count = t == MP_MAP ? 2 * n : n;
    v->type = t;
    v->v.a.items = NULL;
    v->v.a.n = 0;
    if (depth >= MP_MAX_DEPTH) {
        util_errf(d->err, d->errlen, "msgpack: nested too deep");
        return -1;
    }
    if (count > (uint64_t)(d->end - d->p))
        return 0; /* each item takes at least one byte */
    if (d->nodes + count > MP_MAX_NODES) {
        util_errf(d->err, d->errlen, "msgpack: too many values");
        return -1;
    }
    d->nodes += count;
    if (count == 0)
        return 1;
    v->v.a.items = calloc(count, sizeof *v->v.a.items);
    if (!v->v.a.items) {
        util_errf(d->err, d->errlen, "msgpack: out of memory");
        return -1;
    }
    for (uint64_t i = 0; i < count; i++) {
        int r = decode_value(d, &v->v.a.items[i], depth + 1);
        v->v.a.n = (size_t)(t == MP_MAP ? (i + 2) / 2 : i + 1); /* freeable so far */
        if (r != 1)
            return r;
    }
    v->v.a.n = (size_t)n;
    return 1;
}

static int decode_bytes(struct dec *d, struct mp_value *v, enum mp_type t, uint64_t n)
{
    const uint8_t *q;
    v->type = t;
    if (n > (uint64_t)(d->end - d->p))
        return 0;
    take(d, (size_t)n, &q);
    v->v.s.p = (const char *)q;
    v->v.s.len = (size_t)n;
    return 1;
}

static int decode_value(struct dec *d, struct mp_value *v, int depth)
{
    const uint8_t *q;
    uint64_t n;
    memset(v, 0, sizeof *v);
    if (!take(d, 1, &q))
        return 0;
    uint8_t c = q[0];
    if (c <= 0x7f) {
        v->type = MP_UINT;
        v->v.u = c;
        return 1;
    }
    if (c >= 0xe0) {
        v->type = MP_INT;
        v->v.i = (int8_t)c; // NOLINT(bugprone-signed-char-misuse,cert-str34-c): negative fixint
        return 1;
    }
    if (c <= 0x8f)
        return decode_items(d, v, MP_MAP, c & 0x0f, depth);
    if (c <= 0x9f)
        return decode_items(d, v, MP_ARRAY, c & 0x0f, depth);
    if (c <= 0xbf)
        return decode_bytes(d, v, MP_STR, c & 0x1f);
    switch (c) {
    case 0xc0: v->type = MP_NIL; return 1;
    case 0xc2:
    case 0xc3:
        v->type = MP_BOOL;
        v->v.b = c == 0xc3;
        return 1;
    case 0xc4:
    case 0xc5:
    case 0xc6:
        if (!take_be(d, 1 << (c - 0xc4), &n))
            return 0;
        return decode_bytes(d, v, MP_BIN, n);
    case 0xc7:
    case 0xc8:
    case 0xc9: /* ext: length, type byte, data */
        if (!take_be(d, 1 << (c - 0xc7), &n) || !take(d, 1, &q))
            return 0;
        return decode_bytes(d, v, MP_EXT, n);
    case 0xca: {
        uint32_t bits;
        float f;
        if (!take_be(d, 4, &n))
            return 0;
        bits = (uint32_t)n;
        memcpy(&f, &bits, sizeof f);
        v->type = MP_FLOAT;
        v->v.f = f;
        return 1;
    }
    case 0xcb:
        if (!take_be(d, 8, &n))
            return 0;
        v->type = MP_FLOAT;
        memcpy(&v->v.f, &n, sizeof v->v.f);
        return 1;
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        if (!take_be(d, 1 << (c - 0xcc), &n))
            return 0;
        v->type = MP_UINT;
        v->v.u = n;
        return 1;
    case 0xd0:
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        int bytes = 1 << (c - 0xd0);
        if (!take_be(d, bytes, &n))
            return 0;
        if (bytes < 8 && (n >> (8 * bytes - 1)) & 1)
            n |= ~(uint64_t)0 << (8 * bytes); /* sign-extend */
        v->type = MP_INT;
        v->v.i = (int64_t)n;
        return 1;
    }
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8: /* fixext */
        if (!take(d, 1, &q))
            return 0;
        return decode_bytes(d, v, MP_EXT, (uint64_t)1 << (c - 0xd4));
    case 0xd9:
    case 0xda:
    case 0xdb:
        if (!take_be(d, 1 << (c - 0xd9), &n))
            return 0;
        return decode_bytes(d, v, MP_STR, n);
    case 0xdc:
    case 0xdd:
        if (!take_be(d, c == 0xdc ? 2 : 4, &n))
            return 0;
        return decode_items(d, v, MP_ARRAY, n, depth);
    case 0xde:
    case 0xdf:
        if (!take_be(d, c == 0xde ? 2 : 4, &n))
            return 0;
        return decode_items(d, v, MP_MAP, n, depth);
    default: /* 0xc1 is never used */
        util_errf(d->err, d->errlen, "msgpack: invalid byte 0x%02x", c);
        return -1;
    }
}

static void free_items(struct mp_value *v)
{
    if (v->type != MP_ARRAY && v->type != MP_MAP)
        return;
    size_t count = v->type == MP_MAP ? 2 * v->v.a.n : v->v.a.n;
    for (size_t i = 0; i < count; i++)
        free_items(&v->v.a.items[i]);
    free(v->v.a.items);
}

void msgpack_free(struct mp_value *v)
{
    if (!v)
        return;
    free_items(v);
    free(v);
}

int msgpack_decode(const char *p, size_t len, size_t *used, struct mp_value **out, char *err,
                   size_t errlen)
{
    struct dec d = {(const uint8_t *)p, (const uint8_t *)p + len, 0, err, errlen};
    struct mp_value *v = calloc(1, sizeof *v);
    *out = NULL;
    if (!v) {
        util_errf(err, errlen, "msgpack: out of memory");
        return -1;
    }
    int r = decode_value(&d, v, 0);
    if (r != 1) {
        msgpack_free(v);
        return r;
    }
    *used = (size_t)(d.p - (const uint8_t *)p);
    *out = v;
    return 1;
}

const struct mp_value *msgpack_get(const struct mp_value *map, const char *key)
{
    if (!map || map->type != MP_MAP)
        return NULL;
    size_t kl = strlen(key);
    for (size_t i = 0; i < map->v.a.n; i++) {
        const struct mp_value *k = &map->v.a.items[2 * i];
        if ((k->type == MP_STR || k->type == MP_BIN) && k->v.s.len == kl &&
            memcmp(k->v.s.p, key, kl) == 0)
            return &map->v.a.items[2 * i + 1];
    }
    return NULL;
}

bool msgpack_uint_of(const struct mp_value *v, uint64_t *out)
{
    if (v && v->type == MP_UINT) {
        *out = v->v.u;
        return true;
    }
    if (v && v->type == MP_INT && v->v.i >= 0) {
        *out = (uint64_t)v->v.i;
        return true;
    }
    return false;
}
