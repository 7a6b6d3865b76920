-- tests/lua/factom_ballot.lua: lua/factom/ballot.lua: relayed vote bundles,
-- encoded, decoded and verified with fixture identities (PUBLIC test keys,
-- tests/fixtures/gen_identities.py's rule).
local ballot = require "factom.ballot"
local envelope = require "factom.envelope"
local crypto = require "serfhand.crypto"

local function identity(n)
  local seed = crypto.sha256("serfhand test identity " .. n)
  local sk, pub = crypto.ed25519_keypair(seed)
  local chain = "888888" .. crypto.hex(crypto.sha256("serfhand test identity chain " .. n)):sub(7)
  return { chain = chain, pub = crypto.hex(pub), sk = sk }
end
local ID = {}
for n = 1, 13 do ID[n] = identity(n) end
local NET, IAT, EXP = "MAIN", 1700000000, 1700000900
local PID = ID[1].chain .. ":00112233445566ff"
local SET = { n = 12, members = {} }
for n = 1, 12 do SET.members[ID[n].chain] = { key = ID[n].pub, status = "federated" } end

-- the vote of identity n on PID, as the signature bundles carry
local function vote(n, o)
  o = o or {}
  local body = envelope.vote_body(o.pid or PID, ID[n].chain, IAT, EXP, o.net or NET)
  return { by = ID[n].chain, sig = ID[o.signer or n].sk:sign(envelope.message(ballot.VOTE, body)) }
end

T.test("a vote's body is the one envelope.build makes for it", function()
  local signer = { chain_id = function() return ID[2].chain end, sign = function(m) return ID[2].sk:sign(m) end }
  local payload = envelope.build(ballot.VOTE, { pid = PID },
    { now = IAT, ttl = EXP - IAT, id = envelope.vote_id(PID), net = NET, signer = signer })
  T.eq(payload:match("%.(.*)$"), envelope.vote_body(PID, ID[2].chain, IAT, EXP, NET))
  T.eq(crypto.unb64url(payload:match("^([^.]+)")), vote(2).sig)
end)

T.test("vote ids: 32 hex digits, one per proposal", function()
  T.ok(envelope.vote_id(PID):match("^%x+$") and #envelope.vote_id(PID) == 32)
  T.ok(envelope.vote_id(PID) ~= envelope.vote_id(ID[1].chain .. ":00112233445566fe"))
end)

T.test("six votes per event, eleven per query; fewer events with a longer proposal id", function()
  T.eq(ballot.per_payload(PID, "event"), 6)
  T.eq(ballot.per_payload(ID[1].chain .. ":" .. string.rep("ab", 32), "event"), 5)
  T.eq(ballot.per_payload(PID, "query"), 11)
  T.eq(ballot.per_payload(ID[1].chain .. ":" .. string.rep("ab", 32), "query"), 11)
end)

T.test("12 votes in queries: 11 and 1, each within Serf's query limit", function()
  local votes = {}
  for n = 1, 12 do votes[n] = vote(n) end
  local ps = ballot.encode(PID, IAT, EXP, votes, "query")
  T.eq(#ps, 2)
  T.ok(#ps[1] <= envelope.query_budget(ballot.EVENT), "payload of " .. #ps[1] .. " bytes")
  local n = 0
  for _, p in ipairs(ps) do
    local voters, bad = ballot.verify(assert(ballot.decode(p)), SET, NET)
    T.eq(bad, 0)
    n = n + #voters
  end
  T.eq(n, 12)
end)

T.test("12 votes: two bundles of 6, each within Serf's limit", function()
  local votes = {}
  for n = 1, 12 do votes[n] = vote(n) end
  local ps = ballot.encode(PID, IAT, EXP, votes)
  T.eq(#ps, 2)
  local got = {}
  for _, p in ipairs(ps) do
    T.ok(#p <= envelope.budget(ballot.EVENT), "payload of " .. #p .. " bytes")
    T.eq(p:sub(-1), ".", "ends in '.', never in a newline")
    local b = assert(ballot.decode(p))
    T.eq(b.pid, PID)
    T.eq(b.iat, IAT)
    T.eq(b.exp, EXP)
    local voters, bad = ballot.verify(b, SET, NET)
    T.eq(bad, 0)
    for _, by in ipairs(voters) do got[#got + 1] = by end
  end
  table.sort(got)
  local want = {}
  for n = 1, 12 do want[n] = ID[n].chain end
  table.sort(want)
  T.eq(got, want)
end)

T.test("verify: bad votes are counted, not accepted", function()
  local votes = {
    vote(1),                        -- good
    vote(2, { signer = 3 }),        -- signed by another key
    vote(13),                       -- not in the set
    vote(4, { net = "TEST" }),      -- another network
    vote(5, { pid = ID[1].chain .. ":00112233445566fe" }), -- another proposal
    vote(1),                        -- the same voter twice: once
  }
  local b = assert(ballot.decode(ballot.encode(PID, IAT, EXP, votes)[1]))
  local voters, bad = ballot.verify(b, SET, NET)
  T.eq(voters, { ID[1].chain })
  T.eq(bad, 4)
end)

T.test("verify: two authorities that share the two bytes are both tried", function()
  -- identity 2 under a chain id that starts like identity 1's
  local twin = ID[1].chain:sub(1, 10) .. ID[2].chain:sub(11)
  local set = { n = 2, members = { [ID[1].chain] = { key = ID[1].pub }, [twin] = { key = ID[2].pub } } }
  local sig = ID[2].sk:sign(envelope.message(ballot.VOTE, envelope.vote_body(PID, twin, IAT, EXP, NET)))
  local b = assert(ballot.decode(ballot.encode(PID, IAT, EXP, { vote(1), { by = twin, sig = sig } })[1]))
  local voters, bad = ballot.verify(b, set, NET)
  table.sort(voters)
  local want = { ID[1].chain, twin }
  table.sort(want)
  T.eq(voters, want)
  T.eq(bad, 0)
end)

T.test("verify: a member with factomd's public default key never counts", function()
  local set = { n = 1, members = { [ID[1].chain] = { key = envelope.DEFAULT_PUBKEY } } }
  local b = assert(ballot.decode(ballot.encode(PID, IAT, EXP, { vote(1) })[1]))
  local voters, bad = ballot.verify(b, set, NET)
  T.eq(#voters, 0)
  T.eq(bad, 1)
end)

local good = ballot.encode(PID, IAT, EXP, { vote(1), vote(2) })[1]
local bad_cases = {
  { "not a string", 42, "not a string" },
  { "another magic", "FV2" .. good:sub(4), "not a vote bundle" },
  { "truncated header", good:sub(1, 20), "truncated header" },
  { "one byte short", good:sub(1, -3) .. ".", "do not hold" },
  { "no final dot", good:sub(1, -2) .. "x", "do not hold" },
  { "a newline for the dot", good:sub(1, -2) .. "\n", "do not hold" },
  { "trailing bytes", good .. "..", "do not hold" },
  { "no votes", good:sub(1, 60) .. "\0.", "no votes" },
  { "proposer not 888888", good:sub(1, 3) .. "\0" .. good:sub(5), "not an identity chain id" },
  { "over Serf's query limit", good .. string.rep("x", 1100), "longer than" },
}
for _, c in ipairs(bad_cases) do
  T.test("decode refuses: " .. c[1], function()
    local b, why = ballot.decode(c[2])
    T.eq(b, nil)
    T.ok(tostring(why):find(c[3], 1, true), why)
  end)
end

T.test("encode raises on a bad signature or proposal id", function()
  T.raises(function() ballot.encode(PID, IAT, EXP, { { by = ID[1].chain, sig = "short" } }) end, "64 bytes")
  T.raises(function() ballot.encode("nope", IAT, EXP, { vote(1) }) end, "bad proposal id")
end)

-- A bundle's times pass the envelope's own steps 3-5 (envelope.check_times).
local time_cases = {
  { "valid", IAT, EXP, IAT + 10, nil },
  { "exp before iat", EXP, IAT, IAT, "lifetime" },
  { "lifetime over 1 h", IAT, IAT + 3601, IAT + 10, "lifetime" },
  { "issued 61 s ahead", IAT, EXP, IAT - 61, "future" },
  { "expired", IAT, EXP, EXP, "expired" },
}
for _, c in ipairs(time_cases) do
  T.test("check_times: " .. c[1], function()
    local why, kind = envelope.check_times(c[2], c[3], c[4])
    T.eq(kind, c[5], why)
  end)
end
