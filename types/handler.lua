---@meta _
-- LuaLS annotations for what a handler gets: `ev` (built by serfhand from
-- Serf's SERF_* environment and stdin) and what a handler file returns.
-- Annotate a handler with `---@param ev serfhand.Event` (or `---@type
-- serfhand.Handler` on the returned function) to get completion for ev.
-- See docs/lua-api.md, "The handler contract".

---A member line of a member event, with Serf's \t and \n escapes undone.
---@class serfhand.EventMember
---@field name string node name
---@field addr string IP address without port, e.g. "127.0.0.1"
---@field role string the member's role tag
---@field tags table<string, string> from "k=v,k=v"; Serf does not escape "," or "=" (exact tags: serfhand.serf.members())

---This node, from SERF_SELF_NAME, SERF_SELF_ROLE and SERF_TAG_*.
---@class serfhand.EventSelf
---@field name string
---@field role string
---@field tags table<string, string> names lower-cased, characters outside [a-z0-9_] turned into "_" (as Serf passes them)

---The bundle this handler came from.
---@class serfhand.EventBundle
---@field name string the manifest's bundle name ("" in an unsigned run without a manifest)
---@field version string the manifest's version, as a string ("dev" in an unsigned run)

---@alias serfhand.EventType
---| "member-join"
---| "member-leave"
---| "member-failed"
---| "member-update"
---| "member-reap"
---| "user"
---| "query"
---| "tick"   # serfhand tick (handlers/tick.lua)
---| "action" # serfhand action ACT PID (handlers/action/ACT.lua)
---| "cli"    # serfhand propose (the host runs its own chunk, no handler file)

---What a handler is called with.
---@class serfhand.Event
---@field type serfhand.EventType
---@field name? string the user event's or query's name (the action's for "action"); nil for member events and tick
---@field ltime integer Serf's Lamport time of the user event or query; 0 for member events, tick and tools
---@field payload string the exact bytes Serf sent (NUL allowed) minus the one newline Serf appends; for member events the raw member lines
---@field self serfhand.EventSelf
---@field members serfhand.EventMember[] member events: one per member line; {} otherwise
---@field bundle serfhand.EventBundle
---@field args? string[] "action" and "cli" runs only: the command's arguments

---A handler file returns a function, or a table with handle (and optional description).
---For a query, the return value is the response: a string as is, a table as
---JSON, nil for none. For other events it is only logged (debug).
---@alias serfhand.Handler fun(ev: serfhand.Event): (string|table|nil)

---The table form of a handler file.
---@class serfhand.HandlerTable
---@field handle serfhand.Handler
---@field description? string shown by serfhand check
