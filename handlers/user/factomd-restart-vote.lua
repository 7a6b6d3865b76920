-- One authority's vote, with the proposal it approves (a bundle of one):
-- learn the proposal, verify, count, decide at quorum.
local restart = require "factom.restart"
return {
  description = "vote for a factomd restart proposal, with the proposal",
  handle = function(ev) return restart.on_vote(ev) end,
}
