/*
 * lidentity.c: require "serfhand.identity": this node's Factom identity
 * (identity.c reads it from factomd.conf). Envelope code signs host-framed
 * messages with it (never raw bytes); the secret stays in sodium_malloc memory inside a userdata
 * and never reaches Lua.
 */
#include <string.h>

#include <lauxlib.h>
#include <sodium.h>

#include "serfhand.h"

#define IDENTITY_MT "serfhand.identity"

/* Registry key of the identity cached by the module-level conveniences. */
static const char cache_key = 0;

/* ------------------------------------------------------------------ Lua */

struct identity {
    struct identity_keys k;
};

static struct identity *checkid(lua_State *L)
{
    return luaL_checkudata(L, 1, IDENTITY_MT);
}

static void push_hex(lua_State *L, const unsigned char *b, size_t n)
{
    char hex[65];

    sodium_bin2hex(hex, sizeof hex, b, n);
    lua_pushstring(L, hex);
}

/* Push a loaded identity userdata, or nil and an error; never raises after
 * the userdata exists, so the secret always has an owner. */
static int push_loaded(lua_State *L)
{
    const struct config *cfg = sandbox_config(L);
    const char *path = cfg ? config_str(cfg, "factomd.conf") : NULL;
    char err[512];

    if (path == NULL || path[0] == '\0') {
        luaL_pushfail(L);
        lua_pushliteral(L, "identity: no factomd.conf path configured");
        return 2;
    }
    struct identity *id = lua_newuserdatauv(L, sizeof *id, 0);
    memset(id, 0, sizeof *id);
    luaL_setmetatable(L, IDENTITY_MT);
    if (identity_load_file(path, &id->k, err, sizeof err) < 0) {
        lua_pop(L, 1);
        luaL_pushfail(L);
        lua_pushfstring(L, "identity: %s", err);
        return 2;
    }
    return 1;
}

/* identity.load() -> id, or nil, err */
static int l_load(lua_State *L)
{
    return push_loaded(L);
}

/* The process-wide identity for the conveniences: loaded on first use and
 * kept in the registry. Returns it, or nil, err (not cached). */
static struct identity *cached(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &cache_key) == LUA_TUSERDATA)
        return lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (push_loaded(L) != 1)
        return NULL; /* nil, err on the stack */
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &cache_key);
    return lua_touserdata(L, -1);
}

/* Sign "serfhand/1\n" .. context .. "\n" .. msg (args ctxarg, ctxarg+1).
 * There is deliberately no way to sign raw bytes: a raw Ed25519 signature
 * by the authority key could be replayed into factomd's own protocol. */
static int sign_framed(lua_State *L, struct identity *id, int ctxarg)
{
    size_t clen, mlen, flen;
    const char *ctx = luaL_checklstring(L, ctxarg, &clen);
    const char *msg;
    unsigned char sig[crypto_sign_BYTES], *scratch;
    char err[128];

    if (lua_type(L, ctxarg + 1) != LUA_TSTRING)
        return luaL_typeerror(L, ctxarg + 1, "string");
    msg = lua_tolstring(L, ctxarg + 1, &mlen);
    luaL_argcheck(L, identity_context_ok(ctx, clen), ctxarg,
                  "context must match [a-z0-9][a-z0-9._-]{0,63}");
    if (id->k.sk == NULL)
        return luaL_error(L, "identity: key is closed");
    flen = identity_frame_len(clen, mlen);
    if (flen == 0)
        return luaL_error(L, "identity: message too long");
    /* scratch is Lua memory: it counts against the cap and is collected */
    scratch = lua_newuserdatauv(L, flen, 0);
    if (identity_sign_framed(&id->k, ctx, clen, (const unsigned char *)msg, mlen, scratch, sig, err,
                             sizeof err) < 0)
        return luaL_error(L, "identity: %s", err);
    lua_pop(L, 1); /* scratch */
    lua_pushlstring(L, (const char *)sig, sizeof sig);
    return 1;
}

/* id:chain_id() -> 64 lowercase hex */
static int id_chain_id(lua_State *L)
{
    lua_pushstring(L, checkid(L)->k.chain_id);
    return 1;
}

/* id:public_key() -> 64 lowercase hex */
static int id_public_key(lua_State *L)
{
    struct identity *id = checkid(L);

    push_hex(L, id->k.pk, sizeof id->k.pk);
    return 1;
}

/* id:sign_framed(context, msg) -> 64-byte Ed25519 signature over the frame */
static int id_sign_framed(lua_State *L)
{
    return sign_framed(L, checkid(L), 2);
}

/* __gc and __close: wipe the secret, once. The public parts stay. */
static int id_close(lua_State *L)
{
    struct identity *id = checkid(L);

    if (id->k.sk != NULL) {
        sodium_free(id->k.sk);
        id->k.sk = NULL;
    }
    return 0;
}

static int id_tostring(lua_State *L)
{
    struct identity *id = checkid(L);

    lua_pushfstring(L, "identity %s%s", id->k.chain_id, id->k.sk ? "" : " (closed)");
    return 1;
}

/* identity.chain_id() -> hex, or nil, err */
static int l_chain_id(lua_State *L)
{
    struct identity *id = cached(L);

    if (id == NULL)
        return 2;
    lua_pushstring(L, id->k.chain_id);
    return 1;
}

/* identity.public_key() -> hex, or nil, err */
static int l_public_key(lua_State *L)
{
    struct identity *id = cached(L);

    if (id == NULL)
        return 2;
    push_hex(L, id->k.pk, sizeof id->k.pk);
    return 1;
}

/* identity.sign_framed(context, msg) -> signature, or nil, err */
static int l_sign_framed(lua_State *L)
{
    luaL_checkstring(L, 1);
    if (lua_type(L, 2) != LUA_TSTRING)
        return luaL_typeerror(L, 2, "string");
    struct identity *id = cached(L);
    if (id == NULL)
        return 2;
    lua_pop(L, 1); /* the cached userdata: the registry keeps it */
    return sign_framed(L, id, 1);
}

static const luaL_Reg id_methods[] = {
    {"chain_id", id_chain_id},
    {"public_key", id_public_key},
    {"sign_framed", id_sign_framed},
    {NULL, NULL},
};

static const luaL_Reg id_meta[] = {
    {"__close", id_close},
    {"__gc", id_close},
    {"__tostring", id_tostring},
    {NULL, NULL},
};

static const luaL_Reg identity_funcs[] = {
    {"chain_id", l_chain_id},       {"load", l_load}, {"public_key", l_public_key},
    {"sign_framed", l_sign_framed}, {NULL, NULL},
};

int luaopen_serfhand_identity(lua_State *L)
{
    if (sodium_init() < 0)
        return luaL_error(L, "identity: libsodium failed to initialise");
    if (luaL_newmetatable(L, IDENTITY_MT)) {
        luaL_setfuncs(L, id_meta, 0);
        luaL_newlib(L, id_methods);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, IDENTITY_MT);
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    luaL_newlib(L, identity_funcs);
    return 1;
}
