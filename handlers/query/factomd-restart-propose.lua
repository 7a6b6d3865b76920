-- The proposer's ballot: the proposal again, as a query; the answer is this
-- node's signed vote or why it does not vote (docs/protocol.md section 5).
local restart = require "factom.restart"
return {
  description = "this node's vote on a restart proposal, for the proposer to relay",
  handle = function(ev) return restart.on_ballot(ev) end,
}
