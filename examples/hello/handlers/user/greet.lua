-- user event "greet": log the payload.
local log = require "serfhand.log"

---@param ev serfhand.Event
return function(ev)
  log.info(string.format("%s got greet #%d: %q", ev.self.name, ev.ltime, ev.payload))
end
