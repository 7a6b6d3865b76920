-- lua/factom/node.lua: this node's side of the cluster view: its row in
-- `serfhand status` (query factomd-status) and its minute tick (health
-- record, authority-set refresh, votes no ballot carried, a vote on a
-- proposal held while the vote was locked, auto-propose).
local restart = require "factom.restart"
local tally = require "factom.tally"
local envelope = require "factom.envelope"
local authset = require "factom.authset"
local stall = require "factom.stall"
local config = require "serfhand.config"
local log = require "serfhand.log"
local store = require "serfhand.store"
local time = require "serfhand.time"

local M = {}

-- tick sends this node's vote with its proposal, as its own event, once the
-- ballot has had this long, and on every tick after that until the agreed
-- time (docs/protocol.md 4a).
M.RESEND_AFTER_S = 20
M.IDCHECK_KEEP_S = 600 -- an identity check outlives a few missed ticks

-- status(ev) -> table: this node's answer to query factomd-status.
function M.status(ev)
  local rep = stall.check()
  local set = authset.get({ cache_only = true })
  if not set and rep.state ~= "unknown" then set = authset.get() end -- factomd answers: ask it
  local me = restart.me()
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

-- resend_votes() -> n: this node's votes on proposals whose agreed time is
-- still ahead, each sent again with its proposal as a vote event, on every
-- tick once the ballot has had RESEND_AFTER_S. Nothing another member sends
-- can stop it (a bundle that carries this vote proves nothing about the
-- nodes that still lack it); only the agreed time, after which no node can
-- decide, ends it. That is at most at_max_seconds / tick period sends per
-- vote. The same re-send reaches a node that dropped the proposal as
-- "future" (clocks apart), once its clock has caught up.
function M.resend_votes()
  local ballot = require "factom.ballot"
  local keys = store.keys("myvote/", 100) or {}
  local now = time.now()
  local me = restart.me()
  local n = 0
  for _, k in ipairs(keys) do
    local ph = k:sub(#"myvote/" + 1)
    local mine = store.get(k)
    local prop = store.get("proposal/" .. ph)
    local v = type(mine) == "table" and ballot.uncompact(mine.v)
    if v and me and type(prop) == "table" and prop.payload and now < prop.at and now - prop.iat >= M.RESEND_AFTER_S then
      local ok, err = require("serfhand.serf").event(restart.VOTE,
        ballot.encode(prop.payload, { { by = me, sig = v.sig } })[1])
      if ok then
        n = n + 1
        log.info(string.format("vote for %s sent with its proposal (agreed time in %d s)", envelope.short(ph),
          math.floor(prop.at - now)))
      else
        log.error(string.format("vote for %s not sent: %s", envelope.short(ph), tostring(err)))
      end
    end
  end
  return n
end

-- vote_open(set) -> n: tick's vote on a proposal this node holds but has
-- not voted for: one that came while its vote was locked (another
-- proposal's `at` still ahead, restart.open_vote), or while it was not yet
-- sick. Without it, a proposer with a stolen key locks an honest voter
-- with a proposal that never completes, and that voter never votes for the
-- real stall proposal that came meanwhile (model/README.md, liveness). Only
-- once the lock has lapsed, for a proposal that is neither decided here nor
-- one of two with one id, whose proposer is under no evidence here, and
-- whose `at` is more than restart.LIVE_MARGIN_S ahead: a vote cast later
-- could reach a node whose clock is two skews ahead after its `at`, and the
-- nodes would decide apart. Of several, the one with the most votes here
-- (then the earliest `at`): one vote locks this node until that `at`.
-- vote_if_sick checks the rest (authority, identity, sick against the
-- proposal's `h`) and sends the vote with its proposal, as no ballot will ask.
function M.vote_open(set)
  local now = time.now()
  if restart.open_vote(nil, now) then return 0 end -- locked: quietly, every tick
  local ignored = restart.ignored()
  local cands = {}
  for _, k in ipairs(store.keys("proposal/", 1000) or {}) do
    local ph = k:sub(#"proposal/" + 1)
    local prop = store.get(k)
    if type(prop) == "table" and math.type(prop.at) == "integer" and type(prop.payload) == "string"
        and prop.at - now > restart.LIVE_MARGIN_S and not ignored[prop.by] and not store.get("myvote/" .. ph)
        and not store.get("conflict/" .. ph) and not store.get(tally.decided_key(ph)) then
      cands[#cands + 1] = { ph = ph, prop = prop, n = tally.count(store, ph, set, ignored) or 0 }
    end
  end
  table.sort(cands, function(a, b)
    if a.n ~= b.n then return a.n > b.n end
    if a.prop.at ~= b.prop.at then return a.prop.at < b.prop.at end
    return a.ph < b.ph
  end)
  for _, c in ipairs(cands) do
    if restart.vote_if_sick(c.ph, c.prop, set, true) then
      log.info(string.format("tick voted for %s, held while this node's vote was locked or it was not sick",
        envelope.short(c.ph)))
      restart.maybe_decide(c.ph)
      return 1
    end
  end
  return 0
end

-- check_identity(diag, set): compare the identity factomd runs
-- (diagnostics.id, .publickey) with the one serfhand reads from
-- factomd.conf, and record it (restart.IDCHECK): while they differ, this
-- node does not vote (a brainswap in progress, a stale or foreign
-- factomd.conf). Without diagnostics there is nothing to compare.
-- Returns true (same), false (different) or nil (not compared).
function M.check_identity(diag, set)
  if type(diag) ~= "table" then return nil end
  local identity = require "serfhand.identity"
  local mine, err = identity.chain_id()
  local did = type(diag.id) == "string" and diag.id:lower():sub(1, 64) or nil
  if not mine then
    if did and set and set.members[did] then
      log.warn(string.format("factomd runs authority identity %s, but serfhand has no identity: %s", did, tostring(err)))
    end
    return nil
  end
  local why
  local dpub = type(diag.publickey) == "string" and diag.publickey:lower():sub(1, 64) or nil
  if did and did ~= mine then
    why = string.format("factomd runs identity %s, factomd.conf holds %s", did, mine)
  elseif dpub and dpub ~= identity.public_key() then
    why = string.format("factomd signs with key %s, factomd.conf's LocalServerPrivKey gives %s", dpub, identity.public_key())
  end
  if why then
    log.warn("identity: " .. why .. "; this node does not vote until they agree")
    store.put(restart.IDCHECK, { ok = false, why = why }, M.IDCHECK_KEEP_S)
    return false
  end
  store.put(restart.IDCHECK, { ok = true }, M.IDCHECK_KEEP_S)
  return true
end

-- tick(ev): record health, send votes the ballot missed, start an executor
-- a decision is missing, refresh the authority set, compare identities, vote on a proposal held while the vote was
-- locked (vote_open), auto-propose.
function M.tick(_ev)
  local rep = stall.check()
  store.put("health", { state = rep.state, reason = rep.reason, t = time.now_ms(), h = rep.height,
    minute = rep.minute, stalled_s = rep.stalled_s })
  log.info(string.format("%s: %s", rep.state, rep.reason))
  M.resend_votes()
  restart.resume_executors()
  local set, serr = authset.get({ refresh = true })
  if not set then log.error(serr) end
  local same = M.check_identity(authset.diagnostics, set)
  if rep.state ~= "sick" then return rep.state end
  local me = restart.me()
  if not (me and set and set.members[me]) or same == false then return rep.state end
  M.vote_open(set)
  if not config.get("reboot.auto_propose") then return rep.state end
  if store.get("open/" .. me) then
    log.info("sick, but this node's proposal is still open")
    return rep.state
  end
  -- A proposal of its own now would compete with the one it voted for, and
  -- this node could not vote for it (one open vote).
  local voted = restart.open_vote(nil, time.now())
  if voted then
    log.info(string.format("sick, but this node's vote for %s is open: no proposal of its own", envelope.short(voted)))
    return rep.state
  end
  local text, err = require("factom.proposer").propose({ act = "restart" })
  if text then log.info(text) else log.error(tostring(err)) end
  return rep.state
end

return M
