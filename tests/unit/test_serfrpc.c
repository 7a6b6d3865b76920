/* test_serfrpc.c: the msgpack writer and reader against the bytes captured
 * from a real Serf agent (reference/serf.md section 9), refusal of malformed
 * and truncated input, and the client against a scripted fake agent. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "serfhand.h"
#include "t.h"

static bool same(const struct buf *b, const char *want, size_t n)
{
    return b->len == n && memcmp(b->data, want, n) == 0;
}

#define LIT(s) s, sizeof(s) - 1

static void test_writer_capture(void)
{
    struct buf b = {0};
    /* C->S handshake */
    msgpack_map(&b, 2);
    msgpack_cstr(&b, "Command");
    msgpack_cstr(&b, "handshake");
    msgpack_cstr(&b, "Seq");
    msgpack_uint(&b, 0);
    msgpack_map(&b, 1);
    msgpack_cstr(&b, "Version");
    msgpack_uint(&b, 1);
    T_OK(same(&b, LIT("\x82\xa7"
                      "Command"
                      "\xa9"
                      "handshake"
                      "\xa3"
                      "Seq"
                      "\x00"
                      "\x81\xa7"
                      "Version"
                      "\x01")),
         "handshake bytes as captured");
    b.len = 0;
    /* C->S event */
    msgpack_map(&b, 2);
    msgpack_cstr(&b, "Command");
    msgpack_cstr(&b, "event");
    msgpack_cstr(&b, "Seq");
    msgpack_uint(&b, 1);
    msgpack_map(&b, 2);
    msgpack_cstr(&b, "Name");
    msgpack_cstr(&b, "deploy");
    msgpack_cstr(&b, "Payload");
    msgpack_bin(&b, "a\0b", 3);
    T_OK(same(&b, LIT("\x82\xa7"
                      "Command"
                      "\xa5"
                      "event"
                      "\xa3"
                      "Seq"
                      "\x01"
                      "\x82\xa4"
                      "Name"
                      "\xa6"
                      "deploy"
                      "\xa7"
                      "Payload"
                      "\xc4\x03"
                      "a\0b")),
         "event bytes as captured");
    buf_free(&b);
}

static void test_reader_capture(void)
{
    static const char reply[] = "\x82\xa5"
                                "Error"
                                "\xa0\xa3"
                                "Seq"
                                "\x01";
    struct mp_value *v = NULL;
    size_t used = 0;
    char err[128];
    uint64_t seq = 99;
    T_OK(msgpack_decode(reply, sizeof reply - 1, &used, &v, err, sizeof err) == 1,
         "reply header decodes");
    T_OK(used == sizeof reply - 1, "reply header: all bytes used");
    T_OK(v && v->type == MP_MAP && v->v.a.n == 2, "reply header is a 2-map");
    const struct mp_value *e = msgpack_get(v, "Error");
    T_OK(e && e->type == MP_STR && e->v.s.len == 0, "Error is empty str");
    T_OK(msgpack_uint_of(msgpack_get(v, "Seq"), &seq) && seq == 1, "Seq is 1");
    T_OK(msgpack_get(v, "Nope") == NULL, "missing key is NULL");
    msgpack_free(v);

    /* Two messages back to back: the first decode stops at its end. */
    static const char two[] = "\x82\xa5"
                              "Error"
                              "\xa0\xa3"
                              "Seq"
                              "\x00"
                              "\x82\xa5"
                              "Error"
                              "\xa0\xa3"
                              "Seq"
                              "\x01";
    T_OK(msgpack_decode(two, sizeof two - 1, &used, &v, err, sizeof err) == 1 &&
             used == (sizeof two - 1) / 2,
         "back-to-back messages split");
    msgpack_free(v);
}

/* Write every kind of value and read it back. */
static void test_round_trip(void)
{
    static const uint64_t uints[] = {
        0, 1, 127, 128, 255, 256, 65535, 65536, 0xffffffffu, 0x100000000ull, UINT64_MAX};
    static const int64_t ints[] = {
        -1, -32, -33, -128, -129, -32768, -32769, INT32_MIN, (int64_t)INT32_MIN - 1, INT64_MIN, 5};
    static const size_t lens[] = {0, 31, 32, 255, 256, 65535, 65536};
    char err[128];
    struct buf b = {0};
    struct mp_value *v;
    size_t used;

    for (size_t i = 0; i < sizeof uints / sizeof *uints; i++) {
        uint64_t got = 0;
        b.len = 0;
        msgpack_uint(&b, uints[i]);
        T_OK(msgpack_decode(b.data, b.len, &used, &v, err, sizeof err) == 1 && used == b.len &&
                 msgpack_uint_of(v, &got) && got == uints[i],
             "uint round trip");
        msgpack_free(v);
    }
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        b.len = 0;
        msgpack_int(&b, ints[i]);
        int r = msgpack_decode(b.data, b.len, &used, &v, err, sizeof err);
        bool ok = r == 1 && used == b.len &&
                  ((v->type == MP_INT && v->v.i == ints[i]) ||
                   (v->type == MP_UINT && ints[i] >= 0 && v->v.u == (uint64_t)ints[i]));
        T_OK(ok, "int round trip");
        msgpack_free(v);
    }
    char *big = malloc(70000);
    for (size_t i = 0; i < 70000; i++)
        big[i] = (char)(i * 7);
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        b.len = 0;
        msgpack_str(&b, big, lens[i]);
        msgpack_bin(&b, big, lens[i]);
        T_OK(msgpack_decode(b.data, b.len, &used, &v, err, sizeof err) == 1 && v->type == MP_STR &&
                 v->v.s.len == lens[i] && memcmp(v->v.s.p, big, lens[i]) == 0,
             "str round trip");
        size_t first = used;
        msgpack_free(v);
        T_OK(msgpack_decode(b.data + first, b.len - first, &used, &v, err, sizeof err) == 1 &&
                 v->type == MP_BIN && v->v.s.len == lens[i] &&
                 memcmp(v->v.s.p, big, lens[i]) == 0 && first + used == b.len,
             "bin round trip");
        msgpack_free(v);
    }
    free(big);

    /* map16 of 20 pairs, array16 of 300 bools, nil, float skip */
    b.len = 0;
    msgpack_map(&b, 20);
    for (int i = 0; i < 20; i++) {
        char k[8];
        snprintf(k, sizeof k, "k%d", i);
        msgpack_cstr(&b, k);
        msgpack_array(&b, 300);
        for (int j = 0; j < 300; j++)
            msgpack_bool(&b, (i + j) % 2);
    }
    T_OK((uint8_t)b.data[0] == 0xde, "map16 written");
    T_OK(msgpack_decode(b.data, b.len, &used, &v, err, sizeof err) == 1 && used == b.len,
         "map16/array16 decode");
    const struct mp_value *a = msgpack_get(v, "k19");
    T_OK(a && a->type == MP_ARRAY && a->v.a.n == 300 && a->v.a.items[0].type == MP_BOOL &&
             a->v.a.items[0].v.b == true && a->v.a.items[1].v.b == false,
         "array16 contents");
    msgpack_free(v);

    static const char mixed[] = "\x84\xa1"
                                "f"
                                "\xcb\x40\x09\x21\xfb\x54\x44\x2d\x18"
                                "\xa1"
                                "g"
                                "\xca\x3f\x80\x00\x00"
                                "\xa1"
                                "n"
                                "\xc0"
                                "\xa1"
                                "x"
                                "\xd4\x01\x02";
    T_OK(msgpack_decode(mixed, sizeof mixed - 1, &used, &v, err, sizeof err) == 1 &&
             used == sizeof mixed - 1,
         "float64, float32, nil, fixext decode");
    T_OK(msgpack_get(v, "f")->type == MP_FLOAT && msgpack_get(v, "f")->v.f > 3.14 &&
             msgpack_get(v, "g")->v.f == 1.0 && msgpack_get(v, "n")->type == MP_NIL &&
             msgpack_get(v, "x")->type == MP_EXT,
         "float/nil/ext values");
    msgpack_free(v);

    /* Signed widths with positive values as Go may send them. */
    static const char sints[] = "\x94\xd0\x05\xd1\xff\x00\xd2\x00\x01\x00\x00"
                                "\xd3\xff\xff\xff\xff\xff\xff\xff\xfe";
    T_OK(msgpack_decode(sints, sizeof sints - 1, &used, &v, err, sizeof err) == 1 &&
             v->v.a.items[0].v.i == 5 && v->v.a.items[1].v.i == -256 &&
             v->v.a.items[2].v.i == 65536 && v->v.a.items[3].v.i == -2,
         "int8/16/32/64 sign extension");
    msgpack_free(v);
    buf_free(&b);
}

static void test_malformed(void)
{
    char err[128];
    struct mp_value *v = NULL;
    size_t used;
    /* Every strict prefix of a real message is incomplete, never decoded. */
    static const char msg[] = "\x82\xa7"
                              "Command"
                              "\xa5"
                              "event"
                              "\xa3"
                              "Seq"
                              "\x01"
                              "\x82\xa4"
                              "Name"
                              "\xa6"
                              "deploy"
                              "\xa7"
                              "Payload"
                              "\xc4\x03"
                              "a\0b";
    int bad = 0;
    for (size_t n = 0; n < 20; n++) /* the header is 20 bytes */
        if (msgpack_decode(msg, n, &used, &v, err, sizeof err) != 0 || v)
            bad++;
    T_OK(bad == 0, "every truncation of the header is incomplete");
    bad = 0;
    for (size_t n = 20; n < sizeof msg - 1; n++)
        if (msgpack_decode(msg + 20, n - 20, &used, &v, err, sizeof err) != 0 || v)
            bad++;
    T_OK(bad == 0, "every truncation of the body is incomplete");

    T_OK(msgpack_decode("\xc1", 1, &used, &v, err, sizeof err) == -1 && !v, "0xc1 refused");
    T_OK(strstr(err, "0xc1") != NULL, "error names the byte");
    T_OK(msgpack_decode("\x81\xa1k\xc1", 4, &used, &v, err, sizeof err) == -1 && !v,
         "0xc1 inside a map refused");
    /* A huge claimed length waits for bytes instead of allocating. */
    T_OK(msgpack_decode("\xdd\xff\xff\xff\xff\x01", 6, &used, &v, err, sizeof err) == 0,
         "array32 of 4G items: incomplete, no allocation");
    T_OK(msgpack_decode("\xdb\xff\xff\xff\xff"
                        "abc",
                        8, &used, &v, err, sizeof err) == 0,
         "str32 of 4 GiB: incomplete");
    T_OK(msgpack_decode("\xdf\x80\x00\x00\x00", 5, &used, &v, err, sizeof err) == 0,
         "map32 of 2G pairs: incomplete");

    /* Deep nesting refused. */
    char deep[100];
    memset(deep, 0x91, sizeof deep);
    deep[99] = '\x01';
    T_OK(msgpack_decode(deep, sizeof deep, &used, &v, err, sizeof err) == -1 && strstr(err, "deep"),
         "nesting over 32 refused");

    /* Too many values in one message refused. */
    size_t n = 300000;
    char *wide = malloc(n + 5);
    wide[0] = '\xdd';
    wide[1] = 0;
    wide[2] = (char)(n >> 16);
    wide[3] = (char)(n >> 8);
    wide[4] = (char)n;
    memset(wide + 5, 0xc0, n);
    T_OK(msgpack_decode(wide, n + 5, &used, &v, err, sizeof err) == -1, "300000 values refused");
    free(wide);

    /* Random bytes never crash and never claim more than they have. */
    uint32_t x = 12345;
    int overrun = 0;
    char junk[64];
    for (int round = 0; round < 20000; round++) {
        for (size_t i = 0; i < sizeof junk; i++) {
            x = x * 1103515245u + 12345u;
            junk[i] = (char)(x >> 16);
        }
        size_t len = (x >> 8) % sizeof junk;
        used = 0;
        if (msgpack_decode(junk, len, &used, &v, err, sizeof err) == 1) {
            if (used > len)
                overrun++;
            msgpack_free(v);
        }
    }
    T_OK(overrun == 0, "random input: no overrun");
}

/* A one-connection fake agent on an ephemeral port: reads, then writes
 * script (after the handshake reply when handshake is set), then waits
 * (hang) or closes. */
static pid_t fake_agent(int *port, const char *script, size_t len, bool handshake, bool hang)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    socklen_t sl = sizeof sa;
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(s, 1) < 0)
        return -1;
    getsockname(s, (struct sockaddr *)&sa, &sl);
    *port = ntohs(sa.sin_port);
    pid_t pid = fork();
    if (pid == 0) {
        int c = accept(s, NULL, NULL);
        char in[512];
        if (read(c, in, sizeof in) <= 0)
            _exit(0);
        if (handshake) {
            static const char ok[] = "\x82\xa5"
                                     "Error"
                                     "\xa0\xa3"
                                     "Seq"
                                     "\x00";
            (void)!write(c, ok, sizeof ok - 1);
            if (read(c, in, sizeof in) <= 0)
                _exit(0);
        }
        (void)!write(c, script, len);
        if (hang)
            sleep(5);
        _exit(0);
    }
    close(s);
    return pid;
}

static void stop_fake(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Append a reply header with seq (and no body), as the agent writes it. */
static void reply_header(struct buf *b, uint64_t seq, const char *error)
{
    msgpack_map(b, 2);
    msgpack_cstr(b, "Error");
    msgpack_cstr(b, error);
    msgpack_cstr(b, "Seq");
    msgpack_uint(b, seq);
}

/* Append one record of the query stream seq, as the agent writes it. */
static void seq_record(struct buf *b, uint64_t seq, const char *type, const char *from,
                       const char *payload)
{
    reply_header(b, seq, "");
    msgpack_map(b, 3);
    msgpack_cstr(b, "Type");
    msgpack_cstr(b, type);
    msgpack_cstr(b, "From");
    msgpack_cstr(b, from);
    msgpack_cstr(b, "Payload");
    msgpack_bin(b, payload, strlen(payload));
}

/* Append one record of a query stream (seq 1), as the agent writes it. */
static void stream_record(struct buf *b, const char *type, const char *from, const char *payload)
{
    msgpack_map(b, 2);
    msgpack_cstr(b, "Error");
    msgpack_cstr(b, "");
    msgpack_cstr(b, "Seq");
    msgpack_uint(b, 1);
    msgpack_map(b, 3);
    msgpack_cstr(b, "Type");
    msgpack_cstr(b, type);
    msgpack_cstr(b, "From");
    msgpack_cstr(b, from);
    msgpack_cstr(b, "Payload");
    msgpack_bin(b, payload, strlen(payload));
}

/* serfrpc_query_many against a scripted agent: script holds the replies
 * to queries with Seq 1..n (the handshake had 0); res gets n results. */
static int many(const struct buf *script, struct serf_query *qs, size_t n,
                struct serf_query_result *res, char *err, size_t errlen)
{
    struct serfrpc *c = NULL;
    int port, rc = -1;
    char addr[64];
    pid_t pid = fake_agent(&port, script->data, script->len, true, true);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    if (serfrpc_open(&c, addr, NULL, util_mono_ms() + 1000, err, errlen) == 0)
        rc = serfrpc_query_many(c, qs, n, res, err, errlen);
    serfrpc_close(c);
    stop_fake(pid);
    return rc;
}

static void test_query_many(void)
{
    char err[256];
    struct serf_query_result res[2];
    struct serf_query qs[2] = {{.name = "q", .payload = "a", .len = 1},
                               {.name = "q", .payload = "b", .len = 1}};
    struct buf script = {0};

    /* Two streams interleaved, each read into its own result. */
    reply_header(&script, 1, "");
    reply_header(&script, 2, "");
    seq_record(&script, 2, "response", "n1", "B1");
    seq_record(&script, 1, "response", "n1", "A1");
    seq_record(&script, 2, "response", "n2", "B2");
    seq_record(&script, 1, "done", "", "");
    seq_record(&script, 2, "done", "", "");
    T_OK(many(&script, qs, 2, res, err, sizeof err) == 0, "two streams read");
    T_OK(res[0].done && res[0].nresp == 1 && strcmp(res[0].resp[0].from, "n1") == 0 &&
             memcmp(res[0].resp[0].payload.data, "A1", 2) == 0,
         "the first query's answer, apart");
    T_OK(res[1].done && res[1].nresp == 2 && memcmp(res[1].resp[1].payload.data, "B2", 2) == 0,
         "the second query's answers, apart");
    serfrpc_query_result_free(&res[0]);
    serfrpc_query_result_free(&res[1]);

    /* expect ends one query (a stop, Seq 3, whose reply is a header alone);
     * its later records are dropped while the other query goes on. */
    script.len = 0;
    reply_header(&script, 1, "");
    reply_header(&script, 2, "");
    seq_record(&script, 1, "response", "n1", "A1");
    seq_record(&script, 1, "response", "n2", "late");
    reply_header(&script, 3, "");
    seq_record(&script, 2, "response", "n1", "B1");
    seq_record(&script, 2, "done", "", "");
    qs[0].expect = 1;
    T_OK(many(&script, qs, 2, res, err, sizeof err) == 0, "expect on one query");
    T_OK(!res[0].done && res[0].nresp == 1, "the first ended at its first answer");
    T_OK(res[1].done && res[1].nresp == 1, "the second ran to its end");
    serfrpc_query_result_free(&res[0]);
    serfrpc_query_result_free(&res[1]);
    qs[0].expect = 0;

    /* Serf refuses the second query: the call fails with its text. */
    script.len = 0;
    reply_header(&script, 1, "");
    reply_header(&script, 2, "query exceeds limit of 1024 bytes");
    T_OK(many(&script, qs, 2, res, err, sizeof err) == -1, "a refused query fails the call");
    T_STR(err, "serf: query exceeds limit of 1024 bytes", "Serf's text");
    serfrpc_query_result_free(&res[0]);
    serfrpc_query_result_free(&res[1]);

    /* A Seq that is none of ours cannot be framed: refused. */
    script.len = 0;
    reply_header(&script, 1, "");
    reply_header(&script, 2, "");
    seq_record(&script, 9, "response", "n1", "x");
    T_OK(many(&script, qs, 2, res, err, sizeof err) == -1 && strstr(err, "unknown Seq 9"),
         "an unknown Seq refused");
    serfrpc_query_result_free(&res[0]);
    serfrpc_query_result_free(&res[1]);
    buf_free(&script);
}

static void test_client(void)
{
    char err[256];
    struct serfrpc *c = NULL;
    int port;
    char addr[64];
    pid_t pid;

    /* Nothing listens: port 7469 is ours and unused by this test. */
    T_OK(serfrpc_open(&c, "127.0.0.1:7469", NULL, util_mono_ms() + 1000, err, sizeof err) == -1,
         "agent down fails");
    T_STR(err, "serf: cannot connect to 127.0.0.1:7469: Connection refused", "agent down text");
    T_OK(serfrpc_open(&c, "127.0.0.1", NULL, util_mono_ms() + 1000, err, sizeof err) == -1 &&
             strstr(err, "bad RPC address"),
         "address without port refused");
    T_OK(serfrpc_open(&c, ":7373", NULL, util_mono_ms() + 1000, err, sizeof err) == -1,
         "address without host refused");

    /* Handshake answered with Serf's error text. */
    static const char hserr[] = "\x82\xa5"
                                "Error"
                                "\xb2"
                                "Handshake required"
                                "\xa3"
                                "Seq"
                                "\x00";
    pid = fake_agent(&port, hserr, sizeof hserr - 1, false, true);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    T_OK(serfrpc_open(&c, addr, NULL, util_mono_ms() + 2000, err, sizeof err) == -1,
         "handshake error");
    T_STR(err, "serf: Handshake required", "handshake error text");
    stop_fake(pid);

    /* Auth refused. */
    static const char autherr[] = "\x82\xa5"
                                  "Error"
                                  "\xbc"
                                  "Invalid authentication token"
                                  "\xa3"
                                  "Seq"
                                  "\x01";
    pid = fake_agent(&port, autherr, sizeof autherr - 1, true, true);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    T_OK(serfrpc_open(&c, addr, "wrong", util_mono_ms() + 2000, err, sizeof err) == -1,
         "wrong token fails");
    T_STR(err, "serf: Invalid authentication token", "wrong token text");
    stop_fake(pid);

    /* Garbage after the handshake. */
    pid = fake_agent(&port, "\xc1\xc1", 2, true, true);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    T_OK(serfrpc_open(&c, addr, "tok", util_mono_ms() + 2000, err, sizeof err) == -1 &&
             strstr(err, "bad reply"),
         "garbage reply refused");
    stop_fake(pid);

    /* A truncated reply, then silence: the deadline ends the wait. */
    pid = fake_agent(&port,
                     "\x82\xa5"
                     "Err",
                     5, true, true);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    int64_t t0 = util_mono_ms();
    T_OK(serfrpc_open(&c, addr, "tok", t0 + 300, err, sizeof err) == -1 && strstr(err, "timed out"),
         "truncated reply times out");
    int64_t took = util_mono_ms() - t0;
    T_OK(took >= 250 && took < 1500, "timeout bounded by the deadline");
    stop_fake(pid);

    /* A query stream with an ack and a response from no node, as the agent
     * sends when Serf closes the query's channels before its own timer ends
     * the stream: dropped; the real ack and response count once each. */
    struct buf script = {0};
    msgpack_map(&script, 2); /* the query's own reply */
    msgpack_cstr(&script, "Error");
    msgpack_cstr(&script, "");
    msgpack_cstr(&script, "Seq");
    msgpack_uint(&script, 1);
    stream_record(&script, "ack", "n1", "");
    stream_record(&script, "ack", "", "");
    stream_record(&script, "response", "", "");
    stream_record(&script, "response", "n1", "x");
    stream_record(&script, "ack", "", "");
    stream_record(&script, "done", "", "");
    pid = fake_agent(&port, script.data, script.len, true, true);
    buf_free(&script);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    T_OK(serfrpc_open(&c, addr, NULL, util_mono_ms() + 2000, err, sizeof err) == 0,
         "open for a query");
    if (c) {
        struct serf_query q = {.name = "q", .payload = "", .ack = true};
        struct serf_query_result res;
        T_OK(serfrpc_query(c, &q, &res, err, sizeof err) == 0, "query stream read");
        T_OK(res.done, "done arrived");
        T_OK(res.nacks == 1 && strcmp(res.acks[0], "n1") == 0, "one ack, from n1");
        T_OK(res.nresp == 1 && strcmp(res.resp[0].from, "n1") == 0 && res.resp[0].payload.len == 1,
             "one response, from n1");
        serfrpc_query_result_free(&res);
        serfrpc_close(c);
        c = NULL;
    }
    stop_fake(pid);

    /* Connection closed mid-reply. */
    pid = fake_agent(&port, "\x82\xa5", 2, true, false);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    T_OK(serfrpc_open(&c, addr, "tok", util_mono_ms() + 2000, err, sizeof err) == -1 &&
             strstr(err, "closed the connection"),
         "closed mid-reply");
    stop_fake(pid);
}

/* A memory budget as the sandbox keeps one: used never passes max. */
struct budget {
    size_t used, max, refused;
};

static int budget_charge(void *ctx, size_t n)
{
    struct budget *b = ctx;
    if (n > b->max - b->used) {
        b->refused++;
        return -1;
    }
    b->used += n;
    return 0;
}

static void budget_release(void *ctx, size_t n)
{
    struct budget *b = ctx;
    b->used -= n < b->used ? n : b->used;
}

/* One query against a scripted agent, its results charged to b; after it
 * the result is freed, its held bytes released and the connection closed. */
static int query_budget(const struct buf *script, struct budget *b, struct serf_query_result *res,
                        char *err, size_t errlen)
{
    struct serfrpc *c = NULL;
    struct serf_query q = {.name = "q", .payload = "a", .len = 1};
    int port, rc = -1;
    char addr[64];
    pid_t pid = fake_agent(&port, script->data, script->len, true, true);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    if (serfrpc_open(&c, addr, NULL, util_mono_ms() + 2000, err, errlen) == 0) {
        serfrpc_set_budget(c, budget_charge, budget_release, b);
        rc = serfrpc_query(c, &q, res, err, errlen);
    }
    serfrpc_close(c);
    stop_fake(pid);
    return rc;
}

static void test_budget(void)
{
    char err[256], name[32], msg[160];
    struct serf_query_result res;
    struct buf script = {0};
    struct budget b = {.max = 1 << 20};
    char *big = xmalloc(200001);
    memset(big, 'x', 200000);
    big[200000] = '\0';

    /* Three answers fit: what the result keeps is charged, and given back. */
    reply_header(&script, 1, "");
    stream_record(&script, "ack", "n1", "");
    stream_record(&script, "response", "n1", "A1");
    stream_record(&script, "response", "n2", "A2");
    stream_record(&script, "response", "n3", big);
    stream_record(&script, "done", "", "");
    T_OK(query_budget(&script, &b, &res, err, sizeof err) == 0 && res.nresp == 3,
         "answers within the budget");
    snprintf(msg, sizeof msg,
             "the result's bytes are charged (%zu), and after the close only they (%zu)", res.held,
             b.used);
    T_OK(res.held >= 200000 + 4 && res.held < 200000 + 200 && b.used == res.held, msg);
    budget_release(&b, res.held);
    serfrpc_query_result_free(&res);

    /* A hostile member answers under 400 names, 4000 bytes each (Serf keeps
     * the first answer per name, and the name is the sender's word): the
     * query ends at the budget, which is never passed. */
    script.len = 0;
    memset(big, 'y', 4000);
    big[4000] = '\0';
    reply_header(&script, 1, "");
    for (int i = 0; i < 400; i++) {
        snprintf(name, sizeof name, "fake-%d", i);
        stream_record(&script, "response", name, big);
    }
    stream_record(&script, "done", "", "");
    b = (struct budget){.max = 256 << 10};
    T_OK(query_budget(&script, &b, &res, err, sizeof err) == SERFRPC_NO_MEMORY,
         "answers past the budget: refused");
    T_STR(err, "the answers to q", "says what did not fit");
    snprintf(msg, sizeof msg, "the budget held (%zu of %zu, %zu answers kept, %zu held)", b.used,
             b.max, res.nresp, res.held);
    T_OK(b.refused == 1 && b.used <= b.max && res.nresp > 20 && res.nresp < 70 &&
             b.used == res.held,
         msg);
    budget_release(&b, res.held);
    serfrpc_query_result_free(&res);

    /* One reply longer than the budget: the receive buffer stops at it. */
    script.len = 0;
    memset(big, 'z', 200000);
    reply_header(&script, 1, "");
    stream_record(&script, "response", "n1", big);
    b = (struct budget){.max = 64 << 10};
    T_OK(query_budget(&script, &b, &res, err, sizeof err) == SERFRPC_NO_MEMORY && res.nresp == 0,
         "a reply past the budget: refused");
    T_OK(strncmp(err, "the reply (over ", 16) == 0, err);
    T_OK(b.used == 0, "closed: nothing stays charged");
    serfrpc_query_result_free(&res);

    /* Answers that keep coming (200000 names, each checked against those
     * before it) end at the call's deadline, not when they stop: the caller
     * keeps the time it reserved. */
    script.len = 0;
    reply_header(&script, 1, "");
    for (int i = 0; i < 200000; i++) {
        snprintf(name, sizeof name, "f%d", i);
        stream_record(&script, "response", name, "");
    }
    b = (struct budget){.max = (size_t)1 << 30};
    int64_t t0 = util_mono_ms();
    int rc = query_budget(&script, &b, &res, err, sizeof err);
    int64_t ms = util_mono_ms() - t0;
    snprintf(msg, sizeof msg,
             "a flood ends at the deadline: rc %d, %zu answers, %lld ms (2000 allowed)", rc,
             res.nresp, (long long)ms);
    T_OK(rc == 0 && res.nresp > 0 && res.nresp < 200000 && ms < 2600, msg);
    budget_release(&b, res.held);
    serfrpc_query_result_free(&res);

    /* A request is held while it is sent: an event's payload that the
     * budget cannot hold is not sent. */
    struct serfrpc *c = NULL;
    int port;
    char addr[64];
    pid_t pid = fake_agent(&port, "", 0, true, true);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    b = (struct budget){.max = 128 << 10};
    T_OK(serfrpc_open(&c, addr, NULL, util_mono_ms() + 2000, err, sizeof err) == 0, "connected");
    serfrpc_set_budget(c, budget_charge, budget_release, &b);
    T_OK(serfrpc_event(c, "e", big, 200000, false, err, sizeof err) == SERFRPC_NO_MEMORY,
         "an event past the budget: refused");
    T_STR(err, "the request (200267 bytes)",
          "says what did not fit (the payload and at most 267 bytes of framing)");
    T_OK(b.used == 0, "nothing stays charged");
    serfrpc_close(c);
    stop_fake(pid);
    free(big);
    buf_free(&script);
}

/* An agent that stops reading: a request cut short at the deadline leaves
 * it mid-message, so the connection takes no more requests. */
static void test_cut_short(void)
{
    char err[256];
    struct serfrpc *c = NULL;
    int port;
    char addr[64];
    size_t len = 64 << 20; /* more than the socket buffers hold */
    char *payload = xmalloc(len);
    memset(payload, 'p', len);
    pid_t pid = fake_agent(&port, "", 0, true, true);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    T_OK(serfrpc_open(&c, addr, NULL, util_mono_ms() + 2000, err, sizeof err) == 0, "connected");
    serfrpc_set_deadline(c, util_mono_ms() + 300);
    T_OK(serfrpc_event(c, "e", payload, len, false, err, sizeof err) == -1 &&
             strstr(err, "timed out sending to"),
         err);
    serfrpc_set_deadline(c, util_mono_ms() + 2000);
    int64_t t0 = util_mono_ms();
    T_OK(serfrpc_event(c, "e", "x", 1, false, err, sizeof err) == -1 && strstr(err, "cut short") &&
             util_mono_ms() - t0 < 100,
         err);
    serfrpc_close(c);
    stop_fake(pid);
    free(payload);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_writer_capture();
    test_reader_capture();
    test_round_trip();
    test_malformed();
    test_client();
    test_query_many();
    test_budget();
    test_cut_short();
    return t_done();
}
