-- lua/factom/executor.lua: the detached executor of a decided restart
-- (docs/protocol.md section 5, "Execute"). `serfhand action` runs it on each
-- node that decided (factom.restart spawns it): it waits until the agreed
-- time, checks the decision (not withdrawn) and the cooldown again, runs
-- factomd.restart once, at `at` and never more than LATE_S after it,
-- records the outcome and reports it with a signed factomd-restart-done
-- event.
local restart = require "factom.restart"
local authset = require "factom.authset"
local envelope = require "factom.envelope"
local tally = require "factom.tally"
local config = require "serfhand.config"
local log = require "serfhand.log"
local store = require "serfhand.store"
local time = require "serfhand.time"

local short = envelope.short -- a digest in a log line

local M = {}

M.RESTART_TIMEOUT_MS = 300000
M.PREPARE_MS = 300 -- the checks run this long before `at`
-- The restart never starts more than this after `at`: a node that comes to
-- it later (a decision that reached it late, an executor that started
-- late) would restart out of step with the others, after they recovered.
M.LATE_S = 5

-- cooldown_s(): reboot.cooldown_minutes, but never shorter than the window
-- `at` may lie in (reboot.at_max_seconds): one vote round can never restart
-- a node twice.
function M.cooldown_s()
  return math.max(config.get("reboot.cooldown_minutes") * 60, config.get("reboot.at_max_seconds"))
end

-- stands(ph) -> nil | why: the decision is still there (not withdrawn) and
-- its proposal is not one of two with the same id.
local function stands(ph)
  if store.get("conflict/" .. ph) then return "its proposer signed another proposal with the same id" end
  if not store.get(tally.decided_key(ph)) then
    return "the decision was withdrawn: " .. tostring(store.get("withdrawn/" .. ph) or "not decided")
  end
end

local function report_done(ph, fields)
  local me = restart.me()
  local set = me and authset.get({ cache_only = true })
  if not (set and set.members[me]) then return end -- only authorities report
  fields.ph = ph
  local payload, err = envelope.build(restart.DONE, fields, { ttl = 600 })
  if not payload then
    log.error("done not signed: " .. tostring(err))
    return
  end
  local ok, serr = require("serfhand.serf").event(restart.DONE, payload)
  if not ok then log.error("done not sent: " .. tostring(serr)) end
end

-- skip_withdrawn(ph) -> summary: the decision no longer stands (withdrawn,
-- or its proposal conflicts with another): logged, reported, not run.
local function skip_withdrawn(ph)
  log.warn(string.format("restart %s skipped: %s", short(ph), stands(ph)))
  report_done(ph, { ok = false, st = -1, note = "decision withdrawn" })
  return string.format("restart %s: skipped (the decision no longer stands)", short(ph))
end

-- action(act, ph) -> summary | nil, err: the detached executor. Waits until
-- the agreed time, checks the decision again, honours the cooldown, runs
-- factomd.restart once, records the outcome and reports it signed.
function M.action(act, ph)
  if not restart.valid_ph(ph) then return nil, "action: bad proposal digest" end
  local prop = store.get("proposal/" .. ph)
  if type(prop) ~= "table" then return nil, "action: unknown proposal " .. short(ph) end
  if prop.act ~= act then return nil, "action: proposal " .. short(ph) .. " is for " .. tostring(prop.act) end
  if not store.get(tally.decided_key(ph)) then
    -- withdrawn before this executor started: the same skip as at `at`
    if not (store.get("withdrawn/" .. ph) or store.get("conflict/" .. ph)) then
      return nil, "action: " .. short(ph) .. " is not decided"
    end
    return skip_withdrawn(ph)
  end
  local first = store.add("ran/" .. ph, "1", restart.KEEP_S * 2)
  if not first then
    -- A second executor of this node for the same decision (the deciding
    -- run and a tick's resume_executor can both start one): the first
    -- to get here runs it, this one has nothing to do. Not an error.
    log.info(string.format("restart %s: another executor of this node runs it", short(ph)))
    return string.format("restart %s: run by another executor of this node", short(ph))
  end
  -- Wake PREPARE_MS early for the checks, so that at `at` itself every node
  -- only has to start the command: the start times stay close even when all
  -- executors of a host wake at once.
  local wait = prop.at * 1000 - time.now_ms()
  if wait > M.PREPARE_MS then time.sleep(wait - M.PREPARE_MS) end
  if wait < -M.LATE_S * 1000 then
    local note = string.format("too late: %d ms after the agreed time", -wait)
    log.warn(string.format("restart %s skipped: %s", short(ph), note))
    report_done(ph, { ok = false, st = -1, note = "too late" })
    return string.format("restart %s: skipped (%s)", short(ph), note)
  end
  if stands(ph) then return skip_withdrawn(ph) end
  local cd = M.cooldown_s()
  if cd > 0 then
    local fresh = store.add("cooldown", ph, cd)
    if not fresh then
      local note = "cooldown after " .. tostring(store.get("cooldown"))
      log.warn(string.format("restart %s skipped: %s", short(ph), note))
      report_done(ph, { ok = false, st = -1, note = "cooldown" })
      return string.format("restart %s: skipped (%s)", short(ph), note)
    end
  end
  local argv = config.get("factomd.restart")
  if type(argv) ~= "table" or #argv == 0 then
    report_done(ph, { ok = false, st = -1, note = "no restart command" })
    return nil, "action: factomd.restart is not configured"
  end
  wait = prop.at * 1000 - time.now_ms()
  if wait < -M.LATE_S * 1000 then -- the checks themselves ran late
    report_done(ph, { ok = false, st = -1, note = "too late" })
    return string.format("restart %s: skipped (too late: %d ms after the agreed time)", short(ph), -wait)
  end
  -- The command is forked and set up now and exec'd at `at` itself: at the
  -- agreed moment a node has only the exec left to do, however many other
  -- processes (other nodes' executors and commands, on a shared host) want
  -- the CPU then.
  local cmd = table.concat(argv, " ")
  log.info(string.format("restart %s: starting %s at %.3f", short(ph), cmd, prop.at))
  local r, err = require("serfhand.proc").run(argv,
    { timeout_ms = M.RESTART_TIMEOUT_MS, delay_ms = math.max(wait, 0) })
  local t0 = r and r.started_ms or time.now_ms()
  local ok = r ~= nil and r.status == 0
  local st = r and (r.status or -(r.signal or 1)) or -1
  store.put("last_restart", { ph = ph, t = t0, ok = ok, st = st, took = time.now_ms() - t0 })
  if not r then
    log.error(string.format("restart %s failed to start: %s", short(ph), err))
  else
    log.info(string.format("restart %s: started %s at %.3f (%d ms after the agreed time)", short(ph), cmd,
      t0 / 1000, t0 - prop.at * 1000))
    if not ok then
      log.error(string.format("restart %s: command ended with %s: %s", short(ph), tostring(st),
        r.stderr:sub(1, 200)))
    else
      log.info(string.format("restart %s: command succeeded in %d ms", short(ph), time.now_ms() - t0))
    end
  end
  report_done(ph, { ok = ok, st = st, t = t0 })
  return string.format("restart %s: %s", short(ph), ok and "ok" or "failed")
end

return M
