-- tests/lua/factom_decide.lua: restart.maybe_decide with the real store: the
-- decision and the end of its proposer's open proposal are one commit, so a
-- node never keeps refusing that proposer's next proposal as still open.
local restart = require "factom.restart"
local authset = require "factom.authset"
local tally = require "factom.tally"
local store = require "serfhand.store"
local time = require "serfhand.time"

local SET = { n = 3, members = { c1 = { key = "k" }, c2 = { key = "k" }, c3 = { key = "k" } } }
authset.get = function() return SET end -- restart.lua calls it through the module table

-- proposal(n) -> ph: c1's open proposal, with votes of c1 and c2 (a quorum of 3).
local SIG = string.rep("\1", 64)
local function proposal(n)
  local now = math.floor(time.now())
  local ph = string.format("%064x", n)
  assert(store.put("proposal/" .. ph, { act = "restart", at = now + 100, exp = now + 600, iat = now,
    by = "c1", id = "00000000000000a" .. n, b = 1 }, 600))
  assert(store.put("open/c1", ph, 600))
  assert(tally.add(store, ph, "c1", SIG, 600))
  assert(tally.add(store, ph, "c2", SIG, 600))
  return ph
end

T.test("a decision ends its proposer's open proposal", function()
  local pid = proposal(1)
  T.eq(restart.maybe_decide(pid), "decided")
  T.ok(store.get(tally.decided_key(pid)), "decided")
  T.eq(store.get("open/c1"), nil, "no longer open")
  T.eq(restart.maybe_decide(pid), "decided", "again: decided before")
end)

T.test("both or neither: a failed delete undoes the decision", function()
  local pid = proposal(2)
  local del = store.del
  store.del = function() return nil, "store: disk I/O error" end
  local state = restart.maybe_decide(pid)
  store.del = del
  T.eq(state, nil, "the failure is reported")
  T.eq(store.get(tally.decided_key(pid)), nil, "no decision stands")
  T.eq(store.get("open/c1"), pid, "still open")
  T.eq(restart.maybe_decide(pid), "decided", "the next vote or relay decides")
  T.eq(store.get("open/c1"), nil, "and ends it")
end)

T.test("another proposal that is open stays open", function()
  local pid = proposal(3)
  assert(store.put("open/c1", ("f"):rep(64), 600)) -- c1's newer proposal
  T.eq(restart.maybe_decide(pid), "decided")
  T.eq(store.get("open/c1"), ("f"):rep(64))
end)
