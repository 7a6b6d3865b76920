/*
 * minisign.c: minisign public keys, secret keys (scrypt-encrypted or not)
 * and signatures, made and checked with libsodium alone. Parsers are strict
 * like minisign 0.12. Used by trust.c (bundle signatures), update.c (the
 * signed update pointer), config.c (trust.keys) and keygen, sign, announce.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "serfhand.h"

#define B64_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
#define SK_B64 212
#define SIG_B64 100
#define GSIG_B64 88
#define SK_BYTES 158
#define UNTRUSTED_PREFIX "untrusted comment: "
#define TRUSTED_PREFIX "trusted comment: "
#define KDF_MEMLIMIT_MAX (2ULL * 1024 * 1024 * 1024)
#define KDF_OPSLIMIT_MAX (1ULL << 32)

int minisign_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

/* Split text into exactly want lines. Each line ends in LF, the last one
 * may lack it. CR, NUL and other control characters (except TAB, which
 * minisign's own trusted comments contain) are refused. */

void minisign_keyid_hex(const uint8_t keyid[8], char out[17])
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | keyid[i];
    snprintf(out, 17, "%016llX", (unsigned long long)v);
}

bool minisign_keyid_is(const uint8_t keyid[8], const char *hex)
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

bool minisign_looks_like_key(const char *s)
{
    return strncmp(s, "RW", 2) == 0 && strspn(s, B64_CHARS) == strlen(s);
}

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
    if (n - pl > MINISIGN_COMMENT_MAX) {
        util_errf(err, errlen, "untrusted comment longer than %d bytes", MINISIGN_COMMENT_MAX);
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

static int pubkey_from_b64(struct minisign_pubkey *pk, const char *s, size_t n, char *err,
                           size_t errlen)
{
    uint8_t raw[42];
    if (decode_b64(s, n, MINISIGN_PK_B64, raw, sizeof raw, "public key", err, errlen) < 0)
        return -1;
    if (raw[0] != 'E' || raw[1] != 'd') {
        util_errf(err, errlen, "public key: algorithm is not Ed25519 (\"Ed\")");
        return -1;
    }
    memcpy(pk->keyid, raw + 2, 8);
    memcpy(pk->pk, raw + 10, 32);
    return 0;
}

int minisign_pubkey_parse(struct minisign_pubkey *pk, const char *text, size_t len, char *err,
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

void minisign_pubkey_base64(const struct minisign_pubkey *pk, char out[57])
{
    uint8_t raw[42] = {'E', 'd'};
    memcpy(raw + 2, pk->keyid, 8);
    memcpy(raw + 10, pk->pk, 32);
    sodium_bin2base64(out, 57, raw, sizeof raw, sodium_base64_VARIANT_ORIGINAL);
}

void minisign_pubkey_write(const struct minisign_pubkey *pk, struct buf *out)
{
    char id[17], b64[57];
    minisign_keyid_hex(pk->keyid, id);
    minisign_pubkey_base64(pk, b64);
    buf_printf(out, UNTRUSTED_PREFIX "minisign public key %s\n%s\n", id, b64);
}

/* ---------------------------------------------------------- secret keys */

static void seckey_chk(const struct minisign_seckey *sk, uint8_t chk[32])
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

#define SECKEY_FILE_MAX 4096

int minisign_seckey_read(const char *path, char **text, size_t *len, char *err, size_t errlen)
{
    return util_read_secret(path, SECKEY_FILE_MAX, text, len, NULL, err, errlen);
}

int minisign_seckey_encrypted(const char *text, size_t len)
{
    uint8_t raw[SK_BYTES];
    if (seckey_raw(text, len, raw, NULL, 0) < 0)
        return -1;
    int enc = memcmp(raw + 2, "Sc", 2) == 0;
    sodium_memzero(raw, sizeof raw);
    return enc;
}

int minisign_seckey_parse(struct minisign_seckey **out, const char *text, size_t len,
                          const char *password, char *err, size_t errlen)
{
    uint8_t *raw = NULL, *stream = NULL;
    struct minisign_seckey *sk = NULL;
    int rc = -1;
    *out = NULL;
    if (minisign_init() < 0) {
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

void minisign_seckey_free(struct minisign_seckey *sk)
{
    sodium_free(sk); /* wipes */
}

void minisign_seckey_pubkey(const struct minisign_seckey *sk, struct minisign_pubkey *pk)
{
    memcpy(pk->keyid, sk->keyid, 8);
    memcpy(pk->pk, sk->sk + 32, 32);
}

int minisign_keygen(struct minisign_pubkey *pk, struct minisign_seckey **out)
{
    if (minisign_init() < 0)
        return -1;
    struct minisign_seckey *sk = sodium_malloc(sizeof *sk);
    if (!sk)
        return -1;
    uint8_t pub[32];
    randombytes_buf(sk->keyid, 8);
    crypto_sign_keypair(pub, sk->sk);
    minisign_seckey_pubkey(sk, pk);
    *out = sk;
    return 0;
}

int minisign_seckey_write(const struct minisign_seckey *sk, const char *password,
                          unsigned long long opslimit, size_t memlimit, struct buf *out, char *err,
                          size_t errlen)
{
    int rc = -1;
    uint8_t *raw = sodium_malloc(SK_BYTES), *stream = sodium_malloc(104);
    if (minisign_init() < 0 || !raw || !stream) {
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
    if (n > MINISIGN_TRUSTED_MAX) {
        util_errf(err, errlen, "trusted comment longer than %d bytes", MINISIGN_TRUSTED_MAX);
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

int minisign_sig_parse(struct minisign_sig *s, const char *text, size_t len, char *err,
                       size_t errlen)
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

void minisign_sig_free(struct minisign_sig *s)
{
    free(s->trusted);
    s->trusted = NULL;
}

int minisign_sig_verify(const struct minisign_sig *s, const struct minisign_pubkey *pk,
                        const void *msg, size_t len, bool allow_legacy, char *err, size_t errlen)
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

int minisign_sign(const struct minisign_seckey *sk, const void *msg, size_t len,
                  const char *trusted, const char *untrusted, struct buf *out, char *err,
                  size_t errlen)
{
    uint8_t h[64], raw[74] = {'E', 'D'}, global[64];
    size_t tl = strlen(trusted);
    if (check_trusted_text(trusted, tl, err, errlen) < 0)
        return -1;
    if (strchr(untrusted, '\n') || strchr(untrusted, '\r') ||
        strlen(untrusted) > MINISIGN_COMMENT_MAX) {
        util_errf(err, errlen, "untrusted comment: one line, at most %d bytes",
                  MINISIGN_COMMENT_MAX);
        return -1;
    }
    crypto_generichash(h, sizeof h, msg, len, NULL, 0);
    memcpy(raw + 2, sk->keyid, 8);
    crypto_sign_detached(raw + 10, NULL, h, sizeof h, sk->sk);
    uint8_t *g = xmalloc(64 + tl);
    memcpy(g, raw + 10, 64);
    memcpy(g + 64, trusted, tl); // NOLINT(bugprone-not-null-terminated-result): bytes signed
    crypto_sign_detached(global, NULL, g, 64 + tl, sk->sk);
    free(g);
    buf_printf(out, UNTRUSTED_PREFIX "%s\n", untrusted);
    b64_line(out, raw, sizeof raw);
    buf_printf(out, TRUSTED_PREFIX "%s\n", trusted);
    b64_line(out, global, sizeof global);
    return 0;
}
