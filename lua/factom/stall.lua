-- lua/factom/stall.lua: the stall rule (DESIGN section 7). A node is sick when
-- factomd answers, is not syncing, and its current minute has not advanced
-- for reboot.stall_minutes factomd minutes (directoryblockinseconds / 10:
-- 60 s on mainnet). Unreachable factomd = unknown, never sick.
local M = {}

-- classify(cm, stall_minutes) -> report. cm is serfhand.factomd's
-- current_minute() result (minute_age_ms computed from the exact ns times).
-- report = {state = "sick"|"healthy"|"syncing"|"unknown", reason, height,
-- saved, minute, stalled_s, threshold_s, minute_s}.
function M.classify(cm, stall_minutes)
  if type(cm) ~= "table" then
    return { state = "unknown", reason = "no answer from factomd" }
  end
  local r = { height = cm.leaderheight, saved = cm.directoryblockheight, minute = cm.minute }
  if cm.syncing then
    r.state, r.reason = "syncing", "factomd is syncing (current minute start time is 0)"
    return r
  end
  local age = cm.minute_age_ms
  if math.type(age) ~= "integer" then
    r.state, r.reason = "unknown", "current-minute has no currenttime/currentminutestarttime"
    return r
  end
  local bt = cm.directoryblockinseconds
  if math.type(bt) ~= "integer" or bt <= 0 then bt = 600 end
  local minute_ms = bt * 100
  local threshold_ms = stall_minutes * minute_ms
  r.minute_s = minute_ms / 1000
  r.threshold_s = threshold_ms // 1000
  r.stalled_s = age > minute_ms and age // 1000 or 0
  if age >= threshold_ms then
    r.state = "sick"
    r.reason = string.format("minute %s of block %s has not advanced for %d s (threshold %d s)",
      tostring(cm.minute), tostring(cm.leaderheight), age // 1000, threshold_ms // 1000)
  else
    r.state = "healthy"
    r.reason = string.format("minute %s of block %s started %d s ago", tostring(cm.minute),
      tostring(cm.leaderheight), age // 1000)
  end
  return r
end

-- check() -> report, asking the local factomd now.
function M.check()
  local factomd = require "serfhand.factomd"
  local cm, err = factomd.current_minute()
  if not cm then
    return { state = "unknown", reason = tostring(err) }
  end
  return M.classify(cm, require("serfhand.config").get("reboot.stall_minutes"))
end

return M
