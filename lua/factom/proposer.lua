-- lua/factom/proposer.lua: the proposer's side of a restart vote
-- (docs/protocol.md section 4): `serfhand propose` signs a proposal, asks
-- every node for its vote (the ballot) and relays the votes, each bundle
-- with the proposal itself, to all; the proposal also goes out as an event.
local restart = require "factom.restart"
local envelope = require "factom.envelope"
local authset = require "factom.authset"
local ballot = require "factom.ballot"
local config = require "serfhand.config"
local store = require "serfhand.store"
local time = require "serfhand.time"

local M = {}

-- Time (docs/protocol.md section 4a). The ballot waits at most BALLOT_MS
-- for a quorum of votes; the relay queries, all sent at once, at most
-- RELAY_MS for every node's answers (at 65 agents on 2 cores each node runs
-- its three relay handlers in turn, behind the ballot's). Neither runs into the last
-- EVENTS_MS of the run: the proposal and the votes always still go out as
-- events, whatever the queries reached. The ballot also leaves RELAY_MIN_MS
-- for the relay. `serfhand propose` runs for at most 20 s (cmd_propose.c),
-- which fits them all: 5 + 8 + 2 s, and the start.
M.BALLOT_MS = 5000
M.RELAY_MS = 8000
M.EVENTS_MS = 2000
M.RELAY_MIN_MS = 2000
-- Serf does not repeat a query that gossip failed to bring to a node (about
-- 1 delivery in 300; the relay's fallback events would come RELAY_MS later,
-- after a near agreed time). Both queries ask for acks, and 1, 3 and 7 x
-- RETRY_MS after the query (while it lasts) the alive nodes that have
-- neither acked nor answered get the query again, addressed to them alone.
M.RETRY_MS = 1000
-- An answer can be lost on its way back (UDP, straight to the proposer's
-- agent) although the node answered, and looks like a node that never got
-- the query: each node also sends it through RELAY_FACTOR other members.
M.RELAY_FACTOR = 1

local function is_int(v) return math.type(v) == "integer" end

-- propose{act, in_s, ttl_s, dry_run} -> text | nil, err: sign and send a
-- proposal from this node (an authority).
function M.propose(o)
  o = o or {}
  local act = o.act or "restart"
  local me = restart.me()
  if not me then
    local _, err = require("serfhand.identity").chain_id()
    return nil, "propose: this node has no identity: " .. tostring(err)
  end
  local set, err = authset.get() -- tick's cached set when fresh, else factomd
  if not set then return nil, "propose: " .. tostring(err) end
  if not set.members[me] then return nil, "propose: this node (" .. me .. ") is not in the authority set" end
  local ttl = o.ttl_s or config.get("reboot.ttl_minutes") * 60
  local delay = o.in_s or config.get("reboot.delay_seconds")
  if ttl < 1 or ttl > envelope.MAX_LIFETIME then return nil, "propose: --ttl must be 1 s to 1 h" end
  if delay < 0 or delay >= ttl then return nil, "propose: --in must be shorter than --ttl" end
  local lo, hi = restart.window()
  if delay < lo or delay > hi then
    return nil, string.format("propose: --in must be from %d s to %d s (reboot.at_min_seconds, reboot.at_max_seconds)",
      lo, hi)
  end
  local open = store.get("open/" .. me)
  if open and not o.dry_run then
    return nil, "propose: proposal " .. tostring(open) .. " of this node is still open"
  end
  local h = restart.health().height -- the leader height, informational
  local now = math.floor(time.now())
  local payload, body, btext = envelope.build(restart.PROPOSE, { act = act, at = now + delay,
    h = is_int(h) and h or 0, b = 1 }, { now = now, ttl = ttl, max = ballot.PROPOSAL_MAX })
  if not payload then return nil, "propose: " .. tostring(body) end
  local ph = envelope.digest(restart.PROPOSE, btext)
  local text = string.format("proposal %s: %s at %d (in %d s), expires at %d, leader height %d, "
    .. "authority set of %d, quorum %d, id %s", ph, act, body.at, delay, body.exp, body.h, set.n, authset.quorum(set.n), body.id)
  if o.dry_run then
    return text .. "\n(dry run, not sent) payload " .. #payload .. " bytes:\n" .. payload
  end
  local out, reached = M.collect(body, payload, ph)
  if not reached then return nil, "propose: the proposal reached no node\n" .. out end
  return text .. "\n" .. out
end

-- collect(body, payload, ph) -> text, reached: the ballot (docs/protocol.md
-- section 4a). Ask every node for its vote (query factomd-restart-propose
-- with the proposal itself) until a quorum of valid votes is in, then relay
-- them (M.relay), or, without a quorum, the votes in when every alive node
-- has answered or the ballot timed out. Then the proposal goes out as an
-- event too, which Serf delivers (push/pull) to a node that missed both
-- queries; the others know it by its digest and do nothing. A vote that
-- misses all this is sent by its node's tick. reached is false when
-- neither the query nor the event went out.
function M.collect(body, payload, ph)
  local serf = require "serfhand.serf"
  local alive = M.alive_members()
  local set = authset.get() or { n = 0, members = {} }
  local net = config.get("factomd.network")
  local need = math.max(1, authset.quorum(set.n))
  local votes, voters, others = {}, {}, {}
  local t0 = time.now_ms()
  local function take(node, answer)
    local kind, rest = answer:match("^(%l+) (.*)$")
    local v = kind == "vote" and ballot.uncompact(rest)
    local ok = v and ballot.verify({ v }, ph, body, set, net)
    ok = ok and ok[1]
    if ok then
      if not voters[ok.by] then
        voters[ok.by] = node
        votes[#votes + 1] = ok
      end
    else
      others[#others + 1] = string.format("  %s: %s", node,
        kind == "novote" and rest:sub(1, 160) or "an answer that is not a valid vote")
    end
    return #votes >= need -- a quorum: more votes would decide nothing more
  end
  local r, err = serf.query(restart.PROPOSE, payload, M.reserve(serf,
    M.deliver(serf, { expect = math.max(#alive, 1), timeout_ms = M.BALLOT_MS, on_response = take }, alive,
      envelope.query_budget(restart.PROPOSE) - #payload),
    M.EVENTS_MS + M.RELAY_MIN_MS))
  local lines, reached = {}, r ~= nil or #votes > 0
  if not r then
    lines[1] = "ballot: " .. tostring(err)
  else
    lines[1] = string.format("ballot: %d of %d nodes answered in %d ms; %d votes (quorum %d)", r.n, #alive,
      time.now_ms() - t0, #votes, need)
  end
  table.sort(others)
  for _, o in ipairs(others) do lines[#lines + 1] = o end
  if #votes > 0 then -- below a quorum too: every node then holds them when tick sends the rest
    lines[#lines + 1] = M.relay(payload, votes, voters, alive)
  end
  local ok, serr = serf.event(restart.PROPOSE, payload)
  lines[#lines + 1] = ok and "the proposal went out as an event too" or "the proposal event: " .. tostring(serr)
  reached = reached or ok
  if #votes < need and reached then
    lines[#lines + 1] = "no quorum yet: the other votes follow from each node's tick"
  end
  return table.concat(lines, "\n"), reached
end

-- alive_members() -> {name, ...}: the members the agent sees alive.
function M.alive_members()
  local names = {}
  for _, m in ipairs(require("serfhand.serf").members() or {}) do
    if m.status == "alive" then names[#names + 1] = m.name end
  end
  return names
end

-- reserve(serf, opts, ms) -> opts: with reserve_ms = ms, so that the query
-- ends that long before the run's deadline, when the host knows the option
-- (it came with serf.query_many; an older host runs the query as before).
function M.reserve(serf, opts, ms)
  if serf.query_many then opts.reserve_ms = ms end
  return opts
end

-- filter_bytes(names) -> bytes: what naming these nodes (Serf's
-- FilterNodes) adds to an encoded query, at most: the filter's own headers
-- and a header of up to 2 bytes per name.
function M.filter_bytes(names)
  local n = 8
  for _, name in ipairs(names) do n = n + #name + 2 end
  return n
end

-- deliver(serf, opts, alive, room) -> opts: with the answers relayed
-- (M.RELAY_FACTOR) and the retries to the alive nodes not heard from
-- (M.RETRY_MS), when the host knows them, each retry
-- naming as many of them as surely fit Serf's query limit (room: the bytes
-- the payloads leave under their budget; counted with the longest names).
-- Where not even one name fits (a relay query full of votes with long
-- names) or on an older host, the query goes once, as before, and the
-- fallback events make up for a miss.
function M.deliver(serf, opts, alive, room)
  if not serf.MAX_RETRIES then return opts end
  opts.relay_factor = M.RELAY_FACTOR
  if #alive == 0 then return opts end
  local lens = {}
  for i, name in ipairs(alive) do lens[i] = #name end
  table.sort(lens, function(a, b) return a > b end)
  local k, used = 0, 8
  for _, len in ipairs(lens) do
    if used + len + 2 > room then break end
    used, k = used + len + 2, k + 1
  end
  if k == 0 then return opts end
  opts.retry_nodes, opts.retry_ms = alive, M.RETRY_MS
  if k < #alive then opts.retry_max = k end
  return opts
end

-- query_all(serf, name, payloads, opts) -> {result, ...} | nil, err: every
-- payload as its own query, all at once (serf.query_many); on a host
-- without it, one after the other.
local function query_all(serf, name, payloads, opts)
  if serf.query_many then return serf.query_many(name, payloads, opts) end
  local out, on = {}, opts.on_response
  for i, p in ipairs(payloads) do
    local o = {}
    for k, v in pairs(opts) do o[k] = v end
    if on then o.on_response = function(node, answer) return on(node, answer, i) end end
    local r, err = serf.query(name, p, o)
    if not r then return nil, err end
    out[i] = r
  end
  return out
end

-- relay(payload, votes, voters, alive) -> text: send the ballot's votes
-- on as the query factomd-restart-votes, each bundle with the proposal (11
-- votes per query with the proposal packed, factom.ballot), all the
-- queries at once: each node runs their handlers in turn, and nothing
-- waits for a whole query round before the next query starts. Each node
-- answers what became of the votes (restart.on_votes). Serf does not
-- repair a missed query, so a node that did not answer every query (and
-- did not decide), or could not use them, gets the votes of those queries
-- as events too (4 per event).
function M.relay(payload, votes, voters, alive)
  local serf = require "serfhand.serf"
  local names = {}
  for _, v in ipairs(votes) do names[#names + 1] = voters[v.by] end
  table.sort(names)
  local t0 = time.now_ms()
  -- The query budget for the longest alive node name (the sender's is among
  -- them): 11 votes per query with names of up to 19 bytes, so a quorum of
  -- 11 (20 authorities) takes one relay handler per node, not two. Should
  -- Serf still refuse, the split for any name (envelope.query_budget) is
  -- tried once more.
  local longest = #alive > 0 and 0 or 64
  for _, n in ipairs(alive) do longest = math.max(longest, #n) end
  local budgets = { ballot.relay_budget(math.min(longest, 64)), "query" }
  local groups, queries, heard, rs, failed
  for _, budget in ipairs(budgets) do
    -- the votes in query-sized groups, one query each (as ballot.encode splits them)
    local per = ballot.per_payload(payload, budget)
    local before = queries and #queries
    groups, queries, heard = {}, {}, {} -- heard: node -> {[query index] = answer}
    for i = 1, #votes, per do
      groups[#groups + 1] = table.move(votes, i, math.min(#votes, i + per - 1), 1, {})
      queries[#queries + 1] = ballot.encode(payload, groups[#groups], budget)[1]
    end
    if before and before == #queries then break end -- the same split: no retry
    local room = math.huge
    for _, q in ipairs(queries) do
      room = math.min(room, (budget == "query" and envelope.query_budget(ballot.EVENT) or budget) - #q)
    end
    rs, failed = query_all(serf, ballot.EVENT, queries, M.reserve(serf, M.deliver(serf, {
      expect = math.max(#alive, 1), timeout_ms = M.RELAY_MS,
      on_response = function(node, answer, i)
        heard[node] = heard[node] or {}
        heard[node][i] = answer
      end }, alive, room), M.EVENTS_MS))
    if rs then break end
  end
  if not rs then heard = {} end
  local decided, missing, dropped, need = M.outcome(heard, #queries, alive)
  local text = string.format("relay: %d votes sent on in %s: %s\nrelay: decided on %d of %d nodes (answers in %d ms)",
    #votes, #queries == 1 and "1 query" or #queries .. " queries at once", table.concat(names, " "), decided, #alive,
    time.now_ms() - t0)
  if failed then text = text .. "\nrelay query: " .. tostring(failed) end
  if #dropped > 0 then text = text .. "\nrelay: dropped by " .. table.concat(dropped, ", ") end
  if #missing > 0 then
    -- Only the votes of the queries some node missed: events reach every
    -- node, and each runs a handler per event (9 events for 33 votes).
    local again = {}
    for i, g in ipairs(groups) do
      if need[i] then table.move(g, 1, #g, #again + 1, again) end
    end
    local sent = 0
    for _, p in ipairs(ballot.encode(payload, again)) do
      local ok, serr = serf.event(ballot.EVENT, p)
      if not ok then
        text = text .. "\nvote events: " .. tostring(serr)
        break
      end
      sent = sent + 1
    end
    text = text .. string.format("\nthe votes went out in %d event%s too (no answer from %s)", sent,
      sent == 1 and "" or "s", table.concat(missing, " "))
      .. string.format("\nrelay: %d of the %d votes resent: those of the quer%s a node missed", #again, #votes,
        #groups == 1 and "y" or "ies")
  end
  return text
end

-- outcome(heard, nq, alive) -> decided, missing, dropped, need: from each
-- node's answers to the nq relay queries (heard[node][i]), how many
-- decided, which nodes need votes as events (an answer missing and no
-- decision, or "dropped error": the node could not use them), which refused
-- them ("node dropped <kind>": forged, malformed, late, ...; events would be
-- refused too), and need[i] = true for each query whose votes some missing
-- node has not used. "counted <n>" is below a quorum: more votes come from
-- tick.
function M.outcome(heard, nq, alive)
  local decided, missing, dropped, need = 0, {}, {}, {}
  for _, node in ipairs(alive) do
    local h, dec, why, unused = heard[node] or {}, false, nil, {}
    for i = 1, nq do
      local a = h[i]
      local kind = a and a:match("^dropped (%l+)$")
      if a == "decided" then
        dec = true
      elseif not a or kind == "error" then
        unused[#unused + 1] = i
      elseif kind then
        why = why or a
      end
    end
    if dec then
      decided = decided + 1
    elseif #unused > 0 then
      missing[#missing + 1] = node
      for _, i in ipairs(unused) do need[i] = true end
    elseif why then
      dropped[#dropped + 1] = node .. " " .. why
    end
  end
  return decided, missing, dropped, need
end

return M
