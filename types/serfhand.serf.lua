---@meta serfhand.serf
-- LuaLS annotations for require "serfhand.serf" (src/lserf.c).
-- luacheck: no unused args

---@class serfhand.serf
---@field MAX_RETRIES integer  how often a query is sent again to retry_nodes not heard from (3: after 1, 3 and 7 x retry_ms)
local serf = {}

---@class serfhand.serf.EventOpts
---@field coalesce? boolean  let Serf coalesce same-name events (default false)

---@class serfhand.serf.Member
---@field name string
---@field addr string   IP address as text, e.g. "127.0.0.1"
---@field port integer  gossip port
---@field tags table<string, string>  exact tags
---@field status string "alive" | "leaving" | "left" | "failed"

---@class serfhand.serf.QueryOpts
---@field timeout_ms? integer  query timeout sent to Serf, 1..3600000 (default: Serf's)
---@field expect? integer  return as soon as this many responses arrived
---@field nodes? string[]  only these node names (exact)
---@field tags? table<string, string>  tag -> Go regexp (unanchored)
---@field ack? boolean  request acks (default false)
---@field on_response? fun(node: string, payload: string, i: integer): boolean?  per response to query i; true ends that query
---@field reserve_ms? integer  end the wait this long before the run's deadline, 0..3600000
---@field retry_nodes? string[]  nodes expected to get the query: those that neither acked nor answered get it again, addressed to them (implies ack)
---@field retry_ms? integer  retries after 1, 3 and 7 x this, 100..3600000 (default 1000)
---@field relay_factor? integer  each answer also goes through this many other members, 0..5 (default 0)
---@field retry_max? integer  name at most this many nodes per retry, 1..4096 (default: all not heard from)

---@class serfhand.serf.QueryResult
---@field responses table<string, string>  node -> exact response bytes
---@field acks string[]  nodes that acked, in arrival order
---@field n integer  number of responses
---@field done boolean  Serf reported the end of the query

--- Send a user event (binary-safe). Raises on a bad name, payload or option.
---@param name string  [A-Za-z0-9][A-Za-z0-9_.-]{0,63}
---@param payload? string  at most 1 MiB (Serf's own limit is far lower)
---@param opts? serfhand.serf.EventOpts
---@return true|nil ok
---@return string? err  "serf: ..."
function serf.event(name, payload, opts) end

--- Every member the local agent knows, with exact tags.
---@return serfhand.serf.Member[]|nil members
---@return string? err  "serf: ..."
function serf.members() end

--- Send a query and collect acks and responses. Raises inside a handler.
---@param name string  [A-Za-z0-9][A-Za-z0-9_.-]{0,63}
---@param payload? string  at most 1 MiB
---@param opts? serfhand.serf.QueryOpts
---@return serfhand.serf.QueryResult|nil result
---@return string? err  "serf: ..."
function serf.query(name, payload, opts) end

--- One query per payload, all started at once on one connection; result i
--- answers payloads[i]. Options apply to each query. Raises inside a handler.
---@param name string  [A-Za-z0-9][A-Za-z0-9_.-]{0,63}
---@param payloads string[]  1 to 64 payloads, each at most 1 MiB
---@param opts? serfhand.serf.QueryOpts
---@return serfhand.serf.QueryResult[]|nil results
---@return string? err  "serf: ..."
function serf.query_many(name, payloads, opts) end

return serf
