-- lua/factom/executor.lua: the detached executor of a decided restart
-- (docs/protocol.md section 5, "Execute"). `serfhand action` runs it on each
-- node that decided (factom.restart spawns it): it waits until the agreed
-- time, checks the decision and the cooldown again, runs factomd.restart
-- once, records the outcome and reports it with a signed
-- factomd-restart-done event.
local restart = require "factom.restart"
local authset = require "factom.authset"
local envelope = require "factom.envelope"
local tally = require "factom.tally"
local config = require "serfhand.config"
local log = require "serfhand.log"
local store = require "serfhand.store"
local time = require "serfhand.time"

local M = {}

M.RESTART_TIMEOUT_MS = 300000
M.PREPARE_MS = 300 -- the checks run this long before `at`

local function report_done(pid, fields)
  local me = restart.me()
  local set = me and authset.get({ cache_only = true })
  if not (set and set.members[me]) then return end -- only authorities report
  fields.pid = pid
  local payload, err = envelope.build(restart.DONE, fields, { ttl = 600 })
  if not payload then
    log.error("done not signed: " .. tostring(err))
    return
  end
  local ok, serr = require("serfhand.serf").event(restart.DONE, payload)
  if not ok then log.error("done not sent: " .. tostring(serr)) end
end

-- action(act, pid) -> summary | nil, err: the detached executor. Waits until
-- the agreed time, checks the decision again, honours the cooldown, runs
-- factomd.restart once, records the outcome and reports it signed.
function M.action(act, pid)
  if not restart.valid_pid(pid) then return nil, "action: bad proposal id" end
  local prop = store.get("proposal/" .. pid)
  if type(prop) ~= "table" then return nil, "action: unknown proposal " .. pid end
  if prop.act ~= act then return nil, "action: proposal " .. pid .. " is for " .. tostring(prop.act) end
  if not store.get(tally.decided_key(pid)) then return nil, "action: " .. pid .. " is not decided" end
  local first = store.add("ran/" .. pid, "1", restart.KEEP_S * 2)
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

return M
