/*
 * lcrypto.c: require "serfhand.crypto": hashes (BLAKE2b, SHA-256), hex and
 * base64 codecs, random bytes and Ed25519 over libsodium. Handlers use it to
 * check authority envelopes; secret keys stay in sodium_malloc memory inside
 * a userdata and are wiped on __close/__gc.
 */
#include <string.h>

#include <lauxlib.h>
#include <sodium.h>

#include "serfhand.h"

#define SECRET_KEY_MT "serfhand.crypto.secret_key"
#define RANDOM_MAX (1024 * 1024)

/* An Ed25519 secret key: sk is libsodium's 64 bytes (seed || pk) in
 * sodium_malloc memory, NULL once closed. */
struct secret_key {
    unsigned char *sk;
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
};

/* A string argument, strictly: numbers are not converted. */
static const char *checkbytes(lua_State *L, int arg, size_t *len)
{
    if (lua_type(L, arg) != LUA_TSTRING)
        luaL_typeerror(L, arg, "string");
    return lua_tolstring(L, arg, len);
}

static int fail(lua_State *L, const char *msg)
{
    luaL_pushfail(L);
    lua_pushstring(L, msg);
    return 2;
}

/* blake2b(data, [outlen=32], [key]) -> raw digest */
static int c_blake2b(lua_State *L)
{
    size_t len, keylen = 0;
    const char *data = checkbytes(L, 1, &len);
    lua_Integer outlen = luaL_optinteger(L, 2, 32);
    const char *key = NULL;
    unsigned char out[crypto_generichash_BYTES_MAX];

    luaL_argcheck(L,
                  outlen >= crypto_generichash_BYTES_MIN && outlen <= crypto_generichash_BYTES_MAX,
                  2, "digest length must be 16..64");
    if (!lua_isnoneornil(L, 3)) {
        key = checkbytes(L, 3, &keylen);
        luaL_argcheck(L,
                      keylen >= crypto_generichash_KEYBYTES_MIN &&
                          keylen <= crypto_generichash_KEYBYTES_MAX,
                      3, "key length must be 16..64 bytes");
    }
    crypto_generichash(out, (size_t)outlen, (const unsigned char *)data, len,
                       (const unsigned char *)key, keylen);
    lua_pushlstring(L, (const char *)out, (size_t)outlen);
    return 1;
}

/* sha256(data) -> raw 32 bytes */
static int c_sha256(lua_State *L)
{
    size_t len;
    const char *data = checkbytes(L, 1, &len);
    unsigned char out[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(out, (const unsigned char *)data, len);
    lua_pushlstring(L, (const char *)out, sizeof out);
    return 1;
}

/* hex(bytes) -> lowercase hex */
static int c_hex(lua_State *L)
{
    size_t len;
    const char *data = checkbytes(L, 1, &len);
    luaL_Buffer b;

    luaL_argcheck(L, len < ((size_t)-1) / 2, 1, "too long");
    char *out = luaL_buffinitsize(L, &b, len * 2 + 1);
    sodium_bin2hex(out, len * 2 + 1, (const unsigned char *)data, len);
    luaL_pushresultsize(&b, len * 2);
    return 1;
}

/* unhex(hex) -> bytes, or nil, err on odd length or a non-hex character */
static int c_unhex(lua_State *L)
{
    size_t len, outlen = 0;
    const char *hex = checkbytes(L, 1, &len);
    luaL_Buffer b;

    if (len % 2 != 0)
        return fail(L, "crypto: invalid hex (odd length)");
    char *out = luaL_buffinitsize(L, &b, len / 2 + 1);
    if (sodium_hex2bin((unsigned char *)out, len / 2 + 1, hex, len, NULL, &outlen, NULL) != 0 ||
        outlen != len / 2)
        return fail(L, "crypto: invalid hex");
    luaL_pushresultsize(&b, outlen);
    return 1;
}

static int b64_encode(lua_State *L, int variant)
{
    size_t len;
    const char *data = checkbytes(L, 1, &len);
    luaL_Buffer b;

    luaL_argcheck(L, len < ((size_t)-1) / 2, 1, "too long");
    size_t cap = sodium_base64_ENCODED_LEN(len, variant);
    char *out = luaL_buffinitsize(L, &b, cap);
    sodium_bin2base64(out, cap, (const unsigned char *)data, len, variant);
    luaL_pushresultsize(&b, strlen(out));
    return 1;
}

/* Strict: no whitespace, no trailing garbage, exact padding for the original
 * variant and none for the URL variant, zero unused bits. */
static int b64_decode(lua_State *L, int variant)
{
    size_t len, outlen = 0;
    const char *s = checkbytes(L, 1, &len);
    luaL_Buffer b;

    char *out = luaL_buffinitsize(L, &b, len / 4 * 3 + 3);
    if (sodium_base642bin((unsigned char *)out, len / 4 * 3 + 3, s, len, NULL, &outlen, NULL,
                          variant) != 0)
        return fail(L, "crypto: invalid base64");
    luaL_pushresultsize(&b, outlen);
    return 1;
}

static int c_b64(lua_State *L)
{
    return b64_encode(L, sodium_base64_VARIANT_ORIGINAL);
}
static int c_unb64(lua_State *L)
{
    return b64_decode(L, sodium_base64_VARIANT_ORIGINAL);
}
static int c_b64url(lua_State *L)
{
    return b64_encode(L, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}
static int c_unb64url(lua_State *L)
{
    return b64_decode(L, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* random(n) -> n random bytes, 0 <= n <= 1 MiB */
static int c_random(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    luaL_Buffer b;

    luaL_argcheck(L, n >= 0 && n <= RANDOM_MAX, 1, "must be 0..1048576");
    char *out = luaL_buffinitsize(L, &b, (size_t)n);
    randombytes_buf(out, (size_t)n);
    luaL_pushresultsize(&b, (size_t)n);
    return 1;
}

/* ed25519_verify(sig, msg, pubkey) -> boolean; wrong lengths are false */
static int c_ed25519_verify(lua_State *L)
{
    size_t siglen, msglen, pklen;
    const char *sig = checkbytes(L, 1, &siglen);
    const char *msg = checkbytes(L, 2, &msglen);
    const char *pk = checkbytes(L, 3, &pklen);

    lua_pushboolean(L, siglen == crypto_sign_BYTES && pklen == crypto_sign_PUBLICKEYBYTES &&
                           crypto_sign_verify_detached((const unsigned char *)sig,
                                                       (const unsigned char *)msg, msglen,
                                                       (const unsigned char *)pk) == 0);
    return 1;
}

/* equal_consttime(a, b) -> boolean; the time depends only on the lengths */
static int c_equal_consttime(lua_State *L)
{
    size_t alen, blen;
    const char *a = checkbytes(L, 1, &alen);
    const char *b = checkbytes(L, 2, &blen);

    lua_pushboolean(L, alen == blen && sodium_memcmp(a, b, alen) == 0);
    return 1;
}

/* ed25519_keypair([seed]) -> secret key userdata, raw public key. The
 * userdata is created first so the sodium memory is owned by it before
 * anything else can raise. */
static int c_ed25519_keypair(lua_State *L)
{
    size_t seedlen = 0;
    const char *seed = NULL;

    if (!lua_isnoneornil(L, 1)) {
        seed = checkbytes(L, 1, &seedlen);
        luaL_argcheck(L, seedlen == crypto_sign_SEEDBYTES, 1, "seed must be 32 bytes");
    }
    struct secret_key *k = lua_newuserdatauv(L, sizeof *k, 0);
    k->sk = NULL;
    luaL_setmetatable(L, SECRET_KEY_MT);
    k->sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
    if (k->sk == NULL)
        return luaL_error(L, "crypto: out of secure memory");
    util_wipe_on_fork(k->sk, crypto_sign_SECRETKEYBYTES);
    if (seed != NULL)
        crypto_sign_seed_keypair(k->pk, k->sk, (const unsigned char *)seed);
    else
        crypto_sign_keypair(k->pk, k->sk);
    lua_pushlstring(L, (const char *)k->pk, sizeof k->pk);
    return 2;
}

static struct secret_key *checkkey(lua_State *L)
{
    return luaL_checkudata(L, 1, SECRET_KEY_MT);
}

/* sk:sign(msg) -> raw 64-byte signature */
static int sk_sign(lua_State *L)
{
    struct secret_key *k = checkkey(L);
    size_t len;
    const char *msg = checkbytes(L, 2, &len);
    unsigned char sig[crypto_sign_BYTES];

    if (k->sk == NULL)
        return luaL_error(L, "crypto: key is closed");
    crypto_sign_detached(sig, NULL, (const unsigned char *)msg, len, k->sk);
    lua_pushlstring(L, (const char *)sig, sizeof sig);
    return 1;
}

/* sk:public_key() -> raw 32 bytes (still answers after close: it is public) */
static int sk_public_key(lua_State *L)
{
    struct secret_key *k = checkkey(L);

    lua_pushlstring(L, (const char *)k->pk, sizeof k->pk);
    return 1;
}

/* __gc and __close: wipe and free the secret, once. */
static int sk_close(lua_State *L)
{
    struct secret_key *k = checkkey(L);

    if (k->sk != NULL) {
        sodium_free(k->sk); /* wipes before unmapping */
        k->sk = NULL;
    }
    return 0;
}

static int sk_tostring(lua_State *L)
{
    struct secret_key *k = checkkey(L);

    lua_pushstring(L, k->sk ? "crypto.secret_key" : "crypto.secret_key (closed)");
    return 1;
}

static const luaL_Reg sk_methods[] = {
    {"public_key", sk_public_key},
    {"sign", sk_sign},
    {NULL, NULL},
};

static const luaL_Reg sk_meta[] = {
    {"__close", sk_close},
    {"__gc", sk_close},
    {"__tostring", sk_tostring},
    {NULL, NULL},
};

static const luaL_Reg crypto_funcs[] = {
    {"b64", c_b64},
    {"b64url", c_b64url},
    {"blake2b", c_blake2b},
    {"ed25519_keypair", c_ed25519_keypair},
    {"ed25519_verify", c_ed25519_verify},
    {"equal_consttime", c_equal_consttime},
    {"hex", c_hex},
    {"random", c_random},
    {"sha256", c_sha256},
    {"unb64", c_unb64},
    {"unb64url", c_unb64url},
    {"unhex", c_unhex},
    {NULL, NULL},
};

int luaopen_serfhand_crypto(lua_State *L)
{
    /* sodium_init is idempotent and costs ~0.75 ms: paid only by handlers
     * that require a module using libsodium. */
    if (sodium_init() < 0)
        return luaL_error(L, "crypto: libsodium failed to initialise");
    if (luaL_newmetatable(L, SECRET_KEY_MT)) {
        luaL_setfuncs(L, sk_meta, 0);
        luaL_newlib(L, sk_methods);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, "serfhand.crypto.secret_key");
        lua_setfield(L, -2, "__metatable"); /* getmetatable(sk) hides the table */
    }
    lua_pop(L, 1);
    luaL_newlib(L, crypto_funcs);
    return 1;
}
