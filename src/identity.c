/*
 * identity.c: this node's Factom identity (IdentityChainID and the
 * LocalServerPrivKey/PublicKey pair) read from factomd.conf with gcfg's
 * rules, and factomd's RPC credentials. Plain C, used by lidentity.c (the
 * Lua binding) and lfactomd.c. The secret lives in sodium_malloc memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "serfhand.h"

#define CONF_MAX (1024 * 1024)
#define VALUE_MAX 256

/* The public key of factomd's built-in sample pair (util/config.go; its
 * private key 4c38c72f... derives it): public, never a secret. */
static const char default_pub_hex[] =
    "cc1985cdfae4e32b5a454dfda8ce5e1361558482684f3367649c3ad852c8e31a";

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}
static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
static bool is_name(char c)
{
    return is_alpha(c) || (c >= '0' && c <= '9') || c == '-';
}

/* Parse one value starting at *pp (just after '='), up to and including the
 * end of its line (or of its last continued line). If out is not NULL, write
 * the value there. Returns 0 or -1 with err. */
static int parse_value(const char **pp, const char *end, int *line, char *out, size_t outlen,
                       char *err, size_t errlen)
{
    const char *p = *pp;
    size_t w = 0, keep = 0;
    bool quoted = false;

    while (p < end && is_space(*p))
        p++;
    for (; p < end && *p != '\n'; p++) {
        char c = *p;
        bool literal = quoted; /* kept even if blank */
        if (!quoted && (c == ';' || c == '#')) {
            while (p < end && *p != '\n')
                p++;
            break;
        }
        if (c == '"') {
            quoted = !quoted;
            keep = w; /* "" counts as content: nothing before it is trimmed */
            continue;
        }
        if (c == '\\') {
            literal = true;
            if (++p >= end) {
                util_errf(err, errlen, "line %d: backslash at end of file", *line);
                return -1;
            }
            switch (*p) {
            case '\\': c = '\\'; break;
            case '"': c = '"'; break;
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'b': c = '\b'; break;
            case '\n': /* continuation: the value goes on on the next line */ (*line)++; continue;
            default: util_errf(err, errlen, "line %d: invalid escape", *line); return -1;
            }
        }
        if (out != NULL) {
            if (w + 1 >= outlen) {
                util_errf(err, errlen, "line %d: value longer than %zu bytes", *line, outlen - 1);
                return -1;
            }
            out[w] = c;
        }
        w++;
        if (literal || !is_space(c))
            keep = w; /* trailing unquoted blanks are trimmed below */
    }
    if (quoted) {
        util_errf(err, errlen, "line %d: unterminated quote", *line);
        return -1;
    }
    if (out != NULL)
        out[keep] = '\0';
    *pp = p;
    return 0;
}

int identity_conf_get(const char *text, size_t len, const char *section, const char *key, char *out,
                      size_t outlen, char *err, size_t errlen)
{
    const char *p = text, *end = text + len;
    bool in_section = false;
    int line = 1, found = 0;

    if (memchr(text, '\0', len) != NULL) {
        util_errf(err, errlen, "contains a NUL byte");
        return -1;
    }
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        p += 3;                    /* a UTF-8 byte order mark, which gcfg skips at the start */
    for (; p < end; p++, line++) { /* p is at a line start, then at its '\n' */
        while (p < end && is_space(*p))
            p++;
        if (p >= end)
            break;
        if (*p == '\n')
            continue;
        if (*p == ';' || *p == '#') {
            while (p < end && *p != '\n')
                p++;
            continue;
        }
        if (*p == '[') {
            const char *name = ++p;
            while (p < end && (is_name(*p) || *p == '.'))
                p++;
            size_t nlen = (size_t)(p - name);
            bool sub = false;
            while (p < end && is_space(*p))
                p++;
            if (p < end && *p == '"') { /* [section "subsection"] */
                sub = true;
                for (p++; p < end && *p != '"' && *p != '\n'; p++)
                    if (*p == '\\' && p + 1 < end && p[1] != '\n')
                        p++;
                if (p >= end || *p != '"') {
                    util_errf(err, errlen, "line %d: unterminated subsection name", line);
                    return -1;
                }
                p++;
            }
            if (nlen == 0 || p >= end || *p != ']') {
                util_errf(err, errlen, "line %d: invalid section header", line);
                return -1;
            }
            for (p++; p < end && is_space(*p); p++)
                ;
            if (p < end && *p != '\n' && *p != ';' && *p != '#') {
                util_errf(err, errlen, "line %d: text after section header", line);
                return -1;
            }
            while (p < end && *p != '\n')
                p++;
            in_section = !sub && nlen == strlen(section) && strncasecmp(name, section, nlen) == 0;
            continue;
        }
        if (!is_alpha(*p)) {
            util_errf(err, errlen, "line %d: invalid variable name", line);
            return -1;
        }
        const char *name = p;
        while (p < end && is_name(*p))
            p++;
        size_t nlen = (size_t)(p - name);
        bool match = in_section && nlen == strlen(key) && strncasecmp(name, key, nlen) == 0;
        while (p < end && is_space(*p))
            p++;
        if (p >= end || *p == '\n' || *p == ';' || *p == '#') {
            /* "name" alone is a boolean true in gcfg */
            while (p < end && *p != '\n')
                p++;
            if (match) {
                if (outlen < 5) {
                    util_errf(err, errlen, "line %d: value too long", line);
                    return -1;
                }
                memcpy(out, "true", 5);
                found = 1;
            }
            if (p >= end)
                break;
            continue;
        }
        if (*p != '=') {
            /* no text of the line in the message: it could be a key */
            util_errf(err, errlen, "line %d: expected '=' after the variable name", line);
            return -1;
        }
        p++;
        if (parse_value(&p, end, &line, match ? out : NULL, outlen, err, errlen) < 0)
            return -1;
        if (match)
            found = 1; /* the last definition wins, as in gcfg */
        if (p >= end)
            break;
    }
    return found;
}

/* ------------------------------------------------------ keys and checks */

static int hex_exact(const char *hex, unsigned char *bin, size_t binlen)
{
    size_t got = 0;

    if (strlen(hex) != binlen * 2)
        return -1;
    if (sodium_hex2bin(bin, binlen, hex, binlen * 2, NULL, &got, NULL) != 0 || got != binlen)
        return -1;
    return 0;
}

void identity_keys_wipe(struct identity_keys *k)
{
    if (k->sk != NULL)
        sodium_free(k->sk); /* zeroes the secret before unmapping */
    memset(k, 0, sizeof *k);
}

int identity_parse(const char *text, size_t len, struct identity_keys *k, char *err, size_t errlen)
{
    char val[VALUE_MAX], sub[200];
    char *priv = NULL;         /* hex of the secret, sodium memory */
    unsigned char *raw = NULL; /* decoded secret, sodium memory */
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], derived[crypto_sign_PUBLICKEYBYTES];
    unsigned char defpk[crypto_sign_PUBLICKEYBYTES], chain[32];
    size_t rawlen;
    int rc = -1, r;

    memset(k, 0, sizeof *k);
    priv = sodium_malloc(VALUE_MAX);
    raw = sodium_malloc(64);
    if (priv == NULL || raw == NULL) {
        util_errf(err, errlen, "out of secure memory");
        goto out;
    }

    r = identity_conf_get(text, len, "app", "IdentityChainID", val, sizeof val, sub, sizeof sub);
    if (r <= 0) {
        util_errf(err, errlen, "%s", r < 0 ? sub : "IdentityChainID missing in [app]");
        goto out;
    }
    if (hex_exact(val, chain, sizeof chain) < 0) {
        util_errf(err, errlen, "IdentityChainID is not 64 hex digits");
        goto out;
    }
    sodium_bin2hex(k->chain_id, sizeof k->chain_id, chain, sizeof chain);
    if (strncmp(k->chain_id, "888888", 6) != 0) {
        util_errf(err, errlen, "IdentityChainID %.12s... does not start with 888888", k->chain_id);
        goto out;
    }

    /* factomd never reads LocalServerPublicKey: it derives the public key
     * from LocalServerPrivKey (and fills a missing line with its sample
     * key). So do we; the line is only compared, below. */
    r = identity_conf_get(text, len, "app", "LocalServerPublicKey", val, sizeof val, sub,
                          sizeof sub);
    if (r < 0) {
        util_errf(err, errlen, "%s", sub);
        goto out;
    }
    if (r == 0)
        k->pub_line = IDENTITY_PUB_ABSENT;
    else if (hex_exact(val, pk, sizeof pk) < 0)
        k->pub_line = IDENTITY_PUB_INVALID;
    else
        k->pub_line = IDENTITY_PUB_MATCH; /* until compared below */

    r = identity_conf_get(text, len, "app", "LocalServerPrivKey", priv, VALUE_MAX, sub, sizeof sub);
    if (r <= 0) {
        util_errf(err, errlen, "%s",
                  r < 0 ? sub
                        : "LocalServerPrivKey missing in [app] (factomd would run with its "
                          "public sample key)");
        goto out;
    }
    rawlen = strlen(priv) == 128 ? 64 : 32;
    if (hex_exact(priv, raw, rawlen) < 0) {
        util_errf(err, errlen, "LocalServerPrivKey is not hex of a 32-byte seed or a 64-byte key");
        goto out;
    }

    k->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
    if (k->sk == NULL) {
        util_errf(err, errlen, "out of secure memory");
        goto out;
    }
    util_wipe_on_fork(k->sk, crypto_sign_SECRETKEYBYTES);
    crypto_sign_seed_keypair(derived, k->sk, raw);
    if (rawlen == 64 && memcmp(raw + 32, derived, 32) != 0) {
        util_errf(err, errlen,
                  "LocalServerPrivKey: its second half is not the public key of its "
                  "first (expected seed followed by public key)");
        goto out;
    }
    /* The key factomd signs with is the derived one: refuse the sample. */
    hex_exact(default_pub_hex, defpk, sizeof defpk);
    if (memcmp(derived, defpk, sizeof defpk) == 0) {
        util_errf(err, errlen,
                  "refusing the public default key of factomd's sample config "
                  "(LocalServerPrivKey gives %.8s...): set this node's own key pair",
                  default_pub_hex);
        goto out;
    }
    if (k->pub_line == IDENTITY_PUB_MATCH && memcmp(derived, pk, sizeof pk) != 0)
        k->pub_line = IDENTITY_PUB_MISMATCH;
    memcpy(pk, derived, sizeof pk);
    memcpy(k->pk, pk, sizeof pk);
    rc = 0;
out:
    sodium_free(priv);
    sodium_free(raw);
    sodium_memzero(val, sizeof val);
    if (rc < 0)
        identity_keys_wipe(k);
    return rc;
}

int identity_load_file(const char *path, struct identity_keys *k, char *err, size_t errlen)
{
    struct stat st;
    char *text = NULL; /* the whole file holds the secret: sodium memory */
    size_t len = 0;
    int rc = -1;
    char sub[200], pkhex[65];

    memset(k, 0, sizeof *k);
    if (util_read_secret(path, CONF_MAX, &text, &len, &st, err, errlen) < 0)
        return -1;
    if (st.st_mode & (S_IRGRP | S_IROTH))
        log_msg(LOG_LVL_WARN,
                "identity: %s holds a secret key but is readable by group or others "
                "(mode %04o); run chmod 600 on it",
                path, (unsigned)(st.st_mode & 07777));
    if (identity_parse(text, len, k, sub, sizeof sub) < 0) {
        util_errf(err, errlen, "%s: %s", path, sub);
        goto out;
    }
    sodium_bin2hex(pkhex, sizeof pkhex, k->pk, sizeof k->pk);
    if (k->pub_line == IDENTITY_PUB_MISMATCH || k->pub_line == IDENTITY_PUB_INVALID)
        log_msg(LOG_LVL_WARN,
                "identity: %s: LocalServerPublicKey %s; factomd ignores that line and "
                "signs with the key of LocalServerPrivKey (%.16s...), and so does serfhand: "
                "correct or delete the line",
                path,
                k->pub_line == IDENTITY_PUB_INVALID ? "is not 64 hex digits"
                                                    : "does not match LocalServerPrivKey",
                pkhex);
    rc = 0;
out:
    sodium_free(text);
    return rc;
}

int identity_rpc_auth(const char *path, char *user, size_t ulen, char *pass, size_t plen, char *err,
                      size_t errlen)
{
    struct stat st;
    char *text = NULL;
    size_t len = 0;
    char sub[200];
    int r;

    user[0] = pass[0] = '\0';
    if (util_read_secret(path, CONF_MAX, &text, &len, &st, err, errlen) < 0)
        return -1;
    r = identity_conf_get(text, len, "app", "FactomdRpcUser", user, ulen, sub, sizeof sub);
    if (r == 1 && user[0] != '\0')
        r = identity_conf_get(text, len, "app", "FactomdRpcPass", pass, plen, sub, sizeof sub);
    sodium_free(text);
    if (r < 0) {
        util_errf(err, errlen, "%s: %s", path, sub);
        sodium_memzero(pass, plen);
        user[0] = '\0';
        return -1;
    }
    return user[0] != '\0';
}

int identity_context_ok(const char *context, size_t len)
{
    if (len == 0 || len > IDENTITY_CONTEXT_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)context[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');

        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return 0;
    }
    return 1;
}

size_t identity_frame_len(size_t clen, size_t mlen)
{
    size_t head = sizeof IDENTITY_DOMAIN - 1 + clen + 1;

    return mlen > SIZE_MAX - head ? 0 : head + mlen;
}

int identity_sign_framed(const struct identity_keys *k, const char *context, size_t clen,
                         const unsigned char *msg, size_t mlen, unsigned char *scratch,
                         unsigned char *sig, char *err, size_t errlen)
{
    size_t dlen = sizeof IDENTITY_DOMAIN - 1;

    if (!identity_context_ok(context, clen)) {
        util_errf(err, errlen, "context must match [a-z0-9][a-z0-9._-]{0,63}");
        return -1;
    }
    if (k->sk == NULL) {
        util_errf(err, errlen, "key is closed");
        return -1;
    }
    /* Ed25519 signs one contiguous message: build the whole frame first. */
    memcpy(scratch, IDENTITY_DOMAIN, dlen);
    memcpy(scratch + dlen, context, clen);
    scratch[dlen + clen] = '\n';
    if (mlen > 0)
        memcpy(scratch + dlen + clen + 1, msg, mlen);
    crypto_sign_detached(sig, NULL, scratch, dlen + clen + 1 + mlen, k->sk);
    return 0;
}
