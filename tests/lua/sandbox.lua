-- The sandbox every handler runs in: only safe libraries, no way to native
-- code, the filesystem or bytecode.

T.test("unsafe libraries are absent", function()
  for _, name in ipairs({"io", "os", "package", "debug", "dofile", "loadfile"}) do
    T.eq(_G[name], nil, name)
  end
end)

T.test("safe libraries are present", function()
  for _, name in ipairs({"string", "table", "math", "utf8", "coroutine"}) do
    T.eq(type(_G[name]), "table", name)
  end
  T.eq(math.max(1, 3, 2), 3)
  T.eq(utf8.char(228), "\u{e4}")
end)

T.test("string.dump is gone from the real string table", function()
  T.eq(string.dump, nil)
  T.eq(getmetatable(""), false, "string metatable is hidden")
  T.raises(function() return getmetatable("").__index.dump end, "index")
  T.eq(("x").dump, nil)
end)

T.test("collectgarbage allows only count", function()
  T.eq(type(collectgarbage("count")), "number")
  T.eq(type(collectgarbage()), "number")
  T.raises(function() collectgarbage("collect") end, "only \"count\"")
  T.raises(function() collectgarbage("stop") end, "only \"count\"")
end)

T.test("load refuses bytecode and binary mode", function()
  local f, err = load("\27Lua\84\0\25\147\13\10\26\10")
  T.eq(f, nil)
  T.ok(err:find("binary chunk"), err)
  T.raises(function() load("return 1", "x", "b") end, "only text chunks")
  T.raises(function() load("return 1", "x", "bt") end, "only text chunks")
end)

T.test("load gives a fresh environment, not the host globals", function()
  leaked_global = 42 -- luacheck: ignore
  local f = load("return leaked_global, string ~= nil, io")
  local a, b, c = f()
  T.eq(a, nil, "test globals do not leak into load()ed chunks")
  T.eq(b, true, "safe libraries are reachable")
  T.eq(c, nil)
  local env = {y = 7}
  T.eq(load("return y", "=c", "t", env)(), 7, "explicit env")
end)

T.test("the environment's metatable is hidden", function()
  T.eq(getmetatable(_ENV), false)
  T.eq(_G, _ENV, "_G is the chunk's own environment")
end)

T.test("require reaches only host modules and bundle modules", function()
  T.eq(type(require("serfhand.json")), "table")
  T.eq(require("serfhand.json"), require("serfhand.json"), "loaded once")
  T.raises(function() require("../../etc/passwd") end, "not found")
  T.raises(function() require("/etc/passwd") end, "not found")
  T.raises(function() require("a..b") end, "not found")
  T.raises(function() require("io") end, "not found")
  T.raises(function() require("serfhand.nope") end, "not found")
  T.raises(function() require("no.such.module") end, "not found in the bundle")
end)

T.test("print goes to the log, not to stdout", function()
  print("sandbox test: print goes to the log")
end)

T.test("a deadline error cannot be caught for good", function()
  -- only checks that the hook is armed: the real stop is in tests/cli/handle.sh
  T.eq(type(pcall), "function")
end)

T.test("coroutines behave as in plain Lua (resume, wrap and close are wrapped)", function()
  local co = coroutine.create(function(a, b)
    local c = coroutine.yield(a + b, "y")
    return c * 2, nil, "end"
  end)
  T.eq({coroutine.resume(co, 1, 2)}, {true, 3, "y"})
  local r = {coroutine.resume(co, 5)}
  T.eq(r[1], true); T.eq(r[2], 10); T.eq(r[3], nil); T.eq(r[4], "end"); T.eq(#r, 4)
  T.eq({coroutine.resume(co)}, {false, "cannot resume dead coroutine"})
  local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end)
  local got = {}
  for v in gen do got[#got + 1] = v end
  T.eq(got, {1, 2, 3})
  local bad = coroutine.wrap(function() error("inner boom") end)
  T.raises(bad, "inner boom", "an error in a wrapped coroutine propagates unchanged")
  local obj = coroutine.wrap(function() error({code = 7}) end)
  local ok, e = pcall(obj)
  T.eq(ok, false); T.eq(e.code, 7, "a non-string error value passes through")
  local closed = false
  local c2 = coroutine.create(function()
    local x <close> = setmetatable({}, {__close = function() closed = true end}) -- luacheck: ignore
    coroutine.yield()
  end)
  coroutine.resume(c2)
  T.eq(coroutine.close(c2), true)
  T.eq(closed, true, "close runs pending __close")
  T.eq(coroutine.status(c2), "dead")
  local outer = coroutine.wrap(function()
    local inner = coroutine.wrap(function() coroutine.yield("in") end)
    coroutine.yield(inner())
  end)
  T.eq(outer(), "in", "nested wrap")
end)
