-- tests/lua/factomd.lua: serfhand.factomd against tests/sim/factomd_sim.py.
-- Argument checks always run. The network cases run when factomd.url carries
-- "?case=NAME" (tests/cli/factomd.sh sets the simulator's mode and the config
-- per case, then runs this file once per case).
local factomd = require "serfhand.factomd"
local config = require "serfhand.config"
local time = require "serfhand.time"

local case = config.get("factomd.url"):match("[?&]case=([%w_]+)") or "offline"

local function hex64(s) return type(s) == "string" and s:match("^%x+$") ~= nil and #s == 64 end

local function elapsed(fn)
  local t0 = time.mono()
  local a, b = fn()
  return time.mono() - t0, a, b
end

-- Every helper, as (name, fn) pairs, for the failure cases.
local helpers = {
  {"call", function(o) return factomd.call("heights", nil, o) end},
  {"current_minute", factomd.current_minute},
  {"heights", factomd.heights},
  {"properties", factomd.properties},
  {"diagnostics", factomd.diagnostics},
  {"authorities", factomd.authorities},
  {"dblock_by_height", function(o) return factomd.dblock_by_height(1, o) end},
}

local function expect_failure(kind, code, pattern, max_s)
  for _, h in ipairs(helpers) do
    T.test(case .. ": " .. h[1] .. " fails with kind " .. kind, function()
      local dt, v, err = elapsed(function() return h[2]() end)
      T.eq(v, nil, h[1])
      T.eq(type(err), "table", h[1])
      T.eq(err.kind, kind, h[1])
      T.eq(err.code, code, h[1])
      T.eq(type(err.message), "string")
      T.ok(tostring(err):find("^factomd: "), tostring(err))
      if pattern then T.ok(tostring(err):find(pattern), tostring(err)) end
      if max_s then T.ok(dt < max_s, ("%s took %.3f s"):format(h[1], dt)) end
    end)
  end
end

-- ---------------------------------------------------------------- always

T.test("call: bad arguments raise", function()
  T.raises(function() factomd.call() end, "bad argument #1")
  T.raises(function() factomd.call({}) end, "bad argument #1")
  T.raises(function() factomd.call("") end, "method must match")
  T.raises(function() factomd.call("Heights") end, "method must match")
  T.raises(function() factomd.call("heights\0x") end, "method must match")
  T.raises(function() factomd.call(string.rep("a", 65)) end, "method must match")
  T.raises(function() factomd.call("heights", "x") end, "params must be a table")
  T.raises(function() factomd.call("heights", 1) end, "params must be a table")
  T.raises(function() factomd.call("heights", {f = print}) end, "params cannot be encoded")
  -- never copied out of the Lua heap: refused at 1 MiB of JSON
  T.raises(function() factomd.call("heights", {string.rep("x", 1048576)}) end,
    "params of 1048580 bytes are longer than 1048576 bytes")
end)

T.test("options are checked", function()
  for _, o in ipairs({{timeout_ms = 0}, {timeout_ms = -5}, {timeout_ms = 1.5},
                      {timeout_ms = "100"}, {timeout_ms = 600001}}) do
    T.raises(function() factomd.call("heights", nil, o) end, "timeout_ms must be")
    T.raises(function() factomd.heights(o) end, "timeout_ms must be")
  end
  T.raises(function() factomd.call("heights", nil, {timeoutms = 5}) end, "unknown option 'timeoutms'")
  T.raises(function() factomd.current_minute("x") end, "table expected")
  T.raises(function() factomd.authorities(5) end, "table expected")
end)

T.test("debug methods that leak keys or change the node are refused", function()
  for _, m in ipairs({"configuration", "reload-configuration", "write-configuration",
                      "set-delay", "set-drop-rate", "sim-ctrl", "message-filter",
                      "wait-for-minute", "wait-blocks"}) do
    T.raises(function() factomd.call(m) end, "method '" .. m:gsub("%-", "%%-") .. "' is refused")
  end
end)

T.test("dblock_by_height: bad heights raise", function()
  for _, h in ipairs({-1, 2^32, 1.5, "x", {}}) do
    T.raises(function() factomd.dblock_by_height(h) end, "bad argument #1")
  end
  T.raises(function() factomd.dblock_by_height() end, "bad argument #1")
end)

-- ---------------------------------------------------------------- healthy

-- tls, tlspin: over HTTPS (a CA file, a pin); confauth: the credentials
-- come from factomd.conf's FactomdRpcUser/FactomdRpcPass
local answering = { healthy = true, auth = true, tls = true, tlspin = true, tlsboth = true, confauth = true }
if answering[case] then
  T.test(case .. ": current_minute shape and exact times", function()
    local cm = assert(factomd.current_minute())
    for _, k in ipairs({"leaderheight", "directoryblockheight", "minute", "currentblockstarttime",
                        "currentminutestarttime", "currenttime", "directoryblockinseconds",
                        "faulttimeout", "roundtimeout", "minute_age_ms", "block_age_ms"}) do
      T.eq(math.type(cm[k]), "integer", k)
    end
    T.eq(cm.booting, false)
    T.eq(cm.stalldetected, false)
    T.eq(cm.directoryblockinseconds, 60)
    T.eq(cm.directoryblockheight, cm.leaderheight - 1)
    T.ok(cm.minute >= 0 and cm.minute <= 9, "minute 0-9")
    T.ok(cm.currenttime > 1600000000 * 1000000000, "currenttime in ns")
    -- exact: the age is computed from the integers, not from rounded doubles
    T.eq(cm.minute_age_ms, (cm.currenttime - cm.currentminutestarttime) // 1000000)
    T.eq(cm.block_age_ms, (cm.currenttime - cm.currentblockstarttime) // 1000000)
    T.ok(cm.minute_age_ms >= 0 and cm.minute_age_ms < 6000, "minute age " .. cm.minute_age_ms)
    T.ok(cm.block_age_ms >= cm.minute_age_ms, "block age >= minute age")
    -- the sim's start times end in non-zero digits: doubles would lose them
    T.ok(cm.currentminutestarttime % 1000 ~= 0 or cm.currenttime % 1000 ~= 0, "ns digits kept")
  end)

  T.test(case .. ": heights", function()
    local h = assert(factomd.heights())
    T.eq(h.directoryblockheight, h.leaderheight - 1)
    T.eq(h.entryblockheight, h.directoryblockheight)
    T.eq(math.type(h.entryheight), "integer")
  end)

  T.test(case .. ": properties", function()
    local p = assert(factomd.properties())
    T.ok(p.factomdversion:match("^%d+%.%d+%.%d+$"), p.factomdversion)
    T.eq(p.factomdapiversion, "2.0")
  end)

  T.test(case .. ": diagnostics", function()
    local d = assert(factomd.diagnostics())
    T.ok(hex64(d.id) and d.id:sub(1, 6) == "888888", d.id)
    T.ok(hex64(d.publickey), "publickey")
    T.eq(d.role, "Leader")
    T.eq(d.name, "node1")
    T.eq(d.syncing.status, "Processing")
    T.eq(#d.authset.leaders, 2)
    T.eq(#d.authset.audits, 1)
    T.eq(d.elections.inprogress, false)
  end)

  T.test(case .. ": authorities from the test network file", function()
    local a = assert(factomd.authorities())
    T.eq(#a, 3)
    local status = {}
    for _, e in ipairs(a) do
      T.ok(hex64(e.chainid) and e.chainid:sub(1, 6) == "888888", e.chainid)
      T.ok(hex64(e.signingkey), e.signingkey)
      status[e.status] = (status[e.status] or 0) + 1
    end
    T.eq(status, {federated = 2, audit = 1})
  end)

  T.test(case .. ": dblock_by_height", function()
    local h = assert(factomd.heights()).directoryblockheight
    local db = assert(factomd.dblock_by_height(h))
    T.eq(db.header.dbheight, h)
    T.ok(hex64(db.keymr), "keymr")
    T.eq(db.header.chainid, string.rep("0", 63) .. "d")
    -- header.timestamp is in minutes: the last saved block started within the last two blocks
    local age_s = time.now() - db.header.timestamp * 60
    T.ok(age_s > 0 and age_s < 3 * 60 + 60, "block age " .. age_s .. " s")
    T.ok(#db.dbentries >= 1, "dbentries")
    local none, err = factomd.dblock_by_height(h + 100)
    T.eq(none, nil)
    T.eq(err.kind, "rpc")
    T.eq(err.code, -32008)
    T.eq(err.message, "Block not found")
  end)

  T.test(case .. ": call with params and plain methods", function()
    local r = assert(factomd.call("dblock-by-height", {height = 3, noraw = false}))
    T.eq(r.dblock.header.dbheight, 3)
    T.eq(type(r.rawdata), "string")
    local head = assert(factomd.call("directory-block-head", {}, {timeout_ms = 200}))
    T.ok(hex64(head.keymr), "keymr")
  end)

  T.test(case .. ": rpc errors", function()
    local v, err = factomd.call("no-such-method")
    T.eq(v, nil)
    T.eq(err.kind, "rpc")
    T.eq(err.code, -32601)
    T.eq(err.message, "Method not found")
    T.eq(err.method, "no-such-method")
    T.eq(tostring(err), "factomd: no-such-method: rpc -32601: Method not found")
    err = select(2, factomd.call("dblock-by-height", {height = "x"}))
    T.eq(err.code, -32602)
  end)
end

-- ---------------------------------------------------------------- chain states

if case == "stalled" then
  T.test("stalled: the minute ages while heights stay", function()
    local a = assert(factomd.current_minute())
    time.sleep(300)
    local b = assert(factomd.current_minute())
    T.eq(b.leaderheight, a.leaderheight)
    T.eq(b.minute, a.minute)
    T.eq(b.currentminutestarttime, a.currentminutestarttime)
    T.ok(b.currenttime > a.currenttime, "currenttime moves")
    T.ok(b.minute_age_ms >= a.minute_age_ms + 250, ("%d then %d"):format(a.minute_age_ms, b.minute_age_ms))
    T.eq(b.booting, false)
  end)
end

if case == "booting" then
  T.test("booting: start times 0, ages 0, booting true", function()
    local cm = assert(factomd.current_minute())
    T.eq(cm.booting, true)
    T.eq(cm.syncing, nil) -- the old name is gone: it meant no real state
    T.eq(cm.currentminutestarttime, 0)
    T.eq(cm.currentblockstarttime, 0)
    T.eq(cm.minute_age_ms, 0)
    T.eq(cm.block_age_ms, 0)
    T.eq(cm.stalldetected, false)
    T.ok(cm.currenttime > 0, "currenttime still set")
    local d = assert(factomd.diagnostics())
    -- now - 0: the Unix time in ns, not a duration
    T.ok(math.abs(d.currentminuteduration - cm.currenttime) < 10 * 1e9, "duration is the time")
  end)
end

if case == "syncing" or case == "behind" then
  -- catching up by DBStates: start times set for every block loaded
  -- (MoveStateToHeight), saved height below the network's
  T.test(case .. ": start times set, saved height behind", function()
    local cm = assert(factomd.current_minute())
    T.eq(cm.booting, false)
    T.ok(cm.currentminutestarttime > 0, "start time set")
    T.ok(cm.leaderheight - cm.directoryblockheight > 3, "gap")
    T.eq(cm.stalldetected, true)
    local h = assert(factomd.heights())
    T.eq(h.leaderheight, cm.leaderheight)
    local d = assert(factomd.diagnostics())
    T.eq(d.lastblockfromdbstate, true)
    T.eq(d.leaderheight, cm.directoryblockheight + 1)
  end)
end

if case == "oldrelease" then
  T.test("oldrelease: no diagnostics (method not found), the rest answers", function()
    local d, err = factomd.diagnostics()
    T.eq(d, nil)
    T.eq(err.kind, "rpc")
    T.eq(err.code, -32601)
    T.eq(assert(factomd.properties()).factomdversion, "6.0.0")
    T.eq(#assert(factomd.authorities()), 3)
    assert(factomd.current_minute())
  end)
end

if case == "noaudits" then
  T.test("noaudits: audits is JSON null, as Go encodes an empty list", function()
    local d = assert(factomd.diagnostics())
    T.eq(type(d.authset.audits), "userdata") -- cjson's null
    T.eq(#d.authset.leaders, 2)
  end)
end

-- ---------------------------------------------------------------- faults

if case == "down" then expect_failure("http", nil, "onnect", 0.25) end
if case == "garbage" then expect_failure("decode", nil, "decode", 1) end
if case == "http500" then expect_failure("http", 500, "http 500", 1) end
if case == "oversized" or case == "chunked" then expect_failure("http", nil, "larger than 1048576 bytes", 2) end
if case == "badauth" then expect_failure("http", 401, "factomd.user", 1) end
if case == "confbadauth" then expect_failure("http", 401, "FactomdRpcUser", 1) end
-- TLS verification is never off: an https factomd whose certificate the
-- config does not vouch for (no CA file, or a pin of another key) fails
if case == "tlsnoca" then expect_failure("http", nil, "certificate", 1) end
if case == "tlsbadpin" then expect_failure("http", nil, "pinned", 1) end
if case == "tlsbadca" then expect_failure("http", nil, "certificate", 1) end

if case == "slow" then
  -- config timeout_ms = 300, the simulator answers after 1500 ms
  T.test("slow: config timeout gives kind timeout", function()
    local dt, v, err = elapsed(factomd.heights)
    T.eq(v, nil)
    T.eq(err.kind, "timeout")
    T.eq(err.code, nil)
    T.ok(dt >= 0.29 and dt < 0.4, ("took %.3f s"):format(dt))
    T.ok(tostring(err):find("^factomd: heights: timeout: "), tostring(err))
  end)
  T.test("slow: opts.timeout_ms wins", function()
    local dt, v, err = elapsed(function() return factomd.current_minute({timeout_ms = 100}) end)
    T.eq(v, nil)
    T.eq(err.kind, "timeout")
    T.ok(dt >= 0.09 and dt < 0.2, ("took %.3f s"):format(dt))
  end)
end

if case == "deadline" then
  -- run with --timeout-ms 600, config timeout_ms = 5000, the simulator answers after 3000 ms
  T.test("deadline: the run's deadline bounds the call", function()
    local dt, v, err = elapsed(factomd.heights)
    T.eq(v, nil)
    T.eq(err.kind, "timeout")
    T.ok(dt < 0.6, ("took %.3f s"):format(dt))
  end)
end
