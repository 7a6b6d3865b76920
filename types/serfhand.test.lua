---@meta
-- LuaLS annotations for the global T of `serfhand test` files (see
-- docs/authors.md, section 5).

---@class serfhand.test.member
---@field name string
---@field addr string
---@field role? string
---@field tags? table<string, string>

---@class serfhand.test.event
---@field type "member-join"|"member-leave"|"member-failed"|"member-update"|"member-reap"|"user"|"query"
---@field name? string the user event's or query's name (required for those)
---@field payload? string bytes, as sent
---@field members? (string|serfhand.test.member)[] member lines or tables
---@field tags? table<string, string> this node's tags (SERF_TAG_*; role also SERF_SELF_ROLE)
---@field self? string this node's name (default "dev")
---@field ltime? integer the Lamport time (default 1)

---@class serfhand.test.result
---@field out string what Serf receives: stdout and stderr of `serfhand handle`
---@field code integer its exit code (0 ok, 1 failed, 4 deadline, 5 memory, 6 response refused, 7 bad event)
---@field log string[] its log lines

---@class serfhand.test
T = {}

---Run fn as one test; an error in it fails this test only.
---@param name string
---@param fn fun()
function T.test(name, fn) end

---Raise unless got equals want (tables deeply).
---@param got any
---@param want any
---@param msg? string
function T.eq(got, want, msg) end

---Raise unless v is true; returns v.
---@generic V
---@param v V
---@param msg? string
---@return V
function T.ok(v, msg) end

---Raise unless fn raises an error matching the Lua pattern; returns the error.
---@param fn fun()
---@param pattern? string
---@param msg? string
---@return any
function T.raises(fn, pattern, msg) end

---Print text with the results (TAP: a comment; JSON: reports).
---@param text string
function T.report(text) end

---Run `serfhand handle` in a child exactly as Serf would.
---@param spec serfhand.test.event
---@return serfhand.test.result
function T.event(spec) end

---T.event with type = "query".
---@param spec table name, payload, tags, self, ltime as for T.event
---@return serfhand.test.result
function T.query(spec) end
