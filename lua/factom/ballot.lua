-- lua/factom/ballot.lua: votes in transit (docs/protocol.md section 4b).
-- Every vote travels with the signed proposal it approves, so whatever
-- reaches a node teaches it the proposal too: a bundle is the proposal's
-- envelope followed by votes, each only its signature and 2 bytes of the
-- voter's chain id. The vote's body is rebuilt from the proposal's digest
-- (envelope.vote_body) and checked against that authority's key, so a relay
-- can drop votes but never forge or alter one, nor move one to another
-- proposal. When two authorities share the 2 bytes, each is tried. The same
-- format is the relay query, the relay events and a node's own vote event.
--
-- payload = "FV2" | proposal length (2, big-endian) | proposal envelope
--           | n (1) | n x (voter chain id bytes 4..5 (2) | Ed25519 signature (64)) | "."
--         | "FV3" | the proposal envelope packed (below) | n (1) | n x (...) | "."
-- The final "." keeps the payload from ending in a newline, which Serf's
-- handler input would make ambiguous (reference/serf.md section 4).
--
-- FV3 carries the same envelope in about half the bytes, so that a relay
-- query holds 10 votes instead of 8 and two relay queries fit one gossip
-- packet (Serf gossips a query whole, one ~1400-byte UDP packet per node
-- and gossip tick: two 850-byte queries spread at half speed):
--   signature (64) | by (32) | id bytes (1 + n) | iat (4) | exp - iat (2)
--   | at - iat (2) | h (4) | flags (1: 1 = has b = 1, 2 = has h)
--   | act (1 + n) | net (1 + n)
-- The receiver rebuilds the canonical body (envelope.encode_body) and the
-- envelope from it, and checks that envelope as any other: packing drops
-- nothing and a changed byte only makes the signature fail. encode packs
-- only an envelope that comes back byte for byte; any other goes as FV2.
local crypto = require "serfhand.crypto"
local envelope = require "factom.envelope"

local M = {}

M.EVENT = "factomd-restart-votes"
M.VOTE = "factomd-restart-vote"
M.MAGIC = "FV2"
M.MAGIC_PACKED = "FV3"
M.SHORT = 2 -- bytes of the voter's chain id carried, after its 888888 prefix
M.VOTE_BYTES = M.SHORT + 64
local HEAD = #M.MAGIC + 2 + 1 + 1 -- magic, length, n, final "."
local PACKED_HEAD = #M.MAGIC_PACKED + 1 + 1 -- magic, n, final "."
-- The longest proposal envelope: one that still travels with one vote in a
-- 512-byte event (the votes event has the longer name of the two).
M.PROPOSAL_MAX = envelope.budget(M.EVENT) - HEAD - M.VOTE_BYTES

local PACKABLE = { act = true, at = true, b = true, by = true, exp = true, h = true, iat = true, id = true, net = true }
local U32, U16 = 0xffffffff, 0xffff

local function uint(v, max) return math.type(v) == "integer" and v >= 0 and v <= max end

-- unpack_proposal(p, pos) -> envelope, next | nil: the envelope rebuilt
-- from its packed form at p[pos].
local function unpack_proposal(p, pos)
  local ok, sig, by, id, iat, dexp, dat, h, flags, act, net, nxt = pcall(string.unpack, ">c64c32s1I4I2I2I4Bs1s1", p, pos)
  if not ok or flags > 3 then return nil end
  local body = { act = act, at = iat + dat, by = crypto.hex(by), exp = iat + dexp, iat = iat, id = crypto.hex(id),
    net = net, b = flags & 1 ~= 0 and 1 or nil, h = flags & 2 ~= 0 and h or nil }
  if flags & 2 == 0 and h ~= 0 then return nil end -- one packing per envelope
  return crypto.b64url(sig) .. "." .. envelope.encode_body(body), nxt
end

-- pack_proposal(env) -> bytes | nil: the packed form of envelope env, when
-- it has one that rebuilds it exactly.
local function pack_proposal(env)
  local sig, _, b = envelope.parse(env)
  if not sig then return nil end
  for k in pairs(b) do
    if not PACKABLE[k] then return nil end
  end
  local idb = type(b.id) == "string" and crypto.unhex(b.id)
  local byb = type(b.by) == "string" and crypto.unhex(b.by)
  if not (idb and byb and #byb == 32 and #idb <= 255 and type(b.act) == "string" and #b.act <= 255
        and type(b.net) == "string" and #b.net <= 255 and uint(b.iat, U32) and uint(b.exp, U32) and uint(b.at, U32)
        and uint(b.exp - b.iat, U16) and uint(b.at - b.iat, U16) and (b.b == nil or b.b == 1)
        and (b.h == nil or uint(b.h, U32))) then
    return nil
  end
  local flags = (b.b and 1 or 0) | (b.h and 2 or 0)
  local packed = string.pack(">c64c32s1I4I2I2I4Bs1s1", sig, byb, idb, b.iat, b.exp - b.iat, b.at - b.iat, b.h or 0,
    flags, b.act, b.net)
  if unpack_proposal(packed, 1) ~= env then return nil end
  return packed
end

-- head(proposal) -> the bytes before n, the bytes around the votes
local function head(proposal)
  local packed = pack_proposal(proposal)
  if packed then return M.MAGIC_PACKED .. packed, PACKED_HEAD + #packed end
  return M.MAGIC .. string.pack(">s2", proposal), HEAD + #proposal
end

-- short(by): the bytes of chain id `by` (hex) that name it in a bundle.
function M.short(by)
  return assert(crypto.unhex(by), "ballot: bad chain id"):sub(4, 3 + M.SHORT)
end

-- compact(by, sig) -> 88 characters: one vote as a ballot answer carries it.
function M.compact(by, sig)
  return crypto.b64url(M.short(by) .. sig)
end

-- uncompact(s) -> {short, sig} | nil
function M.uncompact(s)
  local raw = type(s) == "string" and #s == 88 and crypto.unb64url(s)
  if not raw or #raw ~= M.VOTE_BYTES then return nil end
  return { short = raw:sub(1, M.SHORT), sig = raw:sub(M.SHORT + 1) }
end

-- per_payload(proposal, how): how many votes fit one "event" or one "query"
-- (Serf's limits, envelope.budget) next to the proposal envelope; how may
-- also be a payload budget in bytes (M.relay_budget).
function M.per_payload(proposal, how)
  local budget = math.type(how) == "integer" and how
    or how == "query" and envelope.query_budget(M.EVENT) or envelope.budget(M.EVENT)
  local _, around = head(proposal)
  return (budget - around) // M.VOTE_BYTES
end

-- Serf's encoding of a query around its name, payload and sender's node
-- name, at most: 106 bytes measured (reference/serf.md section 6: 915-byte
-- payload with name "q" from node "n1", a 3.2 s timeout), + 4 for a
-- timeout above 4.29 s in nanoseconds (9 bytes, not 5), + 8 for a Lamport
-- time past 2^32, + 4 to spare.
M.QUERY_ENCODING = 122

-- relay_budget(node_name_len) -> bytes: the relay query's payload budget
-- when the sending node's name is at most node_name_len bytes long;
-- envelope.query_budget assumes the longest name (64). With names of up to
-- 19 bytes a quorum of 11 fits one query.
function M.relay_budget(node_name_len)
  return envelope.QUERY_LIMIT - M.QUERY_ENCODING - #M.EVENT - node_name_len
end

-- encode(proposal, votes[, how]) -> {payload, ...}: votes = {{by = chain id
-- (hex), sig = 64 bytes}, ...}, as many per payload as fit Serf's limit for
-- how = "event" (the default) or "query" (or a budget, per_payload), each
-- with the proposal.
function M.encode(proposal, votes, how)
  if type(proposal) ~= "string" or #proposal > M.PROPOSAL_MAX then
    error("ballot: the proposal envelope must be a string of at most " .. M.PROPOSAL_MAX .. " bytes", 2)
  end
  local per = M.per_payload(proposal, how or "event")
  local top = head(proposal)
  local out = {}
  for i = 1, #votes, per do
    local parts = {}
    for j = i, math.min(#votes, i + per - 1) do
      local sig = votes[j].sig
      if type(sig) ~= "string" or #sig ~= 64 then error("ballot: a signature must be 64 bytes", 2) end
      parts[#parts + 1] = M.short(votes[j].by) .. sig
    end
    out[#out + 1] = top .. string.pack("B", #parts) .. table.concat(parts) .. "."
  end
  return out
end

-- decode(payload) -> {proposal = envelope, votes = {{short, sig}, ...}} | nil, why
function M.decode(p)
  if type(p) ~= "string" then return nil, "payload is not a string" end
  if #p > envelope.QUERY_LIMIT then return nil, "payload longer than " .. envelope.QUERY_LIMIT .. " bytes" end
  local magic = p:sub(1, #M.MAGIC)
  local ok, proposal, n, pos
  if magic == M.MAGIC then
    ok, proposal, n, pos = pcall(string.unpack, ">s2B", p, #M.MAGIC + 1)
  elseif magic == M.MAGIC_PACKED then
    local after
    proposal, after = unpack_proposal(p, #M.MAGIC_PACKED + 1)
    ok = proposal ~= nil
    if ok then ok, n, pos = pcall(string.unpack, "B", p, after) end
  else
    return nil, "not a vote bundle (" .. M.MAGIC .. " or " .. M.MAGIC_PACKED .. ")"
  end
  if not ok then return nil, "truncated header" end
  if #proposal > M.PROPOSAL_MAX then return nil, "proposal envelope longer than " .. M.PROPOSAL_MAX .. " bytes" end
  if n < 1 then return nil, "no votes" end
  if #p ~= pos + n * M.VOTE_BYTES or p:sub(-1) ~= "." then
    return nil, string.format("%d bytes do not hold %d votes and the final '.'", #p, n)
  end
  local votes = {}
  for i = 0, n - 1 do
    local at = pos + i * M.VOTE_BYTES
    votes[#votes + 1] = { short = p:sub(at, at + M.SHORT - 1), sig = p:sub(at + M.SHORT, at + M.VOTE_BYTES - 1) }
  end
  return { proposal = proposal, votes = votes }
end

-- verify(votes, ph, prop, set, net) -> voters, bad: votes = {{short, sig},
-- ...} on the proposal with digest ph (prop: its iat and exp); voters =
-- {{by, sig}, ...}, the authorities in set whose vote verifies (each once,
-- sorted), and how many votes did not.
function M.verify(votes, ph, prop, set, net)
  local by_short = {}
  for by, m in pairs(set.members) do
    if m.key ~= envelope.DEFAULT_PUBKEY then
      local s = M.short(by)
      by_short[s] = by_short[s] or {}
      table.insert(by_short[s], by)
    end
  end
  local voters, seen, bad = {}, {}, 0
  for _, v in ipairs(votes) do
    local hit
    for _, by in ipairs(by_short[v.short] or {}) do
      local msg = envelope.message(M.VOTE, envelope.vote_body(ph, by, prop.iat, prop.exp, net))
      local pk = crypto.unhex(set.members[by].key)
      if pk and crypto.ed25519_verify(v.sig, msg, pk) then
        hit = by
        break
      end
    end
    if not hit then
      bad = bad + 1
    elseif not seen[hit] then
      seen[hit] = true
      voters[#voters + 1] = { by = hit, sig = v.sig }
    end
  end
  table.sort(voters, function(a, b) return a.by < b.by end)
  return voters, bad
end

return M
