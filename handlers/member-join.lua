-- member-join: log each member and record its last known state in the store.
local members = require "factom.members"
return {
  description = "log and record member-join",
  handle = function(ev) return members.record(ev) end,
}
