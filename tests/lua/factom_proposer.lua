-- tests/lua/factom_proposer.lua: lua/factom/proposer.lua, the proposer's
-- side of a vote: the relay splits the ballot's votes into query-sized
-- bundles (each with the proposal) and starts them all at once in one
-- serf.query_many call; each node's answers to those queries, in any order,
-- decide whether it gets the votes as events too; the ballot and the relay
-- keep the end of the run for those events (reserve_ms); both queries go
-- again to the nodes not heard from (retry_nodes) where that fits Serf's
-- limit; a host without query_many gets the queries one after the other.
-- Serf is stubbed.
local proposer = require "factom.proposer"
local ballot = require "factom.ballot"
local envelope = require "factom.envelope"
local authset = require "factom.authset"
local crypto = require "serfhand.crypto"
local serf = require "serfhand.serf"

local function identity(n)
  local sk = crypto.ed25519_keypair(crypto.sha256("serfhand test identity " .. n))
  local chain = "888888" .. crypto.hex(crypto.sha256("serfhand test identity chain " .. n)):sub(7)
  return { chain = chain, signer = { chain_id = function() return chain end, sign = function(m) return sk:sign(m) end } }
end
local ID = {}
for n = 1, 65 do ID[n] = identity(n) end
local IAT = 1700000000
-- A proposal by identity 1, as `propose` builds it on MAIN (278 bytes).
local PROP, BODY, PTEXT = envelope.build("factomd-restart-propose", { act = "restart", at = IAT + 120, h = 1000, b = 1 },
  { now = IAT, ttl = 900, net = "MAIN", id = "00112233445566ff", signer = ID[1].signer })
local PH = envelope.digest("factomd-restart-propose", PTEXT)

-- votes(k) -> votes, voters, alive: k votes (made-up signatures: the relay
-- only carries them) of nodes n1..nk, and the alive nodes n1..nN.
local function votes(k, nalive)
  local vs, voters, alive = {}, {}, {}
  for i = 1, k do
    vs[i] = { by = ID[i].chain, sig = crypto.sha256("sig a " .. i) .. crypto.sha256("sig b " .. i) }
    voters[ID[i].chain] = "n" .. i
  end
  for i = 1, nalive do alive[i] = "n" .. i end
  return vs, voters, alive
end

-- The stubs record every call; answer(node, i) gives node's answer to
-- relay query i (nil: none).
local calls, events, answer, many_err, answering
local stub_many
local function reset()
  calls, events, many_err, answering = {}, {}, nil, nil
  answer = function() return "decided" end
  serf.query_many = stub_many
end
function stub_many(name, payloads, opts)
  calls[#calls + 1] = { how = "query_many", name = name, payloads = payloads, opts = opts }
  if many_err then return nil, many_err end
  local rs = {}
  for i = 1, #payloads do
    rs[i] = { responses = {}, acks = {}, n = 0, done = false }
    -- answers arrive query by query, last query first: the order must not matter
  end
  for i = #payloads, 1, -1 do
    for k = 1, opts.expect do
      local node = answering and answering[k] or "n" .. k
      local a = answer(node, i)
      if a then
        rs[i].responses[node] = a
        rs[i].n = rs[i].n + 1
        if opts.on_response then opts.on_response(node, a, i) end
      end
    end
  end
  return rs
end
serf.query = function(name, payload, opts)
  calls[#calls + 1] = { how = "query", name = name, payload = payload, opts = opts }
  if many_err then return nil, many_err end
  local r = { responses = {}, acks = {}, n = 0, done = true }
  local i = #calls
  for k = 1, opts.expect do
    local node = "n" .. k
    local a = answer(node, i)
    if a then
      r.responses[node] = a
      r.n = r.n + 1
      if opts.on_response and opts.on_response(node, a) then break end
    end
  end
  return r
end
serf.event = function(name, payload)
  events[#events + 1] = { name = name, payload = payload }
  return true
end

-- longest_names(names, k) -> the k longest names
local function longest_names(names, k)
  local sorted = table.move(names, 1, #names, 1, {})
  table.sort(sorted, function(a, b) return #a > #b end)
  return table.move(sorted, 1, k, 1, {})
end

-- the votes the bundles carry, in order, checked against the proposal
local function carried(payloads, limit)
  local got = {}
  for _, p in ipairs(payloads) do
    T.ok(#p <= limit, #p .. " bytes, over " .. limit)
    local b = assert(ballot.decode(p))
    T.eq(b.proposal, PROP, "every bundle carries the proposal")
    for _, v in ipairs(b.votes) do got[#got + 1] = v end
  end
  return got
end

for _, c in ipairs({ { n = 20, q = 11, queries = 1 }, { n = 65, q = 33, queries = 3 }, { n = 5, q = 3, queries = 1 },
  { n = 20, q = 11, queries = 2, name = "factom-authority-node-20.example" } }) do
  T.test(string.format("%d agents%s, a quorum of %d: %d relay quer%s, all started at once, each within Serf's query limit",
    c.n, c.name and " with long names" or "", c.q, c.queries, c.queries == 1 and "y" or "ies"), function()
    reset()
    local vs, voters, alive = votes(c.q, c.n)
    if c.name then alive[#alive], answering = c.name, alive end
    local text = proposer.relay(PROP, vs, voters, alive)
    T.eq(#calls, 1, "one call starts them all")
    T.eq(calls[1].how, "query_many")
    T.eq(calls[1].name, ballot.EVENT)
    T.eq(#calls[1].payloads, c.queries)
    local longest = c.name and #c.name or #("n" .. c.n)
    local got = carried(calls[1].payloads, ballot.relay_budget(longest))
    T.eq(#got, c.q, "every vote, once")
    for i, v in ipairs(got) do
      T.eq(v.short, ballot.short(vs[i].by))
      T.eq(v.sig, vs[i].sig)
    end
    T.eq(calls[1].opts.expect, c.n)
    T.eq(calls[1].opts.timeout_ms, proposer.RELAY_MS)
    T.eq(calls[1].opts.reserve_ms, proposer.EVENTS_MS, "the relay keeps the run's last EVENTS_MS for the events")
    T.eq(#events, 0, "every node decided: no events")
    T.ok(text:find(string.format("decided on %d of %d nodes", c.n, c.n), 1, true), text)
    -- retries name the nodes not heard from, as many as surely fit Serf's limit
    local o = calls[1].opts
    T.eq(o.relay_factor, proposer.RELAY_FACTOR, "answers come through another member too")
    if o.retry_nodes then
      T.eq(o.retry_nodes, alive)
      T.eq(o.retry_ms, proposer.RETRY_MS)
      local named = longest_names(alive, o.retry_max or #alive)
      for _, p in ipairs(calls[1].payloads) do
        T.ok(#p + proposer.filter_bytes(named) <= ballot.relay_budget(longest),
          "a retry naming the longest names it may name fits")
      end
    end
    if not c.name then T.ok(o.retry_nodes, "with short names every relay is retried") end
    if c.n == 5 then T.eq(o.retry_max, nil, "a small cluster's retry may name every node") end
    T.ok(text:find(c.queries == 1 and "in 1 query:" or "in " .. c.queries .. " queries at once:", 1, true), text)
  end)
end

T.test("the relay budget: Serf's measured query encoding for the longest alive name, never more than its limit", function()
  -- reference/serf.md section 6: a 915-byte payload is the largest for query "q" from node "n1"
  T.eq(ballot.relay_budget(2) + #ballot.EVENT - 1 + ballot.QUERY_ENCODING - 106, 915)
  T.eq(ballot.per_payload(PROP, ballot.relay_budget(19)), 11, "11 votes with names of up to 19 bytes")
  T.eq(ballot.per_payload(PROP, ballot.relay_budget(20)), 10)
end)

T.test("Serf refuses the tight split: the split for any name length once more; the same split is not retried", function()
  reset()
  local vs, voters, alive = votes(11, 20)
  local n = 0
  serf.query_many = function(name, payloads, opts)
    n = n + 1
    if n == 1 then
      calls[#calls + 1] = { how = "refused", payloads = payloads }
      return nil, "serf: query exceeds limit of 1024 bytes"
    end
    return stub_many(name, payloads, opts)
  end
  local text = proposer.relay(PROP, vs, voters, alive)
  T.eq(#calls, 2)
  T.eq(#calls[1].payloads, 1)
  T.eq(#calls[2].payloads, 2)
  T.eq(#carried(calls[2].payloads, envelope.query_budget(ballot.EVENT)), 11)
  T.ok(text:find("decided on 20 of 20 nodes", 1, true), text)
  T.eq(#events, 0)
  -- with 3 votes both splits are one query: one try, then the events
  reset()
  many_err = "serf: timed out waiting for 127.0.0.1:7373"
  vs, voters, alive = votes(3, 5)
  proposer.relay(PROP, vs, voters, alive)
  T.eq(#calls, 1)
  T.eq(#events, 1)
end)

T.test("each node's answers to all the queries, in any order: who decided, who gets events, who refused", function()
  reset()
  local vs, voters, alive = votes(22, 8) -- 2 queries of 11
  local table_ = {
    n1 = { "counted 8", "decided" },        -- decided on the second query
    n2 = { "decided", nil },                -- decided on the first; the second answer lost: decided all the same
    n3 = { "counted 8", nil },              -- one answer missing, not decided: events
    n4 = { "counted 8", "dropped error" },  -- its store failed: events
    n5 = { "dropped forged", "dropped forged" }, -- refused: reported, events would be refused too
    n6 = { nil, nil },                      -- missed both queries: events
    n7 = { "counted 9", "counted 10" },     -- below its quorum: tick sends the rest
    n8 = { "late", "late" },
  }
  answer = function(node, i) return (table_[node] or {})[i] end
  local text = proposer.relay(PROP, vs, voters, alive)
  T.ok(text:find("decided on 2 of 8 nodes", 1, true), text)
  T.ok(text:find("dropped by n5 dropped forged", 1, true), text)
  T.ok(text:find("the votes went out in 6 events too (no answer from n3 n4 n6)", 1, true), text)
  T.ok(text:find("relay: 22 of the 22 votes resent", 1, true), text)
  T.eq(#events, 6, "22 votes, 4 per event")
  local got = carried((function()
    local ps = {}
    for _, e in ipairs(events) do
      T.eq(e.name, ballot.EVENT)
      ps[#ps + 1] = e.payload
    end
    return ps
  end)(), envelope.budget(ballot.EVENT))
  T.eq(#got, 22)
end)

T.test("outcome: a node is decided when any query's answer says so", function()
  local d, missing, dropped, need = proposer.outcome({ a = { [2] = "decided" }, b = { "counted 3", "counted 4" } }, 2,
    { "a", "b", "c" })
  T.eq(d, 1)
  T.eq(table.concat(missing, " "), "c")
  T.eq(#dropped, 0)
  T.ok(need[1] and need[2], "c missed both")
end)

T.test("a node that missed one query gets only that query's votes as events", function()
  reset()
  local vs, voters, alive = votes(33, 65) -- 3 queries of 11
  answer = function(node, i)
    if node == "n7" then return i ~= 3 and "counted 23" or nil end -- the third lost: no decision
    if node == "n9" then return i == 1 and "dropped error" or "counted 23" end -- its store failed once
    return i == 3 and "decided" or "counted 11"
  end
  local text = proposer.relay(PROP, vs, voters, alive)
  T.ok(text:find("decided on 63 of 65 nodes", 1, true), text)
  T.ok(text:find("the votes went out in 6 events too (no answer from n7 n9)", 1, true), text)
  T.ok(text:find("relay: 22 of the 33 votes resent", 1, true), text)
  local ps = {}
  for _, e in ipairs(events) do ps[#ps + 1] = e.payload end
  local got = carried(ps, envelope.budget(ballot.EVENT))
  T.eq(#got, 22)
  for k = 1, 11 do T.eq(got[k].sig, vs[k].sig, "the first query's votes") end
  for k = 12, 22 do T.eq(got[k].sig, vs[11 + k].sig, "the third query's votes") end
end)

T.test("the relay queries fail: every alive node gets the votes as events", function()
  reset()
  many_err = "serf: timed out waiting for 127.0.0.1:7373"
  local vs, voters, alive = votes(11, 20)
  local text = proposer.relay(PROP, vs, voters, alive)
  T.ok(text:find("relay query: serf: timed out waiting for 127.0.0.1:7373", 1, true), text)
  T.ok(text:find("decided on 0 of 20 nodes", 1, true), text)
  T.eq(#events, 3)
  T.ok(text:find("the votes went out in 3 events too", 1, true), text)
end)

T.test("a host without serf.query_many: the queries one after the other, no reserve_ms (it would raise there)", function()
  reset()
  serf.query_many = nil
  local vs, voters, alive = votes(22, 20)
  answer = function(_, i) return i == 2 and "decided" or "counted 11" end
  local text = proposer.relay(PROP, vs, voters, alive)
  T.eq(#calls, 2)
  for i = 1, 2 do
    T.eq(calls[i].how, "query")
    T.eq(calls[i].opts.reserve_ms, nil)
    T.eq(calls[i].opts.timeout_ms, proposer.RELAY_MS)
  end
  T.eq(#carried({ calls[1].payload, calls[2].payload }, ballot.relay_budget(3)), 22)
  T.ok(text:find("decided on 20 of 20 nodes", 1, true), text)
  T.eq(#events, 0)
end)

T.test("the ballot leaves the relay and the events their time; the proposal event goes out when the ballot cannot", function()
  reset()
  local set = { n = 5, members = {} }
  for i = 1, 5 do set.members[ID[i].chain] = { key = ("00"):rep(32), status = "federated" } end
  local real_get, real_members = authset.get, serf.members
  authset.get = function() return set end
  serf.members = function()
    local m = {}
    for i = 1, 5 do m[i] = { name = "n" .. i, status = "alive" } end
    return m
  end
  many_err = "serf: no time left before the run's deadline (reserve_ms)"
  local text, reached = proposer.collect(BODY, PROP, PH)
  authset.get, serf.members = real_get, real_members
  T.eq(calls[1].how, "query")
  T.eq(calls[1].opts.reserve_ms, proposer.EVENTS_MS + proposer.RELAY_MIN_MS)
  T.eq(calls[1].opts.timeout_ms, proposer.BALLOT_MS)
  T.eq(calls[1].opts.expect, 5)
  T.eq(table.concat(calls[1].opts.retry_nodes, " "), "n1 n2 n3 n4 n5", "the ballot goes again to nodes not heard from")
  T.eq(calls[1].opts.retry_ms, proposer.RETRY_MS)
  T.eq(calls[1].opts.relay_factor, proposer.RELAY_FACTOR)
  T.ok(#PROP + proposer.filter_bytes(calls[1].opts.retry_nodes) <= envelope.query_budget("factomd-restart-propose"))
  T.ok(text:find("ballot: serf: no time left", 1, true), text)
  T.eq(#events, 1)
  T.eq(events[1].name, "factomd-restart-propose")
  T.eq(events[1].payload, PROP)
  T.eq(reached, true)
end)

T.test("propose's 20 s fit the ballot, the relay and the events", function()
  T.ok(proposer.BALLOT_MS + proposer.RELAY_MS + proposer.EVENTS_MS <= 20000 - 2000,
    "leave 2 s for the start (authority set, store)")
  T.ok(proposer.RELAY_MIN_MS + proposer.EVENTS_MS < proposer.BALLOT_MS + proposer.RELAY_MS)
end)
