/*
 * serfrpc.c: a native client for the Serf agent's msgpack RPC over TCP
 * (handshake, auth, event, members, query with streamed acks and responses,
 * stop), over msgpack.c. Used by lserf.c, `status` and `announce`.
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

#define RPC_MAX_MESSAGE (1 << 20) /* bytes buffered for one message */

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
    /* The memory budget (serfrpc_set_budget), NULL for none: in_held bytes
     * of in's capacity are charged to it. */
    int (*charge)(void *ctx, size_t n);
    void (*release)(void *ctx, size_t n);
    void *budget_ctx;
    size_t in_held;
    bool broken; /* a request went out in part: nothing more may follow it */
};

/* Charge n more bytes to c's budget: 0 when they fit (or there is none). */
static int charge(struct serfrpc *c, size_t n)
{
    return c->charge && n ? c->charge(c->budget_ctx, n) : 0;
}

static void release(struct serfrpc *c, size_t n)
{
    if (c->release && n)
        c->release(c->budget_ctx, n);
}

/* A request (the caller's payloads, names and filters copied into it) is
 * held until it is sent: at most bound bytes, charged before req is made
 * that large (its capacity is then exactly that), or SERFRPC_NO_MEMORY. */
static int charge_request(struct serfrpc *c, struct buf *req, size_t bound, char *err,
                          size_t errlen)
{
    if (charge(c, bound + 1) < 0) {
        util_errf(err, errlen, "the request (%zu bytes)", bound);
        return SERFRPC_NO_MEMORY;
    }
    buf_reserve(req, bound);
    return 0;
}

/* What a request takes at most: its fixed keys and headers, and each
 * string with the longest msgpack header (5 bytes). */
#define REQUEST_FRAMING 256
static size_t str_bound(const char *s)
{
    return strlen(s) + 5;
}

static size_t query_bound(const struct serf_query *q, const char *const *nodes, size_t nnodes)
{
    size_t n = REQUEST_FRAMING + str_bound(q->name) + q->len + 5;
    for (size_t i = 0; i < nnodes; i++)
        n += str_bound(nodes[i]);
    for (size_t i = 0; i < q->ntags; i++)
        n += str_bound(q->tagk[i]) + str_bound(q->tagv[i]);
    return n;
}

void serfrpc_set_budget(struct serfrpc *c, int (*charge_fn)(void *ctx, size_t n),
                        void (*release_fn)(void *ctx, size_t n), void *ctx)
{
    c->charge = charge_fn;
    c->release = release_fn;
    c->budget_ctx = ctx;
    c->in_held = 0;
}

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

/* Send n bytes. A request cut short (the deadline, a dead connection)
 * leaves the agent mid-message: the connection takes no more requests. */
static int send_all(struct serfrpc *c, const void *p, size_t n, char *err, size_t errlen)
{
    const char *s = p;
    if (c->broken) {
        util_errf(err, errlen, "serf: %s: an earlier request was cut short", c->addr);
        return -1;
    }
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
                c->broken = s != p;
                return -1;
            }
            if (r > 0)
                continue;
        }
        util_errf(err, errlen, "serf: sending to %s: %s", c->addr, strerror(errno));
        c->broken = s != p;
        return -1;
    }
    return 0;
}

/* Read the next message. *out points into c->in and stays valid until the
 * next read_msg; free it with msgpack_free. */
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
            c->in.len ? msgpack_decode(c->in.data, c->in.len, &used, out, derr, sizeof derr) : 0;
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
        if (util_mono_ms() >= c->deadline) { /* also while bytes trickle in */
            timed_out(c, err, errlen, "waiting for");
            return -1;
        }
        char chunk[16384];
        ssize_t n = recv(c->fd, chunk, sizeof chunk, 0);
        if (n > 0) {
            buf_add(&c->in, chunk, (size_t)n);
            if (c->in.cap > c->in_held) { /* grown: charge the new capacity */
                if (charge(c, c->in.cap - c->in_held) < 0) {
                    util_errf(err, errlen, "the reply (over %zu bytes)", c->in.len);
                    return SERFRPC_NO_MEMORY;
                }
                c->in_held = c->in.cap;
            }
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
    int r = read_msg(c, &h, err, errlen);
    if (r < 0)
        return r;
    const struct mp_value *e = msgpack_get(h, "Error");
    if (!msgpack_uint_of(msgpack_get(h, "Seq"), seq) ||
        (e && e->type != MP_STR && e->type != MP_NIL)) {
        msgpack_free(h);
        util_errf(err, errlen, "serf: bad reply header from %s", c->addr);
        return -1;
    }
    errtext[0] = '\0';
    if (e && e->type == MP_STR)
        snprintf(errtext, textlen, "%.*s", (int)(e->v.s.len > 400 ? 400 : e->v.s.len), e->v.s.p);
    msgpack_free(h);
    return 0;
}

/* Append a request header {"Command", "Seq"} with the next Seq. */
static uint64_t put_header(struct serfrpc *c, struct buf *b, const char *cmd)
{
    uint64_t seq = c->seq++;
    msgpack_map(b, 2);
    msgpack_cstr(b, "Command");
    msgpack_cstr(b, cmd);
    msgpack_cstr(b, "Seq");
    msgpack_uint(b, seq);
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
        int r = read_header(c, &got, text, sizeof text, err, errlen);
        if (r < 0)
            return r;
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

void serfrpc_endpoint(const struct config *cfg, const char **addr, const char **token)
{
    *addr = cfg ? config_str(cfg, "serf.rpc_addr") : NULL;
    *token = cfg ? config_str(cfg, "serf.rpc_auth") : NULL;
    if (!*addr || !**addr)
        *addr = getenv("SERF_RPC_ADDR");
    if (!*addr || !**addr)
        *addr = "127.0.0.1:7373";
    if (!*token || !**token)
        *token = getenv("SERF_RPC_AUTH");
}

void serfrpc_close(struct serfrpc *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    buf_free(&c->in);
    if (c->release && c->in_held)
        c->release(c->budget_ctx, c->in_held);
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
    msgpack_map(&req, 1);
    msgpack_cstr(&req, "Version");
    msgpack_uint(&req, 1);
    if (simple_call(c, &req, seq, err, errlen) < 0)
        goto out;

    if (token && *token) {
        req.len = 0;
        seq = put_header(c, &req, "auth");
        msgpack_map(&req, 1);
        msgpack_cstr(&req, "AuthKey");
        msgpack_cstr(&req, token);
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
    size_t bound = REQUEST_FRAMING + str_bound(name) + len + 5;
    int rc = charge_request(c, &req, bound, err, errlen);
    if (rc < 0)
        return rc;
    uint64_t seq = put_header(c, &req, "event");
    msgpack_map(&req, 3);
    msgpack_cstr(&req, "Name");
    msgpack_cstr(&req, name);
    msgpack_cstr(&req, "Payload");
    msgpack_bin(&req, payload, len);
    msgpack_cstr(&req, "Coalesce");
    msgpack_bool(&req, coalesce);
    rc = simple_call(c, &req, seq, err, errlen);
    buf_free(&req);
    release(c, bound + 1);
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

size_t serfrpc_members_size(const struct serf_member *m, size_t n)
{
    size_t sz = n * sizeof *m;
    for (size_t i = 0; i < n; i++) {
        sz += strlen(m[i].name) + strlen(m[i].status) + 2 + m[i].ntags * 2 * sizeof(char *);
        for (size_t k = 0; k < m[i].ntags; k++)
            sz += strlen(m[i].tagk[k]) + strlen(m[i].tagv[k]) + 2;
    }
    return sz;
}

static void fill_member(struct serf_member *m, const struct mp_value *v)
{
    const struct mp_value *a = msgpack_get(v, "Addr");
    const struct mp_value *t = msgpack_get(v, "Tags");
    uint64_t port = 0;
    m->name = mp_dup(msgpack_get(v, "Name"));
    m->status = mp_dup(msgpack_get(v, "Status"));
    msgpack_uint_of(msgpack_get(v, "Port"), &port);
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
    if ((rc = simple_call(c, &req, seq, err, errlen)) < 0 ||
        (rc = read_msg(c, &body, err, errlen)) < 0)
        goto out;
    rc = -1;
    const struct mp_value *list = msgpack_get(body, "Members");
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
    msgpack_free(body);
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

/* Take one stream record {Type, From, Payload}; 1 when done arrived,
 * SERFRPC_NO_MEMORY when keeping it would pass c's budget (what is kept
 * stays charged: r->held). An ack or response from no node is dropped: the
 * agent sends such records when the query's channels close at Serf's
 * deadline before its own timer says done (its stream loop reads the
 * closed channels' zero values). */
static int take_record(struct serfrpc *c, struct serf_query_result *r, const struct mp_value *rec)
{
    const struct mp_value *type = msgpack_get(rec, "Type");
    const struct mp_value *pl = msgpack_get(rec, "Payload");
    if (mp_is_str(type, "done"))
        return 1;
    char *from = mp_dup(msgpack_get(rec, "From"));
    if (!*from) {
        free(from);
        return 0;
    }
    /* A name and its slot in the array; a response's payload on top. The
     * arrays grow by one slot: what they hold is what is charged. */
    size_t n = strlen(from) + 1;
    if (mp_is_str(type, "ack") && !seen_ack(r, from)) {
        if (charge(c, n + sizeof *r->acks) < 0)
            goto no_memory;
        r->held += n + sizeof *r->acks;
        r->acks = xrealloc(r->acks, (r->nacks + 1) * sizeof *r->acks);
        r->acks[r->nacks++] = from;
        return 0;
    }
    if (mp_is_str(type, "response") && !seen_resp(r, from)) {
        bool bytes = pl && (pl->type == MP_BIN || pl->type == MP_STR);
        size_t len = bytes ? pl->v.s.len : 0;
        if (charge(c, n + sizeof *r->resp + len + 1) < 0)
            goto no_memory;
        r->held += n + sizeof *r->resp + len + 1;
        r->resp = xrealloc(r->resp, (r->nresp + 1) * sizeof *r->resp);
        struct serf_reply *rep = &r->resp[r->nresp++];
        memset(rep, 0, sizeof *rep);
        rep->from = from;
        rep->payload.data = xmalloc(len + 1); /* exactly what was charged */
        rep->payload.cap = len + 1;
        if (len)
            memcpy(rep->payload.data, pl->v.s.p, len);
        rep->payload.data[len] = '\0';
        rep->payload.len = len;
        return 0;
    }
    free(from); /* a repeat, or a type we do not know */
    return 0;
no_memory:
    free(from);
    return SERFRPC_NO_MEMORY;
}

/* Ask the agent to stop streaming qseq; returns the stop request's own Seq,
 * whose reply (a header alone) comes later, or 0 when sending failed. Best
 * effort: the records of qseq already queued still arrive and are dropped. */
static uint64_t send_stop(struct serfrpc *c, uint64_t qseq)
{
    struct buf req = {0};
    char err[256];
    uint64_t seq = put_header(c, &req, "stop");
    msgpack_map(&req, 1);
    msgpack_cstr(&req, "Stop");
    msgpack_uint(&req, qseq);
    int r = send_all(c, req.data, req.len, err, sizeof err);
    buf_free(&req);
    return r == 0 ? seq : 0;
}

static void put_query(struct serfrpc *c, struct buf *req, const struct serf_query *q, uint64_t *seq)
{
    *seq = put_header(c, req, "query");
    msgpack_map(req, 7);
    msgpack_cstr(req, "RelayFactor");
    msgpack_uint(req, q->relay_factor);
    msgpack_cstr(req, "FilterNodes");
    msgpack_array(req, (uint32_t)q->nnodes);
    for (size_t i = 0; i < q->nnodes; i++)
        msgpack_cstr(req, q->nodes[i]);
    msgpack_cstr(req, "FilterTags");
    msgpack_map(req, (uint32_t)q->ntags);
    for (size_t i = 0; i < q->ntags; i++) {
        msgpack_cstr(req, q->tagk[i]);
        msgpack_cstr(req, q->tagv[i]);
    }
    msgpack_cstr(req, "RequestAck");
    msgpack_bool(req, q->ack);
    msgpack_cstr(req, "Timeout");
    msgpack_int(req, q->timeout_ms * 1000000); /* nanoseconds */
    msgpack_cstr(req, "Name");
    msgpack_cstr(req, q->name);
    msgpack_cstr(req, "Payload");
    msgpack_bin(req, q->payload, q->len);
}

/* Where one of several queries on a connection stands. The agent answers
 * each query's Seq first with a header alone (accepted or Serf's error),
 * then streams header + record pairs with the same Seq; a stop request's
 * reply is a header alone with the stop's own Seq. */
struct qstate {
    uint64_t seq, stop_seq; /* stop_seq: a stop sent and not yet answered */
    bool started;           /* the first header (accepted) arrived */
    bool finished;          /* done, expect reached, or on_response said stop */
};

/* A retry of query `of`, a query of its own for Serf (with its own Seq and
 * stream, never stopped: the connection closes after the call). Its records
 * join query `of`'s result; its done ends nothing. */
struct retry {
    uint64_t seq;
    size_t of;
    bool started;
};

/* Finish query i here: ask the agent to stop its stream unless it is done. */
static void finish_query(struct serfrpc *c, struct qstate *st, bool stop)
{
    st->finished = true;
    if (stop)
        st->stop_seq = send_stop(c, st->seq);
}

/* The nodes of q->retry_nodes with neither an ack nor an answer in r, into
 * out (room for q->nretry_nodes), at most q->retry_max of them when set;
 * their number. */
static size_t unheard(const struct serf_query *q, const struct serf_query_result *r,
                      const char **out)
{
    size_t n = 0;
    for (size_t k = 0; k < q->nretry_nodes && (!q->retry_max || n < q->retry_max); k++)
        if (!seen_ack(r, q->retry_nodes[k]) && !seen_resp(r, q->retry_nodes[k]))
            out[n++] = q->retry_nodes[k];
    return n;
}

/* Send query i again to the nodes that have not been heard from, for what is
 * left of its timeout (none when less than 200 ms is). Best effort: a retry
 * that cannot be sent is no error of the query's. */
static void send_retries(struct serfrpc *c, const struct serf_query *qs, size_t n,
                         const struct qstate *st, const struct serf_query_result *res, int64_t t0,
                         struct retry *rs, size_t *nrs)
{
    int64_t elapsed = util_mono_ms() - t0;
    for (size_t i = 0; i < n; i++) {
        const struct serf_query *q = &qs[i];
        if (st[i].finished || !st[i].started || !q->nretry_nodes || *nrs >= n * SERF_MAX_RETRIES)
            continue;
        int64_t left = (q->timeout_ms ? q->timeout_ms : 0) - elapsed;
        if (q->timeout_ms && left < 200)
            continue;
        const char **who = xmalloc(q->nretry_nodes * sizeof *who);
        struct serf_query again = *q;
        again.nodes = who;
        again.nnodes = unheard(q, &res[i], who);
        again.ntags = 0;
        again.ack = true;
        again.timeout_ms = q->timeout_ms ? left : 0;
        /* a retry that the memory cannot hold is not sent: the query
         * goes on with what gossip brings */
        struct buf req = {0};
        char err[256];
        size_t bound = query_bound(&again, again.nodes, again.nnodes);
        if (again.nnodes > 0 && charge_request(c, &req, bound, err, sizeof err) == 0) {
            put_query(c, &req, &again, &rs[*nrs].seq);
            if (send_all(c, req.data, req.len, err, sizeof err) == 0) {
                rs[*nrs].of = i;
                rs[*nrs].started = false;
                (*nrs)++;
            }
            buf_free(&req);
            release(c, bound + 1);
        }
        free(who);
    }
}

/* Wait until a reply can be read or the next retry is due (then send the
 * retries and schedule the next): true when it is time to read. */
static bool await_reply(struct serfrpc *c, const struct serf_query *qs, size_t n,
                        const struct qstate *st, const struct serf_query_result *res, int64_t t0,
                        int64_t every, int *rounds, struct retry *rs, size_t *nrs)
{
    if (every <= 0 || *rounds >= SERF_MAX_RETRIES)
        return true;
    if (c->in.len > c->off) /* a reply (or part of one) is already here */
        return true;
    int64_t due = t0 + every * ((2LL << *rounds) - 1); /* 1, 3, 7 x every */
    if (due >= c->deadline)
        return true;
    if (wait_fd(c->fd, POLLIN, due) != 0)
        return true;
    send_retries(c, qs, n, st, res, t0, rs, nrs);
    (*rounds)++;
    return false;
}

int serfrpc_query_many(struct serfrpc *c, const struct serf_query *qs, size_t n,
                       struct serf_query_result *res, char *err, size_t errlen)
{
    struct buf req = {0};
    struct mp_value *rec = NULL;
    struct qstate *st = xmalloc((n ? n : 1) * sizeof *st);
    struct retry *rs = xmalloc((n ? n : 1) * SERF_MAX_RETRIES * sizeof *rs);
    size_t nrs = 0;
    int rounds = 0;
    int64_t every = 0, t0 = util_mono_ms();
    char text[512];
    size_t started = 0, open = n;
    int rc = -1;
    memset(res, 0, n * sizeof *res);
    memset(st, 0, (n ? n : 1) * sizeof *st);

    /* All requests in one write: the agent starts each query as it reads it,
     * so their gossip overlaps instead of waiting for each other. */
    size_t bound = 0;
    for (size_t i = 0; i < n; i++)
        bound += query_bound(&qs[i], qs[i].nodes, qs[i].nnodes);
    if ((rc = charge_request(c, &req, bound, err, errlen)) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        struct serf_query q = qs[i];
        if (q.nretry_nodes && q.retry_ms > 0) {
            q.ack = true; /* an ack says the node has the query: no retry */
            every = every && every < q.retry_ms ? every : q.retry_ms;
        }
        put_query(c, &req, &q, &st[i].seq);
    }
    rc = send_all(c, req.data, req.len, err, errlen);
    buf_free(&req); /* sent: not held while the answers come */
    release(c, bound + 1);
    if (rc < 0)
        goto out;
    rc = -1;

    while (open > 0) {
        uint64_t got;
        for (size_t i = 0; i < n; i++) /* expect reached: no need to read on */
            if (!st[i].finished && qs[i].expect && res[i].nresp >= qs[i].expect) {
                finish_query(c, &st[i], true);
                open--;
            }
        if (open == 0)
            break;
        if (util_mono_ms() >= c->deadline) { /* also while records keep coming */
            if (started == n)
                rc = 0; /* what arrived is the answer */
            else
                timed_out(c, err, errlen, "waiting for");
            goto out;
        }
        if (!await_reply(c, qs, n, st, res, t0, every, &rounds, rs, &nrs))
            continue;
        int hr = read_header(c, &got, text, sizeof text, err, errlen);
        if (hr < 0) {
            /* our deadline, once every query was accepted: what arrived is
             * the answer */
            if (hr == SERFRPC_NO_MEMORY)
                rc = hr;
            else if (started == n && util_mono_ms() >= c->deadline)
                rc = 0;
            goto out;
        }
        size_t i = 0, k = 0;
        while (i < n && st[i].seq != got && st[i].stop_seq != got)
            i++;
        while (i == n && k < nrs && rs[k].seq != got)
            k++;
        if (i == n && k == nrs) {
            util_errf(err, errlen, "serf: reply from %s with an unknown Seq %llu", c->addr,
                      (unsigned long long)got);
            goto out;
        }
        struct retry *retry = i == n ? &rs[k] : NULL;
        if (retry) {
            i = retry->of;
            if (!retry->started) { /* accepted, or refused: either way no error of ours */
                retry->started = true;
                continue;
            }
        } else if (st[i].stop_seq == got && st[i].seq != got) {
            st[i].stop_seq = 0; /* the stop's reply: a header alone */
            continue;
        } else if (!st[i].started) {
            st[i].started = true;
            started++;
            if (text[0]) { /* refused, e.g. over Serf's size limit */
                util_errf(err, errlen, "serf: %s", text);
                goto out;
            }
            continue;
        }
        if ((rc = read_msg(c, &rec, err, errlen)) < 0)
            goto out;
        rc = -1;
        if (st[i].finished) { /* queued before our stop */
            msgpack_free(rec);
            rec = NULL;
            continue;
        }
        struct serf_query_result *r = &res[i];
        size_t before = r->nresp;
        int done = take_record(c, r, rec);
        msgpack_free(rec);
        rec = NULL;
        if (done == SERFRPC_NO_MEMORY) {
            util_errf(err, errlen, "the answers to %s", qs[i].name);
            rc = done;
            goto out;
        }
        if (done && !retry) {
            r->done = true;
            finish_query(c, &st[i], false);
            open--;
        } else if (qs[i].on_response && r->nresp > before) {
            enum serf_next next = qs[i].on_response(qs[i].on_response_ctx, &r->resp[r->nresp - 1]);
            if (next == SERF_ABORT)
                break; /* the caller gives up on every query: no stop needed */
            if (next == SERF_STOP) {
                finish_query(c, &st[i], true);
                open--;
            }
        }
    }
    rc = 0;
out:
    msgpack_free(rec);
    buf_free(&req);
    free(st);
    free(rs);
    return rc;
}

int serfrpc_query(struct serfrpc *c, const struct serf_query *q, struct serf_query_result *res,
                  char *err, size_t errlen)
{
    return serfrpc_query_many(c, q, 1, res, err, errlen);
}
