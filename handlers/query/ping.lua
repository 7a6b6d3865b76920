-- Liveness: answers "pong <node>".
return {
  description = "answers pong and the node name",
  handle = function(ev) return "pong " .. tostring(ev.self and ev.self.name) end,
}
