-- A signed proposal to restart factomd: verify, record, vote if this node is a
-- sick authority, and decide if the votes are already in (docs/protocol.md).
local restart = require "factom.restart"
return {
  description = "proposal of a coordinated factomd restart",
  handle = function(ev) return restart.on_propose(ev) end,
}
