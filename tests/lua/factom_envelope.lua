-- tests/lua/factom_envelope.lua: lua/factom/envelope.lua, table-driven: build,
-- parse and every verification step, with fixture identities (PUBLIC test
-- keys from tests/fixtures/identities.txt) and an in-memory seen-set.
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
  local seen = {}
  local c = { now = NOW, net = "MAIN", authset = function() return SET end,
    seen = function(k) if seen[k] then return false end seen[k] = true return true end }
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

T.test("verify accepts a good envelope once, then calls it a replay", function()
  local p = build("v", { pid = "x" })
  local c = ctx()
  local body = envelope.verify("v", p, c)
  T.ok(body, "accepted")
  T.eq(body.pid, "x")
  local b2, why, kind = envelope.verify("v", p, c)
  T.eq(b2, nil)
  T.eq(kind, "replay", why)
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

T.test("verify: expired by the clock, and the 60 s skew", function()
  local _, _, kind = envelope.verify("v", good, ctx({ now = NOW + 600 }))
  T.eq(kind, "expired")
  local p = build("v", { pid = "x" }, { now = NOW + 59 })
  T.ok(envelope.verify("v", p, ctx()), "59 s ahead accepted")
end)

T.test("verify refuses factomd's public default key even in the set", function()
  local set = { n = 1, members = { [ID[1].chain] = { key = envelope.DEFAULT_PUBKEY } } }
  local _, why, kind = envelope.verify("v", good, ctx({ authset = function() return set end }))
  T.eq(kind, "unauthorized", why)
end)

T.test("verify: no authority set, store failure", function()
  local _, _, kind = envelope.verify("v", good, ctx({ authset = function() return nil, "down" end }))
  T.eq(kind, "error")
  local _, why2, kind2 = envelope.verify("v", good, ctx({ seen = function() return nil, "locked" end }))
  T.eq(kind2, "error")
  T.ok(why2:find("locked", 1, true), why2)
end)

T.test("verify never marks a bad envelope as seen", function()
  local marked = 0
  local c = ctx({ seen = function() marked = marked + 1 return true end })
  envelope.verify("v", sig .. "." .. text:gsub('"x"', '"z"'), c)
  envelope.verify("w", good, c)
  T.eq(marked, 0)
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
