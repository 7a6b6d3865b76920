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
