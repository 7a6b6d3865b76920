-- A bundle module: handlers load it with require "hello.fmt".
local M = {}

---"name@addr(role)" for each member, space-separated.
---@param list serfhand.EventMember[]
---@return string
function M.members(list)
  local out = {}
  for _, m in ipairs(list) do
    out[#out + 1] = string.format("%s@%s(%s)", m.name, m.addr, m.role)
  end
  return table.concat(out, " ")
end

return M
