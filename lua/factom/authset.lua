-- lua/factom/authset.lua: the Factom authority set (federated + audit) with
-- each identity's block-signing key: pinned in config factomd.authorities, or
-- from factomd (`authorities` + `diagnostics.authset`; `authorities[].status`
-- on releases without `diagnostics`) cached in the store and used from the
-- cache when factomd does not answer (up to CACHE_MAX_S old). A set from
-- factomd smaller than reboot.min_authorities is refused; a change of the
-- set is logged with its diff. Used by envelope.lua and the tally.
local M = {}

M.CACHE_KEY = "authset"
-- A cached set younger than this is used without asking factomd. tick
-- refreshes the cache every minute; the set changes only with new blocks
-- (never while the chain is stalled), and a handler that can use the cache
-- neither loads libcurl nor waits for factomd.
M.FRESH_S = 300
-- When factomd does not answer, a cached set at most this old is used, and
-- none older: the set changes only with blocks, so the cache is exact while
-- the chain is stalled, but a node whose factomd has been unreachable for an
-- hour may hold a set that elections or brainswaps have changed since. One
-- hour is a proposal's longest life (envelope.MAX_LIFETIME): a set cached
-- when a proposal was made still decides it.
M.CACHE_MAX_S = 3600

local function valid_chain(s)
  return type(s) == "string" and #s == 64 and s:match("^888888%x+$") ~= nil and not s:match("%u")
end
local function valid_key(s)
  return type(s) == "string" and #s == 64 and s:match("^%x+$") ~= nil
end

local function finish(members, source, at)
  local n = 0
  for _ in pairs(members) do n = n + 1 end
  return { members = members, n = n, source = source, at = at }
end

-- parse_pinned({"CHAINID:KEYHEX", ...}) -> set | nil, err
function M.parse_pinned(list)
  local members = {}
  for i, s in ipairs(list) do
    local chain, key = tostring(s):lower():match("^(%x+):(%x+)$")
    if not chain or not valid_chain(chain) or not valid_key(key) then
      return nil, string.format("authset: factomd.authorities[%d] is not CHAINID:SIGNINGKEY (64 hex each)", i)
    end
    members[chain] = { key = key:lower(), status = "pinned" }
  end
  return finish(members, "pinned")
end

-- from_factomd(authorities, diagnostics) -> set: the identities that
-- diagnostics.authset names (leaders + audits) with their signing keys from
-- `authorities`; without an authset, the federated and audit entries.
function M.from_factomd(auths, diag, now)
  local keys, status = {}, {}
  for _, a in ipairs(auths or {}) do
    if type(a) == "table" and valid_chain(a.chainid) and valid_key(a.signingkey) then
      keys[a.chainid] = a.signingkey:lower()
      status[a.chainid] = a.status
    end
  end
  local members = {}
  local as = type(diag) == "table" and diag.authset
  if type(as) == "table" and (type(as.leaders) == "table" or type(as.audits) == "table") then
    for _, l in ipairs(type(as.leaders) == "table" and as.leaders or {}) do
      if type(l) == "table" and keys[l.id] then members[l.id] = { key = keys[l.id], status = "federated" } end
    end
    for _, l in ipairs(type(as.audits) == "table" and as.audits or {}) do
      if type(l) == "table" and keys[l.id] then members[l.id] = { key = keys[l.id], status = "audit" } end
    end
  else
    for chain, key in pairs(keys) do
      if status[chain] == "federated" or status[chain] == "audit" then
        members[chain] = { key = key, status = status[chain] }
      end
    end
  end
  return finish(members, "factomd", now)
end

local function encode_cache(set)
  local list = {}
  for chain, m in pairs(set.members) do list[#list + 1] = { chain, m.key, m.status } end
  return { at = set.at, members = list }
end

local function decode_cache(t)
  if type(t) ~= "table" or type(t.members) ~= "table" then return nil end
  local members = {}
  for _, e in ipairs(t.members) do
    if type(e) == "table" and valid_chain(e[1]) and valid_key(e[2]) then
      members[e[1]] = { key = e[2], status = e[3] }
    end
  end
  return finish(members, "cache", t.at)
end

-- diff(old, new) -> text | nil: "+added -removed ~key changed", nil when equal.
function M.diff(old, new)
  local parts = {}
  for chain, m in pairs(new.members) do
    local o = old.members[chain]
    if not o then
      parts[#parts + 1] = "+" .. chain
    elseif o.key ~= m.key then
      parts[#parts + 1] = "~" .. chain .. " (new key)"
    end
  end
  for chain in pairs(old.members) do
    if not new.members[chain] then parts[#parts + 1] = "-" .. chain end
  end
  if #parts == 0 then return nil end
  table.sort(parts)
  return table.concat(parts, " ")
end

-- too_small(set) -> err | nil: reboot.min_authorities (a pinned set is the
-- operator's own and exempt): a factomd that reports a set of 1 must not
-- make "1 of 1 votes" a decision.
local function too_small(set, config)
  local min = config.get("reboot.min_authorities")
  if set.n < min then
    return string.format("authset: %s names %d authorit%s, fewer than reboot.min_authorities (%d): refused",
      set.source, set.n, set.n == 1 and "y" or "ies", min)
  end
end

local memo

-- The diagnostics result of the last ask in this process (nil: not asked,
-- failed, or a release without it), for tick's identity check.
M.diagnostics = nil

-- Method not found: a factomd release without `diagnostics` (before 6.1.1,
-- and 6.2.0, 6.3.0, 6.3.1).
local function not_found(err)
  return type(err) == "table" and err.kind == "rpc" and err.code == -32601
end

-- Log, as a warning naming the release, that factomd answers but gives no
-- authority set (an operator must pin one or upgrade).
local function warn_no_set(factomd, o, why)
  local p = factomd.properties(o)
  local v = type(p) == "table" and type(p.factomdversion) == "string" and p.factomdversion:sub(1, 40) or "of unknown version"
  require("serfhand.log").warn(string.format("authset: factomd %s gives no authority set "
    .. "(neither diagnostics.authset nor authorities[].status): %s; pin factomd.authorities or upgrade factomd",
    v, why))
end

-- get([opts]) -> set | nil, err. opts.refresh: ask factomd even if the cache
-- is fresh; opts.cache_only: never ask factomd. The set is kept for the rest
-- of the process.
function M.get(opts)
  opts = opts or {}
  if memo and not opts.refresh then return memo end
  local config = require "serfhand.config"
  local pinned = config.get("factomd.authorities")
  if type(pinned) == "table" and #pinned > 0 then
    local set, err = M.parse_pinned(pinned)
    memo = set
    return set, err
  end
  local store = require "serfhand.store"
  local log = require "serfhand.log"
  local now = require("serfhand.time").now()
  local cached = decode_cache(store.get(M.CACHE_KEY))
  if cached and not (cached.at and now - cached.at <= M.CACHE_MAX_S and now - cached.at >= -60) then
    log.info(string.format("authset: the cached set from %s is older than %d s: not used", tostring(cached.at),
      M.CACHE_MAX_S))
    cached = nil
  end
  if cached and cached.n > 0 and too_small(cached, config) then cached = nil end
  if opts.cache_only then
    if cached and cached.n > 0 then return cached end
    return nil, "authset: no cached set (or none younger than " .. M.CACHE_MAX_S .. " s)"
  end
  if cached and not opts.refresh and cached.at and now - cached.at < M.FRESH_S and cached.n > 0 then
    memo = cached
    return cached
  end
  local factomd = require "serfhand.factomd"
  -- diagnostics sorts and hashes every balance: on a big chain it takes far
  -- longer than the hot path's calls, so tick's refresh has its own timeout
  -- (a handler that finds the cache stale keeps factomd.timeout_ms).
  local o = opts.refresh and { timeout_ms = config.get("factomd.authset_timeout_ms") } or nil
  local auths, err = factomd.authorities(o)
  local diag, derr
  if auths then diag, derr = factomd.diagnostics(o) end
  M.diagnostics = diag
  if auths and (diag or not_found(derr)) then
    local set = M.from_factomd(auths, diag, math.floor(now))
    local small = set.n > 0 and too_small(set, config)
    if small then -- and the cache, which the answer contradicts, goes too
      log.error(small)
      store.del(M.CACHE_KEY)
      return nil, small
    end
    if set.n > 0 then
      local old = decode_cache(store.get(M.CACHE_KEY))
      local d = old and old.n > 0 and M.diff(old, set)
      if d then log.warn(string.format("authset: the authority set changed (%d -> %d): %s", old.n, set.n, d)) end
      local ok, serr = store.put(M.CACHE_KEY, encode_cache(set))
      if not ok then log.warn("authset: not cached: " .. tostring(serr)) end
      memo = set
      return set
    end
    err = "factomd names no authority with a signing key"
    warn_no_set(factomd, o, err .. (diag and "" or " (no diagnostics in this release)"))
  elseif not_found(err) then
    warn_no_set(factomd, o, tostring(err))
  end
  err = tostring(err or derr)
  if cached and cached.n > 0 then
    log.info("authset: factomd did not answer (" .. err .. "); using the cached set from "
      .. tostring(cached.at))
    memo = cached
    return cached
  end
  return nil, "authset: " .. err .. " and no cached set"
end

-- quorum(n): the votes that decide: reboot.quorum, but never below a strict
-- majority (two disjoint halves could otherwise decide conflicting
-- proposals); 0 = the majority, floor(n/2) + 1.
function M.quorum(n)
  local majority = n // 2 + 1
  local q = require("serfhand.config").get("reboot.quorum")
  return math.max(q, majority)
end

-- Forget the per-process copy (tests).
function M.reset()
  memo = nil
end

return M
