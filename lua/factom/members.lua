-- lua/factom/members.lua: member events (join, leave, failed, update, reap):
-- one log line per member and its last known state in the store
-- ("member/<name>"), for status and post-mortems.
local log = require "serfhand.log"
local store = require "serfhand.store"
local time = require "serfhand.time"

local M = {}
M.KEEP_S = 30 * 86400

local STATE = {
  ["member-join"] = "alive", ["member-leave"] = "left", ["member-failed"] = "failed",
  ["member-update"] = "alive", ["member-reap"] = "reaped",
}

function M.record(ev)
  local state = STATE[ev.type] or ev.type
  local n = 0
  for _, m in ipairs(ev.members or {}) do
    n = n + 1
    log.info(string.format("%s: %s %s role=%s", ev.type, tostring(m.name), tostring(m.addr), tostring(m.role)))
    if type(m.name) == "string" and #m.name > 0 and #m.name <= 200 then
      local ok, err = store.put("member/" .. m.name, { state = state, addr = m.addr, role = m.role,
        t = time.now_ms() }, M.KEEP_S)
      if not ok then log.warn("member not recorded: " .. tostring(err)) end
    end
  end
  return n
end

return M
