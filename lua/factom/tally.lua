-- lua/factom/tally.lua: votes on proposals (DESIGN section 7). Every node
-- keeps each valid authority vote under the digest `ph` of the proposal it
-- signs, counts the distinct voters of that exact digest who are in the
-- current authority set and hold no equivocation evidence, and decides once,
-- at the quorum, while the agreed time is still ahead. st is a store ({add,
-- put, get, keys}).
local M = {}

function M.vote_key(ph, by) return "vote/" .. ph .. "/" .. by end
-- The voter's side of the same record: what one signer has filled (bounded,
-- restart.MAX_VOTES_PER_SIGNER) and which other proposals it votes for.
function M.voter_key(by, ph) return "voter/" .. by .. "/" .. ph end
function M.decided_key(ph) return "decided/" .. ph end

-- add(st, ph, by, sig, ttl) -> true (new) | false (already counted) | nil, err
-- sig (64 bytes) is kept as hex: a node that finds the voter equivocating
-- gossips this very vote as evidence.
function M.add(st, ph, by, sig, ttl)
  local hex = require("serfhand.crypto").hex(sig)
  local new, err = st.add(M.vote_key(ph, by), hex, ttl)
  if new == nil then return nil, err end
  if new then
    local ok, perr = st.put(M.voter_key(by, ph), "1", ttl)
    if not ok then return nil, perr end
  end
  return new
end

-- count(st, ph, set, ignored) -> n, voters | nil, err: distinct voters of ph
-- that are in set.members and not in ignored (a set of chain ids).
function M.count(st, ph, set, ignored)
  local prefix = "vote/" .. ph .. "/"
  local keys, err = st.keys(prefix, 10000)
  if not keys then return nil, err end
  local n, voters = 0, {}
  for _, k in ipairs(keys) do
    local by = k:sub(#prefix + 1)
    if set.members[by] and not (ignored and ignored[by]) then
      n = n + 1
      voters[#voters + 1] = by
    end
  end
  return n, voters
end

-- decide(st, ph, prop, set, now, quorum[, ignored]) -> decided_now, n | nil, err.
-- decided_now is true once per decision and node: at quorum while `at` is
-- ahead (so never after exp, and never for a restart time already past).
function M.decide(st, ph, prop, set, now, quorum, ignored)
  local n, err = M.count(st, ph, set, ignored)
  if not n then return nil, err end
  if n < quorum or now >= prop.at then return false, n end
  local ttl = math.max(1, math.ceil(prop.exp - now)) + 86400
  local first
  first, err = st.add(M.decided_key(ph), { at = prop.at, act = prop.act, votes = n,
    of = set.n, t = math.floor(now * 1000) }, ttl)
  if first == nil then return nil, err end
  return first, n
end

return M
