-- This node's factomd health for `serfhand status`: compact JSON.
local node = require "factom.node"
return {
  description = "factomd heights, minute, stall state, role and last restart",
  handle = function(ev) return node.status(ev) end,
}
