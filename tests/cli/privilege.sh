# privilege: least privilege (issue 15, DESIGN 4b): the config loader's
# duplicate settings, secrets masked on every route a handler or an
# operator's terminal could see, proc.allow and the child's environment,
# state modes, test hooks absent from the production binary.
. "$(dirname "$0")/../lib.sh"

W=$T_TMP
cd "$W" || exit 1

# --- a setting given twice (was a heap overflow in the loader) ----------------
"$SERFHAND" keygen -W -p k1.pub -s k1.sec > /dev/null
K1=$(sed -n 2p k1.pub)
printf 'return {\n  ["trust.keys"] = { "%s", "%s", "%s" },\n  trust = { keys = { "%s", "%s", "%s", "%s" } },\n}\n' \
    "$K1" "$K1" "$K1" "$K1" "$K1" "$K1" "$K1" > dup.conf
OUT=$("$SERFHAND" -c dup.conf config 2>&1); RC=$?
expect_eq "list set twice: exit 2" "$RC" 2
expect_match "list set twice: names it" "$OUT" 'dup\.conf:[0-9]+: trust\.keys is set twice \(also line [0-9]+\)'
printf 'return { factomd = { url = "http://a" }, ["factomd.url"] = "http://b" }\n' > dup2.conf
OUT=$("$SERFHAND" -c dup2.conf config 2>&1); RC=$?
expect_eq "string set twice: exit 2" "$RC" 2
expect_match "string set twice: names it" "$OUT" 'factomd\.url is set twice'
printf 'proc = {\n  allow = {\n    "/usr/bin/true",\n    "systemctl",\n  },\n}\n' > rel.conf
OUT=$("$SERFHAND" -c rel.conf config 2>&1); RC=$?
expect_eq "proc.allow with a bare name: exit 2" "$RC" 2
expect_match "proc.allow with a bare name: names entry and line" "$OUT" \
    'rel\.conf:4: proc\.allow\[2\] "systemctl" is not an absolute path'
printf 'proc = {\n  logs = {\n    "/var/log/a.log",\n    "spawned.log",\n  },\n}\n' > rel2.conf
OUT=$("$SERFHAND" -c rel2.conf config 2>&1); RC=$?
expect_eq "proc.logs with a relative path: exit 2" "$RC" 2
expect_match "proc.logs with a relative path: names entry and line" "$OUT" \
    'rel2\.conf:4: proc\.logs\[2\] "spawned\.log" is not an absolute path'

# --- no secret in reach (DESIGN 4b): every route a handler has ---------------
SEED=9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60
CHAIN=888888e238e3c1bcb9ce1ab1d5a17d4eaa32cbb1e4e8d1b9deae2a7f6f2a7b3c
FC=$W/factomd.conf
LOG=$W/log
printf '[app]\nIdentityChainID = %s\nLocalServerPrivKey = %s\nFactomdRpcUser = u\nFactomdRpcPass = RPCPASS-s3cret\n' \
    "$CHAIN" "$SEED" > "$FC"
chmod 600 "$FC"
cat > "$W/s.conf" <<CONF
factomd = { conf = "$FC", user = "u", password = "FPASS-s3cret" }
serf = { rpc_auth = "TOKEN-s3cret" }
log = { target = "$LOG", level = "debug" }
proc = { allow = { "/usr/bin/env", "/bin/sh" }, env = { "PATH", "FOO", "SERF_RPC_AUTH" } }
CONF
chmod 644 "$W/s.conf"
cat > "$W/s.lua" <<LUA
local config = require "serfhand.config"
local proc = require "serfhand.proc"
local log = require "serfhand.log"
local identity = require "serfhand.identity"
local SECRETS = { "s3cret", "$SEED" }
local function clean(what, s)
  for _, x in ipairs(SECRETS) do T.ok(not tostring(s):find(x, 1, true), what .. " holds " .. x) end
end
local function walk(what, v)
  if type(v) == "table" then for k, x in pairs(v) do walk(what .. "." .. tostring(k), x) end
  else clean(what, v) end
end
T.test("module: config", function()
  T.eq(config.file, nil, "config.file is gone")
  T.eq(config.get("factomd.password"), "(set)")
  T.eq(config.get("serf.rpc_auth"), "(set)")
  walk("config.table()", config.table())
  for k in pairs(config) do T.ok(k == "get" or k == "table", "config." .. k) end
end)
T.test("module: identity", function()
  local id = assert(identity.load())
  clean("tostring(id)", tostring(id))
  for _, k in ipairs({ "secret", "sk", "seed", "private_key", "sign" }) do T.eq(id[k], nil, k) end
  T.eq(identity.sign, nil)
end)
T.test("child process: environment", function()
  local r = assert(proc.run { "/usr/bin/env" })
  clean("child env", r.stdout)
  T.ok(not r.stdout:find("SERF_RPC_AUTH", 1, true), "no SERF_RPC_AUTH even if proc.env names it")
  T.ok(r.stdout:find("FOO=bar", 1, true), "proc.env passes FOO: " .. r.stdout)
  T.ok(not r.stdout:find("UNLISTED", 1, true), "a variable proc.env does not name")
  T.raises(function() proc.run({ "/usr/bin/env" }, { env = { LD_PRELOAD = "/x.so" } }) end, "may not be set")
  T.raises(function() proc.run({ "/usr/bin/env" }, { env = { "LD_LIBRARY_PATH=/x" } }) end, "may not be set")
  T.raises(function() proc.run({ "/usr/bin/env" }, { env = { BASH_ENV = "/x" } }) end, "may not be set")
end)
T.test("child process: files and serfhand itself", function()
  for _, argv in ipairs({ { "cat", "$FC" }, { "/bin/cat", "$W/s.conf" }, { "/usr/bin/head", "$FC" },
                          { "/proc/self/exe", "config" }, { "/proc/self/exe", "-c", "$W/s.conf", "config" } }) do
    local r, err = proc.run(argv)
    T.eq(r, nil, argv[1] .. " " .. argv[2])
    T.ok(err and err:find("not allowed", 1, true), err)
  end
end)
T.test("child process: limits restored, no inherited descriptors", function()
  local r = assert(proc.run { "/bin/sh", "-c", "echo \$(ulimit -S -t) \$(ulimit -H -t); ls /proc/self/fd" })
  local soft, hard = r.stdout:match("^(%S+) (%S+)\n")
  T.eq(soft, hard, "RLIMIT_CPU soft limit back at the hard limit")
  local fds = {}
  for fd in r.stdout:gmatch("\n(%d+)") do fds[#fds + 1] = tonumber(fd) end
  table.sort(fds)
  T.ok(#fds <= 4 and fds[#fds] <= 3, "fds: " .. table.concat(fds, " ")) -- 0-2 and ls's own dir fd
end)
T.test("error text", function()
  local ok, err = pcall(config.get, "factomd.pass")
  clean("config.get error", err)
  local _, perr = proc.run { "/nonexistent/$SEED" }
  T.ok(perr ~= nil)
end)
T.test("log lines", function()
  log.info("table " .. require("serfhand.json").encode(config.table()))
  log.info("password " .. config.get("factomd.password"))
end)
LUA
: > "$LOG"
OUT=$(FOO=bar UNLISTED=x SERF_RPC_AUTH=ENVTOKEN-s3cret "$SERFHAND" -c "$W/s.conf" test "$W/s.lua" 2>&1); RC=$?
expect_eq "secret routes: all closed (exit)" "$RC" 0
expect_match "secret routes: all closed" "$OUT" '^[1-9][0-9]* passed, 0 failed$'
check "log holds no secret" sh -c "! grep -q -e s3cret -e $SEED '$LOG'"
expect_match "group-readable config with secrets: warned" "$(cat "$LOG")" \
    "warn: config: $W/s\\.conf holds a secret \\((factomd\\.password|serf\\.rpc_auth)\\) but is readable by group or others \\(mode 0644\\)"
OUT=$("$SERFHAND" -c "$W/s.conf" config 2>&1); RC=$?
expect_eq "serfhand config: exit 0" "$RC" 0
check "serfhand config masks every secret" sh -c "! printf '%s' \"\$1\" | grep -q s3cret" _ "$OUT"
expect_match "serfhand config: password (set)" "$OUT" 'password = "\(set\)"'
expect_match "serfhand config: rpc_auth (set)" "$OUT" 'rpc_auth = "\(set\)"'
chmod 600 "$W/s.conf"
: > "$LOG"
"$SERFHAND" -c "$W/s.conf" test "$W/s.lua" > /dev/null 2>&1
check "0600 config: no warning" sh -c "! grep -q 'holds a secret' '$LOG'"


# --- state directory 0700, its files 0600, whoever creates them --------------
mode() { stat -c %a "$1"; }
umask 022
"$SERFHAND" keygen -W -p "$W/b.pub" -s "$W/b.sec" > /dev/null
mkdir -p "$W/b/handlers/user"
printf 'return function(ev) end\n' > "$W/b/handlers/user/ping.lua"
"$SERFHAND" sign -s "$W/b.sec" --name m --version 1 "$W/b" > /dev/null
printf 'state_dir = "%s/st1/state"\ntrust = { keys = { "%s/b.pub" } }\nlog = { target = "%s" }\n' \
    "$W" "$W" "$LOG" > "$W/st1.conf"
# a bundle signed by a key the node does not trust: refused after state/ exists
"$SERFHAND" keygen -W -p "$W/u.pub" -s "$W/u.sec" > /dev/null
cp -r "$W/b" "$W/bu" && rm -f "$W"/bu/*.minisig
"$SERFHAND" sign -s "$W/u.sec" --name m --version 1 "$W/bu" > /dev/null
"$SERFHAND" -c "$W/st1.conf" install "$W/bu" > /dev/null 2>&1
expect_eq "refused install: exit 3" "$?" 3
expect_eq "a failed install makes state/ 0700" "$(mode "$W/st1/state")" 700
"$SERFHAND" -c "$W/st1.conf" install "$W/b" > /dev/null 2>&1
expect_eq "install: bundles/ 0700" "$(mode "$W/st1/state/bundles")" 700
f=$(find "$W/st1/state/bundles" -name ping.lua | head -n 1)
expect_eq "install: a bundle file 0600" "$([ -n "$f" ] && mode "$f")" 600
expect_eq "install: a bundle directory 0700" "$([ -n "$f" ] && mode "$(dirname "$f")")" 700
bad=$(find "$W/st1/state" -perm /077 ! -type l | head -n 3)
expect_eq "install: nothing in state/ readable by others" "$bad" ""
printf 'T.test("put", function() assert(require("serfhand.store").put("k", "v")) end)\n' > "$W/st.lua"
printf 'state_dir = "%s/st2"\nlog = { target = "%s" }\n' "$W" "$LOG" > "$W/st2.conf"
"$SERFHAND" -c "$W/st2.conf" test --state "$W/st2" "$W/st.lua" > /dev/null 2>&1
expect_eq "store: state/ 0700" "$(mode "$W/st2")" 700
expect_eq "store: serfhand.db 0600" "$(mode "$W/st2/serfhand.db")" 600
chmod 644 "$W/st2/serfhand.db"
"$SERFHAND" -c "$W/st2.conf" test --state "$W/st2" "$W/st.lua" > /dev/null 2>&1
expect_eq "store: an older 0644 serfhand.db is tightened" "$(mode "$W/st2/serfhand.db")" 600
bad=$(find "$W/st2" -perm /077 ! -type l | head -n 3)
expect_eq "store: nothing in state/ readable by others" "$bad" ""


# --- the restart command exactly, serfhand itself only as the executor ------
# The operator approved one command line, not its program with other
# arguments; serfhand itself runs from a handler only as `action ACT DIGEST`,
# with no option (--unsigned, --bundle) and no environment of the handler's.
mkdir -p "$W/pr"
cat > "$W/pr.conf" <<CONF
state_dir = "$W/pr/state"
log = { target = "$W/pr/log" }
factomd = { restart = { "/bin/echo", "restarting", "factomd" } }
CONF
D64=$(printf 'a%.0s' $(seq 64))
cat > "$W/pr.lua" <<LUA
local proc = require "serfhand.proc"
local D = "$D64"
T.test("the restart command as configured runs", function()
  local r = assert(proc.run({ "/bin/echo", "restarting", "factomd" }))
  T.eq(r.stdout, "restarting factomd\n")
end)
for name, argv in pairs({
  ["other arguments"] = { "/bin/echo", "anything", "else" },
  ["one argument more"] = { "/bin/echo", "restarting", "factomd", "now" },
  ["one argument less"] = { "/bin/echo", "restarting" },
  ["the program alone"] = { "/bin/echo" },
  ["serfhand action with --unsigned"] = { "/proc/self/exe", "action", "--unsigned", "restart", D },
  ["serfhand action with --bundle"] = { "/proc/self/exe", "action", "--bundle", "/tmp", "restart", D },
  ["serfhand action with a bad digest"] = { "/proc/self/exe", "action", "restart", "xyz" },
  ["serfhand action with an argument more"] = { "/proc/self/exe", "action", "restart", D, "x" },
  ["serfhand action with an option as ACT"] = { "/proc/self/exe", "action", "-c", D },
}) do
  T.test("refused: " .. name, function()
    local r, err = proc.run(argv)
    T.eq(r, nil)
    T.ok(tostring(err):find("is not allowed", 1, true), tostring(err))
  end)
end
T.test("serfhand itself gets no environment from a handler", function()
  local ok, res = pcall(proc.spawn, { "/proc/self/exe", "action", "restart", D },
    { env = { "SERFHAND_CONFIG=/tmp/x.conf" }, delay_ms = 60000 })
  if ok and res then proc.kill(res) end -- started (the old code): not left behind
  T.ok(not ok and tostring(res):find("serfhand itself gets its own environment", 1, true), tostring(res))
end)
LUA
OUT=$("$SERFHAND" -c "$W/pr.conf" test --state "$W/pr/state" "$W/pr.lua" 2>&1)
printf '%s\n' "$OUT" | grep '^FAIL' | head -n 5
expect_match "restart command and executor: exact argv only (test file)" "$OUT" "^11 passed, 0 failed$"

# --- test hooks only in the test build ----------------------------------------
printf 'state_dir = "%s/st3"\ntrust = { keys = { "%s/b.pub" } }\nlog = { target = "%s" }\n' \
    "$W" "$W" "$LOG" > "$W/st3.conf"
rc=$(SERFHAND_TEST_CRASH_AT=locked "$SERFHAND" -c "$W/st3.conf" install "$W/b" > /dev/null 2>&1; echo $?) 2>/dev/null
expect_eq "the production binary ignores SERFHAND_TEST_CRASH_AT" "$rc" 0
check "the production binary does not contain the hook" sh -c "! grep -q SERFHAND_TEST_CRASH_AT '$SERFHAND'"
rm -rf "$W/st3"
rc=$(SERFHAND_TEST_CRASH_AT=locked "$SERFHAND-test-hooks" -c "$W/st3.conf" install "$W/b" > /dev/null 2>&1; echo $?) 2>/dev/null
expect_eq "the test build honours it" "$rc" 137

finish
