---@meta _
-- LuaLS annotations for the global T that `serfhand test FILE...` gives each
-- test file (docs/authors.md, "Testing"). T exists only under serfhand test,
-- never in a handler run by Serf.

---@class serfhand.T
T = {}

---Run fn as one test named name: a raise counts as a failure (reported as
---"FAIL name: message"), a return as a pass. Tests run in file order.
---@param name string
---@param fn fun()
function T.test(name, fn) end

---Raise unless got equals want: ==, or for tables the same keys with equal
---values, compared deeply. The message shows both values.
---@param got any
---@param want any
---@param msg? string prefixed to the failure message
function T.eq(got, want, msg) end

---Raise unless v is true (neither nil nor false); returns v.
---@generic V
---@param v V
---@param msg? string the failure message (default "expected a true value")
---@return V
function T.ok(v, msg) end

---Call fn and raise unless it raises; with pattern, its error (as a string)
---must also match the Lua pattern. Returns the error value.
---@param fn fun()
---@param pattern? string a Lua pattern (string.find)
---@param msg? string prefixed to the failure message
---@return any err
function T.raises(fn, pattern, msg) end

---Print one line on serfhand test's standard output (a handler's print and
---log lines go to the log instead).
---@param line string
function T.report(line) end

---A Serf event or query for T.event and T.query, as `serfhand run` takes it.
---@class serfhand.T.Event
---@field type? "member-join"|"member-leave"|"member-failed"|"member-update"|"member-reap"|"user"|"query" T.event: the event type (T.query: always "query")
---@field name? string the user event's or query's name (required for those)
---@field payload? string bytes, as sent
---@field ltime? integer the Lamport time (default 1)
---@field self? string this node's name (default "dev")
---@field tags? table<string, string> this node's tags (SERF_TAG_*; role also SERF_SELF_ROLE)
---@field members? (string|serfhand.T.Member)[] member lines ("name\taddr\trole\tk=v,...") or tables

---A member for T.Event.members.
---@class serfhand.T.Member
---@field name string
---@field addr string
---@field role? string
---@field tags? table<string, string>

---What Serf would get from the run.
---@class serfhand.T.Result
---@field out string what Serf receives: a query's response, exactly the bytes Serf sends ("" for none)
---@field code integer the exit code (0 ok, 1 handler failed, 3 refused, 4 deadline, 5 memory, 6 response refused, 7 bad event)
---@field log string[] the log lines the run wrote

---Run the bundle's handler for an event exactly as Serf would: `serfhand
---handle` in a child (signatures are not checked: the working copy runs as
---it is).
---@param ev serfhand.T.Event
---@return serfhand.T.Result
function T.event(ev) end

---T.event with type = "query".
---@param q serfhand.T.Event
---@return serfhand.T.Result
function T.query(q) end
