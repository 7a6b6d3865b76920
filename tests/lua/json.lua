local json = require "serfhand.json"

T.test("round trip", function()
  local v = json.decode(json.encode({a = 1, b = {true, false}, c = "x\0y"}))
  T.eq(v, {a = 1, b = {true, false}, c = "x\0y"})
end)

T.test("integral numbers decode as integers", function()
  local v = json.decode('{"h":12345,"f":1.5,"big":9007199254740992,"neg":-3}')
  T.ok(math.type(v.h) == "integer", "h is an integer")
  T.ok(math.type(v.neg) == "integer", "neg is an integer")
  T.ok(math.type(v.f) == "float", "1.5 stays a float")
  T.eq(v.big, 9007199254740992)
  T.eq(math.type(json.decode("[1]")[1]), "integer")
  T.eq(math.type(json.decode("7")), "integer")
end)

T.test("bad input is nil, err", function()
  for _, s in ipairs({"", "{", "[1,]", "NaN", "Infinity", "0x10", "[-Infinity]", '{"a":}'}) do
    local v, err = json.decode(s)
    T.eq(v, nil, s)
    T.ok(type(err) == "string" and err:find("^json: "), "error for " .. s)
  end
end)

T.test("nesting is bounded", function()
  local deep = string.rep("[", 100) .. string.rep("]", 100)
  local v, err = json.decode(deep)
  T.eq(v, nil)
  T.ok(err:find("nested"), err)
end)

T.test("encode refuses what JSON cannot hold", function()
  T.raises(function() json.encode({f = print}) end, "Cannot serialise")
  T.raises(function() json.encode(0/0) end)
  T.raises(function() json.encode(math.huge) end)
end)

T.test("null is a sentinel", function()
  local v = json.decode('{"a":null}')
  T.eq(v.a, json.null)
  T.eq(json.encode({a = json.null}), '{"a":null}')
end)

T.test("argument checks raise", function()
  T.raises(function() json.decode() end, "bad argument")
  T.raises(function() json.decode({}) end, "bad argument")
  T.raises(function() json.encode() end, "bad argument")
end)

-- lua-cjson's buffers live outside the Lua heap; they count against the
-- memory cap (limits.memory_mb) while they exist.

T.test("a table shared by many fields is encoded once per reference", function()
  local s = {1, 2}
  T.eq(json.decode(json.encode({a = s, b = s, c = {s, s}})), {a = {1, 2}, b = {1, 2}, c = {{1, 2}, {1, 2}}})
end)

T.test("a shared subtable nested 30 deep is measured in one visit per table", function()
  local time = require "serfhand.time"
  local t = {}
  for _ = 1, 30 do t = {a = t, b = t, c = t, d = t} end
  local t0 = time.mono()
  T.raises(function() json.encode(t) end, "limits%.memory_mb")
  T.ok(time.mono() - t0 < 0.5, "took " .. (time.mono() - t0) .. " s")
end)

T.test("a cycle, and nesting over 64 levels along any path, are refused", function()
  local function nest(n) local t = {} for _ = 2, n do t = {t} end return t end
  local c = {}
  c.c = c
  T.raises(function() json.encode(c) end, "excessive nesting")
  T.eq(#json.encode(nest(64)), 128)
  T.raises(function() json.encode(nest(65)) end, "excessive nesting")
  local deep = nest(60)
  T.eq(#json.encode({deep, {{deep}}}), 2 + 120 + 1 + 124)
  T.raises(function() json.encode({deep, {{{{{deep}}}}}}) end, "excessive nesting")
end)

T.test("encoding charges cjson's worst case (6 bytes a string byte) and gives it back", function()
  T.raises(function() json.encode({string.rep("a", 6 * 1024 * 1024)}) end, "limits%.memory_mb")
  local s = string.rep("b", 1024 * 1024)
  local before = collectgarbage("count")
  local text = json.encode({s})
  T.eq(#text, #s + 4)
  T.ok(collectgarbage("count") - before < 1536, "the charge is released")
  T.eq(json.decode(text)[1], s)
  T.ok(collectgarbage("count") - before < 3072, "so is decoding's")
end)
