-- query "whoami": answer with a small JSON object (a returned table).
---@type serfhand.HandlerTable
return {
  description = "name, role and the query's payload",
  handle = function(ev)
    return { node = ev.self.name, role = ev.self.role, asked = ev.payload }
  end,
}
