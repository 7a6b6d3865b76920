/*
 * serfrpc.c: a native client for the Serf agent's msgpack RPC over TCP
 * (handshake, auth, event, members, query with streamed acks and responses,
 * stop) and the small msgpack writer and reader it needs. Used by lserf.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>

#include "serfhand.h"

#define MP_MAX_DEPTH 32
#define MP_MAX_NODES 200000       /* values in one message */
#define RPC_MAX_MESSAGE (1 << 20) /* bytes buffered for one message */

/* ------------------------------------------------------------ msgpack writer */

static void put_be(struct buf *b, uint8_t tag, uint64_t v, int bytes)
{
    uint8_t out[9];
    out[0] = tag;
    for (int i = 0; i < bytes; i++)
        out[1 + i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    buf_add(b, out, (size_t)bytes + 1);
}

void serfrpc_mp_map(struct buf *b, uint32_t n)
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

void serfrpc_mp_array(struct buf *b, uint32_t n)
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

void serfrpc_mp_str(struct buf *b, const char *s, size_t n)
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

void serfrpc_mp_cstr(struct buf *b, const char *s)
{
    serfrpc_mp_str(b, s, strlen(s));
}

void serfrpc_mp_bin(struct buf *b, const void *p, size_t n)
{
    if (n <= 0xff)
        put_be(b, 0xc4, n, 1);
    else if (n <= 0xffff)
        put_be(b, 0xc5, n, 2);
    else
        put_be(b, 0xc6, n, 4);
    buf_add(b, p, n);
}

void serfrpc_mp_bool(struct buf *b, bool v)
{
    uint8_t t = v ? 0xc3 : 0xc2;
    buf_add(b, &t, 1);
}

void serfrpc_mp_uint(struct buf *b, uint64_t v)
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

void serfrpc_mp_int(struct buf *b, int64_t v)
{
    if (v >= 0) {
        serfrpc_mp_uint(b, (uint64_t)v);
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
        v->v.i = (int8_t)c;
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

void serfrpc_mp_free(struct mp_value *v)
{
    if (!v)
        return;
    free_items(v);
    free(v);
}

int serfrpc_mp_decode(const char *p, size_t len, size_t *used, struct mp_value **out, char *err,
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
        serfrpc_mp_free(v);
        return r;
    }
    *used = (size_t)(d.p - (const uint8_t *)p);
    *out = v;
    return 1;
}

const struct mp_value *serfrpc_mp_get(const struct mp_value *map, const char *key)
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

bool serfrpc_mp_uint_of(const struct mp_value *v, uint64_t *out)
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

/* A str or bin value as a fresh NUL-terminated string ("" if absent/nil). */
static char *mp_dup(const struct mp_value *v)
{
    if (!v || (v->type != MP_STR && v->type != MP_BIN))
        return xstrdup("");
    char *s = xmalloc(v->v.s.len + 1);
    memcpy(s, v->v.s.p, v->v.s.len);
    s[v->v.s.len] = '\0';
    return s;
}

static bool mp_is_str(const struct mp_value *v, const char *s)
{
    return v && (v->type == MP_STR || v->type == MP_BIN) && v->v.s.len == strlen(s) &&
           memcmp(v->v.s.p, s, v->v.s.len) == 0;
}

/* ---------------------------------------------------------------- connection */

struct serfrpc {
    int fd;
    uint64_t seq;
    int64_t deadline;
    struct buf in; /* received bytes; in.data[off..len) not yet decoded */
    size_t off;
    char addr[128];
};

static void timed_out(struct serfrpc *c, char *err, size_t errlen, const char *what)
{
    util_errf(err, errlen, "serf: timed out %s %s", what, c->addr);
}

/* Wait for fd to become ready for ev before the deadline: 1, 0 = timed out, -1. */
static int wait_fd(int fd, short ev, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - util_mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {fd, ev, 0};
        int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static int send_all(struct serfrpc *c, const void *p, size_t n, char *err, size_t errlen)
{
    const char *s = p;
    while (n > 0) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
        if (w > 0) {
            s += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int r = wait_fd(c->fd, POLLOUT, c->deadline);
            if (r == 0) {
                timed_out(c, err, errlen, "sending to");
                return -1;
            }
            if (r > 0)
                continue;
        }
        util_errf(err, errlen, "serf: sending to %s: %s", c->addr, strerror(errno));
        return -1;
    }
    return 0;
}

/* Read the next message. *out points into c->in and stays valid until the
 * next read_msg; free it with serfrpc_mp_free. */
static int read_msg(struct serfrpc *c, struct mp_value **out, char *err, size_t errlen)
{
    char derr[128];
    if (c->off > 0) { /* drop what was decoded before */
        memmove(c->in.data, c->in.data + c->off, c->in.len - c->off);
        c->in.len -= c->off;
        c->off = 0;
    }
    for (;;) {
        size_t used = 0;
        int r =
            c->in.len ? serfrpc_mp_decode(c->in.data, c->in.len, &used, out, derr, sizeof derr) : 0;
        if (r == 1) {
            c->off = used;
            return 0;
        }
        if (r < 0) {
            util_errf(err, errlen, "serf: bad reply from %s: %s", c->addr, derr);
            return -1;
        }
        if (c->in.len >= RPC_MAX_MESSAGE) {
            util_errf(err, errlen, "serf: reply from %s larger than %d bytes", c->addr,
                      RPC_MAX_MESSAGE);
            return -1;
        }
        char chunk[16384];
        ssize_t n = recv(c->fd, chunk, sizeof chunk, 0);
        if (n > 0) {
            buf_add(&c->in, chunk, (size_t)n);
            continue;
        }
        if (n == 0) {
            util_errf(err, errlen, "serf: %s closed the connection", c->addr);
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int w = wait_fd(c->fd, POLLIN, c->deadline);
            if (w > 0)
                continue;
            if (w == 0) {
                timed_out(c, err, errlen, "waiting for");
                return -1;
            }
        }
        util_errf(err, errlen, "serf: reading from %s: %s", c->addr, strerror(errno));
        return -1;
    }
}

/* Read a response header: its Seq and Error (copied into errtext). */
static int read_header(struct serfrpc *c, uint64_t *seq, char *errtext, size_t textlen, char *err,
                       size_t errlen)
{
    struct mp_value *h;
    if (read_msg(c, &h, err, errlen) < 0)
        return -1;
    const struct mp_value *e = serfrpc_mp_get(h, "Error");
    if (!serfrpc_mp_uint_of(serfrpc_mp_get(h, "Seq"), seq) ||
        (e && e->type != MP_STR && e->type != MP_NIL)) {
        serfrpc_mp_free(h);
        util_errf(err, errlen, "serf: bad reply header from %s", c->addr);
        return -1;
    }
    errtext[0] = '\0';
    if (e && e->type == MP_STR)
        snprintf(errtext, textlen, "%.*s", (int)(e->v.s.len > 400 ? 400 : e->v.s.len), e->v.s.p);
    serfrpc_mp_free(h);
    return 0;
}

/* Append a request header {"Command", "Seq"} with the next Seq. */
static uint64_t put_header(struct serfrpc *c, struct buf *b, const char *cmd)
{
    uint64_t seq = c->seq++;
    serfrpc_mp_map(b, 2);
    serfrpc_mp_cstr(b, "Command");
    serfrpc_mp_cstr(b, cmd);
    serfrpc_mp_cstr(b, "Seq");
    serfrpc_mp_uint(b, seq);
    return seq;
}

/* Send req and wait for the header with its seq; Serf's Error becomes err. */
static int simple_call(struct serfrpc *c, struct buf *req, uint64_t seq, char *err, size_t errlen)
{
    char text[512];
    uint64_t got;
    if (send_all(c, req->data, req->len, err, errlen) < 0)
        return -1;
    for (;;) {
        if (read_header(c, &got, text, sizeof text, err, errlen) < 0)
            return -1;
        if (got != seq)
            continue; /* a late header of an earlier call */
        if (text[0]) {
            util_errf(err, errlen, "serf: %s", text);
            return -1;
        }
        return 0;
    }
}

/* Split "host:port" / "[v6]:port" and connect before the deadline. */
static int dial(struct serfrpc *c, const char *addr, char *err, size_t errlen)
{
    char host[128], port[16];
    const char *colon = strrchr(addr, ':');
    const char *h = addr;
    size_t hl = colon ? (size_t)(colon - addr) : 0;
    if (!colon || !colon[1] || strlen(colon + 1) >= sizeof port || hl == 0) {
        util_errf(err, errlen, "serf: bad RPC address \"%s\" (want host:port)", addr);
        return -1;
    }
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= sizeof host) {
        util_errf(err, errlen, "serf: bad RPC address \"%s\" (want host:port)", addr);
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';
    strcpy(port, colon + 1);

    struct addrinfo hints = {0}, *res = NULL, *ai;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int gr = getaddrinfo(host, port, &hints, &res);
    if (gr != 0) {
        util_errf(err, errlen, "serf: cannot connect to %s: %s", addr, gai_strerror(gr));
        return -1;
    }
    int last = ECONNREFUSED;
    for (ai = res; ai; ai = ai->ai_next) {
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        int r = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (r < 0 && errno == EINPROGRESS) {
            int w = wait_fd(fd, POLLOUT, c->deadline);
            if (w == 0) {
                close(fd);
                freeaddrinfo(res);
                timed_out(c, err, errlen, "connecting to");
                return -1;
            }
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (w < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
                soerr = errno;
            r = soerr ? -1 : 0;
            errno = soerr;
        }
        if (r == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            c->fd = fd;
            freeaddrinfo(res);
            return 0;
        }
        last = errno;
        close(fd);
    }
    freeaddrinfo(res);
    util_errf(err, errlen, "serf: cannot connect to %s: %s", addr, strerror(last));
    return -1;
}

void serfrpc_set_deadline(struct serfrpc *c, int64_t deadline_ms)
{
    c->deadline = deadline_ms;
}

void serfrpc_close(struct serfrpc *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    buf_free(&c->in);
    free(c);
}

int serfrpc_open(struct serfrpc **out, const char *addr, const char *token, int64_t deadline_ms,
                 char *err, size_t errlen)
{
    struct serfrpc *c = xmalloc(sizeof *c);
    struct buf req = {0};
    int rc = -1;
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->deadline = deadline_ms;
    snprintf(c->addr, sizeof c->addr, "%s", addr);
    *out = NULL;
    if (dial(c, addr, err, errlen) < 0)
        goto out;

    uint64_t seq = put_header(c, &req, "handshake");
    serfrpc_mp_map(&req, 1);
    serfrpc_mp_cstr(&req, "Version");
    serfrpc_mp_uint(&req, 1);
    if (simple_call(c, &req, seq, err, errlen) < 0)
        goto out;

    if (token && *token) {
        req.len = 0;
        seq = put_header(c, &req, "auth");
        serfrpc_mp_map(&req, 1);
        serfrpc_mp_cstr(&req, "AuthKey");
        serfrpc_mp_cstr(&req, token);
        int r = simple_call(c, &req, seq, err, errlen);
        sodium_memzero(req.data, req.cap); /* the token */
        if (r < 0)
            goto out;
    }
    *out = c;
    c = NULL;
    rc = 0;
out:
    buf_free(&req);
    serfrpc_close(c);
    return rc;
}

int serfrpc_event(struct serfrpc *c, const char *name, const void *payload, size_t len,
                  bool coalesce, char *err, size_t errlen)
{
    struct buf req = {0};
    uint64_t seq = put_header(c, &req, "event");
    serfrpc_mp_map(&req, 3);
    serfrpc_mp_cstr(&req, "Name");
    serfrpc_mp_cstr(&req, name);
    serfrpc_mp_cstr(&req, "Payload");
    serfrpc_mp_bin(&req, payload, len);
    serfrpc_mp_cstr(&req, "Coalesce");
    serfrpc_mp_bool(&req, coalesce);
    int rc = simple_call(c, &req, seq, err, errlen);
    buf_free(&req);
    return rc;
}

void serfrpc_members_free(struct serf_member *m, size_t n)
{
    if (!m)
        return;
    for (size_t i = 0; i < n; i++) {
        free(m[i].name);
        free(m[i].status);
        for (size_t k = 0; k < m[i].ntags; k++) {
            free(m[i].tagk[k]);
            free(m[i].tagv[k]);
        }
        free(m[i].tagk);
        free(m[i].tagv);
    }
    free(m);
}

static void fill_member(struct serf_member *m, const struct mp_value *v)
{
    const struct mp_value *a = serfrpc_mp_get(v, "Addr");
    const struct mp_value *t = serfrpc_mp_get(v, "Tags");
    uint64_t port = 0;
    m->name = mp_dup(serfrpc_mp_get(v, "Name"));
    m->status = mp_dup(serfrpc_mp_get(v, "Status"));
    serfrpc_mp_uint_of(serfrpc_mp_get(v, "Port"), &port);
    m->port = port <= 65535 ? (unsigned)port : 0;
    if (a && (a->type == MP_BIN || a->type == MP_STR) && a->v.s.len == 4)
        inet_ntop(AF_INET, a->v.s.p, m->addr, sizeof m->addr);
    else if (a && (a->type == MP_BIN || a->type == MP_STR) && a->v.s.len == 16) {
        /* an IPv4-mapped address (Go's 16-byte form) prints as IPv4 */
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a->v.s.p, mapped, 12) == 0)
            inet_ntop(AF_INET, a->v.s.p + 12, m->addr, sizeof m->addr);
        else
            inet_ntop(AF_INET6, a->v.s.p, m->addr, sizeof m->addr);
    }
    if (t && t->type == MP_MAP && t->v.a.n > 0) {
        m->tagk = xmalloc(t->v.a.n * sizeof *m->tagk);
        m->tagv = xmalloc(t->v.a.n * sizeof *m->tagv);
        for (size_t i = 0; i < t->v.a.n; i++) {
            m->tagk[i] = mp_dup(&t->v.a.items[2 * i]);
            m->tagv[i] = mp_dup(&t->v.a.items[2 * i + 1]);
        }
        m->ntags = t->v.a.n;
    }
}

int serfrpc_members(struct serfrpc *c, struct serf_member **out, size_t *n, char *err,
                    size_t errlen)
{
    struct buf req = {0};
    struct mp_value *body = NULL;
    int rc = -1;
    *out = NULL;
    *n = 0;
    uint64_t seq = put_header(c, &req, "members");
    if (simple_call(c, &req, seq, err, errlen) < 0)
        goto out;
    if (read_msg(c, &body, err, errlen) < 0)
        goto out;
    const struct mp_value *list = serfrpc_mp_get(body, "Members");
    if (!list || list->type != MP_ARRAY) {
        util_errf(err, errlen, "serf: bad members reply from %s", c->addr);
        goto out;
    }
    struct serf_member *m = calloc(list->v.a.n ? list->v.a.n : 1, sizeof *m);
    if (!m) {
        util_errf(err, errlen, "serf: out of memory");
        goto out;
    }
    for (size_t i = 0; i < list->v.a.n; i++)
        fill_member(&m[i], &list->v.a.items[i]);
    *out = m;
    *n = list->v.a.n;
    rc = 0;
out:
    serfrpc_mp_free(body);
    buf_free(&req);
    return rc;
}

void serfrpc_query_result_free(struct serf_query_result *r)
{
    for (size_t i = 0; i < r->nacks; i++)
        free(r->acks[i]);
    free(r->acks);
    for (size_t i = 0; i < r->nresp; i++) {
        free(r->resp[i].from);
        buf_free(&r->resp[i].payload);
    }
    free(r->resp);
    memset(r, 0, sizeof *r);
}

static bool seen_ack(const struct serf_query_result *r, const char *from)
{
    for (size_t i = 0; i < r->nacks; i++)
        if (strcmp(r->acks[i], from) == 0)
            return true;
    return false;
}

static bool seen_resp(const struct serf_query_result *r, const char *from)
{
    for (size_t i = 0; i < r->nresp; i++)
        if (strcmp(r->resp[i].from, from) == 0)
            return true;
    return false;
}

/* Take one stream record {Type, From, Payload}; 1 when done arrived. An ack
 * or response from no node is dropped: the agent sends such records when the
 * query's channels close at Serf's deadline before its own timer says done
 * (its stream loop reads the closed channels' zero values). */
static int take_record(struct serf_query_result *r, const struct mp_value *rec)
{
    const struct mp_value *type = serfrpc_mp_get(rec, "Type");
    const struct mp_value *pl = serfrpc_mp_get(rec, "Payload");
    if (mp_is_str(type, "done"))
        return 1;
    char *from = mp_dup(serfrpc_mp_get(rec, "From"));
    if (!*from) {
        free(from);
        return 0;
    }
    if (mp_is_str(type, "ack") && !seen_ack(r, from)) {
        r->acks = xrealloc(r->acks, (r->nacks + 1) * sizeof *r->acks);
        r->acks[r->nacks++] = from;
        return 0;
    }
    if (mp_is_str(type, "response") && !seen_resp(r, from)) {
        r->resp = xrealloc(r->resp, (r->nresp + 1) * sizeof *r->resp);
        struct serf_reply *rep = &r->resp[r->nresp++];
        memset(rep, 0, sizeof *rep);
        rep->from = from;
        if (pl && (pl->type == MP_BIN || pl->type == MP_STR))
            buf_add(&rep->payload, pl->v.s.p, pl->v.s.len);
        else
            buf_add(&rep->payload, "", 0);
        return 0;
    }
    free(from); /* a repeat, or a type we do not know */
    return 0;
}

/* Tell the agent to stop streaming seq; best effort, bounded by a short wait. */
static void stop_stream(struct serfrpc *c, uint64_t qseq)
{
    struct buf req = {0};
    char err[256];
    uint64_t seq = put_header(c, &req, "stop");
    serfrpc_mp_map(&req, 1);
    serfrpc_mp_cstr(&req, "Stop");
    serfrpc_mp_uint(&req, qseq);
    int64_t saved = c->deadline, soon = util_mono_ms() + 200;
    if (soon < c->deadline)
        c->deadline = soon;
    if (send_all(c, req.data, req.len, err, sizeof err) == 0) {
        for (;;) { /* skip records still queued for qseq, until the stop reply */
            char text[256];
            uint64_t got;
            struct mp_value *body;
            if (read_header(c, &got, text, sizeof text, err, sizeof err) < 0)
                break;
            if (got == seq)
                break;
            if (got == qseq) {
                if (read_msg(c, &body, err, sizeof err) < 0)
                    break;
                serfrpc_mp_free(body);
            }
        }
    }
    c->deadline = saved;
    buf_free(&req);
}

int serfrpc_query(struct serfrpc *c, const struct serf_query *q, struct serf_query_result *res,
                  char *err, size_t errlen)
{
    struct buf req = {0};
    struct mp_value *rec = NULL;
    char text[512];
    int rc = -1;
    memset(res, 0, sizeof *res);

    uint64_t seq = put_header(c, &req, "query");
    serfrpc_mp_map(&req, 6);
    serfrpc_mp_cstr(&req, "FilterNodes");
    serfrpc_mp_array(&req, (uint32_t)q->nnodes);
    for (size_t i = 0; i < q->nnodes; i++)
        serfrpc_mp_cstr(&req, q->nodes[i]);
    serfrpc_mp_cstr(&req, "FilterTags");
    serfrpc_mp_map(&req, (uint32_t)q->ntags);
    for (size_t i = 0; i < q->ntags; i++) {
        serfrpc_mp_cstr(&req, q->tagk[i]);
        serfrpc_mp_cstr(&req, q->tagv[i]);
    }
    serfrpc_mp_cstr(&req, "RequestAck");
    serfrpc_mp_bool(&req, q->ack);
    serfrpc_mp_cstr(&req, "Timeout");
    serfrpc_mp_int(&req, q->timeout_ms * 1000000); /* nanoseconds */
    serfrpc_mp_cstr(&req, "Name");
    serfrpc_mp_cstr(&req, q->name);
    serfrpc_mp_cstr(&req, "Payload");
    serfrpc_mp_bin(&req, q->payload, q->len);
    if (simple_call(c, &req, seq, err, errlen) < 0)
        goto out;

    for (;;) {
        uint64_t got;
        if (q->expect && res->nresp >= q->expect) {
            stop_stream(c, seq);
            break;
        }
        if (read_header(c, &got, text, sizeof text, err, errlen) < 0) {
            if (util_mono_ms() >= c->deadline) {
                rc = 0; /* our deadline: what arrived is the answer */
                goto out;
            }
            goto out;
        }
        if (got != seq)
            continue; /* not ours; such headers carry no body */
        if (read_msg(c, &rec, err, errlen) < 0)
            goto out;
        size_t before = res->nresp;
        int done = take_record(res, rec);
        serfrpc_mp_free(rec);
        rec = NULL;
        if (done) {
            res->done = true;
            break;
        }
        if (q->on_response && res->nresp > before &&
            q->on_response(q->on_response_ctx, &res->resp[res->nresp - 1])) {
            stop_stream(c, seq);
            break;
        }
    }
    rc = 0;
out:
    serfrpc_mp_free(rec);
    buf_free(&req);
    return rc;
}
