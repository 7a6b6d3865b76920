---@meta serfhand.log
-- LuaLS annotations for require "serfhand.log" (see docs/lua-api.md).

-- Any bytes may be logged (NULs too); control bytes are escaped, and with
-- log.format = "json" ill-formed UTF-8 becomes U+FFFD: a line stays one line.

---@class serfhand.log
local log = {}

---@param ... any joined by spaces, one log line
function log.debug(...) end
---@param ... any
function log.info(...) end
---@param ... any
function log.warn(...) end
---@param ... any
function log.error(...) end

return log
