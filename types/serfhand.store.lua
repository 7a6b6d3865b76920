---@meta serfhand.store
-- LuaLS annotations for require "serfhand.store" (see docs/lua-api.md).
-- Misuse raises; database failures return nil, "store: ...".

---@class serfhand.store
local store = {}

---A stored value: a string (any bytes) or a table that encodes as JSON.
---@alias serfhand.store.Value string|table

---The value of key, or nil if absent or expired (nil, err on failure).
---A counter written by store.incr comes back as an integer.
---@param key string 1..256 bytes, no NUL
---@return serfhand.store.Value|integer|nil value
---@return string? err "store: ..."
function store.get(key) end

---Set key to value (replacing value and TTL).
---@param key string 1..256 bytes, no NUL
---@param value serfhand.store.Value at most 1 MiB (tables: encoded JSON)
---@param ttl? number seconds > 0; nil = never expires
---@return true|nil ok
---@return string? err "store: ..."
function store.put(key, value, ttl) end

---Insert only if key is absent or expired: true inserted, false already there.
---@param key string 1..256 bytes, no NUL
---@param value serfhand.store.Value at most 1 MiB
---@param ttl? number seconds > 0; nil = never expires
---@return boolean|nil inserted
---@return string? err "store: ..."
function store.add(key, value, ttl) end

---Add by to the counter at key atomically and return the new value (absent or
---expired = 0). Fails (nil, err), changing nothing, when the live value is not a
---counter (a string or table) or the sum overflows int64.
---@param key string 1..256 bytes, no NUL, not "bundle.*"
---@param by? integer default 1; may be negative
---@param ttl? number seconds > 0: the expiry of a counter this call creates
---@return integer|nil value
---@return string? err "store: ..."
function store.incr(key, by, ttl) end

---Remove key (true also if it was absent).
---@param key string 1..256 bytes, no NUL
---@return true|nil ok
---@return string? err "store: ..."
function store.del(key) end

---Number of live keys starting with prefix (plain bytes, no wildcards).
---@param prefix string 0..256 bytes, no NUL; "" = all
---@return integer|nil n
---@return string? err "store: ..."
function store.count(prefix) end

---Live keys starting with prefix, in byte order.
---@param prefix string 0..256 bytes, no NUL
---@param limit? integer 1..10000, default 100
---@return string[]|nil keys
---@return string? err "store: ..."
function store.keys(prefix, limit) end

---Run fn in one transaction (BEGIN IMMEDIATE..COMMIT) and return its results.
---If fn raises, rolls back and raises the same error. Cannot be nested.
---Returns nil, "store: ..." when the transaction could not begin or commit.
---@param fn fun(): ...
---@return any ... fn's results
function store.tx(fn) end

return store
