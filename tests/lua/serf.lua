-- serfhand.serf: argument checking. Every case raises before any connection
-- is made, so no agent is needed (tests/cluster/serf_rpc.sh covers the rest).
local serf = require "serfhand.serf"

T.test("module shape", function()
  local names = {}
  for k, v in pairs(serf) do
    T.eq(type(v), k == "MAX_RETRIES" and "number" or "function", k)
    names[#names + 1] = k
  end
  table.sort(names)
  T.eq(table.concat(names, ","), "MAX_RETRIES,event,members,query,query_many")
  T.eq(serf.MAX_RETRIES, 3)
end)

local bad_names = {
  { nil, "string expected" },
  { 42, "string expected" },
  { {}, "string expected" },
  { "", "invalid name" },
  { "has space", "invalid name" },
  { "_serf_ping", "invalid name" },
  { "-dash-first", "invalid name" },
  { "nul\0inside", "invalid name" },
  { string.rep("a", 65), "invalid name" },
  { "new\nline", "invalid name" },
}

T.test("event: bad names raise", function()
  for _, c in ipairs(bad_names) do
    T.raises(function() serf.event(c[1], "p") end, c[2], tostring(c[1]))
  end
end)

T.test("query: bad names raise", function()
  for _, c in ipairs(bad_names) do
    T.raises(function() serf.query(c[1], "p") end, c[2], tostring(c[1]))
  end
end)

T.test("event: bad payloads and options raise", function()
  T.raises(function() serf.event("x", 5) end, "string expected")
  T.raises(function() serf.event("x", {}) end, "string expected")
  T.raises(function() serf.event("x", true) end, "string expected")
  T.raises(function() serf.event("x", string.rep("p", 1024 * 1024 + 1)) end, "over 1 MiB")
  T.raises(function() serf.event("x", "p", "opts") end, "table expected")
  T.raises(function() serf.event("x", "p", { coalesce = "yes" }) end, "'coalesce' must be a boolean")
  T.raises(function() serf.event("x", "p", { coalesce = 1 }) end, "'coalesce' must be a boolean")
  T.raises(function() serf.event("x", "p", { colaesce = true }) end, "unknown option 'colaesce'")
  T.raises(function() serf.event("x", "p", { true }) end, "unknown option")
  T.raises(function() serf.event("x", "p", { timeout_ms = 5 }) end, "unknown option 'timeout_ms'")
end)

T.test("query: bad payloads raise", function()
  T.raises(function() serf.query("x", 5) end, "string expected")
  T.raises(function() serf.query("x", string.rep("p", 1024 * 1024 + 1)) end, "over 1 MiB")
  T.raises(function() serf.query("x", "p", 7) end, "table expected")
end)

T.test("query: bad options raise", function()
  local cases = {
    { { timeout = 100 }, "unknown option 'timeout'" },
    { { [1] = "n1" }, "unknown option" },
    { { timeout_ms = 0 }, "'timeout_ms' must be an integer" },
    { { timeout_ms = -5 }, "'timeout_ms' must be an integer" },
    { { timeout_ms = 1.5 }, "'timeout_ms' must be an integer" },
    { { timeout_ms = "100" }, "'timeout_ms' must be an integer" },
    { { timeout_ms = 3600001 }, "'timeout_ms' must be an integer" },
    { { expect = 0 }, "'expect' must be an integer" },
    { { expect = "3" }, "'expect' must be an integer" },
    { { ack = "yes" }, "'ack' must be a boolean" },
    { { nodes = "n1" }, "'nodes' must be an array of names" },
    { { nodes = { "n1", 2 } }, "'nodes' must be an array of names" },
    { { nodes = { "" } }, "'nodes' must be an array of names" },
    { { tags = "role=x" }, "'tags' must be a table of tag = regexp" },
    { { tags = { role = 5 } }, "'tags' must be a table of tag = regexp" },
    { { tags = { "r1" } }, "'tags' must be a table of tag = regexp" },
    { { retry_nodes = "n1" }, "'retry_nodes' must be an array of names" },
    { { retry_nodes = { "n1", false } }, "'retry_nodes' must be an array of names" },
    { { retry_ms = 1000 }, "'retry_ms' and 'retry_max' need 'retry_nodes'" },
    { { retry_max = 2 }, "'retry_ms' and 'retry_max' need 'retry_nodes'" },
    { { retry_nodes = { "n1" }, retry_max = 0 }, "'retry_max' must be an integer" },
    { { retry_nodes = { "n1" }, retry_ms = 99 }, "'retry_ms' must be an integer" },
    { { relay_factor = 6 }, "'relay_factor' must be an integer in 0..5" },
    { { relay_factor = -1 }, "'relay_factor' must be an integer" },
    { { relay_factor = "1" }, "'relay_factor' must be an integer" },
    { { retry_nodes = { "n1" }, retry_ms = 1.5 }, "'retry_ms' must be an integer" },
  }
  for _, c in ipairs(cases) do
    T.raises(function() serf.query("x", "p", c[1]) end, c[2], c[2])
  end
end)

T.test("query: reserve_ms must be an integer 0..3600000", function()
  T.raises(function() serf.query("x", "p", { reserve_ms = -1 }) end, "'reserve_ms' must be an integer")
  T.raises(function() serf.query("x", "p", { reserve_ms = "5" }) end, "'reserve_ms' must be an integer")
  T.raises(function() serf.query("x", "p", { reserve_ms = 3600001 }) end, "'reserve_ms' must be an integer")
end)

T.test("query_many: bad names, payload lists and options raise", function()
  for _, c in ipairs(bad_names) do
    T.raises(function() serf.query_many(c[1], { "p" }) end, c[2], tostring(c[1]))
  end
  T.raises(function() serf.query_many("x") end, "table expected")
  T.raises(function() serf.query_many("x", "p") end, "table expected")
  T.raises(function() serf.query_many("x", {}) end, "want 1 to 64 payloads")
  local many = {}
  for i = 1, 65 do many[i] = "p" end
  T.raises(function() serf.query_many("x", many) end, "want 1 to 64 payloads")
  T.raises(function() serf.query_many("x", { "a", 5 }) end, "payload 2 is not a string")
  T.raises(function() serf.query_many("x", { "a", string.rep("p", 1024 * 1024 + 1) }) end, "over 1 MiB")
  T.raises(function() serf.query_many("x", { "a" }, 7) end, "table expected")
  T.raises(function() serf.query_many("x", { "a" }, { timeout = 1 }) end, "unknown option 'timeout'")
  T.raises(function() serf.query_many("x", { "a" }, { expect = 0 }) end, "'expect' must be an integer")
  T.raises(function() serf.query_many("x", { "a" }, { on_response = 1 }) end, "on_response")
  T.raises(function() serf.query_many("x", { "a" }, { reserve_ms = 1.5 }) end, "'reserve_ms' must be an integer")
end)
