-- lua/factom/ballot.lua: votes relayed in bundles (docs/protocol.md section
-- 4). The proposer collects the signed votes of the sick authorities as
-- answers to its proposal query and sends them on in one
-- factomd-restart-votes query (eleven votes fit one), or, for a node that
-- did not answer that, in factomd-restart-votes events (six each), instead
-- of every voter sending its own event to every node. A relayed vote is only
-- its signature and 2 bytes of the voter's chain id: its body is rebuilt
-- (envelope.vote_body) and checked against that authority's key, so the
-- relay can drop votes but never forge or alter one. When two authorities
-- share the 2 bytes, each is tried.
--
-- payload = "FV1" | proposer chain id (32) | proposal id (1-byte length, 8..32)
--           | iat (int64, big-endian) | exp (int64) | n (1) | n x (voter
--           chain id bytes 4..5 (2) | Ed25519 signature (64)) | "."
-- The final "." keeps the payload from ending in a newline, which Serf's
-- handler input would make ambiguous (reference/serf.md section 4).
local crypto = require "serfhand.crypto"
local envelope = require "factom.envelope"

local M = {}

M.EVENT = "factomd-restart-votes"
M.VOTE = "factomd-restart-vote"
M.MAGIC = "FV1"
M.SHORT = 2 -- bytes of the voter's chain id carried, after its 888888 prefix
local VOTE_BYTES = M.SHORT + 64

-- short(by): the bytes of chain id `by` (hex) that name it in a bundle.
function M.short(by)
  return assert(crypto.unhex(by), "ballot: bad chain id"):sub(4, 3 + M.SHORT)
end

local function split_pid(pid)
  local by, id = pid:match("^(888888%x+):(%x+)$")
  if not by or #by ~= 64 or #id % 2 ~= 0 or #id < 16 or #id > 64 then
    error("ballot: bad proposal id " .. tostring(pid), 3)
  end
  return crypto.unhex(by), crypto.unhex(id)
end

-- per_payload(pid, how): how many votes on pid fit one "event" or one
-- "query" (Serf's limits, envelope.budget).
function M.per_payload(pid, how)
  local _, pidb = split_pid(pid)
  local budget = how == "query" and envelope.query_budget(M.EVENT) or envelope.budget(M.EVENT)
  return (budget - #M.MAGIC - 32 - 1 - #pidb - 16 - 2) // VOTE_BYTES
end

-- encode(pid, iat, exp, votes[, how]) -> {payload, ...}: votes = {{by =
-- chain id (hex), sig = 64 bytes}, ...}, as many per payload as fit Serf's
-- limit for how = "event" (the default) or "query".
function M.encode(pid, iat, exp, votes, how)
  local pby, pidb = split_pid(pid)
  local head = M.MAGIC .. pby .. string.pack(">s1i8i8", pidb, iat, exp)
  local per = M.per_payload(pid, how or "event")
  local out = {}
  for i = 1, #votes, per do
    local parts = {}
    for j = i, math.min(#votes, i + per - 1) do
      local sig = votes[j].sig
      if type(sig) ~= "string" or #sig ~= 64 then error("ballot: a signature must be 64 bytes", 2) end
      parts[#parts + 1] = M.short(votes[j].by) .. sig
    end
    out[#out + 1] = head .. string.pack("B", #parts) .. table.concat(parts) .. "."
  end
  return out
end

-- decode(payload) -> {pid, iat, exp, votes = {{short, sig}, ...}} | nil, why
function M.decode(p)
  if type(p) ~= "string" then return nil, "payload is not a string" end
  if #p > envelope.QUERY_LIMIT then return nil, "payload longer than " .. envelope.QUERY_LIMIT .. " bytes" end
  if p:sub(1, #M.MAGIC) ~= M.MAGIC then return nil, "not a vote bundle (FV1)" end
  local ok, pby, id, iat, exp, n, pos = pcall(string.unpack, ">c32s1i8i8B", p, #M.MAGIC + 1)
  if not ok then return nil, "truncated header" end
  if pby:sub(1, 3) ~= "\x88\x88\x88" then return nil, "proposer is not an identity chain id" end
  if #id < 8 or #id > 32 then return nil, "proposal id must be 8 to 32 bytes" end
  if n < 1 then return nil, "no votes" end
  if #p ~= pos + n * VOTE_BYTES or p:sub(-1) ~= "." then
    return nil, string.format("%d bytes do not hold %d votes and the final '.'", #p, n)
  end
  local votes = {}
  for i = 0, n - 1 do
    local at = pos + i * VOTE_BYTES
    votes[#votes + 1] = { short = p:sub(at, at + M.SHORT - 1), sig = p:sub(at + M.SHORT, at + VOTE_BYTES - 1) }
  end
  return { pid = crypto.hex(pby) .. ":" .. crypto.hex(id), iat = iat, exp = exp, votes = votes }
end

-- verify(b, set, net) -> voters, bad: the chain ids of the authorities in
-- set whose relayed vote verifies (each once), and how many votes did not.
function M.verify(b, set, net)
  local by_short = {}
  for by, m in pairs(set.members) do
    if m.key ~= envelope.DEFAULT_PUBKEY then
      local s = M.short(by)
      by_short[s] = by_short[s] or {}
      table.insert(by_short[s], by)
    end
  end
  local voters, seen, bad = {}, {}, 0
  for _, v in ipairs(b.votes) do
    local hit
    for _, by in ipairs(by_short[v.short] or {}) do
      local msg = envelope.message(M.VOTE, envelope.vote_body(b.pid, by, b.iat, b.exp, net))
      if crypto.ed25519_verify(v.sig, msg, crypto.unhex(set.members[by].key)) then
        hit = by
        break
      end
    end
    if not hit then
      bad = bad + 1
    elseif not seen[hit] then
      seen[hit] = true
      voters[#voters + 1] = hit
    end
  end
  table.sort(voters)
  return voters, bad
end

return M
