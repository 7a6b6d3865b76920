-- user event "greet": log the payload.
local log = require "serfhand.log"

return function(ev)
  log.info(string.format("%s got greet #%d: %q", ev.self.name, ev.ltime, ev.payload))
end
