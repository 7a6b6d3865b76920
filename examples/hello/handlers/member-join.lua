-- member-join: log who joined, with the fields Serf sent.
local log = require "serfhand.log"
local fmt = require "hello.fmt"

---@param ev serfhand.Event
return function(ev)
  log.info(ev.self.name .. " sees joined: " .. fmt.members(ev.members))
end
