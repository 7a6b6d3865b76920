/* test_update.c: the signed serfhand-update pointer of update.c: a round
 * trip, the size budget, tampering, untrusted keys and every malformed body
 * (each signed properly, so only the parser can refuse it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "serfhand.h"
#include "t.h"

#define HASH "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

/* A payload carrying body, correctly signed by sk. */
static void signed_payload(const struct minisign_seckey *sk, const char *body, struct buf *out)
{
    struct buf msg = {0}, text = {0};
    struct minisign_sig s;
    char err[300], b64[200];
    unsigned char raw[136];
    buf_printf(&msg, "%s%s", UPDATE_SIG_CONTEXT, body);
    minisign_sign(sk, msg.data, msg.len, body, "t", &text, err, sizeof err);
    minisign_sig_parse(&s, text.data, text.len, err, sizeof err);
    memcpy(raw, s.keyid, 8);
    memcpy(raw + 8, s.sig, 64);
    memcpy(raw + 72, s.global, 64);
    sodium_bin2base64(b64, sizeof b64, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    out->len = 0;
    buf_printf(out, "%s.%s", b64, body);
    minisign_sig_free(&s);
    buf_free(&msg);
    buf_free(&text);
}

/* update.sources: a URL is under a prefix only at a path boundary, never by
 * a dot segment, an encoded separator, a query or userinfo; https unless
 * allow_http. */
static void test_sources(void)
{
    static char s1[] = "https://updates.example.org/factom", s2[] = "http://10.0.0.5:8080/b/";
    char *src[] = {s1, s2};
    char err[300];
    struct {
        const char *url;
        bool http, ok;
    } c[] = {
        {"https://updates.example.org/factom", false, true},
        {"https://updates.example.org/factom/v42", false, true},
        {"https://updates.example.org/factom-evil", false, false},
        {"https://updates.example.org/factomx/v42", false, false},
        {"https://updates.example.org.evil.net/factom", false, false},
        {"https://updates.example.org@evil.net/factom", false, false},
        {"https://updates.example.org:444/factom", false, false},
        {"https://updates.example.org/factom/../other", false, false},
        {"https://updates.example.org/factom/..", false, false},
        {"https://updates.example.org/factom/./x", false, false},
        {"https://updates.example.org/factom/%2e%2e/other", false, false},
        {"https://updates.example.org/factom/%2F..%2Fother", false, false},
        {"https://updates.example.org/factom/x?y=/", false, false},
        {"https://updates.example.org/factom/x#y", false, false},
        {"https://updates.example.org/factom/..x", false, true},
        {"https://other.example.org/factom", false, false},
        {"http://updates.example.org/factom", true, false}, /* scheme is part of the prefix */
        {"http://10.0.0.5:8080/b/v1", false, false},        /* http not allowed */
        {"http://10.0.0.5:8080/b/v1", true, true},
        {"http://10.0.0.5:8080/bv1", true, false},
        {"ftp://updates.example.org/factom", true, false},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        int rc = update_source_check(src, 2, c[i].http, c[i].url, err, sizeof err);
        char name[200];
        snprintf(name, sizeof name, "%s %s (%s)", c[i].ok ? "allowed:" : "refused:", c[i].url,
                 c[i].http ? "allow_http" : "https only");
        T_OK((rc == 0) == c[i].ok, name);
    }
    T_OK(update_source_check(NULL, 0, true, "https://a.example/b", err, sizeof err) < 0 &&
             strstr(err, "update.sources"),
         "no sources: nothing is allowed, and the error names update.sources");
    T_OK(update_source_check(src, 2, false, "http://10.0.0.5:8080/b/v1", err, sizeof err) < 0 &&
             strstr(err, "update.allow_http"),
         "plain http: the error names update.allow_http");
}

/* update.sources is checked at load: plain http needs update.allow_http. */
static void test_sources_config(void)
{
    static const struct {
        const char *text, *want;
    } c[] = {
        {"update = { sources = { \"https://u.example/b\" } }\n", NULL},
        {"update = { sources = { \"http://u.example/b\" } }\n", "update.allow_http = true"},
        {"update = { allow_http = true, sources = { \"http://u.example/b\" } }\n", NULL},
        {"update = { sources = { \"ftp://u.example/b\" } }\n", "not an https:// URL"},
        {"update = { sources = { \"https://\" } }\n", "no host"},
        {"update = { sources = { \"https:///x\" } }\n", "no host"},
        {"update = { sources = { \"https://a@b.example/\" } }\n", "@"},
    };
    char path[] = "/tmp/serfhand-test-sources-XXXXXX", err[600];
    int fd = mkstemp(path);
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        FILE *f = fopen(path, "w");
        fputs(c[i].text, f);
        fclose(f);
        struct config cfg;
        int rc = config_load(&cfg, path, err, sizeof err);
        if (c[i].want)
            T_OK(rc < 0 && strstr(err, c[i].want) && strstr(err, "update.sources[1]"), c[i].text);
        else
            T_OK(rc == 0, c[i].text);
        config_free(&cfg);
    }
    close(fd);
    unlink(path);
}

static int decode(const struct buf *p, const struct trust_keyset *ks, struct update_pointer *up,
                  char *err)
{
    char id[17];
    return update_pointer_decode(up, p->data, p->len, ks, id, err, 300);
}

int main(void)
{
    struct minisign_pubkey pk, upk;
    struct minisign_seckey *sk, *usk;
    struct update_pointer p = {0}, q;
    struct buf out = {0};
    char err[300];
    minisign_init();
    minisign_keygen(&pk, &sk);
    minisign_keygen(&upk, &usk);
    struct trust_keyset ks = {&pk, 1, 1}, other = {&upk, 1, 1};

    snprintf(p.name, sizeof p.name, "factom");
    p.version = 42;
    snprintf(p.hash, sizeof p.hash, HASH);
    snprintf(p.url, sizeof p.url, "https://updates.example.org/serfhand/factom-42");
    p.expires = 1900000000;
    T_OK(update_pointer_encode(&p, sk, &out, err, sizeof err) == 0, "encode");
    T_OK(out.len <= UPDATE_PAYLOAD_MAX, "a typical pointer fits the budget");
    T_OK(decode(&out, &ks, &q, err) == 0, "decode a good pointer");
    T_STR(q.name, "factom", "name");
    T_OK(q.version == 42 && q.expires == 1900000000, "version and expiry");
    T_STR(q.hash, HASH, "hash");
    T_STR(q.url, p.url, "url");
    T_OK(decode(&out, &other, &q, err) < 0 && strstr(err, "not in trust.keys"),
         "a key not in the set is refused");

    struct buf t = {0};
    buf_add(&t, out.data, out.len);
    char *v = strstr(t.data, "\"v\":42");
    v[5] = '3';
    T_OK(decode(&t, &ks, &q, err) < 0 && strstr(err, "verification failed"),
         "a changed body fails the signature");
    t.len = 0;
    buf_add(&t, out.data, out.len);
    t.data[10] = t.data[10] == 'A' ? 'B' : 'A';
    T_OK(decode(&t, &ks, &q, err) < 0, "a changed signature fails");
    T_OK(update_pointer_decode(&q, "x.y", 3, &ks, NULL, err, sizeof err) < 0, "garbage");
    T_OK(update_pointer_decode(&q, "", 0, &ks, NULL, err, sizeof err) < 0, "empty");

    /* signed by a trusted key but not what announce writes: refused */
    static const char *const bad[] = {
        "{}",
        "{\"n\":\"factom\",\"v\":42,\"h\":\"" HASH "\",\"u\":\"http://a/b\"}",
        "{\"n\":\"factom\",\"v\":42,\"h\":\"" HASH "\",\"u\":\"http://a/b\",\"e\":1,\"x\":1}",
        "{\"n\":\"factom\",\"n\":\"x\",\"v\":42,\"h\":\"" HASH "\",\"u\":\"http://a/b\",\"e\":1}",
        "{\"n\":\"factom\", \"v\":42,\"h\":\"" HASH "\",\"u\":\"http://a/b\",\"e\":1}",
        "{\"n\":\"fac\\tom\",\"v\":42,\"h\":\"" HASH "\",\"u\":\"http://a/b\",\"e\":1}",
        "{\"n\":\"factom\",\"v\":042,\"h\":\"" HASH "\",\"u\":\"http://a/b\",\"e\":1}",
        "{\"n\":\"factom\",\"v\":-1,\"h\":\"" HASH "\",\"u\":\"http://a/b\",\"e\":1}",
        "{\"n\":\"factom\",\"v\":0,\"h\":\"" HASH "\",\"u\":\"http://a/b\",\"e\":1}",
        "{\"n\":\"factom\",\"v\":\"42\",\"h\":\"" HASH "\",\"u\":\"http://a/b\",\"e\":1}",
        "{\"n\":\"factom\",\"v\":42,\"h\":\"ABCDEF\",\"u\":\"http://a/b\",\"e\":1}",
        "{\"n\":\"factom\",\"v\":42,\"h\":\"" HASH "\",\"u\":\"file:///etc\",\"e\":1}",
        "{\"n\":\"factom\",\"v\":42,\"h\":\"" HASH "\",\"u\":\"http://a/b/\",\"e\":1}",
        "{\"n\":\"factom\",\"v\":42,\"h\":\"" HASH "\",\"u\":\"http://a b\",\"e\":1}",
        "{\"n\":\"fa/ctom\",\"v\":42,\"h\":\"" HASH "\",\"u\":\"http://a/b\",\"e\":1}",
        "{\"n\":\"factom\",\"v\":42,\"h\":\"" HASH "\",\"u\":\"http://a/b\",\"e\":1,}",
        "{\"n\":\"factom\",\"v\":42,\"h\":\"" HASH
        "\",\"u\":\"http://a/b\",\"e\":99999999999999999999}",
        "[\"n\",\"factom\"]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct buf b = {0};
        signed_payload(sk, bad[i], &b);
        char name[80];
        snprintf(name, sizeof name, "malformed body %zu is refused", i);
        T_OK(decode(&b, &ks, &q, err) < 0 && strstr(err, "malformed"), name);
        buf_free(&b);
    }
    struct buf g = {0};
    signed_payload(sk, "{\"e\":7,\"u\":\"http://a/b\",\"h\":\"" HASH "\",\"v\":1,\"n\":\"x\"}", &g);
    T_OK(decode(&g, &ks, &q, err) == 0 && q.expires == 7 && q.version == 1, "any key order");
    buf_free(&g);

    /* the encoder refuses what the decoder would */
    struct update_pointer e = p;
    snprintf(e.url, sizeof e.url, "ftp://x");
    T_OK(update_pointer_encode(&e, sk, &out, err, sizeof err) < 0, "encode refuses ftp://");
    e = p;
    snprintf(e.name, sizeof e.name, "bad name");
    T_OK(update_pointer_encode(&e, sk, &out, err, sizeof err) < 0, "encode refuses a bad name");

    test_sources();
    test_sources_config();

    buf_free(&out);
    buf_free(&t);
    minisign_seckey_free(sk);
    minisign_seckey_free(usk);
    return t_done();
}
