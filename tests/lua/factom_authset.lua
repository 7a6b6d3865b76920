-- tests/lua/factom_authset.lua: lua/factom/authset.lua: pinned sets, the set
-- from factomd's authorities + diagnostics.authset, the quorum
-- (reboot.quorum), reboot.min_authorities, the logged diff and the bounded
-- age of the cache.
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

-- get() against a stubbed factomd, with the real store and config stubs.
local config = require "serfhand.config"
local factomd = require "serfhand.factomd"
local store = require "serfhand.store"
local time = require "serfhand.time"
local real_get = config.get
local over = {}
config.get = function(k) if over[k] ~= nil then return over[k] end return real_get(k) end
local D = "8888880a" .. ("d"):rep(56)
local KD = ("0d"):rep(32)
local answer -- what the stubbed factomd says: a list of authorities, or nil (down)
factomd.authorities = function() if answer then return answer end return nil, "factomd: down" end
factomd.diagnostics = function() if answer then return { authset = { leaders = answer.leaders } } end return nil, "down" end
local function fed(...)
  local list, leaders = {}, {}
  for _, c in ipairs({ ... }) do
    list[#list + 1] = { chainid = c[1], signingkey = c[2], status = "federated" }
    leaders[#leaders + 1] = { id = c[1] }
  end
  list.leaders = leaders
  return list
end
local function fresh_get(opts)
  authset.reset()
  return authset.get(opts)
end

T.test("quorum: reboot.quorum raises it, never below a majority", function()
  over["reboot.quorum"] = 4
  T.eq(authset.quorum(5), 4)
  over["reboot.quorum"] = 1
  T.eq(authset.quorum(5), 3, "a majority at least")
  over["reboot.quorum"] = 9
  T.eq(authset.quorum(5), 9, "more than n: nothing decides (documented)")
  over["reboot.quorum"] = nil
  T.eq(authset.quorum(5), 3)
end)

T.test("min_authorities: a set of 1 from factomd is refused, and the cache with it", function()
  store.del(authset.CACHE_KEY)
  answer = fed({ A, KA }, { B, KB }, { C, KC })
  local s = fresh_get({ refresh = true })
  T.eq(s and s.n, 3)
  T.ok(store.get(authset.CACHE_KEY), "cached")
  answer = fed({ A, KA })
  local s2, err = fresh_get({ refresh = true })
  T.eq(s2, nil)
  T.ok(err:find("fewer than reboot.min_authorities (3)", 1, true), err)
  T.eq(store.get(authset.CACHE_KEY), nil, "the cache the answer contradicts is gone")
  answer = nil
  T.eq(fresh_get(), nil, "and nothing is left to decide with")
end)

T.test("min_authorities is configurable; a pinned set is exempt", function()
  over["reboot.min_authorities"] = 1
  answer = fed({ A, KA })
  T.eq(fresh_get({ refresh = true }).n, 1)
  over["reboot.min_authorities"] = nil
  over["factomd.authorities"] = { A .. ":" .. KA }
  local s = fresh_get()
  T.eq(s.n, 1)
  T.eq(s.source, "pinned")
  over["factomd.authorities"] = nil
end)

T.test("diff: added, removed, new key", function()
  local a = { members = { [A] = { key = KA }, [B] = { key = KB } } }
  local b = { members = { [A] = { key = KC }, [C] = { key = KC } } }
  T.eq(authset.diff(a, b), "+" .. C .. " -" .. B .. " ~" .. A .. " (new key)")
  T.eq(authset.diff(a, a), nil)
end)

T.test("a change of the set is logged with its diff", function()
  local log = require "serfhand.log"
  local warned = {}
  local real_warn = log.warn
  log.warn = function(m) warned[#warned + 1] = m end
  store.del(authset.CACHE_KEY)
  answer = fed({ A, KA }, { B, KB }, { C, KC })
  fresh_get({ refresh = true })
  answer = fed({ A, KA }, { B, KB }, { D, KD })
  fresh_get({ refresh = true })
  log.warn = real_warn
  T.eq(#warned, 1)
  T.ok(warned[1]:find("the authority set changed (3 -> 3): +" .. D .. " -" .. C, 1, true), warned[1])
end)

T.test("factomd down: a cache up to CACHE_MAX_S old is used, an older one never", function()
  answer = fed({ A, KA }, { B, KB }, { C, KC })
  fresh_get({ refresh = true })
  answer = nil
  local now = math.floor(time.now())
  local c = store.get(authset.CACHE_KEY)
  c.at = now - authset.CACHE_MAX_S + 30
  store.put(authset.CACHE_KEY, c)
  local s = fresh_get()
  T.eq(s and s.source, "cache")
  c.at = now - authset.CACHE_MAX_S - 1
  store.put(authset.CACHE_KEY, c)
  local s2, err = fresh_get()
  T.eq(s2, nil, "too old")
  T.ok(err:find("no cached set", 1, true), err)
  T.eq(fresh_get({ cache_only = true }), nil, "not for cache_only either")
  T.eq(authset.CACHE_MAX_S, 3600)
end)
