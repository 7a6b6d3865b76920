-- lua/factom/stall.lua: the stall rule (DESIGN section 7, docs/protocol.md
-- section 6), from what factomd really reports. A node is sick when factomd
-- answers, has moved to a block since it started, is not behind the network,
-- and its current minute has not advanced for reboot.stall_minutes factomd
-- minutes (directoryblockinseconds / 10: 60 s on mainnet). Unreachable
-- factomd = unknown, never sick; booting and behind are never sick either.
local M = {}

-- A node whose saved height is more than this below the height it knows the
-- network builds is catching up: factomd's own stall detector uses the same
-- gap (state.IsStalled, state/state.go).
M.BEHIND_SAVED = 3
-- A proposal (signed by an authority) whose leader height is more than this
-- above ours shows the network got further than this node: in a network
-- stall every node that follows it sits at one height, or one apart around
-- the block's end.
M.BEHIND_PEER = 1

local function int(v) return math.type(v) == "integer" end

-- classify(cm, stall_minutes[, heights]) -> report. cm is serfhand.factomd's
-- current_minute() result (minute_age_ms computed from the exact ns times);
-- heights, when given, its heights() result (whose leaderheight also counts
-- the highest ack the network sent). report = {state = "sick"|"healthy"|
-- "booting"|"behind"|"unknown", reason, height, saved, known, minute,
-- stalled_s, threshold_s, minute_s}.
function M.classify(cm, stall_minutes, heights)
  if type(cm) ~= "table" then
    return { state = "unknown", reason = "no answer from factomd" }
  end
  local r = { height = cm.leaderheight, saved = cm.directoryblockheight, minute = cm.minute }
  if cm.booting then
    r.state, r.reason = "booting", "factomd has not reached its first block since it started (start times are 0)"
    return r
  end
  local known = cm.leaderheight
  if type(heights) == "table" and int(heights.leaderheight) and (not int(known) or heights.leaderheight > known) then
    known = heights.leaderheight
  end
  r.known = known
  if int(known) and int(r.saved) and known - r.saved > M.BEHIND_SAVED then
    r.state = "behind"
    r.reason = string.format("this node has saved block %d of the %d the network builds: it is catching up, not stalled",
      r.saved, known)
    return r
  end
  local age = cm.minute_age_ms
  if not int(age) then
    r.state, r.reason = "unknown", "current-minute has no currenttime/currentminutestarttime"
    return r
  end
  local bt = cm.directoryblockinseconds
  if not int(bt) or bt <= 0 then bt = 600 end
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

-- versus_proposal(rep, h) -> rep: a sick report measured against the leader
-- height h an authority signed into its proposal: when the proposer is
-- further along, this node is behind (others' answers settle what its own
-- factomd cannot see, e.g. cut off from the network's acks).
function M.versus_proposal(rep, h)
  if rep.state ~= "sick" or not int(h) or not int(rep.height) or h - rep.height <= M.BEHIND_PEER then
    return rep
  end
  local r = {}
  for k, v in pairs(rep) do r[k] = v end
  r.state = "behind"
  r.reason = string.format("the proposal was made at leader height %d, %d blocks above this node's %d: this node is behind",
    h, h - rep.height, rep.height)
  return r
end

-- check() -> report, asking the local factomd now. heights is asked only
-- when the minute is old enough to be a stall: a healthy node pays one call.
function M.check()
  local factomd = require "serfhand.factomd"
  local stall_minutes = require("serfhand.config").get("reboot.stall_minutes")
  local cm, err = factomd.current_minute()
  if not cm then
    return { state = "unknown", reason = tostring(err) }
  end
  local rep = M.classify(cm, stall_minutes)
  if rep.state == "sick" then
    local h = factomd.heights()
    if h then rep = M.classify(cm, stall_minutes, h) end
  end
  return rep
end

return M
