---@meta serfhand.json
-- LuaLS annotations for require "serfhand.json" (see docs/lua-api.md).

---@class serfhand.json
---@field null lightuserdata the JSON null sentinel (truthy)
local json = {}

---Decode JSON; integral numbers a double holds exactly come back as integers.
---@param s string
---@return any value
---@return string? err "json: ..." for invalid JSON
function json.decode(s) end

---Encode a value as compact JSON; raises for functions, userdata, NaN/inf.
---@param v any
---@return string
function json.encode(v) end

return json
