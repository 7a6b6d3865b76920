---@meta serfhand.config
-- LuaLS annotations for require "serfhand.config" (see docs/lua-api.md).

---@class serfhand.config
local config = {}

---The value of a key such as "reboot.stall_minutes"; raises for an unknown key.
---Secrets (factomd.password, serf.rpc_auth) read as "(set)" or "".
---@param path string
---@return string|integer|boolean|string[]
function config.get(path) end

---A nested copy of every setting.
---@return table
function config.table() end

return config
