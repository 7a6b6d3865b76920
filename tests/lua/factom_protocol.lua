-- tests/lua/factom_protocol.lua: protocol 2 end to end on one node, with the
-- real store and fixture identities (PUBLIC test keys): proposals named by
-- their digest, votes bound to it, the re-issued proposal of issue 14,
-- equivocation (two proposals with one id, two live votes) withdrawing a
-- decision, the window of `at`, the store one signer can fill, tick's
-- re-send that no member can stop, the executor's late and withdrawn
-- refusals, done reports, and digests in log lines (12 hex). Serf and the
-- executor's spawn are stubbed.
local restart = require "factom.restart"
local envelope = require "factom.envelope"
local ballot = require "factom.ballot"
local authset = require "factom.authset"
local executor = require "factom.executor"
local node = require "factom.node"
local crypto = require "serfhand.crypto"
local store = require "serfhand.store"
local time = require "serfhand.time"
local config = require "serfhand.config"

local function identity(n)
  local sk, pub = crypto.ed25519_keypair(crypto.sha256("serfhand test identity " .. n))
  local chain = "888888" .. crypto.hex(crypto.sha256("serfhand test identity chain " .. n)):sub(7)
  return { chain = chain, pub = crypto.hex(pub), sk = sk,
    signer = { chain_id = function() return chain end, sign = function(m) return sk:sign(m) end } }
end
local ID = {}
for n = 1, 6 do ID[n] = identity(n) end
local SET = { n = 5, members = {} } -- identities 1-5; quorum 3; 6 is not an authority
for n = 1, 5 do SET.members[ID[n].chain] = { key = ID[n].pub, status = "federated" } end
authset.get = function() return SET end -- restart.lua and envelope.lua call it through the module table

local sent = {} -- every serf.event, {name, payload}
require("serfhand.serf").event = function(name, payload)
  sent[#sent + 1] = { name = name, payload = payload }
  return true
end
require("serfhand.proc").spawn = function() return 4242 end
local real_get = config.get
local over = {}
config.get = function(k) if over[k] ~= nil then return over[k] end return real_get(k) end

-- A clean store for every test (the host's own bundle.* keys stay).
local function wipe()
  for _, k in ipairs(store.keys("", 10000)) do
    if k:sub(1, 7) ~= "bundle." then store.del(k) end
  end
  sent = {}
end
local function now() return math.floor(time.now()) end
local NET = "MAIN"
local real_me = restart.me

-- proposal(n, o) -> payload, ph, body: identity n's proposal; o: id, iat
-- (offset from now), at (offset from iat), ttl, extra fields.
local function proposal(n, o)
  o = o or {}
  local iat = now() + (o.iat or 0)
  local fields = { act = "restart", at = iat + (o.at or 300), h = 1000, b = 1 }
  for k, v in pairs(o.fields or {}) do fields[k] = v end
  local payload, body, text = envelope.build(restart.PROPOSE, fields,
    { now = iat, ttl = o.ttl or 600, net = NET, id = o.id or crypto.hex(crypto.random(8)), signer = ID[n].signer })
  assert(payload, body)
  return payload, envelope.digest(restart.PROPOSE, text), body
end
-- vote(n, ph, body) -> {by, sig}: identity n's vote on the proposal ph.
local function vote(n, ph, body)
  local msg = envelope.message(restart.VOTE, envelope.vote_body(ph, ID[n].chain, body.iat, body.exp, NET))
  return { by = ID[n].chain, sig = ID[n].sk:sign(msg) }
end
-- bundle(payload, ph, body, voters) -> the relay query's payload
local function bundle(payload, ph, body, voters)
  local votes = {}
  for _, n in ipairs(voters) do votes[#votes + 1] = vote(n, ph, body) end
  return ballot.encode(payload, votes, "query")[1]
end
local function count(prefix) return #store.keys(prefix, 10000) end
local function sent_names()
  local out = {}
  for _, e in ipairs(sent) do out[#out + 1] = e.name end
  return table.concat(out, " ")
end

T.test("a bundle teaches the proposal to a node that missed the ballot, and decides it", function()
  wipe()
  local p, ph, body = proposal(1)
  T.eq(restart.on_votes({ payload = bundle(p, ph, body, { 2, 3 }) }), "counted 2")
  T.eq(type(store.get("proposal/" .. ph)), "table", "learned from the bundle")
  T.eq(restart.on_votes({ payload = bundle(p, ph, body, { 4 }) }), "decided")
  T.eq(store.get("decided/" .. ph).votes, 3)
  T.eq(restart.on_votes({ payload = bundle(p, ph, body, { 4, 5 }) }), "decided", "again: decided before")
end)

T.test("a sick authority that first meets a proposal in a bundle votes, and sends its vote with it", function()
  wipe()
  restart.me = function() return ID[5].chain end
  local real_health = restart.health
  restart.health = function() return { state = "sick", reason = "stalled (test)", height = 1000 } end
  local hostid = require "serfhand.identity"
  local real_id = { chain_id = hostid.chain_id, sign_framed = hostid.sign_framed }
  hostid.chain_id = ID[5].signer.chain_id
  hostid.sign_framed = function(ctx, m) return ID[5].sk:sign(envelope.message(ctx, m)) end
  local p, ph, body = proposal(1)
  T.eq(restart.on_votes({ payload = bundle(p, ph, body, { 2 }) }), "counted 2", "its own vote and 2's")
  restart.health, restart.me = real_health, real_me
  hostid.chain_id, hostid.sign_framed = real_id.chain_id, real_id.sign_framed
  T.eq(sent_names(), restart.VOTE)
  local b = assert(ballot.decode(sent[1].payload))
  T.eq(b.proposal, p)
  T.eq(ballot.verify(b.votes, ph, body, SET, NET)[1].by, ID[5].chain)
end)

T.test("a vote event is a bundle of one, with its proposal", function()
  wipe()
  local p, ph, body = proposal(1)
  local ev = ballot.encode(p, { vote(2, ph, body) })[1]
  T.ok(#ev <= envelope.budget(restart.VOTE), #ev .. " bytes")
  T.eq(restart.on_vote({ payload = ev }), "counted 1")
end)

-- Issue 14: a proposer re-issues a proposal with the same id (new iat, exp,
-- at); a node that kept the first one's votes must not count them for it.
T.test("the re-issued proposal of issue 14: the old votes do not count for it", function()
  wipe()
  local id = "00000000000000e1"
  local p1, ph1, b1 = proposal(1, { id = id, iat = -30, at = 60 })
  T.eq(restart.on_votes({ payload = bundle(p1, ph1, b1, { 2, 3 }) }), "counted 2")
  -- the node forgets the first version (the old code kept only votes), but keeps its votes
  store.del("proposal/" .. ph1)
  store.del("pid/" .. ID[1].chain .. "/" .. id)
  store.del("open/" .. ID[1].chain)
  local p2, ph2, b2 = proposal(1, { id = id, at = 90 })
  T.ok(ph2 ~= ph1, "another digest")
  -- the old signatures relayed with the new proposal verify for nothing
  local old = { vote(2, ph1, b1), vote(3, ph1, b1) }
  local forged = ballot.encode(p2, old, "query")[1]
  T.eq(restart.on_votes({ payload = forged }), "dropped forged")
  T.eq(restart.on_votes({ payload = bundle(p2, ph2, b2, { 4 }) }), "counted 1", "only its own vote counts")
  T.eq(store.get("decided/" .. ph2), nil)
  T.eq(count("vote/" .. ph1 .. "/"), 2, "the old votes stay with the old digest")
end)

T.test("two proposals with one id: evidence, both refused, the decision withdrawn, both gossiped", function()
  wipe()
  local id = "00000000000000e2"
  local p1, ph1, b1 = proposal(1, { id = id, at = 150 })
  T.eq(restart.on_votes({ payload = bundle(p1, ph1, b1, { 2, 3, 4 }) }), "decided")
  sent = {}
  local p2, ph2, b2 = proposal(1, { id = id, at = 200 }) -- the same id, another `at`
  T.eq(restart.on_propose({ payload = p2 }), nil, "dropped")
  T.eq(store.get("decided/" .. ph1), nil, "the first decision is withdrawn")
  T.ok(store.get("withdrawn/" .. ph1), "and why is kept")
  T.eq(store.get("conflict/" .. ph1), ph2)
  T.eq(store.get("conflict/" .. ph2), ph1)
  T.eq(store.get("evidence/" .. ID[1].chain).kind, "proposal")
  T.eq(sent_names(), restart.PROPOSE .. " " .. restart.PROPOSE, "both envelopes gossiped")
  T.eq(sent[1].payload, p1)
  T.eq(sent[2].payload, p2)
  T.eq(restart.on_votes({ payload = bundle(p1, ph1, b1, { 5 }) }), "dropped equivocation")
  T.eq(restart.on_votes({ payload = bundle(p2, ph2, b2, { 2, 3, 4, 5 }) }), "dropped equivocation")
  T.eq(store.get("decided/" .. ph2), nil, "neither decides")
  sent = {}
  restart.on_propose({ payload = p2 })
  T.eq(#sent, 0, "evidence is gossiped once")
end)

T.test("two live votes of one authority: evidence, its votes ignored, a decision that loses its quorum withdrawn", function()
  wipe()
  local pa, pha, ba = proposal(1, { at = 300 })
  local pb, phb, bb = proposal(2, { at = 300 })
  T.eq(restart.on_votes({ payload = bundle(pa, pha, ba, { 3, 4, 5 }) }), "decided")
  sent = {}
  -- authority 5 also votes for 2's proposal while 1's is live
  T.eq(restart.on_votes({ payload = bundle(pb, phb, bb, { 5 }) }), "counted 0")
  local ev = store.get("evidence/" .. ID[5].chain)
  T.eq(ev.kind, "vote")
  T.eq(ev.a, pha)
  T.eq(ev.b, phb)
  T.eq(store.get("decided/" .. pha), nil, "3 votes less 5's: below the quorum, withdrawn")
  T.eq(sent_names(), restart.VOTE .. " " .. restart.VOTE, "both votes gossiped, each with its proposal")
  local g = assert(ballot.decode(sent[1].payload))
  T.eq(g.proposal, pa)
  -- another node verifies the evidence itself from those two events
  local gossip = { sent[1].payload, sent[2].payload }
  wipe()
  restart.on_vote({ payload = gossip[1] })
  restart.on_vote({ payload = gossip[2] })
  T.eq(store.get("evidence/" .. ID[5].chain).kind, "vote", "found again from the signed messages alone")
  -- its later votes count nowhere
  T.eq(restart.on_votes({ payload = bundle(pa, pha, ba, { 3, 4 }) }), "counted 2")
  T.eq(restart.on_votes({ payload = bundle(pa, pha, ba, { 5 }) }), "counted 2")
end)

T.test("a bundle's votes are one commit: a store failure part way keeps none of them", function()
  wipe()
  local p, ph, b = proposal(1, { at = 300 })
  local real_put, puts = store.put, 0
  store.put = function(k, ...)
    if k:match("^voter/") then
      puts = puts + 1
      if puts == 2 then return nil, "store: disk full (test)" end
    end
    return real_put(k, ...)
  end
  local ok, answer = pcall(restart.on_votes, { payload = bundle(p, ph, b, { 3, 4, 5 }) })
  store.put = real_put
  T.ok(ok, answer)
  T.eq(answer, "dropped error", "the proposer's fallback events bring them again")
  T.eq(count("vote/" .. ph .. "/"), 0, "the first vote, written before the failure, is rolled back too")
  T.eq(count("voter/"), 0)
  T.eq(restart.on_votes({ payload = bundle(p, ph, b, { 3, 4, 5 }) }), "decided", "the same bundle again: all of it")
end)

T.test("an equivocating vote in a bundle: the others counted, the evidence kept and gossiped after the commit", function()
  wipe()
  local pa, pha, ba = proposal(1, { at = 300 })
  local pb, phb, bb = proposal(2, { at = 300 })
  T.eq(restart.on_votes({ payload = bundle(pa, pha, ba, { 5 }) }), "counted 1")
  sent = {}
  T.eq(restart.on_votes({ payload = bundle(pb, phb, bb, { 3, 5, 4 }) }), "counted 2", "3 and 4 count; 5 is under evidence")
  T.eq(store.get("evidence/" .. ID[5].chain).kind, "vote")
  T.ok(store.get("vote/" .. phb .. "/" .. ID[3].chain) and store.get("vote/" .. phb .. "/" .. ID[4].chain))
  T.eq(sent_names(), restart.VOTE .. " " .. restart.VOTE, "both of 5's votes gossiped")
end)

T.test("mutated bundles (2000, seeded): on_votes never raises, answers a known form, counts only real votes", function()
  wipe()
  local p, ph, b = proposal(1, { at = 300 })
  local seeds = { bundle(p, ph, b, { 2 }), bundle(p, ph, b, { 2, 3, 4 }), ballot.encode(p, { vote(2, ph, b) })[1] }
  local x = 12345
  local function rnd(n) -- a small LCG: the same cases on every run
    x = (x * 1103515245 + 12345) % 2147483648
    return x % n + 1
  end
  local forms = { "^decided$", "^counted %d+$", "^late$", "^conflict$", "^dropped %l+$" }
  for i = 1, 2000 do
    local m = seeds[rnd(#seeds)]
    for _ = 1, rnd(3) do
      local at, how = rnd(math.max(#m, 1)), rnd(4)
      if how == 1 then -- one byte changed
        m = m:sub(1, at - 1) .. string.char(rnd(256) - 1) .. m:sub(at + 1)
      elseif how == 2 then -- cut short
        m = m:sub(1, at - 1)
      elseif how == 3 then -- a byte inserted
        m = m:sub(1, at) .. string.char(rnd(256) - 1) .. m:sub(at + 1)
      else -- a stretch repeated (votes twice, a longer count)
        m = m:sub(1, at) .. m:sub(at, math.min(#m, at + rnd(80))) .. m:sub(at + 1)
      end
    end
    local ok, answer = pcall(restart.on_votes, { payload = m })
    if not ok then T.ok(false, string.format("case %d raised: %s", i, tostring(answer))) return end
    local known = false
    for _, f in ipairs(forms) do known = known or tostring(answer):match(f) ~= nil end
    if not known then T.ok(false, string.format("case %d answered %q", i, tostring(answer))) return end
  end
  -- only identities 2, 3 and 4 ever signed: nothing else is counted, for any digest
  for _, k in ipairs(store.keys("vote/", 10000)) do
    local by = k:match("^vote/%x+/(%x+)$")
    T.ok(by == ID[2].chain or by == ID[3].chain or by == ID[4].chain, k)
  end
  T.ok(count("vote/" .. ph .. "/") <= 3)
  T.eq(count("evidence/"), 0, "no one was taken for an equivocator")
end)

T.test("two votes of one authority with an `at` within 2 x skew are not evidence (an honest next vote may look so)", function()
  wipe()
  local pa, pha, ba = proposal(1, { at = 100 })
  local pb, phb, bb = proposal(2, { at = 300 })
  restart.on_votes({ payload = bundle(pa, pha, ba, { 5 }) })
  restart.on_votes({ payload = bundle(pb, phb, bb, { 5 }) })
  T.eq(store.get("evidence/" .. ID[5].chain), nil)
  T.eq(restart.LIVE_MARGIN_S, 120)
end)

T.test("a decision that keeps its quorum without the equivocator stands", function()
  wipe()
  local pa, pha, ba = proposal(1, { at = 300 })
  local pb, phb, bb = proposal(2, { at = 300 })
  T.eq(restart.on_votes({ payload = bundle(pa, pha, ba, { 2, 3, 4, 5 }) }), "decided")
  restart.on_votes({ payload = bundle(pb, phb, bb, { 5 }) })
  T.ok(store.get("evidence/" .. ID[5].chain), "evidence")
  T.ok(store.get("decided/" .. pha), "3 of 5 left: stands")
end)

-- {what, proposal options, kind}
local refused = {
  { "at before the window (iat + 19 s)", { at = 19 }, "malformed" },
  { "at after the window (iat + 601 s)", { at = 601, ttl = 900 }, "malformed" },
  { "at not before exp", { at = 120, ttl = 120 }, "malformed" },
  { "at already past", { iat = -100, at = 30 }, "late" },
  { "an unknown field", { fields = { x = 1 } }, "malformed" },
  { "issued 61 s ahead", { iat = 61 }, "future" },
  { "a non-authority proposer", { by = 6 }, "unauthorized" },
}
for _, c in ipairs(refused) do
  T.test("proposal refused: " .. c[1], function()
    wipe()
    local p = proposal(c[2].by or 1, c[2])
    T.eq(restart.on_ballot({ payload = p }), "novote dropped: " .. c[3])
    T.eq(count("proposal/"), 0, "nothing kept")
  end)
end

T.test("a proposal issued 60 s ahead of this clock is taken (skew both ways)", function()
  wipe()
  local p, ph = proposal(1, { iat = 60 })
  T.eq(restart.on_propose({ payload = p }), ph)
end)

T.test("a proposal longer than PROPOSAL_MAX is malformed: it could not travel with a vote", function()
  wipe()
  local p = envelope.build(restart.PROPOSE, { act = "restart", at = now() + 120, h = 1, b = 1, x = ("a"):rep(120) },
    { now = now(), ttl = 600, net = NET, signer = ID[1].signer, max = 1000 })
  T.ok(#p > ballot.PROPOSAL_MAX)
  local ph, why, kind = restart.accept(p)
  T.eq(ph, nil)
  T.eq(kind, "malformed", why)
end)

T.test("flood: one key's 50 proposals and 50 votes leave at most a few rows", function()
  wipe()
  local before = count("")
  for i = 1, 50 do
    local p, ph, body = proposal(1, { id = string.format("%016x", i) })
    restart.on_votes({ payload = bundle(p, ph, body, { 1 }) })
  end
  T.eq(count("proposal/"), 1, "one open proposal per proposer")
  T.ok(count("byproposer/" .. ID[1].chain .. "/") <= restart.MAX_PROPOSALS_PER_SIGNER)
  T.ok(count("voter/" .. ID[1].chain .. "/") <= restart.MAX_VOTES_PER_SIGNER)
  T.ok(count("") - before <= 8, (count("") - before) .. " rows")
end)

T.test("flood: a proposer whose proposals decide still has at most MAX_PROPOSALS_PER_SIGNER live", function()
  wipe()
  local kept = 0
  for i = 1, restart.MAX_PROPOSALS_PER_SIGNER + 4 do
    local p, ph, body = proposal(1, { id = string.format("%016x", 100 + i) })
    -- the votes of 2, 3, 4 for each (they equivocate, but the proposer's count is what is measured)
    local r = restart.on_votes({ payload = bundle(p, ph, body, { 2, 3, 4 }) })
    if r ~= "dropped abuse" then kept = kept + 1 end
    store.del("open/" .. ID[1].chain) -- as a decision would
  end
  T.eq(kept, restart.MAX_PROPOSALS_PER_SIGNER)
  T.eq(count("byproposer/" .. ID[1].chain .. "/"), restart.MAX_PROPOSALS_PER_SIGNER)
end)

T.test("flood: one authority's votes for many live proposals: evidence after the second, no more rows", function()
  wipe()
  for n = 1, 5 do
    local p, ph, body = proposal(n)
    restart.on_votes({ payload = bundle(p, ph, body, { 6 == n and 1 or 5 }) })
  end
  T.ok(store.get("evidence/" .. ID[5].chain), "evidence")
  T.ok(count("voter/" .. ID[5].chain .. "/") <= 2, count("voter/" .. ID[5].chain .. "/") .. " votes kept")
end)

T.test("tick re-sends its vote until `at`; a bundle holding only that vote does not stop it", function()
  wipe()
  restart.me = function() return ID[2].chain end
  local p, ph, body = proposal(1, { iat = -30, at = 120 })
  restart.accept(p)
  local v = vote(2, ph, body)
  require("factom.tally").add(store, ph, ID[2].chain, v.sig, 600)
  store.put("myvote/" .. ph, { v = ballot.compact(v.by, v.sig), at = body.at }, 600)
  -- any member sends this node a bundle holding only its own vote
  T.eq(restart.on_votes({ payload = ballot.encode(p, { v }, "query")[1] }), "counted 1")
  sent = {}
  T.eq(node.resend_votes(), 1, "sent anyway")
  T.eq(node.resend_votes(), 1, "and on the next tick")
  local b = assert(ballot.decode(sent[1].payload))
  T.eq(sent[1].name, restart.VOTE)
  T.eq(b.proposal, p, "with its proposal")
  -- after `at` nothing can decide: no more re-sends
  local rec = store.get("proposal/" .. ph)
  rec.at = now() - 1
  store.put("proposal/" .. ph, rec, 600)
  T.eq(node.resend_votes(), 0)
  restart.me = real_me
end)

T.test("an honest node holds one open vote: no vote for a second proposal before the first's at + 2 skew", function()
  wipe()
  store.put("myvote/" .. ("a"):rep(64), { v = "x", at = now() + 30 }, 600)
  restart.me = function() return ID[2].chain end
  local p, ph = proposal(1)
  local prop = select(2, restart.accept(p))
  local v, why = restart.vote_if_sick(ph, prop, SET)
  T.eq(v, nil)
  T.ok(why:find("is open until", 1, true), why)
  restart.me = real_me
end)

T.test("done reports: only for a decision here, once per authority", function()
  wipe()
  local p, ph, body = proposal(1)
  local function done(n, h)
    return assert(envelope.build(restart.DONE, { ph = h or ph, ok = true, st = 0 },
      { ttl = 600, net = NET, signer = ID[n].signer }))
  end
  T.eq(restart.on_done({ payload = done(2) }), nil, "not decided here")
  T.eq(count("done/"), 0)
  restart.on_votes({ payload = bundle(p, ph, body, { 2, 3, 4 }) })
  T.eq(restart.on_done({ payload = done(2) }), ph)
  T.eq(restart.on_done({ payload = done(2) }), nil, "a second report by 2")
  T.eq(count("done/"), 1)
end)

T.test("executor: refuses more than LATE_S after `at`", function()
  wipe()
  local ph = ("b"):rep(64)
  store.put("proposal/" .. ph, { act = "restart", at = now() - 10, exp = now() + 500, iat = now() - 100 }, 600)
  store.put("decided/" .. ph, { at = now() - 10 }, 600)
  local out = executor.action("restart", ph)
  T.ok(out:find("skipped (too late", 1, true), out)
end)

T.test("executor: re-checks just before `at` and does not run a withdrawn decision", function()
  wipe()
  local ph = ("c"):rep(64)
  local at = now() + 2 -- at least 1 s away: the executor sleeps, then checks
  store.put("proposal/" .. ph, { act = "restart", at = at, exp = now() + 500, iat = now() - 100 }, 600)
  store.put("decided/" .. ph, { at = at }, 600)
  -- withdrawn while the executor waits: simulated by withdrawing first (the
  -- executor reads decided/<ph> again at `at` - PREPARE_MS)
  local real_sleep = time.sleep
  time.sleep = function(ms) restart.withdraw(ph, "test") return real_sleep(ms) end
  local out, err = executor.action("restart", ph)
  time.sleep = real_sleep
  T.ok(out and out:find("no longer stands", 1, true), tostring(out or err))
  T.eq(store.get("cooldown"), nil, "no cooldown taken")
end)

-- decided_here(ph, at): a restart proposal ph with this `at`, decided here
local function decided_here(ph, at)
  store.put("proposal/" .. ph, { act = "restart", at = at, exp = now() + 500, iat = now() - 100 }, 600)
  store.put("decided/" .. ph, { at = at }, 600)
end

T.test("executor: a second executor of the same decision leaves it to the first, not an error", function()
  wipe()
  local ph = ("f"):rep(64)
  decided_here(ph, now() + 60)
  store.add("ran/" .. ph, "1", 600) -- the first executor took it
  local out, err = executor.action("restart", ph)
  T.ok(out and out:find("run by another executor of this node", 1, true), tostring(out or err))
  T.eq(store.get("cooldown"), nil, "no cooldown taken")
end)

T.test("executor: a decision withdrawn before it started is skipped, not an error", function()
  wipe()
  local ph = ("d"):rep(64)
  local at = now() + 60
  decided_here(ph, at)
  restart.withdraw(ph, "test")
  local out, err = executor.action("restart", ph)
  T.ok(out and out:find("no longer stands", 1, true), tostring(out or err))
  T.eq(store.get("cooldown"), nil, "no cooldown taken")
  T.eq(store.get("ran/" .. ph), nil, "not marked as run")
  local never = ("e"):rep(64)
  store.put("proposal/" .. never, { act = "restart", at = at, exp = now() + 500, iat = now() - 100 }, 600)
  local out2, err2 = executor.action("restart", never)
  T.eq(out2, nil, "never decided: an error")
  T.ok(tostring(err2):find("is not decided", 1, true), tostring(err2))
end)

T.test("cooldown: never shorter than the window of `at`", function()
  over["reboot.cooldown_minutes"] = 0
  T.eq(executor.cooldown_s(), 600)
  over["reboot.cooldown_minutes"] = 30
  T.eq(executor.cooldown_s(), 1800)
  over["reboot.cooldown_minutes"] = nil
end)

T.test("log lines name a digest by its first 12 hex; the store keeps all 64", function()
  wipe()
  local log = require "serfhand.log"
  local lines = {}
  local real = { info = log.info, warn = log.warn }
  log.info = function(m) lines[#lines + 1] = m end
  log.warn = function(m) lines[#lines + 1] = m end
  local p, ph, body = proposal(1)
  local ok, r = pcall(restart.on_votes, { payload = bundle(p, ph, body, { 2, 3, 4 }) })
  local p2 = proposal(1, { id = body.id, at = 200 }) -- the same id: equivocation, a withdrawal
  local ok2 = pcall(restart.on_propose, { payload = p2 })
  log.info, log.warn = real.info, real.warn
  T.ok(ok and ok2, tostring(r))
  T.eq(r, "decided")
  local text = table.concat(lines, "\n")
  T.eq(envelope.short(ph), ph:sub(1, 12))
  for _, want in ipairs({ "proposal " .. ph:sub(1, 12) .. " (", "decided " .. ph:sub(1, 12) .. ": 3 of 5 votes",
      "ALERT: decision on " .. ph:sub(1, 12) .. " withdrawn" }) do
    T.ok(text:find(want, 1, true), want)
  end
  local ph2 = store.get("conflict/" .. ph)
  T.eq(#ph2, 64, "the store keeps the other digest whole")
  T.eq(text:find(ph, 1, true), nil, "no log line holds the whole digest: " .. text)
  T.eq(text:find(ph2, 1, true), nil, "nor the other one's")
  T.ok(text:find(ph2:sub(1, 12), 1, true), "the other one by its 12 hex")
  T.ok(store.get("decided/" .. ph) == nil and store.get("withdrawn/" .. ph), "the store's keys use all 64")
end)
