-- A signed report that an authority ran (or skipped) its restart.
local restart = require "factom.restart"
return {
  description = "outcome of a node's factomd restart",
  handle = function(ev) return restart.on_done(ev) end,
}
