---@meta serfhand.crypto
-- LuaLS annotations for require "serfhand.crypto" (see docs/lua-api.md).
-- All byte strings are raw (binary-safe) unless the name says hex or base64.

---@class serfhand.crypto
local crypto = {}

---An Ed25519 secret key held in sodium_malloc memory; wiped on close or collection.
---@class serfhand.crypto.SecretKey
local SecretKey = {}

---Sign msg. Raises "crypto: key is closed" after close.
---@param msg string
---@return string sig 64 raw bytes
function SecretKey:sign(msg) end

---The raw 32-byte public key (also after close).
---@return string pubkey
function SecretKey:public_key() end

---BLAKE2b digest (default 32 bytes); optional 16..64-byte key.
---@param data string
---@param outlen? integer 16..64, default 32
---@param key? string 16..64 bytes
---@return string digest raw bytes
function crypto.blake2b(data, outlen, key) end

---SHA-256 digest.
---@param data string
---@return string digest 32 raw bytes
function crypto.sha256(data) end

---Lowercase hex of bytes.
---@param bytes string
---@return string hex
function crypto.hex(bytes) end

---Decode hex (either case); nil, err on odd length or a non-hex character.
---@param hex string
---@return string|nil bytes
---@return string? err "crypto: invalid hex"
function crypto.unhex(hex) end

---Standard base64 with padding.
---@param bytes string
---@return string
function crypto.b64(bytes) end

---Strict standard base64 decoding (padding required, no whitespace).
---@param s string
---@return string|nil bytes
---@return string? err "crypto: invalid base64"
function crypto.unb64(s) end

---URL-safe base64 without padding.
---@param bytes string
---@return string
function crypto.b64url(bytes) end

---Strict URL-safe base64 decoding (no padding, no `+/`, no whitespace).
---@param s string
---@return string|nil bytes
---@return string? err "crypto: invalid base64"
function crypto.unb64url(s) end

---n random bytes, 0 <= n <= 1 MiB.
---@param n integer
---@return string
function crypto.random(n) end

---Ed25519 verification; false for wrong lengths or a bad signature.
---@param sig string 64 raw bytes
---@param msg string
---@param pubkey string 32 raw bytes
---@return boolean
function crypto.ed25519_verify(sig, msg, pubkey) end

---A key pair from a 32-byte seed, or a random one.
---@param seed? string 32 raw bytes
---@return serfhand.crypto.SecretKey sk
---@return string pubkey 32 raw bytes
function crypto.ed25519_keypair(seed) end

---Equality whose time depends only on the lengths.
---@param a string
---@param b string
---@return boolean
function crypto.equal_consttime(a, b) end

return crypto
