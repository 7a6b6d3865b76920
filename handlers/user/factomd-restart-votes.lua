-- Votes relayed by a proposer in one bundle: verify each, count, decide at
-- quorum (docs/protocol.md section 4).
local restart = require "factom.restart"
return {
  description = "a bundle of restart votes relayed by the proposer",
  handle = function(ev) return restart.on_votes(ev) end,
}
