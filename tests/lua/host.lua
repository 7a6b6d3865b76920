-- serfhand.time, serfhand.log, serfhand.config
local time = require "serfhand.time"
local log = require "serfhand.log"
local config = require "serfhand.config"

T.test("time.now and now_ms agree", function()
  local s, ms = time.now(), time.now_ms()
  T.ok(math.type(ms) == "integer")
  T.ok(math.abs(s * 1000 - ms) < 1000, "within a second")
  T.ok(ms > 1700000000000, "after 2023")
end)

T.test("time.mono is monotonic and sleep sleeps", function()
  local a = time.mono()
  time.sleep(20)
  local b = time.mono()
  T.ok(b - a >= 0.019, "slept " .. (b - a))
  T.raises(function() time.sleep(-1) end, "negative")
  T.raises(function() time.sleep("x") end, "number expected")
end)

T.test("log accepts any values", function()
  log.debug("debug", 1, nil, true)
  log.info("info line with\ttab and\nnewline")
  log.warn({})
  log.error("error")
end)

T.test("secrets are not handed to Lua", function()
  T.ok(config.get("factomd.password") == "" or config.get("factomd.password") == "(set)")
  T.ok(config.get("serf.rpc_auth") == "" or config.get("serf.rpc_auth") == "(set)")
end)

T.test("config view", function()
  T.eq(config.get("reboot.stall_minutes"), 30)
  T.eq(config.get("update.auto"), false)
  T.eq(type(config.get("trust.keys")), "table")
  T.raises(function() config.get("no.such") end, "unknown key")
  local t = config.table()
  T.eq(t.limits.response_bytes, 900)
  T.eq(type(t.state_dir), "string")
  t.limits.response_bytes = 1
  T.eq(config.get("limits.response_bytes"), 900, "table() is a copy")
end)
