-- tests/lua/factom_health.lua: restart.health(), what a vote rests on: tick's
-- fresh "sick" record, else a new look at factomd.
local restart = require "factom.restart"
local stall = require "factom.stall"
local store = require "serfhand.store"
local time = require "serfhand.time"
local config = require "serfhand.config"

local looks = 0
stall.check = function() -- the new look, counted; restart.lua calls it through the module table
  looks = looks + 1
  return { state = "healthy", reason = "asked factomd", height = 7 }
end

local function with_record(rec)
  looks = 0
  if rec then assert(store.put("health", rec)) else assert(store.del("health")) end
  return restart.health()
end

local max_s = config.get("reboot.health_max_age_seconds")
T.test("the default age limit is 90 s", function() T.eq(max_s, 90) end)

T.test("a fresh sick record decides without asking factomd", function()
  local r = with_record({ state = "sick", reason = "minute 4 stalled", t = time.now_ms() - 10000,
    h = 1000, minute = 4, stalled_s = 1900 })
  T.eq(r.state, "sick")
  T.eq(r.height, 1000)
  T.eq(r.stalled_s, 1900)
  T.ok(r.reason:find("minute 4 stalled (tick 10 s ago)", 1, true), r.reason)
  T.eq(looks, 0, "factomd asked")
end)

T.test("a sick record at the age limit still counts", function()
  local r = with_record({ state = "sick", reason = "x", t = time.now_ms() - max_s * 1000 + 500 })
  T.eq(r.state, "sick")
  T.eq(looks, 0)
end)

local cases = {
  { "a sick record older than the limit", function() return { state = "sick", reason = "x",
    t = time.now_ms() - (max_s + 1) * 1000 } end },
  { "a fresh healthy record", function() return { state = "healthy", reason = "x", t = time.now_ms() } end },
  { "a fresh unknown record", function() return { state = "unknown", reason = "x", t = time.now_ms() } end },
  { "a record from the future", function() return { state = "sick", reason = "x", t = time.now_ms() + 60000 } end },
  { "a record without a time", function() return { state = "sick", reason = "x" } end },
  { "a record with a fractional time", function() return { state = "sick", reason = "x", t = time.now_ms() + 0.5 } end },
  { "a record that is not a table", function() return "sick" end },
  { "no record", function() return nil end },
}
for _, c in ipairs(cases) do
  T.test(c[1] .. ": factomd is asked", function()
    local r = with_record(c[2]())
    T.eq(looks, 1, "factomd asked")
    T.eq(r.state, "healthy")
    T.eq(r.reason, "asked factomd")
  end)
end
