-- lua/factom/restart.lua: the voted restart of factomd, protocol 2 (DESIGN
-- section 7, docs/protocol.md): what every node does with a proposal, the
-- votes that travel with it and the done report, up to the decision, the
-- evidence of equivocation and the start of the executor. The handlers
-- under handlers/ are thin wrappers around these functions. The proposer's
-- side (factom.proposer), the executor (factom.executor) and status and
-- tick (factom.node) live in their own modules: every node compiles this one
-- in the handler of each vote, while they run elsewhere.
local envelope = require "factom.envelope"
local authset = require "factom.authset"
local tally = require "factom.tally"
local ballot = require "factom.ballot"
local config = require "serfhand.config"
local log = require "serfhand.log"
local store = require "serfhand.store"
local time = require "serfhand.time"

local M = {}

M.PROPOSE = "factomd-restart-propose"
M.VOTE = "factomd-restart-vote"
M.VOTES = ballot.EVENT
M.DONE = "factomd-restart-done"
M.KEEP_S = 86400 -- decisions are kept this long after exp
-- What one signer can fill in this node's store: live proposals it signed,
-- and live votes it cast (a vote is kept until its proposal's `at` plus
-- the skew; a proposal until its exp plus the skew). An honest proposer has
-- one open proposal at a time, an honest voter one open vote; a few more
-- are kept when proposals follow each other closely.
M.MAX_PROPOSALS_PER_SIGNER = 8
M.MAX_VOTES_PER_SIGNER = 8
-- Two votes of one authority are evidence only when both proposals' `at`
-- is more than this ahead: an honest node votes again only after the `at`
-- of its last vote by its own clock, which a receiver's clock may put up to
-- twice the skew later (docs/protocol.md section 5, "Equivocation").
M.LIVE_MARGIN_S = 2 * envelope.MAX_SKEW
-- tick's comparison of factomd's own identity (diagnostics) with the one in
-- factomd.conf: {ok, why}; while it says they differ, this node does not vote.
M.IDCHECK = "idcheck"
-- The executor process starts this long before `at` (at once when `at` is
-- nearer): not in the second the votes arrive, when every node's handlers
-- want the CPU. Its start-up takes tens of milliseconds.
M.EXECUTOR_LEAD_S = 10

local SKEW = envelope.MAX_SKEW
local short = envelope.short -- a digest in a log line (all 64 hex in the store)
local FIELDS = { act = true, at = true, b = true, by = true, exp = true, h = true, iat = true, id = true,
  net = true }

local function is_int(v) return math.type(v) == "integer" end
local function ttl_until(t, now) return math.max(1, math.ceil(t - now)) end
M.ttl_until = ttl_until -- seconds a record about something that ends at t is kept

-- A proposal's digest: 64 lowercase hex.
function M.valid_ph(ph)
  return type(ph) == "string" and #ph == 64 and ph:match("^[0-9a-f]+$") ~= nil
end

-- This node's identity chain id, or nil (followers usually have none).
local me_memo
function M.me()
  if me_memo == nil then
    local id, err = require("serfhand.identity").chain_id()
    if not id then
      log.debug("no identity: " .. tostring(err))
      me_memo = false
    else
      me_memo = id
    end
  end
  return me_memo or nil
end

local function drop(name, why, kind)
  local msg = string.format("dropped %s: %s: %s", name, kind or "?", why)
  if kind == "replay" or kind == "late" then log.info(msg) else log.warn(msg) end
  return nil
end

-- The authority set or nil (logged).
local function the_set(opts)
  local set, err = authset.get(opts)
  if not set then log.error(err) end
  return set
end

-- window() -> min, max: the seconds `at` may lie after `iat`
-- (reboot.at_min_seconds .. reboot.at_max_seconds).
function M.window()
  return config.get("reboot.at_min_seconds"), config.get("reboot.at_max_seconds")
end

-- ignored() -> {[chain id] = true}: the authorities this node holds live
-- evidence against; their votes count nowhere while it lasts.
function M.ignored()
  local out = {}
  for _, k in ipairs(store.keys("evidence/", 1000) or {}) do out[k:sub(#"evidence/" + 1)] = true end
  return out
end

-- ------------------------------------------------------------ evidence

-- withdraw(ph, why): a decision that no longer stands (it lost its quorum,
-- or its proposal is one of two with the same id). The executor checks
-- decided/<ph> again just before `at`, so a withdrawn decision does not run.
function M.withdraw(ph, why)
  if not store.get(tally.decided_key(ph)) then return false end
  store.del(tally.decided_key(ph))
  store.put("withdrawn/" .. ph, why, M.KEEP_S)
  log.warn(string.format("ALERT: decision on %s withdrawn: %s", short(ph), why))
  return true
end

-- recheck(ph): count ph again without the authorities under evidence;
-- withdraw its decision when that falls below the quorum.
function M.recheck(ph)
  local prop = store.get("proposal/" .. ph)
  if type(prop) ~= "table" or not store.get(tally.decided_key(ph)) then return end
  local set = the_set()
  if not set then return end
  local n = tally.count(store, ph, set, M.ignored())
  local q = authset.quorum(set.n)
  if n and n < q then
    M.withdraw(ph, string.format("%d of %d votes left after equivocation evidence (quorum %d)", n, set.n, q))
  end
end

local function gossip(name, payload)
  local ok, err = require("serfhand.serf").event(name, payload)
  if not ok then log.warn(string.format("evidence not gossiped (%s): %s", name, tostring(err))) end
end

-- evidence(by, rec, ttl) -> first: keep the evidence against authority by
-- (the first one found), ignore its votes from now on, re-tally every
-- decision its votes helped. rec = {kind = "proposal"|"vote", a, b}: the
-- digests of the two conflicting proposals.
local function evidence(by, rec, ttl)
  rec.t = time.now_ms()
  local first = store.add("evidence/" .. by, rec, ttl)
  if not first then return false end
  log.warn(string.format("ALERT: equivocation by authority %s: %s %s and %s; its votes are ignored until %d",
    by, rec.kind == "proposal" and "two proposals with one id," or "votes for two live proposals,",
    short(rec.a), short(rec.b), math.floor(time.now()) + ttl))
  for _, k in ipairs(store.keys("voter/" .. by .. "/", 100) or {}) do M.recheck(k:sub(#"voter/" + #by + 2)) end
  return true
end

-- A proposer signed two different proposals with one id: both are refused
-- from now on (conflict/<ph>), any decision on the first is withdrawn, and
-- both signed envelopes are gossiped: each node that receives them finds the
-- same conflict itself (one event cannot hold two proposals in 512 bytes).
local function proposal_equivocation(by, old_ph, ph, payload, exp, now)
  local old = store.get("proposal/" .. old_ph)
  local ttl = ttl_until(math.max(exp, type(old) == "table" and old.exp or exp) + SKEW, now)
  store.put("conflict/" .. ph, old_ph, ttl)
  store.put("conflict/" .. old_ph, ph, ttl)
  if evidence(by, { kind = "proposal", a = old_ph, b = ph }, ttl) then
    M.withdraw(old_ph, "its proposer signed another proposal with the same id (" .. short(ph) .. ")")
    if type(old) == "table" and old.payload then gossip(M.PROPOSE, old.payload) end
    gossip(M.PROPOSE, payload)
  end
end

-- An authority voted for two proposals that are both live here: evidence;
-- both votes are gossiped, each with its proposal, as vote events, so that
-- every node can check the two signatures itself.
local function vote_equivocation(by, ph_a, ph_b, now)
  local pa, pb = store.get("proposal/" .. ph_a), store.get("proposal/" .. ph_b)
  local ttl = ttl_until(math.max(pa.exp, pb.exp) + SKEW, now)
  if not evidence(by, { kind = "vote", a = ph_a, b = ph_b }, ttl) then return end
  local crypto = require "serfhand.crypto"
  for _, x in ipairs({ { ph_a, pa }, { ph_b, pb } }) do
    local sig = crypto.unhex(tostring(store.get(tally.vote_key(x[1], by))))
    if sig and #sig == 64 and x[2].payload then
      gossip(M.VOTE, ballot.encode(x[2].payload, { { by = by, sig = sig } })[1])
    end
  end
end

-- ------------------------------------------------------------ proposals

-- check_fields(body) -> nil | why: the proposal's own fields, exactly these.
local function check_fields(body)
  for k in pairs(body) do
    if not FIELDS[k] then return "unknown field " .. k:sub(1, 32) end
  end
  if type(body.act) ~= "string" or #body.act > 32 or not body.act:match("^[a-z][a-z0-9_-]*$") then
    return "act must match [a-z][a-z0-9_-]*"
  end
  local lo, hi = M.window()
  if not is_int(body.at) or body.at < body.iat + lo or body.at > body.iat + hi or body.at >= body.exp then
    return string.format("at must be an integer from iat + %d to iat + %d s, before exp", lo, hi)
  end
  if body.h ~= nil and not is_int(body.h) then return "h must be an integer" end
  if body.b ~= nil and body.b ~= 1 then return "b must be 1 or absent" end
end

-- accept(payload) -> ph, prop, new | nil, why, kind: a proposal envelope,
-- wherever it came from (its event, the ballot, a bundle). A proposal
-- already recorded here is known by its digest and costs no signature check;
-- a new one is verified and checked, and recorded in one commit with the
-- proposer's open proposal, its id and its count. kind as envelope.verify,
-- or "late" (its `at` has passed), "abuse" (a second open proposal, or more
-- than MAX_PROPOSALS_PER_SIGNER), "equivocation" (another proposal with
-- the same id, or one of such a pair).
function M.accept(payload)
  if type(payload) == "string" and #payload > ballot.PROPOSAL_MAX then
    return nil, string.format("proposal of %d bytes is longer than %d (it must travel with a vote)", #payload,
      ballot.PROPOSAL_MAX), "malformed"
  end
  local sig, text = envelope.parse(payload)
  if not sig then return nil, text, "malformed" end
  local ph = envelope.digest(M.PROPOSE, text)
  local other = store.get("conflict/" .. ph)
  if other then
    return nil, string.format("%s conflicts with %s (one id, two proposals)", short(ph), short(other)), "equivocation"
  end
  local known = store.get("proposal/" .. ph)
  if type(known) == "table" then return ph, known, false end
  local body, why, kind = envelope.verify(M.PROPOSE, payload)
  if not body then return nil, why, kind end
  why = check_fields(body)
  if why then return nil, why, "malformed" end
  local now = time.now()
  if now >= body.at then
    return nil, string.format("its agreed time %d has passed (%d s ago)", body.at, math.floor(now - body.at)), "late"
  end
  local prop = { act = body.act, at = body.at, h = body.h, exp = body.exp, iat = body.iat, by = body.by,
    id = body.id, b = body.b, payload = payload }
  local ttl = ttl_until(body.exp + SKEW, now)
  local pidk = "pid/" .. body.by .. "/" .. body.id
  local ok, res, detail = pcall(store.tx, function()
    local first = store.get(pidk)
    if first and first ~= ph then return "equivocation", first end
    local open = store.get("open/" .. body.by)
    if open and open ~= ph then return "abuse", string.format("%s already has an open proposal %s", body.by, short(open)) end
    local n = store.count("byproposer/" .. body.by .. "/")
    if n and n >= M.MAX_PROPOSALS_PER_SIGNER then
      return "abuse", string.format("%s has %d live proposals here (at most %d)", body.by, n, M.MAX_PROPOSALS_PER_SIGNER)
    end
    for _, w in ipairs({ { pidk, ph }, { "open/" .. body.by, ph }, { "byproposer/" .. body.by .. "/" .. ph, "1" },
        { "proposal/" .. ph, prop } }) do
      local put, err = store.put(w[1], w[2], w[1]:match("^open/") and ttl_until(body.exp, now) or ttl)
      if not put then error(err, 0) end
    end
    return "ok"
  end)
  if not ok or res == nil then
    log.error("store: " .. tostring(ok and detail or res))
    return nil, "store: " .. tostring(ok and detail or res), "error"
  end
  if res == "equivocation" then
    proposal_equivocation(body.by, detail, ph, payload, body.exp, now)
    return nil, string.format("%s signed proposal %s with id %s, already used by %s", body.by, short(ph), body.id,
      short(detail)),
      "equivocation"
  end
  if res == "abuse" then return nil, detail, "abuse" end
  log.info(string.format("proposal %s (%s:%s): %s at %d (in %d s), leader height %s, expires in %d s", short(ph),
    body.by, body.id, body.act, body.at, body.at - math.floor(now), tostring(body.h), body.exp - math.floor(now)))
  return ph, prop, true
end

-- ---------------------------------------------------------------- deciding

-- Spawn the detached executor for a decided proposal (authorities only,
-- followers too when reboot.followers), and record that it was started
-- (executor/<ph>: the pid, or "none" when this node does not restart): a run
-- stopped between the decision's commit and the spawn (its deadline) leaves
-- a decision without one, which resume_executor starts later. Two
-- executors for one decision are harmless: `ran/<ph>` lets one run.
function M.execute(ph, prop, set)
  local me = M.me()
  if not (me and set.members[me]) and not config.get("reboot.followers") then
    log.info(string.format("decided %s: this node is not an authority, not restarting", short(ph)))
    store.put("executor/" .. ph, "none", M.KEEP_S)
    return
  end
  -- this very serfhand binary; it finds the config through SERFHAND_CONFIG,
  -- which serfhand.proc passes to every child (config.file is not exposed)
  local argv = { "/proc/self/exe" }
  argv[#argv + 1] = "action"
  argv[#argv + 1] = prop.act
  argv[#argv + 1] = ph
  local logf = config.get("reboot.log")
  local wait = math.max(0, math.floor(prop.at - M.EXECUTOR_LEAD_S - time.now()))
  local p, err = require("serfhand.proc").spawn(argv,
    { log = logf ~= "" and logf or nil, delay_ms = wait * 1000 })
  if not p then
    log.error(string.format("decided %s: cannot start the executor: %s", short(ph), err))
    return
  end
  store.put("executor/" .. ph, tostring(p), M.KEEP_S)
  log.info(string.format("executor for %s started (pid %d%s): %s at %d", short(ph), p,
    wait > 0 and string.format(", runs %d s before", M.EXECUTOR_LEAD_S) or "", prop.act, prop.at))
end

-- resume_executor(ph) -> true when it started one: ph is decided here, no
-- executor was recorded (the deciding run was stopped before the spawn, or
-- the spawn failed) and its `at` is still ahead. Called by tick and by every
-- later message that finds ph decided, so such a node still restarts with
-- the others instead of answering "decided" and never acting.
function M.resume_executor(ph)
  if store.get("executor/" .. ph) ~= nil or store.get("ran/" .. ph) then return false end
  if not store.get(tally.decided_key(ph)) or store.get("conflict/" .. ph) then return false end
  local prop = store.get("proposal/" .. ph)
  if type(prop) ~= "table" or math.type(prop.at) ~= "integer" or time.now() >= prop.at then return false end
  local set = the_set()
  if not set then return false end
  log.warn(string.format("decided %s but no executor was started (the deciding run stopped first): starting it",
    short(ph)))
  M.execute(ph, prop, set)
  return true
end

-- resume_executors() -> n: resume_executor for every decision kept here.
function M.resume_executors()
  local n = 0
  for _, k in ipairs(store.keys("decided/", 1000) or {}) do
    if M.resume_executor(k:sub(#"decided/" + 1)) then n = n + 1 end
  end
  return n
end

-- maybe_decide(ph) -> state: decide ph if it has a quorum, at most once per
-- node. state says where ph stands here: "decided" (now or before),
-- "counted <n>" (no quorum), "late" (its `at` has passed: nothing can
-- decide it), "conflict" (one of two proposals with one id), or nil (the
-- set or the store failed; logged).
function M.maybe_decide(ph)
  local prop = store.get("proposal/" .. ph)
  if type(prop) ~= "table" then return nil end
  if store.get("conflict/" .. ph) then return "conflict" end
  local set = the_set()
  if not set then return nil end
  local now = time.now()
  local q = authset.quorum(set.n)
  local ignored = M.ignored()
  -- The decision and the end of its proposer's open proposal in one commit:
  -- a node that kept the proposal open would refuse that proposer's next one.
  local ok, first, n = pcall(store.tx, function()
    local f, m = tally.decide(store, ph, prop, set, now, q, ignored)
    if f and store.get("open/" .. prop.by) == ph then
      local done, err = store.del("open/" .. prop.by)
      if not done then error(err, 0) end -- rolls the decision back too
    end
    return f, m
  end)
  if not ok then first, n = nil, first end
  if first == nil then
    log.error(string.format("tally of %s failed: %s", short(ph), tostring(n)))
    return nil
  end
  if not first then
    local late = now >= prop.at
    log.info(string.format("tally %s: %d of %d votes (quorum %d)%s", short(ph), n, set.n, q,
      late and ", the agreed time has passed" or ""))
    if late then return "late" end
    -- a quorum before `at` that did not decide now was decided before
    if n >= q then
      M.resume_executor(ph)
      return "decided"
    end
    return "counted " .. n
  end
  log.info(string.format("decided %s: %d of %d votes (quorum %d): %s at %d (in %.1f s)", short(ph), n, set.n, q,
    prop.act, prop.at, prop.at - now))
  M.execute(ph, prop, set)
  return "decided"
end

-- ----------------------------------------------------------------- voting

-- health() -> report: this node's state for a vote. tick's record when it
-- says "sick" and is at most reboot.health_max_age_seconds old (a stall is
-- minutes long, so a record from the last tick decides as a new look would,
-- without loading libcurl in every node's proposal handler); else a new look
-- at factomd. Only "sick" is taken from the record: a node that was healthy
-- or unknown at the last tick may have crossed the threshold since.
function M.health()
  local max_ms = config.get("reboot.health_max_age_seconds") * 1000
  local rec = store.get("health")
  if max_ms > 0 and type(rec) == "table" and rec.state == "sick" and is_int(rec.t) then
    local age = time.now_ms() - rec.t
    if age >= 0 and age <= max_ms then
      return { state = "sick", height = rec.h, minute = rec.minute, stalled_s = rec.stalled_s,
        reason = string.format("%s (tick %d s ago)", tostring(rec.reason), age // 1000) }
    end
  end
  return require("factom.stall").check() -- loaded here only: relays and votes on a record do without
end

-- open_vote(ph, now) -> ph2, at | nil: this node's vote for another
-- proposal that is still open (its `at` is ahead by this node's clock): the
-- vote lock. An honest node holds one open vote at most (docs/protocol.md
-- 5); model/restart.pml's voteblocked is this rule.
function M.open_vote(ph, now)
  for _, k in ipairs(store.keys("myvote/", 100) or {}) do
    local v = store.get(k)
    local ph2 = k:sub(#"myvote/" + 1)
    if ph2 ~= ph and type(v) == "table" and is_int(v.at) and now < v.at then return ph2, v.at end
  end
end

-- vote_if_sick(ph, prop, set[, send]) -> vote | nil, why. When this node is
-- a sick authority: sign its vote on ph (deterministic body,
-- envelope.vote_body), count it here, keep it as myvote/<ph> and return it
-- (ballot.compact form); send it with the proposal as its own event for a
-- proposal without a ballot (b), or when send is true (no ballot will ask
-- this node: it learned the proposal from a bundle). Else the reason it
-- does not vote, kept as novote/<ph>. Both are logged.
function M.vote_if_sick(ph, prop, set, send)
  local now = math.floor(time.now())
  local keep = ttl_until(prop.at + 2 * SKEW, now)
  local function no(fmt, ...)
    local why = string.format(fmt, ...)
    log.info(string.format("%s %s: %s", why:match("^abstain") and "abstain on" or "no vote on", short(ph),
      (why:gsub("^abstain: ", ""))))
    store.put("novote/" .. ph, why, keep)
    return nil, why
  end
  local me = M.me()
  if not me then return no("this node has no identity") end
  if not set.members[me] then return no("%s is not in the authority set", me) end
  local idc = store.get(M.IDCHECK)
  if type(idc) == "table" and idc.ok == false then
    return no("factomd runs another identity than factomd.conf holds: %s", tostring(idc.why))
  end
  if now >= prop.at then return no("its agreed time has passed") end
  local ph2, till = M.open_vote(ph, now)
  if ph2 then return no("this node's vote for %s is open until its agreed time %d", short(ph2), till) end
  local rep = M.health()
  if rep.state == "sick" then rep = require("factom.stall").versus_proposal(rep, prop.h) end
  if rep.state ~= "sick" then return no("abstain: %s: %s", rep.state, rep.reason) end
  local payload, err = envelope.build(M.VOTE, { ph = ph },
    { now = prop.iat, ttl = prop.exp - prop.iat, id = envelope.vote_id(ph) })
  if not payload then
    log.error(string.format("cannot sign a vote on %s: %s", short(ph), err))
    return nil, "cannot sign: " .. tostring(err)
  end
  local sig = require("serfhand.crypto").unb64url(payload:match("^([^.]+)%."))
  local compact = ballot.compact(me, sig)
  -- the vote counted here and kept as this node's own, in one commit
  local kept, done, kerr = pcall(store.tx, function()
    local added, aerr = tally.add(store, ph, me, sig, keep)
    if added == nil then error(aerr, 0) end
    local put, perr = store.put("myvote/" .. ph, { v = compact, at = prop.at }, keep)
    if not put then error(perr, 0) end
    return true
  end)
  if not (kept and done) then
    -- still sent: the vote is signed and counts wherever it arrives
    log.error(string.format("vote on %s not kept here: store: %s", short(ph), tostring(kept and kerr or done)))
  end
  if prop.b ~= 1 or send then
    local ok, serr = require("serfhand.serf").event(M.VOTE, ballot.encode(prop.payload, { { by = me, sig = sig } })[1])
    if not ok then log.error(string.format("vote on %s not sent: %s", short(ph), serr)) end
  end
  log.info(string.format("voted for %s: %s", short(ph), rep.reason))
  return compact
end

-- --------------------------------------------------------------- handlers

-- A proposal known here gets the vote or the reason given then; one this
-- node has not voted on yet (a run cut short) is voted on now.
local function vote_once(ph, prop, new, send)
  if not new then
    local mine = store.get("myvote/" .. ph)
    if type(mine) == "table" then return mine.v end
    local no = store.get("novote/" .. ph)
    if no then return nil, no end
  end
  local set = the_set()
  if not set then return nil, "no authority set" end
  return M.vote_if_sick(ph, prop, set, send)
end

function M.on_propose(ev)
  local ph, prop, new = M.accept(ev.payload)
  if not ph then return drop(M.PROPOSE, prop, new) end
  vote_once(ph, prop, new)
  M.maybe_decide(ph)
  return ph
end

-- on_ballot(ev) -> answer: the proposal as the proposer's query. The answer
-- is "vote <ballot.compact>" or "novote <why>"; a proposal already handled
-- (its event came first) gets the answer given then.
function M.on_ballot(ev)
  local ph, prop, new = M.accept(ev.payload)
  if not ph then
    drop(M.PROPOSE, prop, new)
    return "novote dropped: " .. tostring(new)
  end
  local vote, no = vote_once(ph, prop, new)
  M.maybe_decide(ph)
  return vote and ("vote " .. vote) or ("novote " .. tostring(no))
end

-- record_vote(ph, prop, by, sig, now) -> "new" | "known" | "abuse" |
-- "equivocation", other ph | nil, err: one verified vote, inside the
-- caller's transaction (the evidence of an equivocation is kept and
-- gossiped by the caller, after its commit).
local function record_vote(ph, prop, by, sig, now)
  if store.get(tally.vote_key(ph, by)) then return "known" end
  local prefix = "voter/" .. by .. "/"
  local others, conflict = 0, nil
  for _, k in ipairs(store.keys(prefix, 100) or {}) do
    local ph2 = k:sub(#prefix + 1)
    if ph2 ~= ph then
      others = others + 1
      local p2 = store.get("proposal/" .. ph2)
      if not conflict and type(p2) == "table" and math.min(p2.at, prop.at) > now + M.LIVE_MARGIN_S then
        conflict = ph2
      end
    end
  end
  if not conflict and others >= M.MAX_VOTES_PER_SIGNER then return "abuse" end
  local added, err = tally.add(store, ph, by, sig, ttl_until(prop.at + SKEW, now))
  if added == nil then return nil, err end
  if conflict then return "equivocation", conflict end
  return added and "new" or "known"
end

-- on_votes(ev[, name]) -> answer: a bundle (factom.ballot): its proposal,
-- then each vote that verifies, then the tally. Also a node's own vote
-- event (name = M.VOTE), which is a bundle of one. The answer tells the
-- proposer's relay query what became of it here: "decided", "counted <n>",
-- "late", "conflict" or "dropped <kind>".
function M.on_votes(ev, name)
  name = name or M.VOTES
  local function dropped(why, kind)
    drop(name, why, kind)
    return "dropped " .. kind
  end
  local b, why = ballot.decode(ev.payload)
  if not b then return dropped(why, "malformed") end
  local ph, prop, kind = M.accept(b.proposal)
  if not ph then return dropped(prop, kind) end
  -- A proposal first met in a bundle (this node missed the ballot and the
  -- proposal's event): vote now, and send the vote, as no ballot will ask.
  if kind == true then vote_once(ph, prop, true, true) end
  local now = time.now()
  if now >= prop.at then return dropped(string.format("votes for %s after its agreed time", short(ph)), "late") end
  local set = the_set()
  if not set then return "dropped error" end
  local voters, bad = ballot.verify(b.votes, ph, prop, set, config.get("factomd.network"))
  if #voters == 0 then return dropped(string.format("none of its %d votes verifies", bad), "forged") end
  if bad > 0 then log.warn(string.format("votes for %s: %d of the bundle do not verify", short(ph), bad)) end
  local ignored = M.ignored()
  -- The bundle's votes in one commit, all or none: one write lock and one
  -- log append instead of two per vote (a relay query holds 11).
  local new, skipped, equivocations = 0, {}, {}
  local ok, done, err = pcall(store.tx, function()
    for _, v in ipairs(voters) do
      local r, other = "ignored", nil
      if not ignored[v.by] then
        r, other = record_vote(ph, prop, v.by, v.sig, now)
        if not r then error(other, 0) end
      end
      if r == "new" then
        new = new + 1
      elseif r == "equivocation" then
        equivocations[#equivocations + 1] = { by = v.by, other = other }
      elseif r ~= "known" then
        skipped[#skipped + 1] = { by = v.by, r = r }
      end
    end
    return true
  end)
  if not (ok and done) then
    log.error("store: " .. tostring(ok and err or done))
    return "dropped error"
  end
  for _, s in ipairs(skipped) do
    log.warn(string.format("vote for %s by %s not counted: %s", short(ph), s.by,
      s.r == "abuse" and string.format("it has %d live votes here (at most %d)", M.MAX_VOTES_PER_SIGNER,
        M.MAX_VOTES_PER_SIGNER) or s.r == "ignored" and "evidence of equivocation against it" or s.r))
  end
  for _, e in ipairs(equivocations) do
    log.warn(string.format("vote for %s by %s not counted: equivocation", short(ph), e.by))
    vote_equivocation(e.by, e.other, ph, now)
  end
  log.info(string.format("votes for %s: %d in a bundle, %d new", short(ph), #voters, new))
  return M.maybe_decide(ph) or "dropped error"
end

function M.on_vote(ev) return M.on_votes(ev, M.VOTE) end

-- on_done(ev): a signed report that an authority ran (or skipped) a
-- decided restart. Kept only for a proposal decided here, once per
-- authority: a signer cannot fill the store with reports.
function M.on_done(ev)
  local body, why, kind = envelope.verify(M.DONE, ev.payload)
  if not body then return drop(M.DONE, why, kind) end
  if not M.valid_ph(body.ph) then return drop(M.DONE, "ph is not a proposal digest", "malformed") end
  if not store.get(tally.decided_key(body.ph)) and not store.get("withdrawn/" .. body.ph) then
    return drop(M.DONE, short(body.ph) .. " is not decided here", "unknown")
  end
  local first = store.add("done/" .. body.ph .. "/" .. body.by, { ok = body.ok, st = body.st, t = body.t,
    note = body.note }, 7 * 86400)
  if first == false then return drop(M.DONE, "report on " .. short(body.ph) .. " by " .. body.by .. " again", "replay") end
  log.info(string.format("restart done for %s by %s: ok=%s status=%s%s", short(body.ph), body.by,
    tostring(body.ok), tostring(body.st), body.note and (" (" .. body.note .. ")") or ""))
  return body.ph
end

-- propose{...}: `serfhand propose` calls it here (factom.proposer).
function M.propose(o) return require("factom.proposer").propose(o) end

return M
