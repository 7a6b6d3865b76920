-- tests/lua/factom_envelope.lua: lua/factom/envelope.lua, table-driven: build,
-- parse and every verification step (canonical bodies, skew both ways),
-- with fixture identities (PUBLIC test keys from tests/fixtures/identities.txt).
local envelope = require "factom.envelope"
local crypto = require "serfhand.crypto"

local ID = {
  { chain = "8888881b8925b8d9f10c0bcbf214cf83acfc16a48bacedc902d6180d1f0b84c4",
    seed = "7c6181d667a92e21fc0703bc600950171fae165fb6b9df0b0235fc1b974ed69e",
    pub = "984d67d3a53f10d20705408d2ff6114174aa0af47f1ce522fc35f48d62d1326b" },
  { chain = "888888142370821410bb879e8a2d28c9574048769e413648cab26fc96d3d2e22",
    seed = "5250a46d375228c87707c4864e963260acade2ee07613d4bfab4dc6712f829d6",
    pub = "f7659248c5b98af4fb9f3783e541038f8680bfdb83534dded2a675f274ed7cfa" },
}
local function signer(i)
  local sk = crypto.ed25519_keypair(crypto.unhex(ID[i].seed))
  return { chain_id = function() return ID[i].chain end, sign = function(m) return sk:sign(m) end }
end
local SET = { n = 1, members = { [ID[1].chain] = { key = ID[1].pub, status = "federated" } } }
local NOW = 1700000000
local function ctx(over)
  local c = { now = NOW, net = "MAIN", authset = function() return SET end }
  for k, v in pairs(over or {}) do c[k] = v end
  return c
end
local function build(name, fields, o)
  o = o or {}
  return envelope.build(name, fields, { now = o.now or NOW, ttl = o.ttl or 600, net = o.net or "MAIN",
    id = o.id or "00112233445566778899aabbccddeeff", signer = o.signer or signer(1) })
end

T.test("budget leaves room for Serf's encoding", function()
  T.eq(envelope.budget("factomd-restart-vote"), 512 - 32 - 20)
  T.eq(envelope.budget("x"), 479)
end)

T.test("encode_body sorts keys, compact, exact integers", function()
  T.eq(envelope.encode_body({ b = 1, a = "x", c = true }), '{"a":"x","b":1,"c":true}')
  T.eq(envelope.encode_body({ t = 1700000000123 }), '{"t":1700000000123}')
  T.eq(envelope.encode_body({}), "{}")
  T.raises(function() envelope.encode_body({ f = 1.5 }) end, "must be a string, an integer")
  T.raises(function() envelope.encode_body({ t = {} }) end, "must be a string, an integer")
  T.raises(function() envelope.encode_body({ [1] = "x" }) end, "keys must be strings")
  T.raises(function() envelope.encode_body("x") end, "must be a table")
end)

T.test("build: a known example, checkable by hand (docs/protocol.md)", function()
  local p, body = build("factomd-restart-propose", { act = "restart", at = NOW + 120, h = 1000 })
  T.ok(p, "built")
  local sig, text = p:match("^([^.]+)%.(.*)$")
  T.eq(text, '{"act":"restart","at":1700000120,"by":"' .. ID[1].chain ..
    '","exp":1700000600,"h":1000,"iat":1700000000,"id":"00112233445566778899aabbccddeeff","net":"MAIN"}')
  T.eq(#sig, 86)
  T.ok(crypto.ed25519_verify(crypto.unb64url(sig),
    "serfhand/1\nfactomd-restart-propose\n" .. text, crypto.unhex(ID[1].pub)), "signature over the domain-separated message")
  T.eq(body.by, ID[1].chain)
end)

T.test("build refuses reserved fields, bad ttl, bad name; over budget is nil, err", function()
  T.raises(function() build("e", { by = "x" }) end, "reserved")
  T.raises(function() build("e", { exp = 1 }) end, "reserved")
  T.raises(function() build("e", {}, { ttl = 3601 }) end, "ttl")
  T.raises(function() build("e", {}, { ttl = 0 }) end, "ttl")
  T.raises(function() envelope.build("bad name", {}) end, "bad event name")
  local p, err = build("e", { pad = string.rep("x", 400) })
  T.eq(p, nil)
  T.ok(err:find("over the budget", 1, true), err)
  local failing = { chain_id = function() return nil, "identity: no file" end }
  local p2, err2 = build("e", {}, { signer = failing })
  T.eq(p2, nil)
  T.eq(err2, "identity: no file")
end)

T.test("verify accepts a good envelope, every time (replays are the records' business)", function()
  local p = build("v", { pid = "x" })
  local c = ctx()
  local body, text = envelope.verify("v", p, c)
  T.ok(body, "accepted")
  T.eq(body.pid, "x")
  T.eq(text, p:match("%.(.*)$"))
  T.ok(envelope.verify("v", p, c), "again")
end)

local good = build("v", { pid = "x" })
local sig, text = good:match("^([^.]+)%.(.*)$")
local function resign(t, name, i)
  local s = signer(i or 1).sign("serfhand/1\n" .. (name or "v") .. "\n" .. t)
  return crypto.b64url(s) .. "." .. t
end
local other_sig = build("v", { pid = "y" }):match("^([^.]+)%.")

local cases = {
  { "not a string", 5, "malformed" },
  { "empty", "", "malformed" },
  { "no dot", sig .. text, "malformed" },
  { "short signature", sig:sub(2) .. "." .. text, "malformed" },
  { "signature with padding alphabet", sig:sub(1, 85) .. "=." .. text, "malformed" },
  { "body not JSON", sig .. ".{nope}", "malformed" },
  { "body an array", sig .. ".[1]", "malformed" },
  { "too long", sig .. "." .. text .. string.rep(" ", 600), "malformed" },
  { "uppercase by", resign(text:gsub("8888881b", "8888881B")), "malformed" },
  { "short id", resign(text:gsub("00112233445566778899aabbccddeeff", "0011")), "malformed" },
  { "float iat", resign(text:gsub('"iat":1700000000', '"iat":1700000000.5')), "malformed" },
  { "other network", resign(text:gsub('"MAIN"', '"TEST"')), "network" },
  { "expired", resign(text:gsub('"exp":1700000600', '"exp":1700000000')), "lifetime" },
  -- not canonical: each has exactly one meaning only in its canonical form
  { "a space after a colon", resign((text:gsub('"pid":"x"', '"pid": "x"'))), "malformed" },
  { "a space before the body ends", resign((text:gsub("}$", " }"))), "malformed" },
  { "a newline between fields", resign((text:gsub(',"pid"', ',\n"pid"'))), "malformed" },
  { "keys not sorted", resign((text:gsub('^{("by":"%x+"),("exp":%d+)', "{%2,%1"))), "malformed" },
  { "exp written as a float N.0", resign((text:gsub('"exp":1700000600', '"exp":1700000600.0'))), "malformed" },
  { "exp with an exponent", resign((text:gsub('"exp":1700000600', '"exp":1.7000006e9'))), "malformed" },
  { "a field with an exponent (h: 1e3)", resign((text:gsub('"pid"', '"h":1e3,"pid"'))), "malformed" },
  { "a nested object", resign((text:gsub('"pid":"x"', '"pid":{"a":1}'))), "malformed" },
  { "an array value", resign((text:gsub('"pid":"x"', '"pid":["x"]'))), "malformed" },
  { "a null value", resign((text:gsub('"pid":"x"', '"pid":null'))), "malformed" },
  { "a duplicate key (cjson keeps the last)", resign((text:gsub('"pid":"x"', '"pid":"x","pid":"y"'))), "malformed" },
  { "a duplicate key with the same value", resign((text:gsub('"pid":"x"', '"pid":"x","pid":"x"'))), "malformed" },
  { "a needless escape", resign((text:gsub('"pid":"x"', '"pid":"\\u0078"'))), "malformed" },
  { "a negative zero", resign((text:gsub('"pid":"x"', '"pid":"x","z":-0'))), "malformed" },
  { "lifetime over 1 h", resign(text:gsub('"exp":1700000600', '"exp":1700003601')), "lifetime" },
  { "future-dated", resign(text:gsub('"iat":1700000000', '"iat":1700000061'):gsub('"exp":1700000600', '"exp":1700000700')), "future" },
  { "signed by a non-authority", resign(text:gsub(ID[1].chain, ID[2].chain), "v", 2), "unauthorized" },
  { "a vote replayed as another event", good, "forged", "w" },
  { "body changed after signing", sig .. "." .. text:gsub('"x"', '"z"'), "forged" },
  { "another envelope's signature", other_sig .. "." .. text, "forged" },
}
for _, c in ipairs(cases) do
  T.test("verify refuses: " .. c[1], function()
    local b, why, kind = envelope.verify(c[4] or "v", c[2], ctx())
    T.eq(b, nil, c[1])
    T.eq(kind, c[3], tostring(why))
    T.ok(type(why) == "string" and #why > 0, "a reason")
  end)
end

-- The skew of 60 s holds both ways: {what, iat offset, now offset, kind or nil}
-- (the envelope lives 600 s: exp = iat + 600).
local skew_cases = {
  { "issued 60 s ahead of this clock", 60, 0, nil },
  { "issued 61 s ahead", 61, 0, "future" },
  { "expired 59 s ago by this clock (the signer's may be 60 s behind)", 0, 659, nil },
  { "expired 60 s ago", 0, 660, "expired" },
  { "expired long ago", 0, 6000, "expired" },
}
for _, c in ipairs(skew_cases) do
  T.test("verify, skew both ways: " .. c[1], function()
    local p = build("v", { pid = "x" }, { now = NOW + c[2] })
    local b, why, kind = envelope.verify("v", p, ctx({ now = NOW + c[3] }))
    T.eq(kind, c[4], why)
    T.eq(b ~= nil, c[4] == nil)
  end)
end

T.test("verify refuses factomd's public default key even in the set", function()
  local set = { n = 1, members = { [ID[1].chain] = { key = envelope.DEFAULT_PUBKEY } } }
  local _, why, kind = envelope.verify("v", good, ctx({ authset = function() return set end }))
  T.eq(kind, "unauthorized", why)
end)

T.test("verify: no authority set", function()
  local _, _, kind = envelope.verify("v", good, ctx({ authset = function() return nil, "down" end }))
  T.eq(kind, "error")
end)

T.test("canonical: what encode_body makes, and nothing else", function()
  T.eq(envelope.canonical('{"a":1,"b":"x","c":true}').a, 1)
  T.eq(envelope.canonical("{}") ~= nil, true)
  for _, bad in ipairs({ '{"a":1.5}', '{"b":1,"a":2}', '{"a":1,"a":1}', '{ "a":1}', '{"a":[]}', '[1]', '"x"',
      '{"a":1e2}', '{"a":100.0}', '{"a":"\\/"}' }) do
    local ok = envelope.canonical(bad)
    -- '{"a":"\\/"}': cjson escapes "/" itself, so that one is canonical
    if bad == '{"a":"\\/"}' then T.ok(ok, bad) else T.eq(ok, nil, bad) end
  end
end)

T.test("digest: BLAKE2b-256 of the signed message, 64 hex", function()
  local d = envelope.digest("factomd-restart-propose", "{}")
  T.eq(d, crypto.hex(crypto.blake2b("serfhand/1\nfactomd-restart-propose\n{}")))
  T.eq(#d, 64)
  T.ok(d ~= envelope.digest("factomd-restart-vote", "{}"), "the event name is part of it")
end)

T.test("the example of docs/protocol.md, byte for byte", function()
  local p = envelope.build("factomd-restart-propose", { act = "restart", at = 1700000120, h = 1000 },
    { now = 1700000000, ttl = 900, net = "MAIN", id = "00112233445566778899aabbccddeeff", signer = signer(1) })
  T.eq(p, "JdwppQsSxH3xsIwAKv4jXMAmoCbLoWcmALEUs97iDr7nkugzCedP_OoBVXqGcGnQlYDrehMyXq5G3PiS2doXCQ." ..
    '{"act":"restart","at":1700000120,"by":"8888881b8925b8d9f10c0bcbf214cf83acfc16a48bacedc902d6180d1f0b84c4",' ..
    '"exp":1700000900,"h":1000,"iat":1700000000,"id":"00112233445566778899aabbccddeeff","net":"MAIN"}')
  local c = ctx({ now = 1700000001 })
  T.ok(envelope.verify("factomd-restart-propose", p, c), "verifies")
  local _, _, kind = envelope.verify("factomd-restart-vote", p, ctx({ now = 1700000001 }))
  T.eq(kind, "forged", "domain separation")
end)
