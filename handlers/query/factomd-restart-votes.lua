-- The proposer's relay: votes, with the proposal they approve, in one bundle,
-- as a query. The answer tells the proposer what became of them here:
-- "decided", "counted <n>", "late", "conflict" or "dropped <kind>"
-- (docs/protocol.md 4a).
local restart = require "factom.restart"
return {
  description = "a bundle of restart votes relayed by the proposer; answers what became of them",
  handle = function(ev) return restart.on_votes(ev) end,
}
