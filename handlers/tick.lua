-- `serfhand tick` (systemd timer or cron): record health, refresh the cached
-- authority set, re-send this node's votes, vote for a proposal held while
-- its vote was locked, propose a restart when reboot.auto_propose is on and
-- this node is a sick authority without an open proposal or vote.
local node = require "factom.node"
return {
  description = "periodic health record, votes and auto-propose",
  handle = function(ev) return node.tick(ev) end,
}
