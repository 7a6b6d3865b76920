-- tests/lua/factom_tick.lua: tick's vote on a proposal this node holds but
-- has not voted for (node.vote_open, the liveness gap of model/README.md):
-- a proposer with a stolen key locks an honest voter with a proposal that
-- never completes; once the lock lapses, tick votes for the real stall
-- proposal that came meanwhile, and only when that is safe. Real store,
-- fixture identities (PUBLIC test keys); Serf and factomd are stubbed.
local restart = require "factom.restart"
local envelope = require "factom.envelope"
local ballot = require "factom.ballot"
local authset = require "factom.authset"
local stall = require "factom.stall"
local node = require "factom.node"
local crypto = require "serfhand.crypto"
local store = require "serfhand.store"
local time = require "serfhand.time"
local config = require "serfhand.config"
local hostid = require "serfhand.identity"

local function identity(n)
  local sk, pub = crypto.ed25519_keypair(crypto.sha256("serfhand test identity " .. n))
  local chain = "888888" .. crypto.hex(crypto.sha256("serfhand test identity chain " .. n)):sub(7)
  return { chain = chain, pub = crypto.hex(pub), sk = sk,
    signer = { chain_id = function() return chain end, sign = function(m) return sk:sign(m) end } }
end
local ID = {}
for n = 1, 5 do ID[n] = identity(n) end
local SET = { n = 5, members = {} } -- quorum 3
for n = 1, 5 do SET.members[ID[n].chain] = { key = ID[n].pub, status = "federated" } end
authset.get = function() return SET end

local sent = {}
require("serfhand.serf").event = function(name, payload)
  sent[#sent + 1] = { name = name, payload = payload }
  return true
end
require("serfhand.proc").spawn = function() return 4242 end
local real_get = config.get
local over = {}
config.get = function(k) if over[k] ~= nil then return over[k] end return real_get(k) end

-- This node is authority 2; its factomd is stalled unless a test says not.
local ME = ID[2]
restart.me = function() return ME.chain end
hostid.chain_id = ME.signer.chain_id
hostid.sign_framed = function(ctx, m) return ME.sk:sign(envelope.message(ctx, m)) end
local state = "sick"
stall.check = function() return { state = state, reason = "minute 4 stalled (test)", height = 1000 } end

local NET = "MAIN"
local function now() return math.floor(time.now()) end
local function wipe()
  for _, k in ipairs(store.keys("", 10000)) do
    if k:sub(1, 7) ~= "bundle." then store.del(k) end
  end
  sent = {}
  state = "sick"
end
-- proposal(n, o) -> payload, ph, body: identity n's proposal; o: id, iat
-- (offset from now), at (offset from iat), ttl.
local function proposal(n, o)
  o = o or {}
  local iat = now() + (o.iat or 0)
  local payload, body, text = envelope.build(restart.PROPOSE, { act = "restart", at = iat + (o.at or 300), h = 1000, b = 1 },
    { now = iat, ttl = o.ttl or 900, net = NET, id = o.id or crypto.hex(crypto.random(8)), signer = ID[n].signer })
  assert(payload, body)
  return payload, envelope.digest(restart.PROPOSE, text), body
end
-- lapse(ph): the lock of this node's vote for ph has lapsed (its `at` has
-- passed here), as minutes later; the proposal record says the same.
local function lapse(ph)
  local mine = store.get("myvote/" .. ph)
  mine.at = now() - 1
  store.put("myvote/" .. ph, mine, 600)
  local prop = store.get("proposal/" .. ph)
  prop.at = now() - 1
  store.put("proposal/" .. ph, prop, 600)
end
local function vote_events()
  local out = {}
  for _, e in ipairs(sent) do if e.name == restart.VOTE then out[#out + 1] = e end end
  return out
end

-- The attack: authority 3 (its key stolen) proposes first, with a short
-- lead; this node votes for it and is locked. The real stall proposal
-- (authority 1's) comes while the lock holds. 3 never completes its own.
T.test("the lock: a node that voted for the attacker's proposal does not vote for the real one", function()
  wipe()
  local pm, phm = proposal(3, { at = 30 })
  restart.on_propose({ payload = pm })
  local p, ph = proposal(1, { at = 400 })
  T.eq(restart.on_propose({ payload = p }), ph)
  T.eq(store.get("myvote/" .. ph), nil, "locked")
  T.ok(tostring(store.get("novote/" .. ph)):find("is open until", 1, true))
  sent = {}
  T.eq(node.tick({}), "sick")
  T.eq(store.get("myvote/" .. ph), nil, "tick does not vote while the lock holds")
  T.eq(#vote_events(), 0)
  T.ok(store.get("myvote/" .. phm), "its one vote is the attacker's")
end)

T.test("once the lock lapses, tick votes for the real proposal and sends the vote with it", function()
  wipe()
  local pm, phm = proposal(3, { at = 30 })
  restart.on_propose({ payload = pm })
  local p, ph, body = proposal(1, { at = 400 })
  restart.on_propose({ payload = p })
  T.eq(store.get("myvote/" .. ph), nil, "locked when it came")
  lapse(phm)
  sent = {}
  T.eq(node.tick({}), "sick")
  T.ok(store.get("myvote/" .. ph), "voted on tick")
  local ev = vote_events()
  T.eq(#ev, 1, "one vote event")
  local b = assert(ballot.decode(ev[1].payload))
  T.eq(b.proposal, p, "with its proposal")
  local ok = ballot.verify(b.votes, ph, body, SET, NET)
  T.eq(ok[1] and ok[1].by, ME.chain, "this node's valid vote on that digest")
  sent = {}
  node.tick({})
  T.eq(store.get("myvote/" .. ph).at, body.at, "one vote, kept until its `at`")
  T.eq(#vote_events(), 0, "no second vote on the next tick (the re-send waits RESEND_AFTER_S)")
end)

T.test("tick's vote completes the real proposal where the others already voted", function()
  wipe()
  local pm, phm = proposal(3, { at = 30 })
  restart.on_propose({ payload = pm })
  local p, ph, body = proposal(1, { at = 400 })
  restart.on_propose({ payload = p })
  -- authorities 1 and 4 voted for the real proposal: 2 of 5, quorum 3
  local votes = {}
  for _, n in ipairs({ 1, 4 }) do
    local msg = envelope.message(restart.VOTE, envelope.vote_body(ph, ID[n].chain, body.iat, body.exp, NET))
    votes[#votes + 1] = { by = ID[n].chain, sig = ID[n].sk:sign(msg) }
  end
  T.eq(restart.on_votes({ payload = ballot.encode(p, votes, "query")[1] }), "counted 2")
  lapse(phm)
  node.tick({})
  T.ok(store.get("decided/" .. ph), "decided with this node's vote: 3 of 5")
end)

-- {what, setup(ph, phm) run after the lock lapsed}: tick must not vote.
local novote = {
  { "the node is no longer sick", function() state = "healthy" end },
  { "the proposal's `at` is within 2 x skew", function(ph)
    local prop = store.get("proposal/" .. ph)
    prop.at = now() + restart.LIVE_MARGIN_S
    store.put("proposal/" .. ph, prop, 600)
  end },
  { "its proposer is under equivocation evidence", function()
    store.put("evidence/" .. ID[1].chain, { kind = "vote", a = "x", b = "y" }, 600)
  end },
  { "the proposal is one of two with one id", function(ph) store.put("conflict/" .. ph, ("f"):rep(64), 600) end },
  { "the proposal is decided here", function(ph) store.put("decided/" .. ph, { at = 1 }, 600) end },
  { "the node holds another open vote", function(_, phm)
    local mine = store.get("myvote/" .. phm)
    mine.at = now() + 100
    store.put("myvote/" .. phm, mine, 600)
  end },
}
for _, c in ipairs(novote) do
  T.test("tick does not vote when " .. c[1], function()
    wipe()
    local pm, phm = proposal(3, { at = 30 })
    restart.on_propose({ payload = pm })
    local p, ph = proposal(1, { at = 400 })
    restart.on_propose({ payload = p })
    lapse(phm)
    c[2](ph, phm)
    sent = {}
    node.tick({})
    T.eq(store.get("myvote/" .. ph), nil)
    T.eq(#vote_events(), 0)
  end)
end

T.test("of two open proposals, tick votes for the one with more votes here, once", function()
  wipe()
  local pm, phm = proposal(3, { at = 30 })
  restart.on_propose({ payload = pm })
  local pa, pha = proposal(1, { at = 300 })
  local pb, phb, bb = proposal(4, { at = 400 })
  restart.on_propose({ payload = pa })
  restart.on_propose({ payload = pb })
  local msg = envelope.message(restart.VOTE, envelope.vote_body(phb, ID[5].chain, bb.iat, bb.exp, NET))
  restart.on_votes({ payload = ballot.encode(pb, { { by = ID[5].chain, sig = ID[5].sk:sign(msg) } }, "query")[1] })
  lapse(phm)
  node.tick({})
  T.ok(store.get("myvote/" .. phb), "the one with a vote already")
  T.eq(store.get("myvote/" .. pha), nil, "not both: one open vote")
  node.tick({})
  T.eq(store.get("myvote/" .. pha), nil, "still locked by the vote just cast")
end)

T.test("a node that abstained (healthy then) votes on tick once it is sick, auto_propose off", function()
  wipe()
  local p, ph = proposal(1, { at = 400 })
  state = "healthy"
  restart.on_propose({ payload = p })
  T.eq(store.get("myvote/" .. ph), nil, "abstained: healthy then")
  state = "sick"
  over["reboot.auto_propose"] = false
  node.tick({})
  T.ok(store.get("myvote/" .. ph), "sick now: votes on tick")
  over["reboot.auto_propose"] = nil
end)

T.test("auto_propose: no proposal of its own while this node's vote is open", function()
  wipe()
  local p, ph = proposal(1, { at = 400 })
  restart.on_propose({ payload = p })
  T.ok(store.get("myvote/" .. ph), "voted for 1's proposal")
  over["reboot.auto_propose"] = true
  sent = {}
  local proposed = false
  local proposer = require "factom.proposer"
  local real_propose = proposer.propose
  proposer.propose = function() proposed = true return "proposal (stub)" end
  T.eq(node.tick({}), "sick")
  proposer.propose = real_propose
  over["reboot.auto_propose"] = nil
  T.eq(proposed, false, "it would split the sick nodes' votes and could not vote for it itself")
end)

-- A decision whose executor never started: the deciding run's deadline hit
-- after the decision was committed and before the spawn (seen at 65 agents
-- on a loaded host). Such a node must still restart with the others.
local function decide_without_executor()
  wipe()
  local p, ph, body = proposal(1, { at = 400 })
  restart.on_propose({ payload = p }) -- this node (2) votes
  local votes = {}
  for _, n in ipairs({ 1, 4 }) do
    local msg = envelope.message(restart.VOTE, envelope.vote_body(ph, ID[n].chain, body.iat, body.exp, NET))
    votes[#votes + 1] = { by = ID[n].chain, sig = ID[n].sk:sign(msg) }
  end
  local real_execute = restart.execute
  restart.execute = function() end -- the run stops here
  local bundle = ballot.encode(p, votes, "query")[1]
  local st = restart.on_votes({ payload = bundle })
  restart.execute = real_execute
  return ph, st, bundle
end
local function count_spawns(fn)
  local proc = require "serfhand.proc"
  local real, n = proc.spawn, 0
  proc.spawn = function() n = n + 1 return 4300 + n end
  fn()
  proc.spawn = real
  return n
end

T.test("a decision left without an executor gets one on the next tick, once", function()
  local ph, st = decide_without_executor()
  T.eq(st, "decided")
  T.eq(store.get("executor/" .. ph), nil, "no executor recorded")
  T.eq(count_spawns(function() node.tick({}) end), 1, "tick starts it")
  T.ok(store.get("executor/" .. ph), "and records it")
  T.eq(count_spawns(function() node.tick({}) end), 0, "not twice")
end)

T.test("a decision left without an executor gets one from the next message about it", function()
  local ph, _, bundle = decide_without_executor()
  T.eq(count_spawns(function() T.eq(restart.on_votes({ payload = bundle }), "decided") end), 1)
  T.ok(store.get("executor/" .. ph))
end)

T.test("no executor is resumed once `at` has passed, or for a decision that ran", function()
  local ph = decide_without_executor()
  store.put("ran/" .. ph, "1", 600)
  T.eq(count_spawns(function() node.tick({}) end), 0, "ran")
  store.del("ran/" .. ph)
  local prop = store.get("proposal/" .. ph)
  prop.at = now() - 1
  store.put("proposal/" .. ph, prop, 600)
  T.eq(count_spawns(function() node.tick({}) end), 0, "late: the executor would refuse anyway")
end)

T.test("a normal decision records its executor, and tick starts no second one", function()
  wipe()
  local n = count_spawns(function()
    local p, ph, body = proposal(1, { at = 400 })
    restart.on_propose({ payload = p })
    local votes = {}
    for _, k in ipairs({ 1, 4 }) do
      local msg = envelope.message(restart.VOTE, envelope.vote_body(ph, ID[k].chain, body.iat, body.exp, NET))
      votes[#votes + 1] = { by = ID[k].chain, sig = ID[k].sk:sign(msg) }
    end
    T.eq(restart.on_votes({ payload = ballot.encode(p, votes, "query")[1] }), "decided")
    T.ok(store.get("executor/" .. ph), "recorded")
    node.tick({})
  end)
  T.eq(n, 1, "one executor")
end)
