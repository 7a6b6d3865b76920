-- lua/factom/tally.lua: votes on proposals (DESIGN section 7). Every node keeps
-- each valid authority vote, also before its proposal arrives, counts the
-- distinct voters in the current authority set and decides once, at a strict
-- majority before the proposal expires. st is a store ({add, keys, get}).
local M = {}

function M.vote_key(pid, by) return "vote/" .. pid .. "/" .. by end
function M.decided_key(pid) return "decided/" .. pid end

-- add(st, pid, by, ttl) -> true (new) | false (already counted) | nil, err
function M.add(st, pid, by, ttl)
  return st.add(M.vote_key(pid, by), "1", ttl)
end

-- count(st, pid, set) -> n, voters | nil, err: distinct voters of pid that
-- are in set.members.
function M.count(st, pid, set)
  local prefix = "vote/" .. pid .. "/"
  local keys, err = st.keys(prefix, 10000)
  if not keys then return nil, err end
  local n, voters = 0, {}
  for _, k in ipairs(keys) do
    local by = k:sub(#prefix + 1)
    if set.members[by] then
      n = n + 1
      voters[#voters + 1] = by
    end
  end
  return n, voters
end

-- decide(st, pid, proposal, set, now) -> decided_now, n | nil, err.
-- decided_now is true exactly once per pid and node: at quorum, before exp.
function M.decide(st, pid, proposal, set, now)
  local n, err = M.count(st, pid, set)
  if not n then return nil, err end
  if n < set.n // 2 + 1 or now >= proposal.exp then return false, n end
  local ttl = math.max(1, math.ceil(proposal.exp - now)) + 86400
  local first
  first, err = st.add(M.decided_key(pid), { at = proposal.at, act = proposal.act, votes = n,
    of = set.n, t = math.floor(now * 1000) }, ttl)
  if first == nil then return nil, err end
  return first, n
end

return M
