-- tests/lua/crypto.lua: serfhand.crypto with known-answer vectors, codec edge
-- cases, and bad inputs (misuse raises, bad data gives nil, err).
local crypto = require "serfhand.crypto"
local hex, unhex = crypto.hex, crypto.unhex

local function h(s) return assert(unhex(s)) end

-- Known answers: python3 hashlib (BLAKE2b, SHA-256), RFC 8032 section 7.1.
local hashes = {
    {"blake2b-256 ''", crypto.blake2b(""), "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"},
    {"blake2b-256 abc", crypto.blake2b("abc"), "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"},
    {"blake2b-256 explicit", crypto.blake2b("abc", 32), "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319"},
    {"blake2b-512 ''", crypto.blake2b("", 64), "786a02f742015903c6c6fd852552d272912f4740e15847618a86e217f71f5419d25e1031afee585313896444934eb04b903a685b1448b755d56f701afe9be2ce"},
    {"blake2b-512 abc", crypto.blake2b("abc", 64), "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923"},
    {"blake2b-128 keyed", crypto.blake2b("abc", 16, h"000102030405060708090a0b0c0d0e0f"), "cc611a2673ca66e9f7fc64b995c5467c"},
    {"blake2b-512 keyed 64", crypto.blake2b("abc", 64, h"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"), "06bbc3dedf13a31139498655251b7588ccd3bb5aaa071b2d44d8e0a04095579ed590fbfdcf941f4370ce5ce623624e7a76d33e7a8109dcda9b57d72f8f8efa51"},
    {"sha256 ''", crypto.sha256(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
    {"sha256 abc", crypto.sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
    {"sha256 binary-safe", crypto.sha256("a\0b"), hex(crypto.sha256("a\0b"))},
}
for _, c in ipairs(hashes) do
    T.test(c[1], function() T.eq(hex(c[2]), c[3]) end)
end

T.test("blake2b digest is raw bytes of the asked length", function()
    for n = 16, 64 do T.eq(#crypto.blake2b("x", n), n) end
end)

-- Ed25519, RFC 8032 test vectors 1 (empty message) and 2 (one byte 0x72).
local rfc = {
    {seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     pk = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
     msg = "",
     sig = "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
    {seed = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     pk = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
     msg = "72",
     sig = "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
}
for i, v in ipairs(rfc) do
    T.test("ed25519 RFC 8032 vector " .. i, function()
        local sk, pk = crypto.ed25519_keypair(h(v.seed))
        T.eq(hex(pk), v.pk, "public key")
        T.eq(hex(sk:public_key()), v.pk, "sk:public_key()")
        local sig = sk:sign(h(v.msg))
        T.eq(hex(sig), v.sig, "signature")
        T.eq(crypto.ed25519_verify(sig, h(v.msg), pk), true, "verifies")
    end)
end

T.test("ed25519_verify rejects tampering and wrong lengths", function()
    local v = rfc[2]
    local sig, msg, pk = h(v.sig), h(v.msg), h(v.pk)
    T.eq(crypto.ed25519_verify(sig, "s", pk), false, "other message")
    local bad = string.char(sig:byte(1) ~ 1) .. sig:sub(2)
    T.eq(crypto.ed25519_verify(bad, msg, pk), false, "flipped bit")
    T.eq(crypto.ed25519_verify(sig, msg, h(rfc[1].pk)), false, "other key")
    T.eq(crypto.ed25519_verify(sig:sub(1, 63), msg, pk), false, "short signature")
    T.eq(crypto.ed25519_verify(sig .. "\0", msg, pk), false, "long signature")
    T.eq(crypto.ed25519_verify(sig, msg, pk:sub(2)), false, "short key")
    T.eq(crypto.ed25519_verify("", "", ""), false, "empty")
    -- S >= L (non-canonical) is refused: add L to S of a valid signature
    local L = h"edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010"
    local s, carry, out = sig:sub(33), 0, {}
    for j = 1, 32 do
        local x = s:byte(j) + L:byte(j) + carry
        out[j], carry = string.char(x & 255), x >> 8
    end
    T.eq(crypto.ed25519_verify(sig:sub(1, 32) .. table.concat(out), msg, pk), false, "S + L")
end)

T.test("ed25519_verify raises on non-string arguments", function()
    local sig, pk = h(rfc[1].sig), h(rfc[1].pk)
    T.raises(function() crypto.ed25519_verify(nil, "", pk) end, "bad argument #1")
    T.raises(function() crypto.ed25519_verify(sig, 42, pk) end, "bad argument #2")
    T.raises(function() crypto.ed25519_verify(sig, "", {}) end, "bad argument #3")
    T.raises(function() crypto.ed25519_verify(sig, "") end, "bad argument #3")
end)

T.test("ed25519_keypair without a seed is random", function()
    local sk1, pk1 = crypto.ed25519_keypair()
    local _, pk2 = crypto.ed25519_keypair()
    T.eq(#pk1, 32)
    T.ok(pk1 ~= pk2, "two random keys differ")
    local sig = sk1:sign("hello")
    T.eq(#sig, 64)
    T.ok(crypto.ed25519_verify(sig, "hello", pk1), "verifies with its own key")
    T.ok(not crypto.ed25519_verify(sig, "hello", pk2), "not with another")
    T.eq(sk1:sign("hello"), sig, "signatures are deterministic")
end)

T.test("ed25519_keypair bad seeds raise", function()
    T.raises(function() crypto.ed25519_keypair("short") end, "seed must be 32 bytes")
    T.raises(function() crypto.ed25519_keypair(("x"):rep(33)) end, "seed must be 32 bytes")
    T.raises(function() crypto.ed25519_keypair(12) end, "string expected")
end)

T.test("secret key close is idempotent and sign after close raises", function()
    local sk, pk = crypto.ed25519_keypair(h(rfc[1].seed))
    T.ok(tostring(sk):find("secret_key"), "tostring")
    T.ok(not tostring(sk):find(rfc[1].seed:sub(1, 8)), "tostring shows no secret")
    T.eq(getmetatable(sk), "serfhand.crypto.secret_key", "metatable is hidden")
    do
        local k <close> = sk
        T.eq(#k:sign("x"), 64, "usable inside the scope")
    end
    T.raises(function() sk:sign("x") end, "crypto: key is closed")
    T.eq(sk:public_key(), pk, "public key still known")
    T.ok(tostring(sk):find("closed"), "tostring says closed")
    -- a second scope exit closes again without harm
    do local k <close> = sk; T.ok(k) end
    T.raises(function() sk:sign("x") end, "crypto: key is closed")
end)

T.test("secret key methods check their receiver", function()
    local sk = crypto.ed25519_keypair()
    T.raises(function() sk.sign({}, "x") end, "bad argument #1")
    T.raises(function() sk.public_key("x") end, "bad argument #1")
    T.raises(function() sk:sign(nil) end, "bad argument #1")
end)

T.test("many keys are freed by the collector", function()
    for _ = 1, 300 do crypto.ed25519_keypair() end
    local sk = crypto.ed25519_keypair()
    T.eq(#sk:sign(""), 64)
end)

-- hex
T.test("hex round trip", function()
    T.eq(hex(""), "")
    T.eq(hex("\0\1\127\128\255"), "00017f80ff")
    T.eq(unhex("00017F80ff"), "\0\1\127\128\255")
    T.eq(unhex(""), "")
    local all = {}
    for i = 0, 255 do all[#all + 1] = string.char(i) end
    all = table.concat(all)
    T.eq(unhex(hex(all)), all)
end)

local bad_hex = {"0", "abc", "zz", "0g", " 00", "00 ", "0x00", "00\0", "-1"}
for _, s in ipairs(bad_hex) do
    T.test(("unhex(%q) is nil, err"):format(s), function()
        local v, err = unhex(s)
        T.eq(v, nil)
        T.ok(type(err) == "string" and err:find("^crypto: invalid hex"), err)
    end)
end

-- base64 (RFC 4648 section 10 vectors)
local b64v = {
    {"", "", ""}, {"f", "Zg==", "Zg"}, {"fo", "Zm8=", "Zm8"}, {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"}, {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
    {"\251\255\191", "+/+/", "-_-_"}, {"\0\0", "AAA=", "AAA"},
}
for _, v in ipairs(b64v) do
    T.test(("base64 %q"):format(v[2]), function()
        T.eq(crypto.b64(v[1]), v[2], "b64")
        T.eq(crypto.unb64(v[2]), v[1], "unb64")
        T.eq(crypto.b64url(v[1]), v[3], "b64url")
        T.eq(crypto.unb64url(v[3]), v[1], "unb64url")
    end)
end

T.test("base64 of every length round-trips", function()
    local s = crypto.random(100)
    for n = 0, 100 do
        local p = s:sub(1, n)
        T.eq(crypto.unb64(crypto.b64(p)), p)
        T.eq(crypto.unb64url(crypto.b64url(p)), p)
        T.ok(not crypto.b64url(p):find("[=+/]"), "url alphabet, no padding")
    end
end)

local bad_b64 = {"Zg", "Zg=", "Zg===", "Z", "Zm9v\n", " Zm9v", "Zm9v ", "Zm9v=", "-_-_", "Zh==", "Zm9=",
    "Zm=9", "====", "Zm9v\0"}
for _, s in ipairs(bad_b64) do
    T.test(("unb64(%q) is nil, err"):format(s), function()
        local v, err = crypto.unb64(s)
        T.eq(v, nil)
        T.eq(err, "crypto: invalid base64")
    end)
end

local bad_b64url = {"Zg==", "Zg=", "Z", "+/+/", "Zm9v\n", " Zm9v", "Zh", "Zm9", "Zm9v=", "AAB="}
for _, s in ipairs(bad_b64url) do
    T.test(("unb64url(%q) is nil, err"):format(s), function()
        local v, err = crypto.unb64url(s)
        T.eq(v, nil)
        T.eq(err, "crypto: invalid base64")
    end)
end

-- random
T.test("random lengths and bounds", function()
    T.eq(crypto.random(0), "")
    T.eq(#crypto.random(1), 1)
    T.eq(#crypto.random(1024 * 1024), 1024 * 1024)
    T.ok(crypto.random(32) ~= crypto.random(32), "two draws differ")
    T.raises(function() crypto.random(-1) end, "bad argument #1")
    T.raises(function() crypto.random(1024 * 1024 + 1) end, "bad argument #1")
    T.raises(function() crypto.random(1.5) end, "bad argument #1")
    T.raises(function() crypto.random() end, "bad argument #1")
end)

-- equal_consttime
T.test("equal_consttime", function()
    T.eq(crypto.equal_consttime("", ""), true)
    T.eq(crypto.equal_consttime("abc", "abc"), true)
    T.eq(crypto.equal_consttime("abc", "abd"), false)
    T.eq(crypto.equal_consttime("abc", "ab"), false)
    T.eq(crypto.equal_consttime("a\0b", "a\0c"), false)
    T.raises(function() crypto.equal_consttime("a", nil) end, "bad argument #2")
end)

-- misuse of every function raises
local raising = {
    {"blake2b no data", function() crypto.blake2b() end, "bad argument #1"},
    {"blake2b number", function() crypto.blake2b(1) end, "string expected"},
    {"blake2b outlen 15", function() crypto.blake2b("", 15) end, "16..64"},
    {"blake2b outlen 65", function() crypto.blake2b("", 65) end, "16..64"},
    {"blake2b outlen string", function() crypto.blake2b("", "x") end, "bad argument #2"},
    {"blake2b short key", function() crypto.blake2b("", 32, "k") end, "key length"},
    {"blake2b long key", function() crypto.blake2b("", 32, ("k"):rep(65)) end, "key length"},
    {"blake2b key table", function() crypto.blake2b("", 32, {}) end, "bad argument #3"},
    {"sha256 nil", function() crypto.sha256(nil) end, "bad argument #1"},
    {"hex table", function() crypto.hex({}) end, "bad argument #1"},
    {"hex number", function() crypto.hex(12) end, "string expected"},
    {"unhex nil", function() crypto.unhex() end, "bad argument #1"},
    {"b64 nil", function() crypto.b64() end, "bad argument #1"},
    {"unb64 number", function() crypto.unb64(5) end, "bad argument #1"},
    {"b64url bool", function() crypto.b64url(true) end, "bad argument #1"},
    {"unb64url nil", function() crypto.unb64url() end, "bad argument #1"},
}
for _, c in ipairs(raising) do
    T.test("raises: " .. c[1], function() T.raises(c[2], c[3]) end)
end
