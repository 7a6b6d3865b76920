/*
 * trust.c: minisign keys and signatures made and checked with libsodium
 * alone, the bundle manifest (MANIFEST.json, parsed by a small strict JSON
 * reader), and the threshold check against the operator's trusted keys.
 * Used by bundle.c on every run and by keygen, sign, verify and check.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <linux/openat2.h>
#include <sodium.h>

#include "serfhand.h"

#define PK_B64 56
#define B64_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
#define SK_B64 212
#define SIG_B64 100
#define GSIG_B64 88
#define SK_BYTES 158
#define UNTRUSTED_PREFIX "untrusted comment: "
#define TRUSTED_PREFIX "trusted comment: "
#define COMMENT_MAX 1024 /* minisign COMMENTMAXBYTES */
#define TRUSTED_MAX 8192 /* minisign TRUSTEDCOMMENTMAXBYTES */
#define KDF_MEMLIMIT_MAX (2ULL * 1024 * 1024 * 1024)
#define KDF_OPSLIMIT_MAX (1ULL << 32)
#define JSON_DEPTH_MAX 8
#define MANIFEST_FILES_MAX 10000
#define WALK_DEPTH_MAX 16

/* ------------------------------------------------------------- helpers */

void trust_hex(const uint8_t *p, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = 0;
}

void trust_keyid_hex(const uint8_t keyid[8], char out[17])
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | keyid[i];
    snprintf(out, 17, "%016llX", (unsigned long long)v);
}

int trust_sig_names(const uint8_t keyid[8], char names[2][TRUST_SIGNAME_MAX])
{
    char id[17];
    trust_keyid_hex(keyid, id);
    const char *s = id;
    while (s[0] == '0' && s[1])
        s++;
    snprintf(names[0], TRUST_SIGNAME_MAX, "MANIFEST.json.%s.minisig", id);
    snprintf(names[1], TRUST_SIGNAME_MAX, "MANIFEST.json.%s.minisig", s);
    return s == id ? 1 : 2;
}

void trust_sig_keyname(const struct trust_pubkey *pk, char name[TRUST_SIGNAME_MAX])
{
    char id[17], pkx[17];
    trust_keyid_hex(pk->keyid, id);
    for (int i = 0; i < 8; i++)
        snprintf(pkx + 2 * i, 3, "%02X", pk->pk[i]);
    snprintf(name, TRUST_SIGNAME_MAX, "MANIFEST.json.%s-%s.minisig", id, pkx);
}

bool trust_keyid_is(const uint8_t keyid[8], const char *hex)
{
    size_t n = strlen(hex);
    if (n == 0 || n > 16)
        return false;
    uint64_t v = 0, want = 0;
    for (size_t i = 0; i < n; i++) {
        char c = hex[i]; /* upper case, as both minisign and serfhand write it */
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
            return false;
        v = (v << 4) | (uint64_t)(c <= '9' ? c - '0' : c - 'A' + 10);
    }
    for (int i = 7; i >= 0; i--)
        want = (want << 8) | keyid[i];
    return v == want;
}

void trust_problem_add(struct trust_problems *p, const char *fmt, ...)
{
    if (!p)
        return; /* the caller keeps no list */
    va_list ap;
    va_start(ap, fmt);
    char tmp[1024];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    p->v = xrealloc(p->v, (p->n + 1) * sizeof *p->v);
    p->v[p->n++] = xstrdup(tmp);
}

void trust_problems_free(struct trust_problems *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->v[i]);
    free(p->v);
    p->v = NULL;
    p->n = 0;
}

void trust_json_str(struct buf *b, const char *s)
{
    buf_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf_add(b, "\\", 1);
            buf_add(b, s, 1);
        } else if (c < 0x20 || c == 0x7f) {
            buf_printf(b, "\\u%04x", c);
        } else {
            buf_add(b, s, 1);
        }
    }
    buf_add(b, "\"", 1);
}

int trust_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

/* Split text into exactly want lines. Each line ends in LF, the last one
 * may lack it. CR, NUL and other control characters (except TAB, which
 * minisign's own trusted comments contain) are refused. */
static int split_lines(const char *text, size_t len, int want, const char **line, size_t *llen,
                       char *err, size_t errlen)
{
    int n = 0;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\r') {
            util_errf(err, errlen, "line %d: carriage return", n + 1);
            return -1;
        }
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
            util_errf(err, errlen, "line %d: control character 0x%02x", n + 1, c);
            return -1;
        }
        if (c == '\n') {
            if (n == want) {
                util_errf(err, errlen, "more than %d lines", want);
                return -1;
            }
            line[n] = text + start;
            llen[n++] = i - start;
            start = i + 1;
        }
    }
    if (start < len) {
        if (n == want) {
            util_errf(err, errlen, "more than %d lines", want);
            return -1;
        }
        line[n] = text + start;
        llen[n++] = len - start;
    }
    if (n != want) {
        util_errf(err, errlen, "%d line%s, want exactly %d", n, n == 1 ? "" : "s", want);
        return -1;
    }
    return 0;
}

static int decode_b64(const char *s, size_t slen, size_t want_chars, uint8_t *out,
                      size_t want_bytes, const char *what, char *err, size_t errlen)
{
    size_t got = 0;
    const char *end = NULL;
    if (slen != want_chars) {
        util_errf(err, errlen, "%s: %zu base64 characters, want %zu", what, slen, want_chars);
        return -1;
    }
    if (sodium_base642bin(out, want_bytes, s, slen, NULL, &got, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        got != want_bytes || end != s + slen) {
        util_errf(err, errlen, "%s: invalid base64", what);
        return -1;
    }
    return 0;
}

static int check_untrusted(const char *l, size_t n, char *err, size_t errlen)
{
    size_t pl = strlen(UNTRUSTED_PREFIX);
    if (n < pl || memcmp(l, UNTRUSTED_PREFIX, pl) != 0) {
        util_errf(err, errlen, "line 1 must start with \"untrusted comment: \"");
        return -1;
    }
    if (n - pl > COMMENT_MAX) {
        util_errf(err, errlen, "untrusted comment longer than %d bytes", COMMENT_MAX);
        return -1;
    }
    return 0;
}

static void b64_line(struct buf *out, const uint8_t *bin, size_t n)
{
    char tmp[300];
    sodium_bin2base64(tmp, sizeof tmp, bin, n, sodium_base64_VARIANT_ORIGINAL);
    buf_addstr(out, tmp);
    buf_add(out, "\n", 1);
}

/* ---------------------------------------------------------- public keys */

static int pubkey_from_b64(struct trust_pubkey *pk, const char *s, size_t n, char *err,
                           size_t errlen)
{
    uint8_t raw[42];
    if (decode_b64(s, n, PK_B64, raw, sizeof raw, "public key", err, errlen) < 0)
        return -1;
    if (raw[0] != 'E' || raw[1] != 'd') {
        util_errf(err, errlen, "public key: algorithm is not Ed25519 (\"Ed\")");
        return -1;
    }
    memcpy(pk->keyid, raw + 2, 8);
    memcpy(pk->pk, raw + 10, 32);
    return 0;
}

int trust_pubkey_parse(struct trust_pubkey *pk, const char *text, size_t len, char *err,
                       size_t errlen)
{
    const char *l[2];
    size_t n[2];
    char sub[200];
    /* a bare key string, as in trust.keys or `minisign -P` */
    if (len >= 2 && text[0] == 'R' && text[1] == 'W' && !memchr(text, '\n', len))
        return pubkey_from_b64(pk, text, len, err, errlen);
    if (split_lines(text, len, 2, l, n, sub, sizeof sub) < 0 ||
        check_untrusted(l[0], n[0], sub, sizeof sub) < 0) {
        util_errf(err, errlen, "public key: %s", sub);
        return -1;
    }
    return pubkey_from_b64(pk, l[1], n[1], err, errlen);
}

void trust_pubkey_base64(const struct trust_pubkey *pk, char out[57])
{
    uint8_t raw[42] = {'E', 'd'};
    memcpy(raw + 2, pk->keyid, 8);
    memcpy(raw + 10, pk->pk, 32);
    sodium_bin2base64(out, 57, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
}

void trust_pubkey_write(const struct trust_pubkey *pk, struct buf *out)
{
    char id[17], b64[57];
    trust_keyid_hex(pk->keyid, id);
    trust_pubkey_base64(pk, b64);
    buf_printf(out, UNTRUSTED_PREFIX "minisign public key %s\n%s\n", id, b64);
}

/* ---------------------------------------------------------- secret keys */

static void seckey_chk(const struct trust_seckey *sk, uint8_t chk[32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)"Ed", 2);
    crypto_generichash_update(&st, sk->keyid, 8);
    crypto_generichash_update(&st, sk->sk, 64);
    crypto_generichash_final(&st, chk, 32);
    sodium_memzero(&st, sizeof st);
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        p[i] = (uint8_t)v;
}

/* Decode a secret key file into raw (158 bytes). */
static int seckey_raw(const char *text, size_t len, uint8_t *raw, char *err, size_t errlen)
{
    const char *l[2];
    size_t n[2];
    char sub[200];
    if (split_lines(text, len, 2, l, n, sub, sizeof sub) < 0 ||
        check_untrusted(l[0], n[0], sub, sizeof sub) < 0 ||
        decode_b64(l[1], n[1], SK_B64, raw, SK_BYTES, "key", sub, sizeof sub) < 0) {
        util_errf(err, errlen, "secret key: %s", sub);
        return -1;
    }
    if (memcmp(raw, "Ed", 2) != 0 || memcmp(raw + 4, "B2", 2) != 0 ||
        (memcmp(raw + 2, "Sc", 2) != 0 && memcmp(raw + 2, "\0\0", 2) != 0)) {
        util_errf(err, errlen, "secret key: unknown algorithms (want Ed, Sc or none, B2)");
        return -1;
    }
    return 0;
}

int trust_seckey_encrypted(const char *text, size_t len)
{
    uint8_t raw[SK_BYTES];
    if (seckey_raw(text, len, raw, NULL, 0) < 0)
        return -1;
    int enc = memcmp(raw + 2, "Sc", 2) == 0;
    sodium_memzero(raw, sizeof raw);
    return enc;
}

int trust_seckey_parse(struct trust_seckey **out, const char *text, size_t len,
                       const char *password, char *err, size_t errlen)
{
    uint8_t *raw = NULL, *stream = NULL;
    struct trust_seckey *sk = NULL;
    int rc = -1;
    *out = NULL;
    if (trust_init() < 0) {
        util_errf(err, errlen, "secret key: libsodium failed to initialize");
        return -1;
    }
    raw = sodium_malloc(SK_BYTES);
    stream = sodium_malloc(104);
    sk = sodium_malloc(sizeof *sk);
    if (!raw || !stream || !sk) {
        util_errf(err, errlen, "secret key: out of memory");
        goto out;
    }
    if (seckey_raw(text, len, raw, err, errlen) < 0)
        goto out;
    uint8_t *body = raw + 54; /* keyid[8] sk[64] chk[32] */
    bool enc = memcmp(raw + 2, "Sc", 2) == 0;
    if (enc) {
        uint64_t ops = le64(raw + 38), mem = le64(raw + 46);
        if (!password) {
            util_errf(err, errlen, "secret key is encrypted: a password is needed");
            goto out;
        }
        if (ops > KDF_OPSLIMIT_MAX || mem > KDF_MEMLIMIT_MAX) {
            util_errf(err, errlen,
                      "secret key: scrypt limits too large (opslimit %llu, memlimit %llu)",
                      (unsigned long long)ops, (unsigned long long)mem);
            goto out;
        }
        if (crypto_pwhash_scryptsalsa208sha256(stream, 104, password, strlen(password), raw + 6,
                                               ops, (size_t)mem) != 0) {
            util_errf(err, errlen, "secret key: scrypt failed (out of memory?)");
            goto out;
        }
        for (int i = 0; i < 104; i++)
            body[i] ^= stream[i];
    }
    memcpy(sk->keyid, body, 8);
    memcpy(sk->sk, body + 8, 64);
    uint8_t chk[32], zero[32] = {0};
    seckey_chk(sk, chk);
    bool chk_ok = sodium_memcmp(chk, body + 72, 32) == 0;
    if (!chk_ok && !(!enc && sodium_memcmp(zero, body + 72, 32) == 0)) {
        util_errf(err, errlen,
                  enc ? "secret key: wrong password (checksum mismatch)"
                      : "secret key: checksum mismatch (corrupted key)");
        goto out;
    }
    /* the public half must be the one the seed derives */
    uint8_t pk[32], skx[64];
    crypto_sign_seed_keypair(pk, skx, sk->sk);
    sodium_memzero(skx, sizeof skx);
    if (memcmp(pk, sk->sk + 32, 32) != 0) {
        util_errf(err, errlen, "secret key: public half does not match the seed");
        goto out;
    }
    *out = sk;
    sk = NULL;
    rc = 0;
out:
    sodium_free(raw);
    sodium_free(stream);
    sodium_free(sk);
    return rc;
}

void trust_seckey_free(struct trust_seckey *sk)
{
    sodium_free(sk); /* wipes */
}

void trust_seckey_pubkey(const struct trust_seckey *sk, struct trust_pubkey *pk)
{
    memcpy(pk->keyid, sk->keyid, 8);
    memcpy(pk->pk, sk->sk + 32, 32);
}

int trust_keygen(struct trust_pubkey *pk, struct trust_seckey **out)
{
    if (trust_init() < 0)
        return -1;
    struct trust_seckey *sk = sodium_malloc(sizeof *sk);
    if (!sk)
        return -1;
    uint8_t pub[32];
    randombytes_buf(sk->keyid, 8);
    crypto_sign_keypair(pub, sk->sk);
    trust_seckey_pubkey(sk, pk);
    *out = sk;
    return 0;
}

int trust_seckey_write(const struct trust_seckey *sk, const char *password,
                       unsigned long long opslimit, size_t memlimit, struct buf *out, char *err,
                       size_t errlen)
{
    int rc = -1;
    uint8_t *raw = sodium_malloc(SK_BYTES), *stream = sodium_malloc(104);
    if (trust_init() < 0 || !raw || !stream) {
        util_errf(err, errlen, "secret key: out of memory");
        goto out;
    }
    memset(raw, 0, SK_BYTES);
    memcpy(raw, "Ed", 2);
    memcpy(raw + 4, "B2", 2);
    uint8_t *body = raw + 54;
    memcpy(body, sk->keyid, 8);
    memcpy(body + 8, sk->sk, 64);
    seckey_chk(sk, body + 72);
    if (password) {
        memcpy(raw + 2, "Sc", 2);
        randombytes_buf(raw + 6, 32);
        put_le64(raw + 38, opslimit);
        put_le64(raw + 46, memlimit);
        if (crypto_pwhash_scryptsalsa208sha256(stream, 104, password, strlen(password), raw + 6,
                                               opslimit, memlimit) != 0) {
            util_errf(err, errlen, "secret key: scrypt failed (out of memory?)");
            goto out;
        }
        for (int i = 0; i < 104; i++)
            body[i] ^= stream[i];
    }
    buf_addstr(out, UNTRUSTED_PREFIX "minisign encrypted secret key\n");
    b64_line(out, raw, SK_BYTES);
    rc = 0;
out:
    sodium_free(raw);
    sodium_free(stream);
    return rc;
}

/* ----------------------------------------------------------- signatures */

static int check_trusted_text(const char *s, size_t n, char *err, size_t errlen)
{
    if (n > TRUSTED_MAX) {
        util_errf(err, errlen, "trusted comment longer than %d bytes", TRUSTED_MAX);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c != '\t' && (c < 0x20 || c > 0x7e)) {
            util_errf(err, errlen, "trusted comment: unprintable byte 0x%02x", c);
            return -1;
        }
    }
    return 0;
}

int trust_sig_parse(struct trust_sig *s, const char *text, size_t len, char *err, size_t errlen)
{
    const char *l[4];
    size_t n[4];
    uint8_t raw[74];
    char sub[200];
    size_t tp = strlen(TRUSTED_PREFIX);
    memset(s, 0, sizeof *s);
    if (split_lines(text, len, 4, l, n, sub, sizeof sub) < 0 ||
        check_untrusted(l[0], n[0], sub, sizeof sub) < 0 ||
        decode_b64(l[1], n[1], SIG_B64, raw, sizeof raw, "line 2", sub, sizeof sub) < 0)
        goto bad;
    if (n[2] < tp || memcmp(l[2], TRUSTED_PREFIX, tp) != 0) {
        util_errf(sub, sizeof sub, "line 3 must start with \"trusted comment: \"");
        goto bad;
    }
    if (check_trusted_text(l[2] + tp, n[2] - tp, sub, sizeof sub) < 0 ||
        decode_b64(l[3], n[3], GSIG_B64, s->global, 64, "line 4", sub, sizeof sub) < 0)
        goto bad;
    if (raw[0] == 'E' && raw[1] == 'D') {
        s->legacy = false;
    } else if (raw[0] == 'E' && raw[1] == 'd') {
        s->legacy = true;
    } else {
        util_errf(sub, sizeof sub, "unknown signature algorithm");
        goto bad;
    }
    memcpy(s->keyid, raw + 2, 8);
    memcpy(s->sig, raw + 10, 64);
    s->trusted = xmalloc(n[2] - tp + 1);
    memcpy(s->trusted, l[2] + tp, n[2] - tp);
    s->trusted[n[2] - tp] = 0;
    return 0;
bad:
    util_errf(err, errlen, "signature: %s", sub);
    return -1;
}

void trust_sig_free(struct trust_sig *s)
{
    free(s->trusted);
    s->trusted = NULL;
}

int trust_sig_verify(const struct trust_sig *s, const struct trust_pubkey *pk, const void *msg,
                     size_t len, bool allow_legacy, char *err, size_t errlen)
{
    uint8_t h[64];
    if (s->legacy && !allow_legacy) {
        util_errf(err, errlen, "legacy (non-prehashed \"Ed\") signature refused");
        return -1;
    }
    if (memcmp(s->keyid, pk->keyid, 8) != 0) {
        util_errf(err, errlen, "signature key id does not match the public key");
        return -1;
    }
    const uint8_t *m = msg;
    size_t mlen = len;
    if (!s->legacy) {
        crypto_generichash(h, sizeof h, msg, len, NULL, 0);
        m = h;
        mlen = sizeof h;
    }
    if (crypto_sign_verify_detached(s->sig, m, mlen, pk->pk) != 0) {
        util_errf(err, errlen, "signature verification failed");
        return -1;
    }
    size_t tl = strlen(s->trusted);
    uint8_t *g = xmalloc(64 + tl);
    memcpy(g, s->sig, 64);
    memcpy(g + 64, s->trusted, tl);
    int bad = crypto_sign_verify_detached(s->global, g, 64 + tl, pk->pk);
    free(g);
    if (bad) {
        util_errf(err, errlen, "trusted comment signature verification failed");
        return -1;
    }
    return 0;
}

int trust_sign(const struct trust_seckey *sk, const void *msg, size_t len, const char *trusted,
               const char *untrusted, struct buf *out, char *err, size_t errlen)
{
    uint8_t h[64], raw[74] = {'E', 'D'}, global[64];
    size_t tl = strlen(trusted);
    if (check_trusted_text(trusted, tl, err, errlen) < 0)
        return -1;
    if (strchr(untrusted, '\n') || strchr(untrusted, '\r') || strlen(untrusted) > COMMENT_MAX) {
        util_errf(err, errlen, "untrusted comment: one line, at most %d bytes", COMMENT_MAX);
        return -1;
    }
    crypto_generichash(h, sizeof h, msg, len, NULL, 0);
    memcpy(raw + 2, sk->keyid, 8);
    crypto_sign_detached(raw + 10, NULL, h, sizeof h, sk->sk);
    uint8_t *g = xmalloc(64 + tl);
    memcpy(g, raw + 10, 64);
    memcpy(g + 64, trusted, tl);
    crypto_sign_detached(global, NULL, g, 64 + tl, sk->sk);
    free(g);
    buf_printf(out, UNTRUSTED_PREFIX "%s\n", untrusted);
    b64_line(out, raw, sizeof raw);
    buf_printf(out, TRUSTED_PREFIX "%s\n", trusted);
    b64_line(out, global, sizeof global);
    return 0;
}

/* ------------------------------------------------------ strict JSON read */

enum jtype { J_OBJ, J_STR, J_INT };

struct jnode {
    enum jtype type;
    char *str;     /* J_STR */
    long long num; /* J_INT */
    char **keys;   /* J_OBJ */
    struct jnode *vals;
    size_t n;
};

struct jparser {
    const char *start, *s, *end;
    char *err;
    size_t errlen;
    int depth;
};

static void jfree(struct jnode *j)
{
    free(j->str);
    for (size_t i = 0; i < j->n; i++) {
        free(j->keys[i]);
        jfree(&j->vals[i]);
    }
    free(j->keys);
    free(j->vals);
    memset(j, 0, sizeof *j);
}

static int jerr(struct jparser *p, const char *msg)
{
    util_errf(p->err, p->errlen, "manifest: %s at byte %zu", msg, (size_t)(p->s - p->start));
    return -1;
}

static void jws(struct jparser *p)
{
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r'))
        p->s++;
}

static int jhex4(const char *s)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

/* Strings: printable ASCII only (every name and path in a manifest is). */
static int jstring(struct jparser *p, char **out)
{
    struct buf b = {0};
    p->s++; /* opening quote */
    for (;;) {
        if (p->s >= p->end) {
            buf_free(&b);
            return jerr(p, "unterminated string");
        }
        unsigned char c = (unsigned char)*p->s;
        if (c == '"') {
            p->s++;
            break;
        }
        if (c < 0x20 || c > 0x7e) {
            buf_free(&b);
            return jerr(p, "control or non-ASCII byte in string");
        }
        if (c == '\\') {
            if (p->end - p->s < 2) {
                buf_free(&b);
                return jerr(p, "bad escape");
            }
            char e = p->s[1], r;
            p->s += 2;
            switch (e) {
            case '"': r = '"'; break;
            case '\\': r = '\\'; break;
            case '/': r = '/'; break;
            case 'u': {
                int v = p->end - p->s >= 4 ? jhex4(p->s) : -1;
                if (v < 0x20 || v > 0x7e) {
                    buf_free(&b);
                    return jerr(p, "\\u escape outside printable ASCII");
                }
                p->s += 4;
                r = (char)v;
                break;
            }
            default: buf_free(&b); return jerr(p, "escape not allowed in a manifest string");
            }
            buf_add(&b, &r, 1);
            continue;
        }
        buf_add(&b, p->s, 1);
        p->s++;
    }
    if (!b.data)
        buf_add(&b, "", 0);
    *out = b.data;
    return 0;
}

static int jvalue(struct jparser *p, struct jnode *j);

static int jobject(struct jparser *p, struct jnode *j)
{
    j->type = J_OBJ;
    if (++p->depth > JSON_DEPTH_MAX)
        return jerr(p, "nested too deeply");
    p->s++; /* { */
    jws(p);
    if (p->s < p->end && *p->s == '}') {
        p->s++;
        p->depth--;
        return 0;
    }
    for (;;) {
        char *key = NULL;
        jws(p);
        if (p->s >= p->end || *p->s != '"')
            return jerr(p, "expected a string key");
        if (jstring(p, &key) < 0)
            return -1;
        for (size_t i = 0; i < j->n; i++) {
            if (strcmp(j->keys[i], key) == 0) {
                char m[300];
                snprintf(m, sizeof m, "duplicate key \"%.200s\"", key);
                free(key);
                return jerr(p, m);
            }
        }
        if (j->n >= MANIFEST_FILES_MAX + 16) {
            free(key);
            return jerr(p, "too many keys");
        }
        j->keys = xrealloc(j->keys, (j->n + 1) * sizeof *j->keys);
        j->vals = xrealloc(j->vals, (j->n + 1) * sizeof *j->vals);
        j->keys[j->n] = key;
        memset(&j->vals[j->n], 0, sizeof j->vals[0]);
        j->n++;
        jws(p);
        if (p->s >= p->end || *p->s != ':')
            return jerr(p, "expected ':'");
        p->s++;
        if (jvalue(p, &j->vals[j->n - 1]) < 0)
            return -1;
        jws(p);
        if (p->s < p->end && *p->s == ',') {
            p->s++;
            continue;
        }
        if (p->s < p->end && *p->s == '}') {
            p->s++;
            p->depth--;
            return 0;
        }
        return jerr(p, "expected ',' or '}'");
    }
}

static int jvalue(struct jparser *p, struct jnode *j)
{
    jws(p);
    if (p->s >= p->end)
        return jerr(p, "unexpected end");
    char c = *p->s;
    if (c == '{')
        return jobject(p, j);
    if (c == '"') {
        j->type = J_STR;
        return jstring(p, &j->str);
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        bool neg = c == '-';
        long long v = 0;
        if (neg)
            p->s++;
        if (p->s >= p->end || *p->s < '0' || *p->s > '9')
            return jerr(p, "bad number");
        if (*p->s == '0' && p->s + 1 < p->end && p->s[1] >= '0' && p->s[1] <= '9')
            return jerr(p, "leading zero");
        while (p->s < p->end && *p->s >= '0' && *p->s <= '9') {
            int d = *p->s - '0';
            /* checked before it is computed: the value never wraps */
            if (v > (TRUST_INT_MAX - d) / 10)
                return jerr(p, "integer out of range (beyond +-9007199254740991, the largest "
                               "every JSON reader reads exactly)");
            v = v * 10 + d;
            p->s++;
        }
        if (p->s < p->end && (*p->s == '.' || *p->s == 'e' || *p->s == 'E'))
            return jerr(p, "only integers are allowed");
        if (neg && v == 0)
            return jerr(p, "-0 is not an integer (write 0)");
        j->type = J_INT;
        j->num = neg ? -v : v;
        return 0;
    }
    return jerr(p, "expected an object, a string or an integer");
}

/* -------------------------------------------------------------- manifest */

bool trust_valid_rel(const char *rel)
{
    size_t len = strlen(rel);
    if (len > 255 || (strncmp(rel, "handlers/", 9) != 0 && strncmp(rel, "lua/", 4) != 0))
        return false;
    const char *s = rel;
    for (;;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return false;
        for (size_t i = 0; i < n; i++) {
            char c = s[i];
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.' || c == '+' || c == '@'))
                return false;
        }
        if (!e)
            return true;
        s = e + 1;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int cmp_file(const void *a, const void *b)
{
    return strcmp(((const struct trust_file *)a)->path, ((const struct trust_file *)b)->path);
}

static const struct jnode *jget(const struct jnode *o, const char *key)
{
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->keys[i], key) == 0)
            return &o->vals[i];
    return NULL;
}

static int jint_field(const struct jnode *o, const char *key, long long min, long long *out,
                      char *err, size_t errlen)
{
    const struct jnode *v = jget(o, key);
    if (!v || v->type != J_INT) {
        util_errf(err, errlen, "manifest: \"%s\" must be an integer", key);
        return -1;
    }
    if (v->num < min) {
        util_errf(err, errlen, "manifest: \"%s\" must be at least %lld", key, min);
        return -1;
    }
    *out = v->num;
    return 0;
}

static int only_keys(const struct jnode *o, const char *const *allowed, const char *where,
                     char *err, size_t errlen)
{
    for (size_t i = 0; i < o->n; i++) {
        bool ok = false;
        for (size_t k = 0; allowed[k]; k++)
            ok = ok || strcmp(o->keys[i], allowed[k]) == 0;
        if (!ok) {
            util_errf(err, errlen, "manifest: unknown key \"%.100s\" in %s", o->keys[i], where);
            return -1;
        }
    }
    return 0;
}

int trust_manifest_parse(struct trust_manifest *m, const char *text, size_t len, char *err,
                         size_t errlen)
{
    static const char *const top[] = {"format",  "bundle", "version", "created",
                                      "expires", "files",  NULL};
    static const char *const fkeys[] = {"size", "blake2b", NULL};
    struct jparser p = {text, text, text + len, err, errlen, 0};
    struct jnode root = {0};
    const struct jnode *v;
    long long fmt;
    int rc = -1;
    memset(m, 0, sizeof *m);
    if (memchr(text, 0, len)) {
        util_errf(err, errlen, "manifest: NUL byte");
        return -1;
    }
    jws(&p);
    if (p.s >= p.end || *p.s != '{') {
        util_errf(err, errlen, "manifest: not a JSON object");
        return -1;
    }
    if (jobject(&p, &root) < 0)
        goto out;
    jws(&p);
    if (p.s != p.end) {
        jerr(&p, "trailing bytes after the object");
        goto out;
    }
    if (only_keys(&root, top, "the manifest", err, errlen) < 0 ||
        jint_field(&root, "format", 1, &fmt, err, errlen) < 0)
        goto out;
    if (fmt != 1) {
        util_errf(err, errlen, "manifest: format %lld not supported (want 1)", fmt);
        goto out;
    }
    v = jget(&root, "bundle");
    if (!v || v->type != J_STR || !util_valid_name(v->str)) {
        util_errf(err, errlen,
                  "manifest: \"bundle\" must be a name [A-Za-z0-9][A-Za-z0-9_.-]{0,63}");
        goto out;
    }
    m->bundle = xstrdup(v->str);
    if (jint_field(&root, "version", 1, &m->version, err, errlen) < 0 ||
        jint_field(&root, "created", 0, &m->created, err, errlen) < 0 ||
        jint_field(&root, "expires", 0, &m->expires, err, errlen) < 0)
        goto out;
    if (m->expires <= m->created) {
        util_errf(err, errlen, "manifest: \"expires\" is not after \"created\"");
        goto out;
    }
    v = jget(&root, "files");
    if (!v || v->type != J_OBJ) {
        util_errf(err, errlen, "manifest: \"files\" must be an object");
        goto out;
    }
    if (v->n > MANIFEST_FILES_MAX) {
        util_errf(err, errlen, "manifest: more than %d files", MANIFEST_FILES_MAX);
        goto out;
    }
    m->files = xmalloc((v->n ? v->n : 1) * sizeof *m->files);
    for (size_t i = 0; i < v->n; i++) {
        const struct jnode *f = &v->vals[i], *sz, *h;
        const char *path = v->keys[i];
        if (!trust_valid_rel(path)) {
            util_errf(err, errlen,
                      "manifest: invalid path \"%.200s\" (must be handlers/... or lua/..., "
                      "no \"..\", no absolute path, only [A-Za-z0-9_.+@-])",
                      path);
            goto out;
        }
        if (f->type != J_OBJ || only_keys(f, fkeys, path, err, errlen) < 0) {
            if (f->type != J_OBJ)
                util_errf(err, errlen, "manifest: entry for %.200s must be an object", path);
            goto out;
        }
        sz = jget(f, "size");
        h = jget(f, "blake2b");
        if (!sz || sz->type != J_INT || sz->num < 0) {
            util_errf(err, errlen, "manifest: %.200s: \"size\" must be a non-negative integer",
                      path);
            goto out;
        }
        if (!h || h->type != J_STR || strlen(h->str) != 64) {
            util_errf(err, errlen, "manifest: %.200s: \"blake2b\" must be 64 lowercase hex digits",
                      path);
            goto out;
        }
        struct trust_file *tf = &m->files[m->nfiles];
        for (int k = 0; k < 32; k++) {
            int hi = hexval(h->str[2 * k]), lo = hexval(h->str[2 * k + 1]);
            if (hi < 0 || lo < 0) {
                util_errf(err, errlen,
                          "manifest: %.200s: \"blake2b\" must be 64 lowercase hex digits", path);
                goto out;
            }
            tf->hash[k] = (uint8_t)(hi << 4 | lo);
        }
        tf->size = (uint64_t)sz->num;
        tf->path = xstrdup(path);
        m->nfiles++;
    }
    qsort(m->files, m->nfiles, sizeof *m->files, cmp_file);
    rc = 0;
out:
    jfree(&root);
    if (rc < 0)
        trust_manifest_free(m);
    return rc;
}

void trust_manifest_free(struct trust_manifest *m)
{
    for (size_t i = 0; i < m->nfiles; i++)
        free(m->files[i].path);
    free(m->files);
    free(m->bundle);
    memset(m, 0, sizeof *m);
}

const struct trust_file *trust_manifest_find(const struct trust_manifest *m, const char *path)
{
    struct trust_file key = {.path = (char *)path};
    if (!m->nfiles)
        return NULL;
    return bsearch(&key, m->files, m->nfiles, sizeof *m->files, cmp_file);
}

void trust_manifest_write(const struct trust_manifest *m, struct buf *out)
{
    char hex[65];
    buf_printf(out, "{\n  \"format\": 1,\n  \"bundle\": ");
    trust_json_str(out, m->bundle);
    buf_printf(out,
               ",\n  \"version\": %lld,\n  \"created\": %lld,\n  \"expires\": %lld,\n"
               "  \"files\": {",
               m->version, m->created, m->expires);
    for (size_t i = 0; i < m->nfiles; i++) {
        trust_hex(m->files[i].hash, 32, hex);
        buf_addstr(out, i ? ",\n    " : "\n    ");
        trust_json_str(out, m->files[i].path);
        buf_printf(out, ": {\"size\": %llu, \"blake2b\": \"%s\"}",
                   (unsigned long long)m->files[i].size, hex);
    }
    buf_addstr(out, m->nfiles ? "\n  }\n}\n" : "}\n}\n");
}

/* ------------------------------------------------------- bundle files */

static int openat2_sys(int dirfd, const char *rel, int flags, uint64_t resolve)
{
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (uint64_t)flags;
    how.resolve = resolve;
    return (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
}

int trust_open_beneath(int dirfd, const char *rel, char *err, size_t errlen)
{
    int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    int fd = openat2_sys(dirfd, rel, flags, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
    if (fd < 0 && (errno == ENOSYS || errno == EPERM)) {
        /* no openat2 (old kernel, seccomp): compare real paths */
        char proc[64], root[PATH_MAX], real[PATH_MAX];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", dirfd);
        if (!realpath(proc, root)) {
            util_errf(err, errlen, "%s: %s", rel, strerror(errno));
            return -1;
        }
        struct buf full = {0};
        buf_printf(&full, "%s/%s", root, rel);
        char *r = realpath(full.data, real);
        buf_free(&full);
        if (!r) {
            util_errf(err, errlen, "%s: %s", rel, strerror(errno));
            return errno == ENOENT ? -2 : -1;
        }
        size_t rl = strlen(root);
        if (strncmp(real, root, rl) != 0 || real[rl] != '/') {
            util_errf(err, errlen, "%s: symlink leads out of the bundle", rel);
            return -1;
        }
        fd = open(real, flags);
    } else if (fd < 0 && errno == EXDEV) {
        util_errf(err, errlen, "%s: symlink leads out of the bundle", rel);
        return -1;
    }
    if (fd < 0) {
        util_errf(err, errlen, "%s: %s", rel, strerror(errno));
        return errno == ENOENT ? -2 : -1;
    }
    return fd;
}

/* A path below dirfd that does not exist: a dangling symlink (its own name
 * is there, its target is not) or nothing at all. */
static bool is_dangling(int dirfd, const char *rel)
{
    struct stat st;
    return fstatat(dirfd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

int trust_read_limited(int dirfd, const char *rel, size_t max, const char *setting, struct buf *out,
                       char *err, size_t errlen)
{
    struct stat st;
    int fd = trust_open_beneath(dirfd, rel, err, errlen);
    if (fd == -2 && is_dangling(dirfd, rel)) {
        util_errf(err, errlen, "%s: dangling symlink (its target does not exist)", rel);
        return -1;
    }
    if (fd < 0)
        return fd;
    int rc = -1;
    char sub[256];
    /* name the setting that set max, or say that none did */
    const char *why = !setting ? "a fixed limit: no setting changes it" : *setting ? setting : NULL;
    if (fstat(fd, &st) < 0) {
        util_errf(err, errlen, "%s: %s", rel, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        util_errf(err, errlen, "%s: is %s, not a regular file", rel, util_file_kind(st.st_mode));
        goto out;
    }
    if ((uint64_t)st.st_size > max) {
        if (why)
            util_errf(err, errlen, "%s: %lld bytes, over the limit of %zu bytes (%s)", rel,
                      (long long)st.st_size, max, why);
        else
            util_errf(err, errlen, "%s: %lld bytes, over the limit of %zu bytes", rel,
                      (long long)st.st_size, max);
        goto out;
    }
    fcntl(fd, F_SETFL, 0);
    if (util_read_fd(fd, max, out, sub, sizeof sub) < 0) {
        if (why)
            util_errf(err, errlen, "%s: %s (%s)", rel, sub, why);
        else
            util_errf(err, errlen, "%s: %s", rel, sub);
        goto out;
    }
    rc = 0;
out:
    close(fd);
    return rc;
}

int trust_read_beneath(int dirfd, const char *rel, size_t max, struct buf *out, char *err,
                       size_t errlen)
{
    return trust_read_limited(dirfd, rel, max, "", out, err, errlen);
}

int trust_read_checked(int dirfd, const struct trust_file *f, size_t max, struct buf *out,
                       char *err, size_t errlen)
{
    uint8_t h[32];
    int rc = trust_read_limited(dirfd, f->path, max, "limits.file_bytes", out, err, errlen);
    if (rc == -2)
        util_errf(err, errlen, "%s: listed in the manifest but missing", f->path);
    if (rc < 0)
        goto fail;
    if (out->len != f->size) {
        util_errf(err, errlen, "%s: %zu bytes, the manifest says %llu", f->path, out->len,
                  (unsigned long long)f->size);
        goto fail;
    }
    crypto_generichash(h, 32, (const uint8_t *)out->data, out->len, NULL, 0);
    if (sodium_memcmp(h, f->hash, 32) != 0) {
        util_errf(err, errlen, "%s: BLAKE2b-256 hash does not match the manifest", f->path);
        goto fail;
    }
    return 0;
fail:
    buf_free(out);
    return -1;
}

struct walk {
    char **paths;
    size_t n;
    struct trust_problems *p;
};

static void walk_dir(int rootfd, int dfd, const char *prefix, int depth, struct walk *w)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        trust_problem_add(w->p, "%s: %s", prefix, strerror(errno));
        close(dfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        struct buf rel = {0};
        struct stat st;
        buf_printf(&rel, "%s/%s", prefix, e->d_name);
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            trust_problem_add(w->p, "%s: %s", rel.data, strerror(errno));
        } else if (!trust_valid_rel(rel.data)) {
            trust_problem_add(w->p, "%s: file name not allowed in a bundle (only [A-Za-z0-9_.+@-])",
                              rel.data);
        } else if (S_ISDIR(st.st_mode)) {
            int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (depth >= WALK_DEPTH_MAX)
                trust_problem_add(w->p, "%s: directories nested too deeply", rel.data);
            else if (sub < 0)
                trust_problem_add(w->p, "%s: %s", rel.data, strerror(errno));
            else {
                walk_dir(rootfd, sub, rel.data, depth + 1, w);
                sub = -1;
            }
            if (sub >= 0)
                close(sub);
        } else if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) {
            bool ok = true;
            if (S_ISLNK(st.st_mode)) {
                char err[300];
                int fd = trust_open_beneath(rootfd, rel.data, err, sizeof err);
                struct stat ts;
                if (fd < 0) {
                    if (fd == -2)
                        trust_problem_add(w->p, "%s: dangling symlink (its target does not exist)",
                                          rel.data);
                    else
                        trust_problem_add(w->p, "%s", err);
                    ok = false;
                } else if (fstat(fd, &ts) < 0 || !S_ISREG(ts.st_mode)) {
                    trust_problem_add(w->p, "%s: symlink to something other than a regular file",
                                      rel.data);
                    ok = false;
                }
                if (fd >= 0)
                    close(fd);
            }
            if (ok) {
                w->paths = xrealloc(w->paths, (w->n + 1) * sizeof *w->paths);
                w->paths[w->n++] = rel.data;
                rel.data = NULL;
            }
        } else {
            trust_problem_add(w->p, "%s: is %s, not a regular file or directory", rel.data,
                              util_file_kind(st.st_mode));
        }
        buf_free(&rel);
    }
    closedir(d);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every file below handlers/ and lua/, sorted; problems for what cannot be
 * part of a bundle. */
static void walk_bundle(int rootfd, struct walk *w)
{
    static const char *const tops[] = {"handlers", "lua"};
    for (int i = 0; i < 2; i++) {
        struct stat st;
        if (fstatat(rootfd, tops[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (!S_ISDIR(st.st_mode)) {
            trust_problem_add(w->p, "%s: not a directory", tops[i]);
            continue;
        }
        int fd = openat(rootfd, tops[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            trust_problem_add(w->p, "%s: %s", tops[i], strerror(errno));
        else
            walk_dir(rootfd, fd, tops[i], 0, w);
    }
    if (w->n)
        qsort(w->paths, w->n, sizeof *w->paths, cmp_str);
}

static void walk_free(struct walk *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->paths[i]);
    free(w->paths);
}

int trust_manifest_build(struct trust_manifest *m, const char *dir, size_t max_file,
                         struct trust_problems *p)
{
    struct walk w = {0};
    w.p = p;
    size_t before = p->n;
    int rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) {
        trust_problem_add(p, "%s: %s", dir, strerror(errno));
        return -1;
    }
    walk_bundle(rootfd, &w);
    m->files = xmalloc((w.n ? w.n : 1) * sizeof *m->files);
    m->nfiles = 0;
    for (size_t i = 0; i < w.n; i++) {
        struct buf b = {0};
        char err[300];
        if (trust_read_limited(rootfd, w.paths[i], max_file, "limits.file_bytes", &b, err,
                               sizeof err) < 0) {
            trust_problem_add(p, "%s", err);
        } else {
            struct trust_file *f = &m->files[m->nfiles++];
            f->path = xstrdup(w.paths[i]);
            f->size = b.len;
            crypto_generichash(f->hash, 32, (const uint8_t *)b.data, b.len, NULL, 0);
        }
        buf_free(&b);
    }
    walk_free(&w);
    close(rootfd);
    return p->n == before ? 0 : -1;
}

int trust_check_files(int rootfd, const struct trust_manifest *m, size_t max_file,
                      struct trust_problems *p)
{
    size_t before = p->n;
    struct walk w = {0};
    w.p = p;
    for (size_t i = 0; i < m->nfiles; i++) {
        struct buf b = {0};
        char err[400];
        if (trust_read_checked(rootfd, &m->files[i], max_file, &b, err, sizeof err) < 0)
            trust_problem_add(p, "%s", err);
        buf_free(&b);
    }
    walk_bundle(rootfd, &w);
    for (size_t i = 0; i < w.n; i++)
        if (!trust_manifest_find(m, w.paths[i]))
            trust_problem_add(p, "%s: not listed in the manifest", w.paths[i]);
    walk_free(&w);
    return (int)(p->n - before);
}

/* ------------------------------------------------------ trust and threshold */

int trust_keyset_load(struct trust_keyset *ks, const struct config *cfg, char *err, size_t errlen)
{
    size_t n = 0;
    char *const *list = config_list(cfg, "trust.keys", &n);
    memset(ks, 0, sizeof *ks);
    ks->threshold = config_int(cfg, "trust.threshold");
    ks->keys = xmalloc((n ? n : 1) * sizeof *ks->keys);
    for (size_t i = 0; i < n; i++) {
        char sub[300];
        const char *e = list[i];
        int rc;
        /* A key string, also when mistyped (RW and base64, and no file of
         * that name): its error then says what is wrong with the key, not
         * that no such file exists. */
        if (strncmp(e, "RW", 2) == 0 && strspn(e, B64_CHARS) == strlen(e) &&
            (strlen(e) == PK_B64 || access(e, F_OK) != 0)) {
            rc = trust_pubkey_parse(&ks->keys[i], e, strlen(e), sub, sizeof sub);
        } else {
            struct buf b = {0};
            rc = util_read_regular(e, 4096, &b, sub, sizeof sub) == UTIL_OPEN_OK ? 0 : -1;
            if (rc == 0)
                rc = trust_pubkey_parse(&ks->keys[i], b.data, b.len, sub, sizeof sub);
            buf_free(&b);
        }
        if (rc < 0) {
            util_errf(err, errlen, "trust.keys[%zu] (%s): %s", i + 1, e, sub);
            trust_keyset_free(ks);
            return -1;
        }
        ks->n++;
    }
    return 0;
}

void trust_keyset_free(struct trust_keyset *ks)
{
    free(ks->keys);
    memset(ks, 0, sizeof *ks);
}

/* Count key i once: false if an earlier counted key has the same Ed25519
 * public key (the key id is random and not signed, so it does not count). */
static bool distinct_add(const struct trust_keyset *ks, bool *counted, size_t i)
{
    for (size_t k = 0; k < ks->n; k++)
        if (counted[k] && memcmp(ks->keys[k].pk, ks->keys[i].pk, 32) == 0)
            return false;
    counted[i] = true;
    return true;
}

#define SIGFILE_MAX (2 * COMMENT_MAX + TRUSTED_MAX + 512)

/* What one signature file is worth. */
enum sigfile {
    SIGFILE_VALID,     /* a trusted key verified it (*key says which) */
    SIGFILE_MISSING,   /* no such file */
    SIGFILE_INVALID,   /* unreadable, malformed, misnamed or does not verify */
    SIGFILE_UNTRUSTED, /* well formed, by a key id no trusted key has */
};

/* One file serfhand reads for a trusted key, and that key's id. */
struct signame {
    char name[TRUST_SIGNAME_MAX];
    uint8_t keyid[8];
};

static int cmp_signame(const void *a, const void *b)
{
    return strcmp(((const struct signame *)a)->name, ((const struct signame *)b)->name);
}

/* The signature files of the trusted keys: for each key its key-id names
 * (16 digits, minisign's short form) and its key name; sorted, each once
 * (keys sharing an id share its key-id names). */
static size_t sig_candidates(const struct trust_keyset *ks, struct signame **out)
{
    struct signame *v = xmalloc((3 * ks->n + 1) * sizeof *v);
    size_t n = 0, m = 0;
    for (size_t i = 0; i < ks->n; i++) {
        char names[2][TRUST_SIGNAME_MAX];
        int nn = trust_sig_names(ks->keys[i].keyid, names);
        for (int j = 0; j < nn; j++) {
            memcpy(v[n].name, names[j], TRUST_SIGNAME_MAX);
            memcpy(v[n++].keyid, ks->keys[i].keyid, 8);
        }
        trust_sig_keyname(&ks->keys[i], v[n].name);
        memcpy(v[n++].keyid, ks->keys[i].keyid, 8);
    }
    if (n)
        qsort(v, n, sizeof *v, cmp_signame);
    for (size_t i = 0; i < n; i++)
        if (m == 0 || strcmp(v[m - 1].name, v[i].name) != 0)
            v[m++] = v[i];
    *out = v;
    return m;
}

void trust_sig_files(const struct trust_keyset *ks, struct trust_problems *names)
{
    struct signame *v;
    size_t n = sig_candidates(ks, &v);
    for (size_t i = 0; i < n; i++)
        trust_problem_add(names, "%s", v[i].name);
    free(v);
}

bool trust_sig_fullname(const char *name, char full[TRUST_SIGNAME_MAX])
{
    size_t l = strlen(name);
    if (l <= 22 || strncmp(name, "MANIFEST.json.", 14) != 0 || strcmp(name + l - 8, ".minisig"))
        return false;
    size_t digits = l - 22;
    if (digits >= 16)
        return false;
    for (size_t i = 14; i < l - 8; i++)
        if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'A' && name[i] <= 'F')))
            return false;
    snprintf(full, TRUST_SIGNAME_MAX, "MANIFEST.json.%.*s%.*s.minisig", (int)(16 - digits),
             "0000000000000000", (int)digits, name + 14);
    return true;
}

/* Check one signature file: it must be by keyid (the id its name is for;
 * NULL: the id the name spells, if it spells one) and verify under a trusted
 * key with that id. Every trusted key with the id is tried, not only the
 * first: two keys may share one. */
static enum sigfile check_sigfile(int rootfd, const char *name, const uint8_t *keyid,
                                  const char *man, size_t len, const struct trust_keyset *ks,
                                  size_t *key, char *err, size_t errlen)
{
    struct buf b = {0};
    struct trust_sig s = {0};
    char sub[300], id[17];
    enum sigfile rc = SIGFILE_INVALID;
    int r = trust_read_limited(rootfd, name, SIGFILE_MAX, NULL, &b, sub, sizeof sub);
    if (r < 0) {
        util_errf(err, errlen, "%s", sub);
        buf_free(&b);
        return r == -2 ? SIGFILE_MISSING : SIGFILE_INVALID;
    }
    if (trust_sig_parse(&s, b.data, b.len, sub, sizeof sub) < 0) {
        util_errf(err, errlen, "%s: %s", name, sub);
        goto out;
    }
    trust_keyid_hex(s.keyid, id);
    if (!keyid) { /* MANIFEST.json.<KEYID>[-<PK>].minisig */
        char named[17] = "";
        size_t l = strlen(name) - 14 - 8;
        const char *dash = memchr(name + 14, '-', l);
        if (dash)
            l = (size_t)(dash - (name + 14));
        if (l < sizeof named) {
            memcpy(named, name + 14, l);
            named[l] = 0;
        }
        if (!trust_keyid_is(s.keyid, named)) {
            util_errf(err, errlen, "%s: signature is by key id %s, not the one in its file name",
                      name, id);
            goto out;
        }
    } else if (memcmp(s.keyid, keyid, 8) != 0) {
        util_errf(err, errlen, "%s: signature is by key id %s, not the one in its file name", name,
                  id);
        goto out;
    }
    rc = SIGFILE_UNTRUSTED;
    util_errf(err, errlen, "%s: key %s is not trusted (trust.keys)", name, id);
    for (size_t i = 0; i < ks->n; i++) {
        if (memcmp(ks->keys[i].keyid, s.keyid, 8) != 0)
            continue;
        if (trust_sig_verify(&s, &ks->keys[i], man, len, false, sub, sizeof sub) == 0) {
            *key = i;
            rc = SIGFILE_VALID;
            break;
        }
        util_errf(err, errlen, "%s: %s", name, sub);
        rc = SIGFILE_INVALID;
    }
out:
    trust_sig_free(&s);
    buf_free(&b);
    return rc;
}

static bool has_signame(const struct signame *v, size_t n, const char *name)
{
    struct signame key;
    snprintf(key.name, sizeof key.name, "%s", name);
    return strlen(name) < TRUST_SIGNAME_MAX && bsearch(&key, v, n, sizeof *v, cmp_signame);
}

/* The other MANIFEST.json.*.minisig files of the bundle (scan_all): never
 * counted, as no run reads them, but reported, and a problem when they are
 * malformed or hold a trusted key's signature under a name no run reads. */
static void report_others(int rootfd, const char *man, size_t len, const struct trust_keyset *ks,
                          const struct signame *cand, size_t ncand, struct trust_problems *lines,
                          struct trust_problems *problems, char *err, size_t errlen)
{
    int dfd = dup(rootfd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    struct dirent *e;
    char **names = NULL;
    size_t nn = 0;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        util_errf(err, errlen, "bundle: %s", strerror(errno));
        trust_problem_add(problems, "%s", err);
        return;
    }
    rewinddir(d); /* a dup shares the offset of the fd it came from */
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "MANIFEST.json.", 14) == 0 && l > 22 &&
            strcmp(e->d_name + l - 8, ".minisig") == 0 && !has_signame(cand, ncand, e->d_name)) {
            names = xrealloc(names, (nn + 1) * sizeof *names);
            names[nn++] = xstrdup(e->d_name);
        }
    }
    closedir(d);
    if (nn)
        qsort(names, nn, sizeof *names, cmp_str);
    for (size_t j = 0; j < nn; j++) {
        char sub[400], idx[17];
        size_t k = 0;
        enum sigfile r = check_sigfile(rootfd, names[j], NULL, man, len, ks, &k, sub, sizeof sub);
        if (r == SIGFILE_UNTRUSTED) {
            trust_problem_add(lines, "%s (ignored)", sub);
        } else if (r == SIGFILE_VALID) {
            char want[TRUST_SIGNAME_MAX];
            trust_keyid_hex(ks->keys[k].keyid, idx);
            trust_sig_keyname(&ks->keys[k], want);
            snprintf(sub, sizeof sub,
                     "%s: signed by trusted key %s, but no run reads this name: not counted "
                     "(name it MANIFEST.json.%s.minisig or %s)",
                     names[j], idx, idx, want);
            trust_problem_add(lines, "%s", sub);
            trust_problem_add(problems, "%s", sub);
        } else if (r == SIGFILE_INVALID) {
            trust_problem_add(lines, "%s", sub);
            trust_problem_add(problems, "%s", sub);
        }
        free(names[j]);
    }
    free(names);
}

/* Does the file name below dirfd hold a signature of man by pk's key id,
 * and does pk verify it? -1 absent or not such a signature, 0 another key's
 * (same id, pk does not verify it), 1 pk's own. */
static int sig_owner(int dirfd, const char *name, const struct trust_pubkey *pk, const char *man,
                     size_t len)
{
    struct buf b = {0};
    struct trust_sig s = {0};
    char sub[300];
    int rc = -1;
    if (trust_read_limited(dirfd, name, SIGFILE_MAX, NULL, &b, sub, sizeof sub) == 0 &&
        trust_sig_parse(&s, b.data, b.len, sub, sizeof sub) == 0 &&
        memcmp(s.keyid, pk->keyid, 8) == 0)
        rc = trust_sig_verify(&s, pk, man, len, false, sub, sizeof sub) == 0;
    trust_sig_free(&s);
    buf_free(&b);
    return rc;
}

void trust_sig_name_for(int dirfd, const struct trust_pubkey *pk, const char *man, size_t len,
                        char name[TRUST_SIGNAME_MAX], char stale[TRUST_SIGNAME_MAX])
{
    char names[2][TRUST_SIGNAME_MAX];
    int nn = trust_sig_names(pk->keyid, names);
    memcpy(name, names[0], TRUST_SIGNAME_MAX);
    stale[0] = 0;
    if (sig_owner(dirfd, names[0], pk, man, len) == 0)
        trust_sig_keyname(pk, name); /* the key-id name is another key's */
    else if (nn == 2 && sig_owner(dirfd, names[1], pk, man, len) == 1)
        memcpy(stale, names[1], TRUST_SIGNAME_MAX);
}

int trust_verify_sigs(int rootfd, const char *man, size_t len, const struct trust_keyset *ks,
                      bool scan_all, struct trust_problems *lines, struct trust_problems *problems,
                      int *distinct, char *err, size_t errlen)
{
    bool *counted = xmalloc(ks->n + 1);
    memset(counted, 0, ks->n + 1);
    struct signame *cand = NULL;
    size_t ncand = 0, nfiles = 0;
    int good = 0, rc = -1;
    char first_bad[420] = "";
    *distinct = 0;
    if (ks->n == 0) {
        util_errf(err, errlen,
                  "trust: no trusted keys configured (trust.keys); refusing the bundle");
        trust_problem_add(problems, "%s", err);
        goto out;
    }
    /* The one rule, for every command and every run: read exactly the files
     * of the trusted keys (no directory walk); a file counts for the trusted
     * key that verifies it, each distinct public key once. */
    ncand = sig_candidates(ks, &cand);
    for (size_t j = 0; j < ncand; j++) {
        char sub[400], idx[17];
        size_t k = 0;
        enum sigfile r =
            check_sigfile(rootfd, cand[j].name, cand[j].keyid, man, len, ks, &k, sub, sizeof sub);
        if (r == SIGFILE_MISSING)
            continue;
        nfiles++;
        if (r == SIGFILE_VALID) {
            trust_keyid_hex(ks->keys[k].keyid, idx);
            if (distinct_add(ks, counted, k)) {
                good++;
                trust_problem_add(lines, "%s: valid, trusted key %s (trust.keys[%zu])",
                                  cand[j].name, idx, k + 1);
            } else {
                trust_problem_add(lines,
                                  "%s: valid, but the same public key already signed: "
                                  "counted once",
                                  cand[j].name);
            }
            continue;
        }
        trust_problem_add(lines, "%s", sub);
        trust_problem_add(problems, "%s", sub);
        if (!first_bad[0])
            snprintf(first_bad, sizeof first_bad, "; %s", sub);
    }
    if (scan_all) {
        size_t before = lines ? lines->n : 0;
        report_others(rootfd, man, len, ks, cand, ncand, lines, problems, err, errlen);
        if (nfiles == 0 && (!lines || lines->n == before))
            trust_problem_add(lines, "no signature files (MANIFEST.json.<KEYID>.minisig)");
    }
    *distinct = good;
    if (good < ks->threshold) {
        util_errf(err, errlen,
                  "signatures: %d of %lld required distinct trusted keys signed the manifest%s",
                  good, ks->threshold, first_bad);
        trust_problem_add(problems, "%s", err);
        goto out;
    }
    rc = 0;
out:
    free(cand);
    free(counted);
    return rc;
}

/* --------------------------------------------------------- whole bundle */

int trust_check_bundle(struct trust_report *r, const char *dir, const struct trust_keyset *ks,
                       size_t max_file, int64_t now_s)
{
    struct buf man = {0};
    char err[600];
    memset(r, 0, sizeof *r);
    r->threshold = ks->threshold;
    int rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0) {
        trust_problem_add(&r->problems, "bundle %s: %s", dir, strerror(errno));
        return (int)r->problems.n;
    }
    int rc = trust_read_limited(rootfd, "MANIFEST.json", TRUST_MANIFEST_MAX, NULL, &man, err,
                                sizeof err);
    if (rc < 0) {
        trust_problem_add(&r->problems, "%s",
                          rc == -2 ? "MANIFEST.json: missing (unsigned bundle)" : err);
        goto out;
    }
    uint8_t h[32];
    crypto_generichash(h, 32, (const uint8_t *)man.data, man.len, NULL, 0);
    trust_hex(h, 32, r->manifest_hash);
    trust_verify_sigs(rootfd, man.data, man.len, ks, true, &r->sigs, &r->problems, &r->distinct,
                      err, sizeof err);
    if (trust_manifest_parse(&r->m, man.data, man.len, err, sizeof err) < 0) {
        trust_problem_add(&r->problems, "%s", err);
        goto out;
    }
    r->have_manifest = true;
    trust_check_files(rootfd, &r->m, max_file, &r->problems);
    if (now_s >= r->m.expires)
        trust_problem_add(&r->problems, "manifest expired at %lld (now %lld): sign a new version",
                          r->m.expires, (long long)now_s);
out:
    buf_free(&man);
    close(rootfd);
    return (int)r->problems.n;
}

void trust_report_free(struct trust_report *r)
{
    trust_manifest_free(&r->m);
    trust_problems_free(&r->sigs);
    trust_problems_free(&r->problems);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------ passwords */

int trust_password(const char *prompt, bool confirm, char **out, char *err, size_t errlen)
{
    const size_t max = 1024;
    char *pw = NULL, *again = NULL;
    const char *env = getenv("SERFHAND_PASSWORD");
    *out = NULL;
    if (trust_init() < 0 || !(pw = sodium_malloc(max)) || !(again = sodium_malloc(max))) {
        util_errf(err, errlen, "password: out of memory");
        goto fail;
    }
    if (env) {
        if (strlen(env) >= max) {
            util_errf(err, errlen, "password: SERFHAND_PASSWORD too long");
            goto fail;
        }
        strcpy(pw, env);
        sodium_free(again);
        *out = pw;
        return 0;
    }
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        util_errf(err, errlen, "password: no terminal (set SERFHAND_PASSWORD for scripts)");
        goto fail;
    }
    for (int round = 0; round < (confirm ? 2 : 1); round++) {
        char *dst = round ? again : pw;
        struct termios old, quiet;
        bool tio = tcgetattr(fd, &old) == 0;
        if (tio) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(fd, TCSAFLUSH, &quiet);
        }
        const char *pr = round ? "Password (again): " : prompt;
        if (write(fd, pr, strlen(pr)) < 0) { /* best effort */
        }
        size_t n = 0;
        char c;
        ssize_t r;
        while ((r = read(fd, &c, 1)) == 1 && c != '\n' && c != '\r')
            if (n + 1 < max)
                dst[n++] = c;
        dst[n] = 0;
        if (tio)
            tcsetattr(fd, TCSAFLUSH, &old);
        if (write(fd, "\n", 1) < 0) {
        }
        if (r < 0) {
            close(fd);
            util_errf(err, errlen, "password: %s", strerror(errno));
            goto fail;
        }
    }
    close(fd);
    if (confirm && strcmp(pw, again) != 0) {
        util_errf(err, errlen, "password: the two passwords differ");
        goto fail;
    }
    sodium_free(again);
    *out = pw;
    return 0;
fail:
    sodium_free(pw);
    sodium_free(again);
    return -1;
}

void trust_password_free(char *pw)
{
    sodium_free(pw);
}

/* -------------------------------------------------------------- reports */

void trust_report_text(const struct trust_report *r, const char *dir, struct buf *out)
{
    buf_printf(out, "bundle      %s\n", dir);
    if (r->have_manifest) {
        buf_printf(out, "name        %s version %lld\n", r->m.bundle, r->m.version);
        buf_printf(out, "created     %lld  expires %lld\n", r->m.created, r->m.expires);
        buf_printf(out, "files       %zu listed\n", r->m.nfiles);
    }
    if (r->manifest_hash[0])
        buf_printf(out, "manifest    blake2b %s\n", r->manifest_hash);
    for (size_t i = 0; i < r->sigs.n; i++)
        buf_printf(out, "signature   %s\n", r->sigs.v[i]);
    buf_printf(out, "threshold   %d of %lld distinct trusted keys\n", r->distinct, r->threshold);
    for (size_t i = 0; i < r->problems.n; i++)
        buf_printf(out, "PROBLEM     %s\n", r->problems.v[i]);
    if (r->problems.n)
        buf_printf(out, "FAILED: %zu problem%s\n", r->problems.n, r->problems.n == 1 ? "" : "s");
    else
        buf_printf(out, "OK\n");
}

void trust_report_json(const struct trust_report *r, bool full, size_t max, struct buf *out)
{
    size_t start = out->len;
    buf_addstr(out, "{\"bundle\":");
    if (r->have_manifest) {
        trust_json_str(out, r->m.bundle);
        buf_printf(out, ",\"version\":%lld", r->m.version);
    } else {
        buf_addstr(out, "null,\"version\":null");
    }
    buf_addstr(out, ",\"manifest\":");
    trust_json_str(out, r->manifest_hash);
    buf_printf(out, ",\"ok\":%s", r->problems.n ? "false" : "true");
    if (full) {
        buf_printf(out, ",\"threshold\":%lld,\"valid_keys\":%d", r->threshold, r->distinct);
        if (r->have_manifest)
            buf_printf(out, ",\"created\":%lld,\"expires\":%lld,\"files\":%zu", r->m.created,
                       r->m.expires, r->m.nfiles);
        buf_addstr(out, ",\"signatures\":[");
        for (size_t i = 0; i < r->sigs.n; i++) {
            if (i)
                buf_addstr(out, ",");
            trust_json_str(out, r->sigs.v[i]);
        }
        buf_addstr(out, "]");
    }
    buf_addstr(out, ",\"problems\":[");
    for (size_t i = 0; i < r->problems.n; i++) {
        size_t mark = out->len;
        if (i)
            buf_addstr(out, ",");
        trust_json_str(out, r->problems.v[i]);
        if (max && out->len - start + 40 > max) {
            out->len = mark; /* drop it and say how many are left */
            out->data[out->len] = 0;
            buf_printf(out, "%s\"... %zu more\"", i ? "," : "", r->problems.n - i);
            break;
        }
    }
    buf_addstr(out, "]}");
}

void trust_report_print(const struct trust_report *r, const char *dir, bool json)
{
    struct buf out = {0};
    if (json) {
        trust_report_json(r, true, 0, &out);
        buf_addstr(&out, "\n");
    } else {
        trust_report_text(r, dir, &out);
    }
    fwrite(out.data, 1, out.len, stdout);
    buf_free(&out);
}
