-- The detached executor of a decided restart, run by `serfhand action restart
-- PID`: waits until the agreed time, re-checks, runs factomd.restart once.
local executor = require "factom.executor"
return {
  description = "restart factomd at the agreed time",
  handle = function(ev) return executor.action("restart", ev.payload) end,
}
