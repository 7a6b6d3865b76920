-- lua/factom/restart.lua: the voted restart of factomd (DESIGN section 7,
-- docs/protocol.md): proposals, votes, the decision, the detached executor,
-- the done report, status and tick. The handlers under handlers/ are thin
-- wrappers around these functions; `serfhand propose` calls M.propose.
local envelope = require "factom.envelope"
local authset = require "factom.authset"
local stall = require "factom.stall"
local tally = require "factom.tally"
local ballot = require "factom.ballot"
local config = require "serfhand.config"
local log = require "serfhand.log"
local store = require "serfhand.store"
local time = require "serfhand.time"

local M = {}

M.PROPOSE = "factomd-restart-propose"
M.VOTE = "factomd-restart-vote"
M.DONE = "factomd-restart-done"
M.KEEP_S = 86400 -- proposals, votes and decisions are kept this long after exp
M.RESTART_TIMEOUT_MS = 300000
M.PREPARE_MS = 300 -- the executor's checks run this long before `at`
-- The executor process starts this long before `at` (at once when `at` is
-- nearer): not in the second the votes arrive, when every node's handlers
-- want the CPU. Its start-up takes tens of milliseconds.
M.EXECUTOR_LEAD_S = 10
M.BALLOT_MS = 5000 -- propose waits this long at most for the nodes' votes
M.RESEND_AFTER_S = 20 -- tick sends a vote no bundle carried after this

local function is_int(v) return math.type(v) == "integer" end
local function ttl_until(exp, now) return math.max(1, math.ceil(exp - now)) end

-- pid(body): the proposal id, "<proposer chain id>:<envelope id>".
function M.pid(body) return body.by .. ":" .. body.id end

function M.valid_pid(pid)
  if type(pid) ~= "string" then return false end
  local by, id = pid:match("^(888888%x+):(%x+)$")
  return by ~= nil and #by == 64 and #id >= 16 and #id <= 64 and not pid:match("%u")
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
  if kind == "replay" then log.info(msg) else log.warn(msg) end
  return nil
end

-- The authority set or nil (logged).
local function the_set(opts)
  local set, err = authset.get(opts)
  if not set then log.error(err) end
  return set
end

-- ---------------------------------------------------------------- deciding

-- Spawn the detached executor for a decided proposal (authorities only,
-- followers too when reboot.followers).
function M.execute(pid, prop, set)
  local me = M.me()
  if not (me and set.members[me]) and not config.get("reboot.followers") then
    log.info(string.format("decided %s: this node is not an authority, not restarting", pid))
    return
  end
  local argv = { "/proc/self/exe" } -- this very serfhand binary
  if config.file ~= "" then
    argv[#argv + 1] = "-c"
    argv[#argv + 1] = config.file
  end
  argv[#argv + 1] = "action"
  argv[#argv + 1] = prop.act
  argv[#argv + 1] = pid
  local logf = config.get("reboot.log")
  local wait = math.max(0, math.floor(prop.at - M.EXECUTOR_LEAD_S - time.now()))
  local p, err = require("serfhand.proc").spawn(argv,
    { log = logf ~= "" and logf or nil, delay_ms = wait * 1000 })
  if not p then
    log.error(string.format("decided %s: cannot start the executor: %s", pid, err))
    return
  end
  log.info(string.format("executor for %s started (pid %d%s): %s at %d", pid, p,
    wait > 0 and string.format(", runs %d s before", M.EXECUTOR_LEAD_S) or "", prop.act, prop.at))
end

-- maybe_decide(pid) -> state: decide pid if it has a quorum, at most once
-- per node. state says where pid stands here: "decided" (now or before),
-- "counted <n>" (no quorum, or expired), "noproposal" (votes kept, proposal
-- not seen) or nil (the set or the store failed; logged).
function M.maybe_decide(pid)
  local prop = store.get("proposal/" .. pid)
  if type(prop) ~= "table" then
    log.info(string.format("votes for %s kept: proposal not seen yet", pid))
    return "noproposal"
  end
  local set = the_set()
  if not set then return nil end
  local now = time.now()
  local first, n = tally.decide(store, pid, prop, set, now)
  if first == nil then
    log.error(string.format("tally of %s failed: %s", pid, tostring(n)))
    return nil
  end
  if not first then
    log.info(string.format("tally %s: %d of %d votes (quorum %d)%s", pid, n, set.n,
      authset.quorum(set.n), now >= prop.exp and ", expired" or ""))
    -- a quorum before exp that did not decide now was decided before
    if n >= authset.quorum(set.n) and now < prop.exp then return "decided" end
    return "counted " .. n
  end
  log.info(string.format("decided %s: %d of %d votes (quorum %d): %s at %d", pid, n, set.n,
    authset.quorum(set.n), prop.act, prop.at))
  if store.get("open/" .. prop.by) == pid then store.del("open/" .. prop.by) end
  M.execute(pid, prop, set)
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
  return stall.check()
end

-- vote_if_sick(pid, prop, set) -> vote | nil, why. When this node is a sick
-- authority: sign its vote on pid (deterministic body, envelope.vote_id),
-- count it here, keep it as myvote/<pid> and return its payload; send it as
-- its own event only for a proposal without a ballot (b). Else the reason it
-- does not vote, kept as novote/<pid>. Both are logged.
function M.vote_if_sick(pid, prop, set)
  local now = math.floor(time.now())
  local keep = ttl_until(prop.exp, now) + M.KEEP_S
  local function no(fmt, ...)
    local why = string.format(fmt, ...)
    log.info(string.format("%s %s: %s", why:match("^abstain") and "abstain on" or "no vote on", pid,
      (why:gsub("^abstain: ", ""))))
    store.put("novote/" .. pid, why, keep)
    return nil, why
  end
  local me = M.me()
  if not me then return no("this node has no identity") end
  if not set.members[me] then return no("%s is not in the authority set", me) end
  local rep = M.health()
  if rep.state ~= "sick" then return no("abstain: %s: %s", rep.state, rep.reason) end
  if prop.exp <= now then return no("the proposal has expired") end
  local payload, err = envelope.build(M.VOTE, { pid = pid },
    { now = prop.iat, ttl = prop.exp - prop.iat, id = envelope.vote_id(pid) })
  if not payload then
    log.error(string.format("cannot sign a vote on %s: %s", pid, err))
    return nil, "cannot sign: " .. tostring(err)
  end
  tally.add(store, pid, me, keep)
  store.put("myvote/" .. pid, payload, keep)
  if prop.b ~= 1 then
    local ok, serr = require("serfhand.serf").event(M.VOTE, payload)
    if not ok then
      log.error(string.format("vote on %s not sent: %s", pid, serr))
      return nil, "not sent: " .. tostring(serr)
    end
  end
  log.info(string.format("voted for %s: %s", pid, rep.reason))
  return payload
end

-- --------------------------------------------------------------- handlers

-- accept(body) -> pid, prop | nil: the checks and records every proposal
-- passes after envelope.verify, whether it came as an event or a query.
local function accept(body)
  if type(body.act) ~= "string" or #body.act > 32 or not body.act:match("^[a-z][a-z0-9_-]*$") then
    return drop(M.PROPOSE, "act must match [a-z][a-z0-9_-]*", "malformed")
  end
  if not is_int(body.at) or body.at < body.iat or body.at >= body.exp then
    return drop(M.PROPOSE, "at must be an integer with iat <= at < exp", "malformed")
  end
  if body.h ~= nil and not is_int(body.h) then
    return drop(M.PROPOSE, "h must be an integer", "malformed")
  end
  if body.b ~= nil and body.b ~= 1 then
    return drop(M.PROPOSE, "b must be 1 or absent", "malformed")
  end
  local pid = M.pid(body)
  local now = time.now()
  local added, err = store.add("open/" .. body.by, pid, ttl_until(body.exp, now))
  if added == nil then log.error("store: " .. tostring(err)) return nil end
  if not added and store.get("open/" .. body.by) ~= pid then
    return drop(M.PROPOSE, string.format("%s already has an open proposal %s", body.by,
      tostring(store.get("open/" .. body.by))), "abuse")
  end
  local prop = { act = body.act, at = body.at, h = body.h, exp = body.exp, iat = body.iat,
    by = body.by, id = body.id, b = body.b }
  store.add("proposal/" .. pid, prop, ttl_until(body.exp, now) + M.KEEP_S)
  log.info(string.format("proposal %s: %s at %d (in %d s), leader height %s, expires in %d s",
    pid, body.act, body.at, body.at - math.floor(now), tostring(body.h), body.exp - math.floor(now)))
  return pid, prop
end

-- verify_proposal(payload) -> body | nil, why, kind: envelope.verify, except
-- that a replay of a proposal this node has not recorded (the run that saw
-- it first was cut short) is taken again: recording it is idempotent.
local function verify_proposal(payload)
  local body, why, kind = envelope.verify(M.PROPOSE, payload)
  if not body and kind == "replay" then
    local again = envelope.verify(M.PROPOSE, payload, { seen = function() return true end })
    if again and not store.get("proposal/" .. M.pid(again)) then return again end
  end
  return body, why, kind
end

function M.on_propose(ev)
  local body, why, kind = verify_proposal(ev.payload)
  if not body then return drop(M.PROPOSE, why, kind) end
  local pid, prop = accept(body)
  if not pid then return nil end
  local set = the_set()
  if not set then return nil end
  M.vote_if_sick(pid, prop, set)
  M.maybe_decide(pid)
  return pid
end

-- on_ballot(ev) -> answer: the proposal as the proposer's query. The answer
-- is "vote <vote payload>" or "novote <why>"; a proposal already handled
-- (its event came first) gets the answer given then.
function M.on_ballot(ev)
  local body, why, kind = verify_proposal(ev.payload)
  if not body and kind == "replay" then
    local _, _, b = envelope.parse(ev.payload)
    local pid = M.pid(b)
    local mine = store.get("myvote/" .. pid)
    if type(mine) == "string" then return "vote " .. mine end
    return "novote " .. tostring(store.get("novote/" .. pid) or "not handled here")
  end
  if not body then
    drop(M.PROPOSE, why, kind)
    return "novote dropped: " .. kind
  end
  local pid, prop = accept(body)
  if not pid then return "novote refused" end
  local set = the_set()
  if not set then return "novote no authority set" end
  local vote, no = M.vote_if_sick(pid, prop, set)
  M.maybe_decide(pid)
  return vote and ("vote " .. vote) or ("novote " .. no)
end

-- on_votes(ev) -> answer: a bundle of relayed votes (factom.ballot): count
-- each vote that verifies, then tally. The answer tells the proposer's relay
-- query what became of it here: "decided", "counted <n>" (the proposal is
-- known, no quorum yet), "noproposal" (the proposal has not reached this
-- node) or "dropped <kind>".
function M.on_votes(ev)
  local function dropped(why, kind)
    drop(ballot.EVENT, why, kind)
    return "dropped " .. kind
  end
  local b, why = ballot.decode(ev.payload)
  if not b then return dropped(why, "malformed") end
  if not M.valid_pid(b.pid) then return dropped("bad proposal id", "malformed") end
  local now = time.now()
  local late, kind = envelope.check_times(b.iat, b.exp, now)
  if late then return dropped(late, kind) end
  local set = the_set()
  if not set then return "dropped error" end
  local voters, bad = ballot.verify(b, set, config.get("factomd.network"))
  if #voters == 0 then return dropped(string.format("none of its %d votes verifies", bad), "forged") end
  if bad > 0 then log.warn(string.format("votes for %s: %d of the bundle do not verify", b.pid, bad)) end
  local new, err = store.tx(function() -- one commit for the whole bundle
    local n = 0
    for _, by in ipairs(voters) do
      local added, aerr = tally.add(store, b.pid, by, ttl_until(b.exp, now) + M.KEEP_S)
      if added == nil then return nil, aerr end -- the votes added so far stand
      if added then n = n + 1 end
    end
    return n
  end)
  if not new then
    log.error("store: " .. tostring(err))
    return "dropped error"
  end
  log.info(string.format("votes for %s: %d in a bundle, %d new", b.pid, #voters, new))
  local me = M.me()
  for _, by in ipairs(voters) do
    if by == me then store.put("relayed/" .. b.pid, "1", ttl_until(b.exp, now)) end
  end
  return M.maybe_decide(b.pid) or "dropped error"
end

function M.on_vote(ev)
  local body, why, kind = envelope.verify(M.VOTE, ev.payload)
  if not body then return drop(M.VOTE, why, kind) end
  if not M.valid_pid(body.pid) then return drop(M.VOTE, "pid is not <chain id>:<hex id>", "malformed") end
  local new, err = tally.add(store, body.pid, body.by, ttl_until(body.exp, time.now()) + M.KEEP_S)
  if new == nil then log.error("store: " .. tostring(err)) return nil end
  log.info(string.format("vote for %s from %s%s", body.pid, body.by, new and "" or " (already counted)"))
  M.maybe_decide(body.pid)
  return body.pid
end

function M.on_done(ev)
  local body, why, kind = envelope.verify(M.DONE, ev.payload)
  if not body then return drop(M.DONE, why, kind) end
  if not M.valid_pid(body.pid) then return drop(M.DONE, "pid is not <chain id>:<hex id>", "malformed") end
  store.put("done/" .. body.pid .. "/" .. body.by, { ok = body.ok, st = body.st, t = body.t,
    note = body.note }, 7 * 86400)
  log.info(string.format("restart done for %s by %s: ok=%s status=%s%s", body.pid, body.by,
    tostring(body.ok), tostring(body.st), body.note and (" (" .. body.note .. ")") or ""))
  return body.pid
end

-- --------------------------------------------------------------- executor

local function report_done(pid, fields)
  local me = M.me()
  local set = me and authset.get({ cache_only = true })
  if not (set and set.members[me]) then return end -- only authorities report
  fields.pid = pid
  local payload, err = envelope.build(M.DONE, fields, { ttl = 600 })
  if not payload then
    log.error("done not signed: " .. tostring(err))
    return
  end
  local ok, serr = require("serfhand.serf").event(M.DONE, payload)
  if not ok then log.error("done not sent: " .. tostring(serr)) end
end

-- action(act, pid) -> summary | nil, err: the detached executor. Waits until
-- the agreed time, checks the decision again, honours the cooldown, runs
-- factomd.restart once, records the outcome and reports it signed.
function M.action(act, pid)
  if not M.valid_pid(pid) then return nil, "action: bad proposal id" end
  local prop = store.get("proposal/" .. pid)
  if type(prop) ~= "table" then return nil, "action: unknown proposal " .. pid end
  if prop.act ~= act then return nil, "action: proposal " .. pid .. " is for " .. tostring(prop.act) end
  if not store.get(tally.decided_key(pid)) then return nil, "action: " .. pid .. " is not decided" end
  local first = store.add("ran/" .. pid, "1", M.KEEP_S * 2)
  if not first then return nil, "action: " .. pid .. " already ran on this node" end
  -- Wake PREPARE_MS early for the checks, so that at `at` itself every node
  -- only has to start the command: the start times stay close even when all
  -- executors of a host wake at once.
  local wait = prop.at * 1000 - time.now_ms()
  if wait > M.PREPARE_MS then
    time.sleep(wait - M.PREPARE_MS)
  elseif wait < -1000 then
    log.warn(string.format("restart %s: decided %d ms after the agreed time", pid, -wait))
  end
  if not store.get(tally.decided_key(pid)) then
    report_done(pid, { ok = false, st = -1, note = "decision withdrawn" })
    return string.format("restart %s: skipped (the decision no longer stands)", pid)
  end
  local cd = config.get("reboot.cooldown_minutes")
  if cd > 0 then
    local fresh = store.add("cooldown", pid, cd * 60)
    if not fresh then
      local note = "cooldown after " .. tostring(store.get("cooldown"))
      log.warn(string.format("restart %s skipped: %s", pid, note))
      report_done(pid, { ok = false, st = -1, note = "cooldown" })
      return string.format("restart %s: skipped (%s)", pid, note)
    end
  end
  local argv = config.get("factomd.restart")
  if type(argv) ~= "table" or #argv == 0 then
    report_done(pid, { ok = false, st = -1, note = "no restart command" })
    return nil, "action: factomd.restart is not configured"
  end
  wait = prop.at * 1000 - time.now_ms()
  if wait > 0 then time.sleep(wait) end
  local t0 = time.now_ms()
  log.info(string.format("restart %s: running %s at %.3f", pid, table.concat(argv, " "), t0 / 1000))
  local r, err = require("serfhand.proc").run(argv, { timeout_ms = M.RESTART_TIMEOUT_MS })
  local ok = r ~= nil and r.status == 0
  local st = r and (r.status or -(r.signal or 1)) or -1
  store.put("last_restart", { pid = pid, t = t0, ok = ok, st = st, took = time.now_ms() - t0 })
  if not r then
    log.error(string.format("restart %s failed to start: %s", pid, err))
  elseif not ok then
    log.error(string.format("restart %s: command ended with %s: %s", pid, tostring(st), r.stderr:sub(1, 200)))
  else
    log.info(string.format("restart %s: command succeeded in %d ms", pid, time.now_ms() - t0))
  end
  report_done(pid, { ok = ok, st = st, t = t0 })
  return string.format("restart %s: %s", pid, ok and "ok" or "failed")
end

-- ---------------------------------------------------------------- propose

-- propose{act, in_s, ttl_s, dry_run} -> text | nil, err: sign and send a
-- proposal from this node (an authority).
function M.propose(o)
  o = o or {}
  local act = o.act or "restart"
  local me = M.me()
  if not me then
    local _, err = require("serfhand.identity").chain_id()
    return nil, "propose: this node has no identity: " .. tostring(err)
  end
  local set, err = authset.get() -- tick's cached set when fresh, else factomd
  if not set then return nil, "propose: " .. tostring(err) end
  if not set.members[me] then return nil, "propose: this node (" .. me .. ") is not in the authority set" end
  local ttl = o.ttl_s or config.get("reboot.ttl_minutes") * 60
  local delay = o.in_s or config.get("reboot.delay_seconds")
  if ttl < 1 or ttl > envelope.MAX_LIFETIME then return nil, "propose: --ttl must be 1 s to 1 h" end
  if delay < 0 or delay >= ttl then return nil, "propose: --in must be shorter than --ttl" end
  local open = store.get("open/" .. me)
  if open and not o.dry_run then
    return nil, "propose: proposal " .. tostring(open) .. " of this node is still open"
  end
  local h = M.health().height -- the leader height, informational
  local now = math.floor(time.now())
  local payload, body = envelope.build(M.PROPOSE, { act = act, at = now + delay,
    h = is_int(h) and h or 0, b = 1 }, { now = now, ttl = ttl })
  if not payload then return nil, body end
  local text = string.format("proposal %s: %s at %d (in %d s), expires at %d, leader height %d, authority set of %d, quorum %d",
    M.pid(body), act, body.at, delay, body.exp, body.h, set.n, authset.quorum(set.n))
  if o.dry_run then
    return text .. "\n(dry run, not sent) payload " .. #payload .. " bytes:\n" .. payload
  end
  local out, reached = M.collect(body, payload)
  if not reached then return nil, "propose: the proposal reached no node\n" .. out end
  return text .. "\n" .. out
end

-- collect(body, payload) -> text, reached: the ballot (docs/protocol.md
-- section 4a). Ask every node for its vote (query factomd-restart-propose
-- with the proposal itself) until a quorum of valid votes is in, then relay
-- them (M.relay), or, without a quorum, the votes in when every alive node
-- has answered or the ballot timed out. Without votes, and unless every
-- alive node answered, the proposal also goes out as an event, which Serf
-- delivers reliably (push/pull) to a node that missed the query; the others
-- drop it as a replay. A vote that misses all this is sent by its node's
-- tick. reached is false when neither the query nor the event went out.
function M.collect(body, payload)
  local serf = require "serfhand.serf"
  local crypto = require "serfhand.crypto"
  local pid = M.pid(body)
  local alive = M.alive_members()
  local set = authset.get() or { n = 0 }
  local need = math.max(1, authset.quorum(set.n))
  local votes, voters, others = {}, {}, {}
  local t0 = time.now_ms()
  local function no_seen() return true end
  local function take(node, answer)
    local kind, rest = answer:match("^(%l+) (.*)$")
    local vb = kind == "vote" and envelope.verify(M.VOTE, rest, { seen = no_seen })
    if vb and vb.pid == pid and vb.iat == body.iat and vb.exp == body.exp
        and vb.id == envelope.vote_id(pid) then
      if not voters[vb.by] then
        voters[vb.by] = node
        votes[#votes + 1] = { by = vb.by, sig = crypto.unb64url(rest:match("^([^.]+)%.")) }
      end
    else
      others[#others + 1] = string.format("  %s: %s", node,
        kind == "novote" and rest:sub(1, 160) or "an answer that is not a valid vote")
    end
    return #votes >= need -- a quorum: more votes would decide nothing more
  end
  local r, err = serf.query(M.PROPOSE, payload,
    { expect = math.max(#alive, 1), timeout_ms = M.BALLOT_MS, on_response = take })
  local lines, reached = {}, r ~= nil or #votes > 0
  if not r then
    lines[1] = "ballot: " .. tostring(err)
  else
    lines[1] = string.format("ballot: %d of %d nodes answered in %d ms; %d votes (quorum %d)", r.n, #alive,
      time.now_ms() - t0, #votes, need)
  end
  table.sort(others)
  for _, o in ipairs(others) do lines[#lines + 1] = o end
  if #votes > 0 then -- below a quorum too: every node then holds them when tick sends the rest
    lines[#lines + 1] = M.relay(body, payload, votes, voters, alive)
  elseif not (r and r.n >= #alive) then
    local ok, serr = serf.event(M.PROPOSE, payload)
    lines[#lines + 1] = ok and "the proposal went out as an event too (not every node answered)"
      or "the proposal event: " .. tostring(serr)
    reached = reached or ok
  end
  if #votes < need and reached then
    lines[#lines + 1] = "no quorum yet: the other votes follow from each node's tick"
  end
  return table.concat(lines, "\n"), reached
end

-- alive_members() -> {name, ...}: the members the agent sees alive.
function M.alive_members()
  local names = {}
  for _, m in ipairs(require("serfhand.serf").members() or {}) do
    if m.status == "alive" then names[#names + 1] = m.name end
  end
  return names
end

-- relay(body, payload, votes, voters, alive) -> text: send the ballot's votes
-- on as the query factomd-restart-votes (one query holds eleven; each node
-- answers what became of them, on_votes). Serf does not repair a missed
-- query, so for the nodes that did not answer, the votes then go out as
-- events too; when a node has not seen the proposal, so does the proposal.
function M.relay(body, payload, votes, voters, alive)
  local serf = require "serfhand.serf"
  local pid = M.pid(body)
  local names = {}
  for _, v in ipairs(votes) do names[#names + 1] = voters[v.by] end
  table.sort(names)
  local t0 = time.now_ms()
  local answers, heard = {}, {} -- each node's last answer; how many queries it answered
  local queries = ballot.encode(pid, body.iat, body.exp, votes, "query")
  local failed
  for _, q in ipairs(queries) do
    local r, err = serf.query(ballot.EVENT, q, { expect = math.max(#alive, 1), timeout_ms = M.BALLOT_MS,
      on_response = function(node, answer)
        answers[node] = answer
        heard[node] = (heard[node] or 0) + 1
      end })
    if not r then
      failed = tostring(err)
      break
    end
  end
  -- A node that missed a query, or kept no answer, gets the votes as events;
  -- one that has not seen the proposal, the proposal. A node that dropped
  -- the bundle as forged, expired or malformed would drop the events too.
  local decided, missing, noprop, dropped = 0, {}, false, {}
  for _, node in ipairs(alive) do
    local a = answers[node]
    local kind = a and a:match("^dropped (%l+)$")
    if failed or (heard[node] or 0) < #queries then
      missing[#missing + 1] = node
    elseif a == "decided" then
      decided = decided + 1
    elseif a == "noproposal" then
      noprop = true
    elseif kind == "error" then
      missing[#missing + 1] = node
    elseif kind then
      dropped[#dropped + 1] = node .. " " .. a
    end -- else "counted <n>": below a quorum, more votes may come from tick
  end
  local text = string.format("relay: %d votes sent on in %d quer%s: %s\nrelay: decided on %d of %d nodes (answers in %d ms)",
    #votes, #queries, #queries == 1 and "y" or "ies", table.concat(names, " "), decided, #alive, time.now_ms() - t0)
  if failed then text = text .. "\nrelay query: " .. failed end
  if #dropped > 0 then text = text .. "\nrelay: dropped by " .. table.concat(dropped, ", ") end
  if #missing > 0 or noprop then
    local ok, serr = serf.event(M.PROPOSE, payload)
    text = text .. (ok and "\nthe proposal went out as an event too" or "\nthe proposal event: " .. tostring(serr))
  end
  if #missing > 0 then
    local sent = 0
    for _, p in ipairs(ballot.encode(pid, body.iat, body.exp, votes)) do
      local ok, serr = serf.event(ballot.EVENT, p)
      if not ok then
        text = text .. "\nvote events: " .. tostring(serr)
        break
      end
      sent = sent + 1
    end
    text = text .. string.format("\nthe votes went out in %d event%s too (no answer from %s)", sent,
      sent == 1 and "" or "s", table.concat(missing, " "))
  end
  return text
end

-- ----------------------------------------------------------- status, tick

-- status(ev) -> table: this node's answer to query factomd-status.
function M.status(ev)
  local rep = stall.check()
  local set = authset.get({ cache_only = true })
  if not set and rep.state ~= "unknown" then set = authset.get() end -- factomd answers: ask it
  local me = M.me()
  local role = "follower"
  if me and set and set.members[me] then role = set.members[me].status == "audit" and "audit" or "authority" end
  if me and not set then role = "unknown" end
  local last = store.get("last_restart")
  return {
    name = ev.self and ev.self.name or "?", role = role, state = rep.state,
    sick = rep.state == "sick", h = rep.height, saved = rep.saved, minute = rep.minute,
    stalled_s = rep.stalled_s, bundle = ev.bundle and ev.bundle.version or nil,
    last_restart = type(last) == "table" and last.t or nil,
    last_ok = type(last) == "table" and last.ok or nil,
    reason = rep.state ~= "healthy" and rep.reason:sub(1, 200) or nil,
  }
end

-- resend_votes(): this node's votes that no bundle has carried back yet
-- (the proposer's ballot missed them, or it stopped), sent as their own
-- events once the ballot has had RESEND_AFTER_S.
function M.resend_votes()
  local keys = store.keys("myvote/", 100) or {}
  local now = time.now()
  for _, k in ipairs(keys) do
    local pid = k:sub(#"myvote/" + 1)
    local prop = store.get("proposal/" .. pid)
    if type(prop) == "table" and prop.b == 1 and now < prop.exp and now - prop.iat >= M.RESEND_AFTER_S
        and not store.get("relayed/" .. pid) and not store.get(tally.decided_key(pid)) then
      local ok, err = require("serfhand.serf").event(M.VOTE, store.get(k))
      if ok then
        store.put("relayed/" .. pid, "tick", ttl_until(prop.exp, now))
        log.info(string.format("vote for %s sent on its own: no bundle carried it", pid))
      else
        log.error(string.format("vote for %s not sent: %s", pid, tostring(err)))
      end
    end
  end
end

-- tick(ev): record health, refresh the authority set, send votes the
-- ballot missed, auto-propose.
function M.tick(_ev)
  local rep = stall.check()
  store.put("health", { state = rep.state, reason = rep.reason, t = time.now_ms(), h = rep.height,
    minute = rep.minute, stalled_s = rep.stalled_s })
  log.info(string.format("%s: %s", rep.state, rep.reason))
  M.resend_votes()
  local set = the_set({ refresh = true })
  if rep.state ~= "sick" or not config.get("reboot.auto_propose") then return rep.state end
  local me = M.me()
  if not (me and set and set.members[me]) then return rep.state end
  if store.get("open/" .. me) then
    log.info("sick, but this node's proposal is still open")
    return rep.state
  end
  local text, err = M.propose({ act = "restart" })
  if text then log.info(text) else log.error(tostring(err)) end
  return rep.state
end

return M
