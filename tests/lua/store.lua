-- tests/lua/store.lua: require "serfhand.store", every function with good
-- and bad inputs. The database tests need a throwaway state_dir (a path with
-- "serfhand-test" in it): tests/cli/store.sh runs this file with one. Run
-- without it, only the argument checks (which never open the database) run.
local store = require "serfhand.store"
local config = require "serfhand.config"
local time = require "serfhand.time"

local scratch = string.find(config.get("state_dir"), "serfhand-test", 1, true) ~= nil

-- Misuse raises, before the database is touched.
local long = string.rep("k", 257)
local bad_keys = {
  {nil, "string expected"}, {1, "string expected"}, {{}, "string expected"},
  {true, "string expected"}, {"", "key must be 1 to 256 bytes"},
  {long, "key must be 1 to 256 bytes"}, {"a\0b", "key must not contain NUL"},
}
for i, c in ipairs(bad_keys) do
  T.test("bad key " .. i, function()
    T.raises(function() store.get(c[1]) end, c[2])
    T.raises(function() store.put(c[1], "v") end, c[2])
    T.raises(function() store.add(c[1], "v") end, c[2])
    T.raises(function() store.del(c[1]) end, c[2])
  end)
end

local bad_values = {
  {nil, "string or table expected"}, {1, "string or table expected"},
  {true, "string or table expected"}, {print, "string or table expected"},
  {{f = print}, "json"}, {string.rep("x", 1024 * 1024 + 1), "larger than 1 MiB"},
}
for i, c in ipairs(bad_values) do
  T.test("bad value " .. i, function()
    T.raises(function() store.put("k", c[1]) end, c[2])
    T.raises(function() store.add("k", c[1]) end, c[2])
  end)
end

local bad_ttls = {
  {0, "ttl must be > 0"}, {-1, "ttl must be > 0"}, {0 / 0, "ttl must be > 0"},
  {math.huge, "ttl must be > 0"}, {1e10, "ttl must be > 0"}, {"soon", "number expected"},
  {{}, "number expected"},
}
for i, c in ipairs(bad_ttls) do
  T.test("bad ttl " .. i, function()
    T.raises(function() store.put("k", "v", c[1]) end, c[2])
    T.raises(function() store.add("k", "v", c[1]) end, c[2])
  end)
end

T.test("bad prefix and limit", function()
  T.raises(function() store.count() end, "string expected")
  T.raises(function() store.count(5) end, "string expected")
  T.raises(function() store.count(long) end, "prefix longer than 256")
  T.raises(function() store.keys("a\0") end, "prefix must not contain NUL")
  T.raises(function() store.keys({}) end, "string expected")
  T.raises(function() store.keys("", 0) end, "limit must be 1 to 10000")
  T.raises(function() store.keys("", -1) end, "limit must be 1 to 10000")
  T.raises(function() store.keys("", 10001) end, "limit must be 1 to 10000")
  T.raises(function() store.keys("", 1.5) end, "integer")
  T.raises(function() store.keys("", "many") end, "number expected")
end)

T.test("bad incr arguments", function()
  for i, c in ipairs(bad_keys) do
    T.raises(function() store.incr(c[1]) end, c[2], "key " .. i)
  end
  T.raises(function() store.incr("n", 1.5) end, "number has no integer representation")
  T.raises(function() store.incr("n", "x") end, "number expected")
  T.raises(function() store.incr("n", 2 ^ 63) end, "number has no integer representation")
  T.raises(function() store.incr("n", 1, 0) end, "ttl must be > 0")
  T.raises(function() store.incr("n", 1, "soon") end, "number expected")
  T.raises(function() store.incr("bundle.x") end, "belong to the host")
end)

T.test("bad tx", function()
  T.raises(function() store.tx() end, "function expected")
  T.raises(function() store.tx("BEGIN") end, "function expected")
end)

if not scratch then
  T.report("store.lua: database tests skipped (state_dir is not a test dir; see tests/cli/store.sh)")
  return
end

T.test("get absent", function()
  T.eq(store.get("absent"), nil)
  T.eq(select("#", store.get("absent")), 1, "one result")
end)

T.test("put and get strings", function()
  local cases = {"x", "", "a\0b\0", string.rep("\255", 300), "ünïcode", string.rep("z", 1024 * 1024)}
  for i, v in ipairs(cases) do
    T.eq(store.put("str/" .. i, v), true)
    T.ok(store.get("str/" .. i) == v, "string " .. i .. " comes back")
  end
  T.eq(store.put("str/1", "y"), true, "put overwrites")
  T.eq(store.get("str/1"), "y")
end)

T.test("put and get tables", function()
  local cases = {
    {a = 1, b = "two", c = {1, 2, 3}, d = {e = true, f = false}},
    {1, 2, 3},
    {n = 2 ^ 40, m = -7, x = 1.5, s = "1"},
    {},
  }
  for i, v in ipairs(cases) do
    T.eq(store.put("tbl/" .. i, v), true)
    T.eq(store.get("tbl/" .. i), v, "table " .. i)
  end
  T.eq(math.type(store.get("tbl/3").m), "integer", "integers stay integers")
  T.eq(math.type(store.get("tbl/3").n), "integer", "integral floats come back as integers")
  T.eq(type(store.get("tbl/4")), "table", "empty table is a table")
  T.eq(store.put("tbl/1", "now a string"), true)
  T.eq(store.get("tbl/1"), "now a string", "kind follows the last put")
  local s = '{"a":1}'
  T.eq(store.put("tbl/json-looking", s), true)
  T.eq(store.get("tbl/json-looking"), s, "a string that looks like JSON stays a string")
end)

T.test("keys at the limits", function()
  local k = string.rep("k", 256)
  T.eq(store.put(k, "v"), true, "256-byte key")
  T.eq(store.get(k), "v")
  T.eq(store.put("%_*?[]'\"\\", "v"), true, "SQL and glob characters in a key")
  T.eq(store.get("%_*?[]'\"\\"), "v")
end)

T.test("add", function()
  T.eq(store.add("add/a", "1"), true, "inserted")
  T.eq(store.add("add/a", "2"), false, "present")
  T.eq(store.add("add/a", {x = 1}), false, "present, table")
  T.eq(store.get("add/a"), "1", "first value kept")
  T.eq(store.add("add/t", {v = 1}), true)
  T.eq(store.get("add/t"), {v = 1})
end)

T.test("del", function()
  store.put("del/a", "1")
  T.eq(store.del("del/a"), true)
  T.eq(store.get("del/a"), nil)
  T.eq(store.del("del/a"), true, "deleting an absent key is fine")
  T.eq(store.add("del/a", "2"), true, "add after del")
end)

T.test("ttl", function()
  T.eq(store.put("ttl/short", "v", 0.05), true)
  T.eq(store.add("ttl/short-add", "v", 0.05), true)
  T.eq(store.put("ttl/long", "v", 3600), true)
  T.eq(store.put("ttl/never", {1}), true)
  T.eq(store.get("ttl/short"), "v", "alive before the ttl")
  T.eq(store.count("ttl/"), 4)
  time.sleep(120)
  T.eq(store.get("ttl/short"), nil, "expired is absent")
  T.eq(store.count("ttl/"), 2, "count skips expired")
  T.eq(store.keys("ttl/"), {"ttl/long", "ttl/never"}, "keys skip expired")
  T.eq(store.add("ttl/short-add", "again"), true, "add over an expired key")
  T.eq(store.get("ttl/short-add"), "again")
  T.eq(store.put("ttl/long", "v2"), true, "put without ttl")
  T.eq(store.get("ttl/long"), "v2")
end)

T.test("count and keys by prefix", function()
  for _, k in ipairs({"p/a%b", "p/a_b", "p/aXb", "p/a", "p/b", "p/\255", "q/x"}) do
    store.put(k, "v")
  end
  local cases = {
    {"p/", 6}, {"p/a", 4}, {"p/a%", 1}, {"p/a_", 1}, {"p/%", 0}, {"p/_", 0},
    {"p/\255", 1}, {"q/", 1}, {"r/", 0}, {"p/a%b", 1},
  }
  for _, c in ipairs(cases) do
    T.eq(store.count(c[1]), c[2], "count " .. c[1])
    T.eq(#store.keys(c[1]), c[2], "keys " .. c[1])
  end
  T.eq(store.keys("p/"), {"p/a", "p/a%b", "p/aXb", "p/a_b", "p/b", "p/\255"}, "byte order")
  T.eq(store.keys("p/", 2), {"p/a", "p/a%b"}, "limit")
  T.eq(store.keys("nothing/"), {}, "empty")
  T.ok(store.count("") >= 7, "empty prefix counts all")
  T.eq(math.type(store.count("p/")), "integer")
end)

T.test("tx commits and returns fn's results", function()
  local a, b, c = store.tx(function()
    store.put("tx/a", "1")
    T.eq(store.add("tx/b", "1"), true)
    T.eq(store.add("tx/b", "2"), false, "add sees the tx's own write")
    return 1, nil, "three"
  end)
  T.eq({a, b, c}, {1, nil, "three"})
  T.eq(store.get("tx/a"), "1")
  T.eq(select("#", store.tx(function() end)), 0, "no results")
end)

T.test("tx rolls back and re-raises", function()
  local e = {}
  local ok, err = pcall(store.tx, function()
    store.put("tx/gone", "1")
    error(e)
  end)
  T.eq(ok, false)
  T.ok(err == e, "the very error value")
  T.eq(store.get("tx/gone"), nil, "rolled back")
  T.raises(function()
    store.tx(function() store.put("tx/gone", "2"); error("boom") end)
  end, "boom")
  T.eq(store.get("tx/gone"), nil)
  -- a misuse inside the tx also rolls back
  T.raises(function()
    store.tx(function() store.put("tx/gone", "3"); store.put("", "x") end)
  end, "key must be")
  T.eq(store.get("tx/gone"), nil)
  T.eq(store.put("tx/after", "1"), true, "the store works after a rollback")
end)

T.test("tx cannot nest", function()
  T.raises(function()
    store.tx(function() store.tx(function() end) end)
  end, "nested")
  T.eq(store.tx(function() return "ok" end), "ok", "usable again")
end)

T.test("many writes in one tx", function()
  store.tx(function()
    for i = 1, 500 do store.put(string.format("bulk/%04d", i), {i = i}) end
  end)
  T.eq(store.count("bulk/"), 500)
  T.eq(store.get("bulk/0250"), {i = 250})
  T.eq(#store.keys("bulk/", 10000), 500)
end)

T.test("incr", function()
  T.eq(store.incr("ctr/a"), 1, "absent counts as 0, by defaults to 1")
  T.eq(store.incr("ctr/a"), 2)
  T.eq(store.incr("ctr/a", 40), 42)
  T.eq(store.incr("ctr/a", -50), -8, "negative by")
  T.eq(store.incr("ctr/a", 0), -8, "by 0 reads")
  T.eq(math.type(store.incr("ctr/a", 0)), "integer")
  T.eq(store.get("ctr/a"), -8, "get returns the counter as an integer")
  T.eq(math.type(store.get("ctr/a")), "integer")
  T.eq(store.count("ctr/"), 1)
  T.eq(store.put("ctr/a", "now bytes"), true, "put replaces a counter")
  T.eq(store.get("ctr/a"), "now bytes")
end)

T.test("incr refuses what is not a counter, changing nothing", function()
  store.put("ctr/str", "5")
  store.put("ctr/tbl", {n = 5})
  store.put("ctr/json", {5})
  for _, k in ipairs({"ctr/str", "ctr/tbl", "ctr/json"}) do
    local v, err = store.incr(k)
    T.eq(v, nil, k)
    T.ok(err and err:find("store: " .. k .. ": the stored value is not a counter", 1, true), err)
  end
  T.eq(store.get("ctr/str"), "5", "unchanged")
  T.eq(store.get("ctr/tbl"), {n = 5}, "unchanged")
end)

T.test("incr refuses overflow, changing nothing", function()
  T.eq(store.incr("ctr/big", math.maxinteger), math.maxinteger)
  local v, err = store.incr("ctr/big")
  T.eq(v, nil)
  T.ok(err and err:find("overflows a 64-bit integer", 1, true), err)
  T.eq(store.get("ctr/big"), math.maxinteger, "unchanged")
  T.eq(store.incr("ctr/small", math.mininteger), math.mininteger)
  v, err = store.incr("ctr/small", -1)
  T.eq(v, nil)
  T.ok(err and err:find("overflows", 1, true), err)
  T.eq(store.incr("ctr/big", -1), math.maxinteger - 1, "usable after a refusal")
end)

T.test("incr ttl: set when created, kept by later increments", function()
  T.eq(store.incr("ctr/ttl", 1, 0.1), 1)
  T.eq(store.incr("ctr/ttl", 1, 3600), 2, "a live counter keeps its expiry")
  T.eq(store.incr("ctr/forever"), 1)
  time.sleep(150)
  T.eq(store.get("ctr/ttl"), nil, "expired")
  T.eq(store.incr("ctr/ttl", 5), 5, "an expired counter starts again from 0")
  T.eq(store.get("ctr/forever"), 1)
  store.put("ctr/expired-str", "x", 0.01)
  time.sleep(20)
  T.eq(store.incr("ctr/expired-str"), 1, "an expired value of another kind is absent")
end)

T.test("incr inside tx", function()
  T.eq(store.tx(function() store.incr("ctr/tx"); return store.incr("ctr/tx") end), 2)
  T.raises(function()
    store.tx(function() store.incr("ctr/tx", 10); error("boom") end)
  end, "boom")
  T.eq(store.get("ctr/tx"), 2, "rolled back with the tx")
end)

T.test("the host's bundle.* keys cannot be changed by handlers", function()
  T.raises(function() store.put("bundle.highest_version", "1") end, "belong to the host")
  T.raises(function() store.add("bundle.x", "1") end, "belong to the host")
  T.raises(function() store.del("bundle.highest_version") end, "belong to the host")
end)
