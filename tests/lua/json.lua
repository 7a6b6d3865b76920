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
