-- This node's factomd health for `serfhand status`: compact JSON.
local restart = require "factom.restart"
return {
  description = "factomd heights, minute, stall state, role and last restart",
  handle = function(ev) return restart.status(ev) end,
}
