-- lua/factom/envelope.lua: the signed payload of every Factom event that can
-- cause an action (DESIGN section 6, docs/protocol.md). build() signs with
-- this node's factomd identity; verify() checks format (canonical bodies
-- only), network, time, authority and signature. Replays are the caller's
-- business: every record a message leaves is keyed so that a second copy
-- changes nothing. Used by every handler of the bundle.
local crypto = require "serfhand.crypto"
local json = require "serfhand.json"

local M = {}

M.DOMAIN = "serfhand/1\n"  -- signed message = DOMAIN .. name .. "\n" .. body
M.SERF_LIMIT = 512         -- Serf's default UserEventSizeLimit (name + payload)
M.SERF_OVERHEAD = 32       -- Serf's own encoding of the event around them
M.QUERY_LIMIT = 1024       -- Serf's default QuerySizeLimit (the encoded query)
-- Serf's encoding of a query around name and payload, with the sender's
-- address (IPv6 included) and a node name of up to 64 bytes (measured: 108
-- bytes with name "q" and node "n1", reference/serf.md section 6).
M.QUERY_OVERHEAD = 120 + 64
M.MAX_LIFETIME = 3600      -- exp - iat, seconds
M.MAX_SKEW = 60            -- clocks may differ this much from the true time, both ways
M.DEFAULT_PUBKEY = "cc1985cdfae4e32b5a454dfda8ce5e1361558482684f3367649c3ad852c8e31a"
M.SIG_CHARS = 86           -- base64url of 64 bytes, no padding

local RESERVED = { net = true, id = true, by = true, iat = true, exp = true }

-- The largest payload for event `name`.
function M.budget(name)
  return M.SERF_LIMIT - M.SERF_OVERHEAD - #name
end

-- The largest payload for query `name`, without filters.
function M.query_budget(name)
  return M.QUERY_LIMIT - M.QUERY_OVERHEAD - #name
end

-- The exact bytes that are signed.
function M.message(name, body)
  return M.DOMAIN .. name .. "\n" .. body
end

-- digest(name, body) -> hex: BLAKE2b-256 of the signed message. A proposal
-- is named by it (its `ph`) everywhere: votes sign it, so two versions of
-- one proposal id can never share votes.
function M.digest(name, body)
  return crypto.hex(crypto.blake2b(M.message(name, body)))
end

M.SHORT_HEX = 12 -- a digest in a human log line: its first 12 hex, as git shortens a commit
-- short(ph) -> the first SHORT_HEX characters of a digest, for human log
-- lines and messages only: store keys, records, the executor's argv and
-- `propose` output keep all 64. Anything that is not a string is shown as
-- tostring shows it.
function M.short(ph)
  if type(ph) ~= "string" then return tostring(ph) end
  return ph:sub(1, M.SHORT_HEX)
end

-- Compact JSON with the keys sorted; values are strings, integers or booleans.
function M.encode_body(t)
  if type(t) ~= "table" then error("envelope: body must be a table", 2) end
  local keys = {}
  for k in pairs(t) do
    if type(k) ~= "string" then error("envelope: body keys must be strings", 2) end
    keys[#keys + 1] = k
  end
  table.sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do
    local v, s = t[k], nil
    if type(v) == "string" then
      s = json.encode(v)
    elseif math.type(v) == "integer" then
      s = string.format("%d", v)
    elseif type(v) == "boolean" then
      s = tostring(v)
    else
      error("envelope: field '" .. k .. "' must be a string, an integer or a boolean", 2)
    end
    parts[i] = json.encode(k) .. ":" .. s
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- vote_id(ph): the id of every vote on proposal ph. Votes are deterministic
-- (id from ph, iat and exp from the proposal), so that a vote's body can be
-- rebuilt from ph, voter, iat and exp (factom.ballot carries votes as
-- signatures only).
function M.vote_id(ph)
  return crypto.hex(crypto.blake2b("serfhand/vote-id\n" .. ph, 16))
end

-- vote_body(ph, by, iat, exp, net): the exact body such a vote signs.
function M.vote_body(ph, by, iat, exp, net)
  return M.encode_body({ by = by, exp = exp, iat = iat, id = M.vote_id(ph), net = net, ph = ph })
end

local function now_s()
  return math.floor(require("serfhand.time").now())
end

-- build(name, fields, [opts]) -> payload, body, text | nil, err
-- opts: now (unix s), ttl (s, 1..3600, default 900), net (default config
-- factomd.network), id (hex), signer ({chain_id = fn, sign_framed = fn(name,
-- body)} or {chain_id = fn, sign = fn(message)}, default serfhand.identity),
-- max (bytes, default the event budget of name).
function M.build(name, fields, opts)
  opts = opts or {}
  if type(name) ~= "string" or not name:match("^[A-Za-z0-9][A-Za-z0-9_.-]*$") then
    error("envelope: bad event name", 2)
  end
  if type(fields) ~= "table" then error("envelope: fields must be a table", 2) end
  local ttl = opts.ttl or 900
  if math.type(ttl) ~= "integer" or ttl < 1 or ttl > M.MAX_LIFETIME then
    error("envelope: ttl must be an integer from 1 to 3600 seconds", 2)
  end
  local body = {}
  for k, v in pairs(fields) do
    if RESERVED[k] then error("envelope: field '" .. tostring(k) .. "' is reserved", 2) end
    body[k] = v
  end
  local signer = opts.signer or require("serfhand.identity")
  local by, err = signer.chain_id()
  if not by then return nil, err end
  local now = opts.now or now_s()
  body.net = opts.net or require("serfhand.config").get("factomd.network")
  body.id = opts.id or crypto.hex(crypto.random(8))
  body.by = by
  body.iat = now
  body.exp = now + ttl
  local text = M.encode_body(body)
  local sig
  -- serfhand.identity signs only host-framed messages (DESIGN 4b): it adds
  -- DOMAIN .. name .. "\n" itself. A test signer may sign the whole message.
  if signer.sign_framed then
    sig, err = signer.sign_framed(name, text)
  else
    sig, err = signer.sign(M.message(name, text))
  end
  if not sig then return nil, err end
  local payload = crypto.b64url(sig) .. "." .. text
  local max = opts.max or M.budget(name)
  if #payload > max then
    return nil, string.format("envelope: payload of %d bytes is over the budget of %d bytes for %s",
      #payload, max, name)
  end
  return payload, body, text
end

local function is_int(v) return math.type(v) == "integer" end

-- canonical(text) -> body | nil, reason: text must be exactly what
-- encode_body makes of what it decodes to: a flat object, keys sorted, no
-- spaces, no duplicate keys, integers written as integers (no `1.0`, no
-- `1e3`), no floats, null, arrays or nested objects, strings in lua-cjson's
-- own escaping. Comparing the re-encoding byte for byte catches all of it,
-- a duplicate key too (lua-cjson silently keeps the last one), so every
-- signed body has exactly one meaning.
function M.canonical(text)
  local body = json.decode(text)
  if type(body) ~= "table" then return nil, "body is not a JSON object" end
  for k, v in pairs(body) do
    if type(k) ~= "string" then return nil, "body is not a JSON object" end
    if not (type(v) == "string" or type(v) == "boolean" or is_int(v)) then
      return nil, "field " .. json.encode(k:sub(1, 32)) .. " is not a string, an integer or a boolean"
    end
  end
  if M.encode_body(body) ~= text then
    return nil, "body is not canonical (sorted keys, no spaces, no duplicate keys, plain integers)"
  end
  return body
end

-- parse(payload) -> sig, bodytext, body | nil, reason (format checks only)
function M.parse(payload)
  if type(payload) ~= "string" then return nil, "payload is not a string" end
  if #payload > M.SERF_LIMIT then return nil, "payload longer than " .. M.SERF_LIMIT .. " bytes" end
  local sig64, text = payload:match("^([A-Za-z0-9_-]+)%.({.*})$")
  if not sig64 or #sig64 ~= M.SIG_CHARS then return nil, "not <signature>.<json body>" end
  local sig = crypto.unb64url(sig64)
  if not sig or #sig ~= 64 then return nil, "signature is not base64url of 64 bytes" end
  local body, why = M.canonical(text)
  if not body then return nil, why end
  if type(body.net) ~= "string" then return nil, "net missing" end
  if type(body.id) ~= "string" or not body.id:match("^%x+$") or #body.id < 16 or #body.id > 64
      or body.id:match("%u") then
    return nil, "id must be 16 to 64 lowercase hex digits"
  end
  if type(body.by) ~= "string" or #body.by ~= 64 or not body.by:match("^888888%x+$")
      or body.by:match("%u") then
    return nil, "by must be an identity chain id (64 lowercase hex, 888888...)"
  end
  if not is_int(body.iat) or not is_int(body.exp) then return nil, "iat and exp must be integers" end
  return sig, text, body
end

-- check_times(iat, exp, now) -> nil | reason, kind: verification steps 3-5
-- (lifetime, not from the future, not expired), also for vote bundles. The
-- skew holds both ways: a receiver MAX_SKEW behind the signer still takes a
-- fresh message, one MAX_SKEW ahead still takes a message that has not
-- expired by the signer's clock.
function M.check_times(iat, exp, now)
  if exp <= iat or exp - iat > M.MAX_LIFETIME then
    return string.format("lifetime exp-iat = %d s is not within 1..%d", exp - iat, M.MAX_LIFETIME),
      "lifetime"
  end
  if iat > now + M.MAX_SKEW then
    return string.format("issued %d s in the future", math.floor(iat - now)), "future"
  end
  if exp <= now - M.MAX_SKEW then
    return string.format("expired %d s ago", math.floor(now - exp)), "expired"
  end
  return nil
end

-- verify(name, payload, [ctx]) -> body, text | nil, reason, kind
-- kind: "malformed", "network", "expired", "future", "lifetime",
-- "unauthorized", "forged" or "error". ctx (all optional): now, net,
-- authset (a function returning the set or nil, err). Nothing is written:
-- a second copy verifies again, and each caller keys what it records so
-- that the copy changes nothing (docs/protocol.md section 2).
function M.verify(name, payload, ctx)
  ctx = ctx or {}
  local sig, text, body = M.parse(payload)
  if not sig then return nil, text, "malformed" end
  local net = ctx.net or require("serfhand.config").get("factomd.network")
  if body.net ~= net then
    return nil, string.format("network %q is not ours (%q)", body.net, net), "network"
  end
  local now = ctx.now or require("serfhand.time").now()
  local why, kind = M.check_times(body.iat, body.exp, now)
  if why then return nil, why, kind end
  local set, err = (ctx.authset or require("factom.authset").get)()
  if not set then return nil, "no authority set: " .. tostring(err), "error" end
  local m = set.members[body.by]
  if not m then return nil, "signer " .. body.by .. " is not in the authority set", "unauthorized" end
  if m.key == M.DEFAULT_PUBKEY then
    return nil, "signer " .. body.by .. " uses factomd's public default key", "unauthorized"
  end
  local pk = crypto.unhex(m.key)
  if not pk or not crypto.ed25519_verify(sig, M.message(name, text), pk) then
    return nil, "bad signature by " .. body.by, "forged"
  end
  return body, text
end

return M
