-- Votes relayed in one bundle with their proposal (or gossiped as evidence):
-- learn the proposal, verify each vote, count, decide at quorum
-- (docs/protocol.md section 4b).
local restart = require "factom.restart"
return {
  description = "a bundle of restart votes relayed by the proposer",
  handle = function(ev) return restart.on_votes(ev) end,
}
