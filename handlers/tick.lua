-- `serfhand tick` (systemd timer or cron): record health, refresh the cached
-- authority set, propose a restart when reboot.auto_propose is on and this
-- node is a sick authority without an open proposal.
local node = require "factom.node"
return {
  description = "periodic health record and auto-propose",
  handle = function(ev) return node.tick(ev) end,
}
