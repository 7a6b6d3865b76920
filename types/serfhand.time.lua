---@meta serfhand.time
-- LuaLS annotations for require "serfhand.time" (see docs/lua-api.md).

---@class serfhand.time
local time = {}

---Unix time in seconds, millisecond resolution.
---@return number
function time.now() end

---Unix time in milliseconds.
---@return integer
function time.now_ms() end

---Monotonic seconds, for durations.
---@return number
function time.mono() end

---Sleep, never past the handler's deadline.
---@param ms integer >= 0
function time.sleep(ms) end

return time
