---@meta serfhand.identity
-- LuaLS annotations for require "serfhand.identity" (see docs/lua-api.md).

---@class serfhand.identity
local identity = {}

---This node's Factom identity; the secret key stays in C memory.
---@class serfhand.identity.Identity
local Identity = {}

---Identity chain id, 64 lowercase hex starting with 888888.
---@return string
function Identity:chain_id() end

---Block-signing public key, 64 lowercase hex.
---@return string
function Identity:public_key() end

---Ed25519 signature of "serfhand/1\n" .. context .. "\n" .. msg (never of
---raw bytes). context matches [a-z0-9][a-z0-9._-]{0,63}. Raises on a bad
---context and "identity: key is closed" after close.
---@param context string
---@param msg string
---@return string sig 64 raw bytes
function Identity:sign_framed(context, msg) end

---Read and check factomd.conf (config key factomd.conf) now.
---@return serfhand.identity.Identity|nil id
---@return string? err "identity: <path>: <reason>"
function identity.load() end

---Chain id of the identity loaded once per process.
---@return string|nil hex
---@return string? err
function identity.chain_id() end

---Public key (hex) of the identity loaded once per process.
---@return string|nil hex
---@return string? err
function identity.public_key() end

---Sign the host-framed message with the identity loaded once per process.
---@param context string
---@param msg string
---@return string|nil sig 64 raw bytes
---@return string? err
function identity.sign_framed(context, msg) end

return identity
