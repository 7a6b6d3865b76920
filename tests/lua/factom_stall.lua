-- tests/lua/factom_stall.lua: lua/factom/stall.lua: the stall rule.
local stall = require "factom.stall"

local function cm(age_ms, bt, extra)
  local t = { leaderheight = 1000, directoryblockheight = 999, minute = 4, syncing = false,
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
  { "syncing", cm(0, 600, { syncing = true }), 30, "syncing" },
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

T.test("check: factomd unreachable is unknown, never sick", function()
  -- the default factomd.url (127.0.0.1:8088) is not listening in tests
  local r = stall.check()
  T.ok(r.state == "unknown" or r.state == "healthy" or r.state == "syncing", r.state)
  T.ok(r.state ~= "sick", r.reason)
end)
