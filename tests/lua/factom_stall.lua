-- tests/lua/factom_stall.lua: lua/factom/stall.lua: the stall rule.
local stall = require "factom.stall"

local function cm(age_ms, bt, extra)
  local t = { leaderheight = 1000, directoryblockheight = 999, minute = 4, booting = false,
    minute_age_ms = age_ms, directoryblockinseconds = bt or 600 }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

local cases = {
  -- name, current_minute result, stall_minutes, state
  { "mainnet, minute 10 s old", cm(10000), 30, "healthy" },
  { "mainnet, 29 min 59 s", cm(30 * 60000 - 1000), 30, "healthy" },
  { "mainnet, exactly 30 min", cm(30 * 60000), 30, "sick" },
  { "mainnet, 2 h", cm(7200000), 30, "sick" },
  { "10 s blocks: minute = 1 s, 3 minutes = 3 s", cm(3000, 10), 3, "sick" },
  { "10 s blocks, 2.9 s", cm(2900, 10), 3, "healthy" },
  -- start times 0: only before the first block since factomd started
  { "booting", cm(0, 600, { booting = true }), 30, "booting" },
  -- catching up (DBStates): the start times move with every block loaded,
  -- the saved height is far below the height the node knows of
  { "catching up, minute fresh", cm(2000, 600, { directoryblockheight = 990 }), 30, "behind" },
  { "catch-up stuck 2 h", cm(7200000, 600, { directoryblockheight = 990 }), 30, "behind" },
  { "saved 3 below: a stall still", cm(7200000, 600, { directoryblockheight = 997 }), 30, "sick" },
  { "saved 4 below: behind", cm(7200000, 600, { directoryblockheight = 996 }), 30, "behind" },
  { "no times", cm(nil), 30, "unknown" },
  { "block time missing: 600 s", cm(30 * 60000, nil, { directoryblockinseconds = false }), 30, "sick" },
  { "no answer", nil, 30, "unknown" },
}
for _, c in ipairs(cases) do
  T.test(c[1], function()
    local r = stall.classify(c[2], c[3])
    T.eq(r.state, c[4], r.reason)
    T.ok(type(r.reason) == "string" and #r.reason > 0, "reason")
  end)
end

T.test("report fields", function()
  local r = stall.classify(cm(125000), 2)
  T.eq(r.state, "sick")
  T.eq(r.height, 1000)
  T.eq(r.saved, 999)
  T.eq(r.minute, 4)
  T.eq(r.stalled_s, 125)
  T.eq(r.threshold_s, 120)
  T.ok(r.reason:find("not advanced for 125 s", 1, true), r.reason)
  T.eq(stall.classify(cm(1000), 2).stalled_s, 0)
end)

T.test("heights: the network's acks show this node is behind", function()
  -- current-minute's leader height is this node's process lists; heights'
  -- counts the highest ack the network sent
  local c = cm(7200000)
  T.eq(stall.classify(c, 30, { leaderheight = 1003, directoryblockheight = 999 }).state, "behind")
  T.eq(stall.classify(c, 30, { leaderheight = 1002, directoryblockheight = 999 }).state, "sick")
  local r = stall.classify(c, 30, { leaderheight = 1010 })
  T.eq(r.known, 1010)
  T.ok(r.reason:find("saved block 999 of the 1010", 1, true), r.reason)
  -- a lower or broken heights answer changes nothing
  T.eq(stall.classify(c, 30, { leaderheight = 5 }).state, "sick")
  T.eq(stall.classify(c, 30, { leaderheight = "1010" }).state, "sick")
  T.eq(stall.classify(c, 30, "x").state, "sick")
end)

T.test("versus_proposal: a proposer further along makes a sick node behind", function()
  local sick = stall.classify(cm(7200000), 30)
  T.eq(sick.state, "sick")
  T.eq(stall.versus_proposal(sick, 1000).state, "sick")
  T.eq(stall.versus_proposal(sick, 1001).state, "sick") -- around a block's end
  T.eq(stall.versus_proposal(sick, 999).state, "sick") -- the proposer is behind: its problem
  local b = stall.versus_proposal(sick, 1002)
  T.eq(b.state, "behind")
  T.ok(b.reason:find("leader height 1002, 2 blocks above this node's 1000", 1, true), b.reason)
  T.eq(sick.state, "sick", "the report given is not changed")
  T.eq(stall.versus_proposal(sick, nil).state, "sick")
  T.eq(stall.versus_proposal(sick, 1.5e3 + 0.5).state, "sick")
  local healthy = stall.classify(cm(1000), 30)
  T.eq(stall.versus_proposal(healthy, 5000).state, "healthy")
end)

T.test("check: factomd unreachable is unknown, never sick", function()
  -- the default factomd.url (127.0.0.1:8088) is not listening in tests
  local r = stall.check()
  T.ok(r.state ~= "sick", r.reason)
end)
