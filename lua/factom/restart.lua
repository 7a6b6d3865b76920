-- lua/factom/restart.lua: the voted restart of factomd (DESIGN section 7,
-- docs/protocol.md): what every node does with a proposal, its votes and
-- the done report, up to the decision and the start of the executor. The
-- handlers under handlers/ are thin wrappers around these functions. The
-- proposer's side (factom.proposer), the executor (factom.executor) and
-- status and tick (factom.node) live in their own modules: every node
-- compiles this one in the handlers of each vote, while they run elsewhere.
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
M.DONE = "factomd-restart-done"
M.KEEP_S = 86400 -- proposals, votes and decisions are kept this long after exp
-- tick's comparison of factomd's own identity (diagnostics) with the one in
-- factomd.conf: {ok, why}; while it says they differ, this node does not vote.
M.IDCHECK = "idcheck"
-- The executor process starts this long before `at` (at once when `at` is
-- nearer): not in the second the votes arrive, when every node's handlers
-- want the CPU. Its start-up takes tens of milliseconds.
M.EXECUTOR_LEAD_S = 10

local function is_int(v) return math.type(v) == "integer" end
local function ttl_until(exp, now) return math.max(1, math.ceil(exp - now)) end
M.ttl_until = ttl_until -- seconds a record about something that expires at exp is kept

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
  -- The decision and the end of its proposer's open proposal in one commit:
  -- a node that kept the proposal open would refuse that proposer's next one.
  local ok, first, n = pcall(store.tx, function()
    local f, m = tally.decide(store, pid, prop, set, now)
    if f and store.get("open/" .. prop.by) == pid then
      local done, err = store.del("open/" .. prop.by)
      if not done then error(err, 0) end -- rolls the decision back too
    end
    return f, m
  end)
  if not ok then first, n = nil, first end
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
  return require("factom.stall").check() -- loaded here only: relays and votes on a record do without
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
  local idc = store.get(M.IDCHECK)
  if type(idc) == "table" and idc.ok == false then
    return no("factomd runs another identity than factomd.conf holds: %s", tostring(idc.why))
  end
  local rep = M.health()
  if rep.state == "sick" then rep = require("factom.stall").versus_proposal(rep, prop.h) end
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
  -- relayed/<pid>: tick need not send this node's vote on its own. So when
  -- a bundle carried it, and when a bundle carried a quorum: the proposer
  -- relays it to every node (as events to those that did not answer).
  local me = M.me()
  local carried = #voters >= authset.quorum(set.n)
  for _, by in ipairs(voters) do carried = carried or by == me end
  if carried then store.put("relayed/" .. b.pid, "1", ttl_until(b.exp, now)) end
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

-- propose{...}: `serfhand propose` calls it here (factom.proposer).
function M.propose(o) return require("factom.proposer").propose(o) end

return M
