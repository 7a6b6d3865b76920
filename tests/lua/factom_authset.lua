-- tests/lua/factom_authset.lua: lua/factom/authset.lua: pinned sets, the set
-- from factomd's authorities + diagnostics.authset, and the quorum.
local authset = require "factom.authset"

local A = "8888881b8925b8d9f10c0bcbf214cf83acfc16a48bacedc902d6180d1f0b84c4"
local B = "888888142370821410bb879e8a2d28c9574048769e413648cab26fc96d3d2e22"
local C = "88888823ef7c31b504c36ffb61ac949772656ad6dd98bc0c4abc098437f003b2"
local KA = "984d67d3a53f10d20705408d2ff6114174aa0af47f1ce522fc35f48d62d1326b"
local KB = "f7659248c5b98af4fb9f3783e541038f8680bfdb83534dded2a675f274ed7cfa"
local KC = "674ea4d96a48c90fd32579feb23e00164130b0d07b58ea66d83c31ce5c45a0b1"

T.test("pinned: CHAINID:KEY entries", function()
  local s = authset.parse_pinned({ A .. ":" .. KA, B:upper() .. ":" .. KB:upper() })
  T.eq(s.n, 2)
  T.eq(s.members[A].key, KA)
  T.eq(s.members[B].key, KB)
  T.eq(s.source, "pinned")
  T.eq(authset.parse_pinned({}).n, 0)
end)

local bad_pinned = {
  { "no colon", A .. KA }, { "short key", A .. ":" .. KA:sub(3) },
  { "not 888888", ("7"):rep(64) .. ":" .. KA }, { "not hex", A .. ":" .. ("z"):rep(64) },
  { "extra part", A .. ":" .. KA .. ":x" },
}
for _, c in ipairs(bad_pinned) do
  T.test("pinned refuses: " .. c[1], function()
    local s, err = authset.parse_pinned({ c[2] })
    T.eq(s, nil)
    T.ok(err:find("factomd.authorities[1]", 1, true), err)
  end)
end

local auths = {
  { chainid = A, signingkey = KA, status = "federated" },
  { chainid = B, signingkey = KB, status = "audit" },
  { chainid = C, signingkey = KC, status = "none" },
  { chainid = "junk", signingkey = KC, status = "federated" },
  "not a table",
}

T.test("factomd: diagnostics.authset names who counts", function()
  local s = authset.from_factomd(auths, { authset = { leaders = { { id = A }, { id = C } }, audits = { { id = B, online = false } } } }, 5)
  T.eq(s.n, 3)
  T.eq(s.members[A].status, "federated")
  T.eq(s.members[C].key, KC)
  T.eq(s.members[B].status, "audit")
  T.eq(s.at, 5)
end)

T.test("factomd: an id without a signing key is left out", function()
  local s = authset.from_factomd({ auths[1] }, { authset = { leaders = { { id = A }, { id = B } } } })
  T.eq(s.n, 1)
end)

T.test("factomd: without authset, federated and audit entries", function()
  local s = authset.from_factomd(auths, { name = "old factomd" })
  T.eq(s.n, 2)
  T.ok(s.members[A] and s.members[B] and not s.members[C], "A and B")
  T.eq(authset.from_factomd(nil, nil).n, 0)
end)

T.test("quorum is a strict majority", function()
  local want = { [1] = 1, [2] = 2, [3] = 2, [4] = 3, [5] = 3, [6] = 4, [20] = 11, [25] = 13 }
  for n, q in pairs(want) do T.eq(authset.quorum(n), q, "n=" .. n) end
end)
