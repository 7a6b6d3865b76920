-- tests/lua/factom_tally.lua: lua/factom/tally.lua with an in-memory store:
-- duplicates, non-authorities, ignored authorities, quorum, `at`, once.
local tally = require "factom.tally"

local function memstore()
  local d = {}
  return {
    d = d,
    add = function(k, v) if d[k] ~= nil then return false end d[k] = v return true end,
    put = function(k, v) d[k] = v return true end,
    get = function(k) return d[k] end,
    keys = function(p)
      local out = {}
      for k in pairs(d) do if k:sub(1, #p) == p then out[#out + 1] = k end end
      table.sort(out)
      return out
    end,
  }
end
local function set(n)
  local s = { n = n, members = {} }
  for i = 1, n do s.members["a" .. i] = { key = "k" } end
  return s
end
local PROP = { act = "restart", at = 150, exp = 200 }
local SIG = string.rep("\7", 64)
local function add(st, ph, by) return tally.add(st, ph, by, SIG, 60) end

T.test("quorum of 5 is 3; decided once", function()
  local st, s = memstore(), set(5)
  add(st, "p", "a1")
  add(st, "p", "a2")
  local d, n = tally.decide(st, "p", PROP, s, 100, 3)
  T.eq(d, false)
  T.eq(n, 2)
  add(st, "p", "a3")
  d, n = tally.decide(st, "p", PROP, s, 100, 3)
  T.eq(d, true)
  T.eq(n, 3)
  add(st, "p", "a4")
  d, n = tally.decide(st, "p", PROP, s, 101, 3)
  T.eq(d, false, "only once")
  T.eq(n, 4)
  T.eq(st.d["decided/p"].at, 150)
end)

T.test("a vote is kept with its signature (hex) and indexed by its voter", function()
  local st = memstore()
  T.eq(add(st, "p", "a1"), true)
  T.eq(st.d["vote/p/a1"], string.rep("07", 64))
  T.eq(st.d["voter/a1/p"], "1")
end)

T.test("duplicate votes count once", function()
  local st, s = memstore(), set(5)
  T.eq(add(st, "p", "a1"), true)
  T.eq(add(st, "p", "a1"), false)
  T.eq(tally.count(st, "p", s), 1)
end)

T.test("votes of identities outside the set do not count", function()
  local st, s = memstore(), set(5)
  for _, by in ipairs({ "a1", "x1", "x2", "x3" }) do add(st, "p", by) end
  local n, voters = tally.count(st, "p", s)
  T.eq(n, 1)
  T.eq(voters[1], "a1")
  T.eq(tally.decide(st, "p", PROP, s, 100, 3), false)
end)

T.test("votes of authorities under evidence do not count", function()
  local st, s = memstore(), set(3)
  add(st, "p", "a1")
  add(st, "p", "a2")
  T.eq(tally.count(st, "p", s, { a2 = true }), 1)
  T.eq(tally.decide(st, "p", PROP, s, 100, 2, { a2 = true }), false)
  T.eq(tally.decide(st, "p", PROP, s, 100, 2, {}), true)
end)

T.test("votes for another digest do not count", function()
  local st, s = memstore(), set(3)
  add(st, "p2", "a1")
  add(st, "p2", "a2")
  T.eq(tally.count(st, "p", s), 0)
end)

T.test("no decision at or after `at` (so never after exp)", function()
  local st, s = memstore(), set(3)
  add(st, "p", "a1")
  add(st, "p", "a2")
  T.eq(tally.decide(st, "p", PROP, s, 150, 2), false)
  T.eq(tally.decide(st, "p", PROP, s, 199, 2), false)
  T.eq(tally.decide(st, "p", PROP, s, 149.9, 2), true)
end)

T.test("store failure is nil, err", function()
  local st = memstore()
  st.keys = function() return nil, "store: locked" end
  local d, err = tally.decide(st, "p", PROP, set(1), 1, 1)
  T.eq(d, nil)
  T.eq(err, "store: locked")
end)
