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

M.BALLOT_MS = 5000 -- propose waits this long at most for the nodes' votes

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
  local r, err = serf.query(restart.PROPOSE, payload,
    { expect = math.max(#alive, 1), timeout_ms = M.BALLOT_MS, on_response = take })
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

-- relay(payload, votes, voters, alive) -> text: send the ballot's votes
-- on as the query factomd-restart-votes, each bundle with the proposal (8
-- votes per query with a 278-byte proposal on MAIN; each node answers what became
-- of them, restart.on_votes). Serf does not repair a missed query, so for
-- the nodes that did not answer, the votes then go out as events too (2
-- per event).
function M.relay(payload, votes, voters, alive)
  local serf = require "serfhand.serf"
  local names = {}
  for _, v in ipairs(votes) do names[#names + 1] = voters[v.by] end
  table.sort(names)
  local t0 = time.now_ms()
  local answers, heard = {}, {} -- each node's last answer; how many queries it answered
  local queries = ballot.encode(payload, votes, "query")
  local failed
  for _, q in ipairs(queries) do
    local r, err = serf.query(ballot.EVENT, q, { expect = math.max(#alive, 1), timeout_ms = M.BALLOT_MS,
      on_response = function(node, answer)
        answers[node] = answer
        heard[node] = (heard[node] or 0) + 1
      end })
    if not r then
      failed = tostring(err)
      break
    end
  end
  -- A node that missed a query, or kept no answer, gets the votes as events.
  -- One that dropped the bundle as forged, malformed or late would drop the
  -- events too.
  local decided, missing, dropped = 0, {}, {}
  for _, node in ipairs(alive) do
    local a = answers[node]
    local kind = a and a:match("^dropped (%l+)$")
    if failed or (heard[node] or 0) < #queries then
      missing[#missing + 1] = node
    elseif a == "decided" then
      decided = decided + 1
    elseif kind == "error" then
      missing[#missing + 1] = node
    elseif kind then
      dropped[#dropped + 1] = node .. " " .. a
    end -- else "counted <n>": below a quorum, more votes may come from tick
  end
  local text = string.format("relay: %d votes sent on in %d quer%s: %s\nrelay: decided on %d of %d nodes (answers in %d ms)",
    #votes, #queries, #queries == 1 and "y" or "ies", table.concat(names, " "), decided, #alive, time.now_ms() - t0)
  if failed then text = text .. "\nrelay query: " .. failed end
  if #dropped > 0 then text = text .. "\nrelay: dropped by " .. table.concat(dropped, ", ") end
  if #missing > 0 then
    local sent = 0
    for _, p in ipairs(ballot.encode(payload, votes)) do
      local ok, serr = serf.event(ballot.EVENT, p)
      if not ok then
        text = text .. "\nvote events: " .. tostring(serr)
        break
      end
      sent = sent + 1
    end
    text = text .. string.format("\nthe votes went out in %d event%s too (no answer from %s)", sent,
      sent == 1 and "" or "s", table.concat(missing, " "))
  end
  return text
end

return M
