-- A signed vote for a restart proposal: verify, count, decide at quorum.
local restart = require "factom.restart"
return {
  description = "vote for a factomd restart proposal",
  handle = function(ev) return restart.on_vote(ev) end,
}
