-- tests/lua/factom_ballot.lua: lua/factom/ballot.lua: bundles of votes, each
-- with the signed proposal they approve, encoded, decoded and verified with
-- fixture identities (PUBLIC test keys, tests/fixtures/gen_identities.py's rule).
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
local SET = { n = 12, members = {} }
for n = 1, 12 do SET.members[ID[n].chain] = { key = ID[n].pub, status = "federated" } end
local function signer(n)
  return { chain_id = function() return ID[n].chain end, sign = function(m) return ID[n].sk:sign(m) end }
end
-- A proposal by identity 1, as `propose` builds it on MAIN (278 bytes).
local PROP, _, PTEXT = envelope.build("factomd-restart-propose", { act = "restart", at = IAT + 120, h = 1000, b = 1 },
  { now = IAT, ttl = EXP - IAT, net = NET, id = "00112233445566ff", signer = signer(1) })
local PH = envelope.digest("factomd-restart-propose", PTEXT)
local P = { iat = IAT, exp = EXP }

-- the vote of identity n on PH, as bundles carry it
local function vote(n, o)
  o = o or {}
  local body = envelope.vote_body(o.ph or PH, ID[n].chain, o.iat or IAT, EXP, o.net or NET)
  return { by = ID[n].chain, sig = ID[o.signer or n].sk:sign(envelope.message(ballot.VOTE, body)) }
end
local function short(v) return { short = ballot.short(v.by), sig = v.sig } end

T.test("a vote's body is the one envelope.build makes for it, and names the proposal by its digest", function()
  local payload = envelope.build(ballot.VOTE, { ph = PH },
    { now = IAT, ttl = EXP - IAT, id = envelope.vote_id(PH), net = NET, signer = signer(2) })
  T.eq(payload:match("%.(.*)$"), envelope.vote_body(PH, ID[2].chain, IAT, EXP, NET))
  T.ok(payload:find('"ph":"' .. PH .. '"', 1, true), "ph in the body")
  T.eq(crypto.unb64url(payload:match("^([^.]+)")), vote(2).sig)
end)

T.test("vote ids: 32 hex digits, one per proposal digest", function()
  T.ok(envelope.vote_id(PH):match("^%x+$") and #envelope.vote_id(PH) == 32)
  T.ok(envelope.vote_id(PH) ~= envelope.vote_id(("0"):rep(64)))
end)

T.test("budgets: the proposal travels packed in every bundle; 10 votes per query, 4 per event", function()
  T.eq(#PROP, 278)
  T.eq(ballot.PROPOSAL_MAX, 512 - 32 - #"factomd-restart-votes" - 7 - 66)
  -- packed: 64 + 32 + 1 + 8 (id) + 4 + 2 + 2 + 4 + 1 + 1 + 7 (act) + 1 + 4 (net) = 131 bytes, + "FV3", n, "."
  local p = ballot.encode(PROP, { vote(1) })[1]
  T.eq(p:sub(1, 3), "FV3")
  T.eq(#p, 3 + 131 + 1 + 66 + 1)
  T.eq(ballot.per_payload(PROP, "query"), 10)
  T.eq(ballot.per_payload(PROP, "event"), 4)
  T.eq(ballot.per_payload(string.rep("x", ballot.PROPOSAL_MAX), "event"), 1, "the longest proposal: one vote")
end)

T.test("a packed proposal comes back byte for byte, its digest too", function()
  local b = assert(ballot.decode(ballot.encode(PROP, { vote(1) }, "query")[1]))
  T.eq(b.proposal, PROP)
  T.eq(envelope.digest("factomd-restart-propose", b.proposal:match("%.(.*)$")), PH)
end)

-- proposal(fields, o) -> an envelope by identity 1 with these fields
local function proposal(fields, o)
  o = o or {}
  return (assert(envelope.build("factomd-restart-propose", fields, { now = o.now or IAT, ttl = o.ttl or 900, net = o.net or NET,
    id = o.id or "00112233445566ff", signer = signer(1), max = ballot.PROPOSAL_MAX })))
end

T.test("proposals that do not pack travel whole (FV2), and come back byte for byte", function()
  for _, c in ipairs({
    { "an odd-length id", proposal({ act = "restart", at = IAT + 120, b = 1 }, { id = "00112233445566778" }) },
    { "at before iat", proposal({ act = "restart", at = IAT - 5 }) },
    { "a field packing does not know", proposal({ act = "restart", at = IAT + 120, x = "y" }) },
    { "b other than 1", proposal({ act = "restart", at = IAT + 120, b = 2 }) },
    { "a negative height", proposal({ act = "restart", at = IAT + 120, h = -1 }) },
    { "a string height", proposal({ act = "restart", at = IAT + 120, h = "1" }) },
    { "not an envelope", string.rep("x", 100) },
  }) do
    local p = ballot.encode(c[2], { vote(1) })[1]
    T.eq(p:sub(1, 3), "FV2", c[1])
    T.eq(assert(ballot.decode(p)).proposal, c[2], c[1])
  end
  -- and these pack: no h, no b, a 64-digit id, another network
  for _, e in ipairs({ proposal({ act = "restart", at = IAT + 120 }), proposal({ act = "x", at = IAT, h = 0 },
    { id = ("ab"):rep(32), net = "serfhand-test" }) }) do
    local p = ballot.encode(e, { vote(1) })[1]
    T.eq(p:sub(1, 3), "FV3")
    T.eq(assert(ballot.decode(p)).proposal, e)
  end
end)

T.test("a changed byte in a packed proposal changes the envelope: its signature no longer verifies", function()
  local p = ballot.encode(PROP, { vote(1) })[1]
  for _, at in ipairs({ 4, 4 + 64, 4 + 64 + 32 + 1, 4 + 64 + 32 + 9 + 3 }) do -- sig, by, id, iat
    local q = p:sub(1, at - 1) .. string.char((p:byte(at) + 1) % 256) .. p:sub(at + 1)
    local b = assert(ballot.decode(q))
    T.ok(b.proposal ~= PROP, "byte " .. at)
    local sig, text = envelope.parse(b.proposal)
    T.ok(not sig or not crypto.ed25519_verify(sig, envelope.message("factomd-restart-propose", text),
      crypto.unhex(ID[1].pub)), "byte " .. at .. " still verifies")
  end
end)

T.test("12 votes in queries: 10 and 2, each within Serf's query limit, each with the proposal", function()
  local votes = {}
  for n = 1, 12 do votes[n] = vote(n) end
  local ps = ballot.encode(PROP, votes, "query")
  T.eq(#ps, 2)
  T.eq(#assert(ballot.decode(ps[1])).votes, 10)
  local n = 0
  for _, p in ipairs(ps) do
    T.ok(#p <= envelope.query_budget(ballot.EVENT), "payload of " .. #p .. " bytes")
    local b = assert(ballot.decode(p))
    T.eq(b.proposal, PROP)
    local voters, bad = ballot.verify(b.votes, PH, P, SET, NET)
    T.eq(bad, 0)
    n = n + #voters
  end
  T.eq(n, 12)
end)

T.test("events: 4 votes each, within Serf's limit, ending in '.'", function()
  local votes = {}
  for n = 1, 9 do votes[n] = vote(n) end
  local ps = ballot.encode(PROP, votes)
  T.eq(#ps, 3)
  for _, p in ipairs(ps) do
    T.ok(#p <= envelope.budget(ballot.EVENT), "payload of " .. #p .. " bytes")
    T.ok(#p <= envelope.budget(ballot.VOTE), "also as a vote event")
    T.eq(p:sub(-1), ".", "ends in '.', never in a newline")
  end
end)

T.test("compact votes (ballot answers): 88 characters, round trip", function()
  local v = vote(3)
  local c = ballot.compact(v.by, v.sig)
  T.eq(#c, 88)
  local u = ballot.uncompact(c)
  T.eq(u.sig, v.sig)
  T.eq(u.short, ballot.short(v.by))
  T.eq(ballot.uncompact(c:sub(2)), nil)
  T.eq(ballot.uncompact(nil), nil)
end)

T.test("verify: bad votes are counted, not accepted; a vote binds to one digest", function()
  local other = ("ab"):rep(32)
  local votes = {
    short(vote(1)),                       -- good
    short(vote(2, { signer = 3 })),       -- signed by another key
    short(vote(13)),                      -- not in the set
    short(vote(4, { net = "TEST" })),     -- another network
    short(vote(5, { ph = other })),       -- another proposal (another digest)
    short(vote(6, { iat = IAT + 1 })),    -- another version's times
    short(vote(1)),                       -- the same voter twice: once
  }
  local voters, bad = ballot.verify(votes, PH, P, SET, NET)
  T.eq(#voters, 1)
  T.eq(voters[1].by, ID[1].chain)
  T.eq(bad, 5)
end)

T.test("verify: two authorities that share the two bytes are both tried", function()
  local twin = ID[1].chain:sub(1, 10) .. ID[2].chain:sub(11)
  local set = { n = 2, members = { [ID[1].chain] = { key = ID[1].pub }, [twin] = { key = ID[2].pub } } }
  local sig = ID[2].sk:sign(envelope.message(ballot.VOTE, envelope.vote_body(PH, twin, IAT, EXP, NET)))
  local b = assert(ballot.decode(ballot.encode(PROP, { vote(1), { by = twin, sig = sig } })[1]))
  local voters, bad = ballot.verify(b.votes, PH, P, set, NET)
  local got = { voters[1].by, voters[2].by }
  table.sort(got)
  local want = { ID[1].chain, twin }
  table.sort(want)
  T.eq(got, want)
  T.eq(bad, 0)
end)

T.test("verify: a member with factomd's public default key never counts", function()
  local set = { n = 1, members = { [ID[1].chain] = { key = envelope.DEFAULT_PUBKEY } } }
  local voters, bad = ballot.verify({ short(vote(1)) }, PH, P, set, NET)
  T.eq(#voters, 0)
  T.eq(bad, 1)
end)

local good = ballot.encode(PROP, { vote(1), vote(2) }, "query")[1]
local bad_cases = {
  { "not a string", 42, "not a string" },
  { "the old format", "FV1" .. good:sub(4), "not a vote bundle" },
  { "truncated header", good:sub(1, 4), "truncated header" },
  { "a proposal length past the end", "FV2\255\255x", "truncated header" },
  { "one byte short", good:sub(1, -3) .. ".", "do not hold" },
  { "no final dot", good:sub(1, -2) .. "x", "do not hold" },
  { "a newline for the dot", good:sub(1, -2) .. "\n", "do not hold" },
  { "trailing bytes", good .. "..", "do not hold" },
  { "no votes", "FV2" .. string.pack(">s2", PROP) .. "\0.", "no votes" },
  { "a proposal too long to travel with a vote", "FV2" .. string.pack(">s2", string.rep("x", 400)) .. "\0.",
    "longer than" },
  { "over Serf's query limit", good .. string.rep("x", 1100), "longer than" },
  { "a packed proposal cut short", "FV3" .. string.rep("\1", 100), "truncated header" },
  { "packed flags past 3", (function()
    local p = ballot.encode(PROP, { vote(1) })[1]
    local at = 4 + 64 + 32 + 9 + 12 -- the flags byte
    return p:sub(1, at - 1) .. "\4" .. p:sub(at + 1)
  end)(), "truncated header" },
  { "packed: a height without its flag", (function()
    local p = ballot.encode(proposal({ act = "restart", at = IAT + 120 }), { vote(1) })[1]
    local at = 4 + 64 + 32 + 9 + 8 -- h, 4 bytes
    return p:sub(1, at - 1) .. "\0\0\0\1" .. p:sub(at + 4)
  end)(), "truncated header" },
  { "packed with no votes", "FV3" .. ballot.encode(PROP, { vote(1) })[1]:sub(4, 3 + 131) .. "\0.", "no votes" },
}
for _, c in ipairs(bad_cases) do
  T.test("decode refuses: " .. c[1], function()
    local b, why = ballot.decode(c[2])
    T.eq(b, nil)
    T.ok(tostring(why):find(c[3], 1, true), why)
  end)
end

T.test("encode raises on a bad signature or an oversized proposal", function()
  T.raises(function() ballot.encode(PROP, { { by = ID[1].chain, sig = "short" } }) end, "64 bytes")
  T.raises(function() ballot.encode(string.rep("x", 400), { vote(1) }) end, "at most")
end)
