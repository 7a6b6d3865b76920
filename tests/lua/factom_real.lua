-- tests/lua/factom_real.lua: the Factom bundle's stall rule, authority set and
-- identity check against tests/sim/factomd_sim.py in the modes that follow
-- factomd's real behaviour (docs/simulator.md). tests/cli/factomd.sh sets the
-- simulator's mode and runs this file once per case (factomd.url carries
-- "?case=NAME"); without a case only the offline checks run.
local stall = require "factom.stall"
local authset = require "factom.authset"
local node = require "factom.node"
local restart = require "factom.restart"
local config = require "serfhand.config"
local store = require "serfhand.store"
local time = require "serfhand.time"

local case = config.get("factomd.url"):match("[?&]case=([%w_]+)") or "offline"

T.test(case .. ": defaults of the new settings", function()
  T.eq(config.get("factomd.authset_timeout_ms") >= config.get("factomd.timeout_ms"), true)
end)

-- The verdict in this mode, and a vote on a proposal made at height h.
local function verdict(want, pattern)
  T.test(case .. ": stall.check says " .. want, function()
    local r = stall.check()
    T.eq(r.state, want, r.reason)
    if pattern then T.ok(r.reason:find(pattern), r.reason) end
  end)
end

if case == "healthy" then verdict("healthy") end
-- reboot.stall_minutes = 1 with 10 s blocks: a minute of 1 s
if case == "stalled" then
  T.test("stalled at minute 7: sick once the minute is old", function()
    time.sleep(1100)
    local r = stall.check()
    T.eq(r.state, "sick", r.reason)
    T.eq(r.minute, 7)
  end)
end
if case == "booting" then verdict("booting", "first block") end
if case == "syncing" then
  -- catching up by DBStates: the start times move with every block loaded
  T.test("syncing: behind, however fresh the minute", function()
    local cm = assert(require("serfhand.factomd").current_minute())
    T.eq(cm.booting, false)
    T.ok(cm.minute_age_ms < 1500, "minute age " .. cm.minute_age_ms)
    local r = stall.check()
    T.eq(r.state, "behind", r.reason)
  end)
end
if case == "behind" then
  -- the catch-up is stuck while the network moves: the old rule said sick
  T.test("behind: a stuck catch-up is never sick", function()
    time.sleep(1100)
    local cm = assert(require("serfhand.factomd").current_minute())
    T.ok(cm.minute_age_ms >= 1000, "the minute is old: " .. cm.minute_age_ms)
    local r = stall.check()
    T.eq(r.state, "behind", r.reason)
    T.ok(r.reason:find("catching up"), r.reason)
  end)
end

-- ------------------------------------------------------------ authority set

local function fresh_set()
  authset.reset()
  store.del(authset.CACHE_KEY)
  return authset.get({ refresh = true })
end

if case == "healthy" or case == "noaudits" or case == "oldrelease" then
  T.test(case .. ": the authority set", function()
    local set, err = fresh_set()
    T.ok(set, err)
    if case == "noaudits" then
      -- diagnostics.authset.audits is null (Go's nil slice): leaders only
      T.eq(set.n, 2)
      for _, m in pairs(set.members) do T.eq(m.status, "federated") end
    else
      T.eq(set.n, 3)
    end
    if case == "oldrelease" then
      T.eq(authset.diagnostics, nil) -- method not found
      local st = {}
      for _, m in pairs(set.members) do st[m.status] = (st[m.status] or 0) + 1 end
      T.eq(st, { federated = 2, audit = 1 })
    else
      T.eq(type(authset.diagnostics), "table")
    end
  end)
end

if case == "ancient" then
  -- a release without diagnostics whose authorities carry no usable status
  T.test("ancient: no set, and a warning naming the release", function()
    local set, err = fresh_set()
    T.eq(set, nil)
    T.ok(err:find("no authority with a signing key"), err)
  end)
end

-- --------------------------------------------------------- identity check

if case == "idsame" or case == "iddiff" or case == "keydiff" then
  T.test(case .. ": factomd's identity against factomd.conf", function()
    store.del(restart.IDCHECK)
    local set = assert(fresh_set())
    local same = node.check_identity(authset.diagnostics, set)
    local rec = store.get(restart.IDCHECK)
    if case == "idsame" then
      T.eq(same, true)
      T.eq(rec.ok, true)
    else
      T.eq(same, false)
      T.eq(rec.ok, false)
      T.ok(rec.why:find(case == "iddiff" and "factomd runs identity" or "factomd signs with key"), rec.why)
      -- and no vote, however sick
      local now = math.floor(time.now())
      local prop = { iat = now, exp = now + 600, at = now + 300, h = 1 }
      store.put("health", { state = "sick", reason = "stalled", t = time.now_ms(), h = 1 })
      local v, why = restart.vote_if_sick(string.rep("ab", 32), prop, set) -- protocol 2: by digest
      T.eq(v, nil)
      T.ok(why:find("another identity"), why)
      store.del("health")
    end
    store.del(restart.IDCHECK)
  end)
end
