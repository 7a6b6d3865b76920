# test_cmd: the author's tools `serfhand run` and `serfhand test` never touch
# a node's state (a scratch state directory unless --state), and `serfhand
# test` calls handlers exactly as Serf would (T.event, T.query), with text,
# TAP 13 and JSON output.
. "$(dirname "$0")/../lib.sh"

B=$T_TMP/bundle
NODE=$T_TMP/node-state # the state_dir of the config: a node's state
SCR=$T_TMP/tmp         # TMPDIR of the tools: where scratch directories go
mkdir -p "$B/handlers/query" "$B/handlers/user" "$B/lua/app" "$SCR"
"$SERFHAND" keygen -W -p "$T_TMP/k.pub" -s "$T_TMP/k.sec" > /dev/null
cat > "$T_TMP/conf" <<CONF
bundle = "$B"
state_dir = "$NODE"
trust = { keys = { "$T_TMP/k.pub" } }
log = { target = "$T_TMP/log", level = "info" }
limits = { response_bytes = 300, query_ms = 500 }
proc = { allow = { "/usr/bin/stat" } }
CONF
export TMPDIR=$SCR
S() { "$SERFHAND" -c "$T_TMP/conf" "$@"; }

cat > "$B/lua/app/counter.lua" <<'LUA'
local store = require "serfhand.store"
local M = {}
function M.bump(key)
  local n
  assert(store.tx(function()
    n = (tonumber(store.get(key)) or 0) + 1
    assert(store.put(key, tostring(n)))
    return true
  end))
  return n
end
return M
LUA
cat > "$B/handlers/query/count.lua" <<'LUA'
local counter = require "app.counter"
local config = require "serfhand.config"
return function(ev)
  return { n = counter.bump("count/" .. ev.payload), who = ev.self.name, role = ev.self.role,
           zone = ev.self.tags.zone, ltime = ev.ltime, state = config.get("state_dir") }
end
LUA
cat > "$B/handlers/query/echo.lua" <<'LUA'
return function(ev) return ev.payload end
LUA
cat > "$B/handlers/query/boom.lua" <<'LUA'
return function() error("boom") end
LUA
cat > "$B/handlers/query/mode.lua" <<'LUA'
local proc = require "serfhand.proc"
local config = require "serfhand.config"
return function()
  local r = assert(proc.run({ "/usr/bin/stat", "-c", "%a", config.get("state_dir") }))
  return r.stdout
end
LUA
cat > "$B/handlers/member-join.lua" <<'LUA'
local log = require "serfhand.log"
return function(ev)
  for _, m in ipairs(ev.members) do
    local tags = {}
    for k, v in pairs(m.tags) do tags[#tags + 1] = k .. "=" .. v end
    table.sort(tags)
    log.info(string.format("joined [%s] [%s] [%s] [%s]", m.name, m.addr, m.role, table.concat(tags, ";")))
  end
end
LUA
cat > "$B/handlers/user/deploy.lua" <<'LUA'
local log = require "serfhand.log"
return function(ev) log.info("deploy " .. ev.payload .. " ltime " .. ev.ltime) end
LUA
"$SERFHAND" sign -s "$T_TMP/k.sec" --name app --version 4 "$B" > /dev/null || fail "signing"

# --- run: a scratch state unless --state --------------------------------------
OUT=$(S run query --name count --payload a 2> "$T_TMP/err"); RC=$?
expect_eq "run (signed) answers" "$RC" 0
expect_match "run: the answer" "$OUT" '"n":1'
check "run wrote nothing into the node's state_dir" test ! -e "$NODE"
expect_match "run used a scratch state under TMPDIR" "${OUT//'\/'/'/'}" "\"state\":\"$SCR/serfhand-run\.[A-Za-z0-9]+\""
expect_eq "and removed it at exit" "$(ls -A "$SCR")" ""
OUT=$(S run query --name count --payload a 2>/dev/null)
expect_match "each run starts from an empty scratch state" "$OUT" '"n":1'
OUT=$(S run query --name mode 2>/dev/null)
expect_eq "the scratch state directory is 0700" "$OUT" "700"
OUT=$(S run query --name count --payload a --unsigned 2>/dev/null)
expect_match "run --unsigned: the same" "$OUT" '"n":1'
check "run --unsigned wrote nothing into the node's state_dir" test ! -e "$NODE"

OUT=$(S run query --name count --payload a --state "$T_TMP/mine" 2> "$T_TMP/err"); RC=$?
expect_eq "run --state answers" "$RC" 0
expect_match "run --state says so on stderr" "$(cat "$T_TMP/err")" "state directory $T_TMP/mine \\(--state\\)"
check "run --state writes there" test -f "$T_TMP/mine/serfhand.db"
check "and records the bundle version there" test -f "$T_TMP/mine/bundle-version"
OUT=$(S run query --name count --payload a --state "$T_TMP/mine" 2>/dev/null)
expect_match "run --state keeps it between runs" "$OUT" '"n":2'
check "still nothing in the node's state_dir" test ! -e "$NODE"

# --- test: T.query and T.event call handle as Serf would ----------------------
cat > "$T_TMP/t_handlers.lua" <<'LUA'
local json = require "serfhand.json"
T.test("a query: what Serf gets, and the exit code", function()
  local r = T.query{ name = "count", payload = "q", self = "n7", tags = { role = "web", zone = "eu" }, ltime = 42 }
  T.eq(r.code, 0)
  local v = json.decode(r.out)
  T.eq({ v.n, v.who, v.role, v.zone, v.ltime }, { 1, "n7", "web", "eu", 42 })
  T.eq(type(r.log), "table")
end)
T.test("the handler's store is the test's store", function()
  T.eq(json.decode(T.query{ name = "count", payload = "q" }.out).n, 2)
  T.eq(require("serfhand.store").get("count/q"), "2")
end)
T.test("the payload is byte-exact (Serf's trailing LF removed)", function()
  T.eq(T.query{ name = "echo", payload = "a\0b\255" }.out, "a\0b\255")
  T.eq(T.query{ name = "echo", payload = "x\n\n" }.out, "x\n")
end)
T.test("a raising handler: exit 1, nothing sent, the error in the log", function()
  local r = T.query{ name = "boom" }
  T.eq({ r.code, r.out }, { 1, "" })
  T.ok(table.concat(r.log, "\n"):find("boom", 1, true), "logged")
end)
T.test("a response over the cap: exit 6", function()
  local r = T.query{ name = "echo", payload = string.rep("x", 301) }
  T.eq({ r.code, r.out }, { 6, "" })
  T.ok(table.concat(r.log, "\n"):find("limits.response_bytes", 1, true))
end)
T.test("a query with no handler: exit 0, no answer, logged naming the file", function()
  local r = T.query{ name = "tpyo" }
  T.eq({ r.code, r.out }, { 0, "" })
  T.ok(table.concat(r.log, "\n"):find("no handler handlers/query/tpyo.lua", 1, true))
end)
T.test("a member event: member lines, escapes as Serf writes them", function()
  local r = T.event{ type = "member-join", members = {
    { name = "n\t1", addr = "10.0.0.1", role = "web", tags = { role = "web", dc = "a=b" } },
    "n2\t10.0.0.2\t\t",
  } }
  T.eq(r.code, 0)
  local log = table.concat(r.log, "\n")
  T.ok(log:find("joined [n\\t1] [10.0.0.1] [web] [dc=a=b;role=web]", 1, true), log)
  T.ok(log:find("joined [n2] [10.0.0.2] [] []", 1, true), log)
end)
T.test("a user event", function()
  local r = T.event{ type = "user", name = "deploy", payload = "v2", ltime = 9 }
  T.eq(r.code, 0)
  T.ok(table.concat(r.log, "\n"):find("deploy v2 ltime 9", 1, true))
end)
T.test("what Serf refuses is refused", function()
  T.eq(T.event{ type = "user", name = "../x" }.code, 7)
  T.eq(T.query{ name = "serfhand-nope" }.code, 7)
  T.eq(T.event{ type = "member-join", members = { "a\tb\tc\td\te" } }.code, 7)
end)
T.test("a caller's mistake raises", function()
  T.raises(function() T.event{ type = "tick" } end, "type is member%-join")
  T.raises(function() T.event{ type = "user" } end, "needs a name")
  T.raises(function() T.event("user") end, "table expected")
  T.raises(function() T.query{ name = "x", ltime = -1 } end, "ltime")
  T.raises(function() T.query{ name = "x", tags = { ["a=b"] = "c" } } end, "tags")
end)
LUA
OUT=$(cd "$B" && S test "$T_TMP/t_handlers.lua" 2> "$T_TMP/err"); RC=$?
expect_match "T.query and T.event: every test passes" "$OUT" "^10 passed, 0 failed$"
expect_eq "exit 0" "$RC" 0
[ "$RC" -eq 0 ] || printf '%s\n' "$OUT"
check "test wrote nothing into the node's state_dir" test ! -e "$NODE"
expect_eq "and removed its scratch state" "$(ls -A "$SCR")" ""
OUT=$(S test --bundle "$B" --state "$T_TMP/tstate" "$T_TMP/t_handlers.lua" 2> "$T_TMP/err"); RC=$?
expect_match "test --state: every test passes" "$OUT" "^10 passed, 0 failed$"
expect_match "test --state says so on stderr" "$(cat "$T_TMP/err")" "state directory $T_TMP/tstate \\(--state\\)"
check "test --state writes there" test -f "$T_TMP/tstate/serfhand.db"
OUT=$(S test --bundle "$B" --state "$T_TMP/tstate" "$T_TMP/t_handlers.lua" 2>&1)
expect_match "and keeps it: the counter goes on" "$OUT" "FAIL a query: what Serf gets"

# --- failures, TAP and JSON ---------------------------------------------------
cat > "$T_TMP/t_mixed.lua" <<'LUA'
T.test("passes", function() T.eq(T.query{ name = "echo", payload = "hi" }.out, "hi") end)
T.test("fails # not a directive", function() T.eq(1, 2, "one is not two") end)
T.report("a note\nover two lines")
LUA
printf 'error("top level broke")\n' > "$T_TMP/t_broken.lua"
OUT=$(S test --bundle "$B" "$T_TMP/t_mixed.lua" "$T_TMP/t_broken.lua" 2>/dev/null); RC=$?
expect_eq "a failing test: exit 1" "$RC" 1
expect_match "the failing test is named with its message" "$OUT" "FAIL fails # not a directive: .*t_mixed.lua:2: one is not two: got 1, want 2"
expect_match "a file whose top level raises fails, with a traceback" "$OUT" "FAIL $T_TMP/t_broken.lua: .*top level broke"
expect_match "the counts" "$OUT" "1 passed, 2 failed$"

TAP=$(S test --bundle "$B" --tap "$T_TMP/t_mixed.lua" "$T_TMP/t_broken.lua" 2>/dev/null); RC=$?
expect_eq "--tap: exit 1" "$RC" 1
printf '%s\n' "$TAP" > "$T_TMP/tap"
# A small TAP 13 reader: version line, numbered results in order, a plan
# that matches, YAML blocks only after a result, comments.
READ=$(awk '
    NR == 1 { if ($0 != "TAP version 13") bad = "no version line"; next }
    /^(not )?ok [0-9]+ - / { n++; num = ($1 == "not") ? $3 : $2
        if (num != n) bad = "result " n " numbered " num
        if ($1 == "not") nok++; else ok++; inres = 1; next }
    /^  ---$/ { if (!inres) bad = "YAML block not after a result"; yaml = 1; next }
    /^  \.\.\.$/ { yaml = 0; next }
    yaml { next }
    /^1\.\.[0-9]+$/ { plan = substr($0, 4); next }
    /^#/ { next }
    { bad = "unexpected line: " $0 }
    END { if (plan != n) bad = bad " plan " plan " for " n " results"
          printf "%s|ok=%d notok=%d", bad, ok, nok }' "$T_TMP/tap")
expect_eq "--tap parses as TAP 13" "$READ" "|ok=1 notok=2"
expect_match "--tap: the failing test is not ok" "$TAP" "not ok 2 - $T_TMP/t_mixed.lua: fails \\\\# not a directive"
expect_match "--tap: its message in a YAML block" "$TAP" '  message: ".*one is not two: got 1, want 2"'
expect_match "--tap: T.report as comments" "$TAP" "# a note
# over two lines"
expect_match "--tap: the broken file is not ok" "$TAP" "not ok 3 - $T_TMP/t_broken.lua"

OUT=$(S test --bundle "$B" --json "$T_TMP/t_mixed.lua" "$T_TMP/t_broken.lua" 2>/dev/null); RC=$?
expect_eq "--json: exit 1" "$RC" 1
J=$(printf '%s' "$OUT" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(list(d), d["passed"], d["failed"], [(t["name"], t["ok"]) for t in d["tests"]],
      [r["text"] for r in d["reports"]], "one is not two" in d["tests"][1]["message"])' 2>&1)
expect_eq "--json: one object, stable keys" "$J" "['passed', 'failed', 'tests', 'reports'] 1 2 [('passes', True), ('fails # not a directive', False), (None, False)] ['a note\\nover two lines'] True"
printf 'T.test("binary \\255", function() T.eq("a\\255\\0", "b") end)\n' > "$T_TMP/t_bin.lua"
OUT=$(S test --bundle "$B" --json "$T_TMP/t_bin.lua" 2>/dev/null)
J=$(printf '%s' "$OUT" | python3 -c 'import json, sys; d = json.loads(sys.stdin.buffer.read().decode("utf-8")); print(d["failed"], d["tests"][0]["name"])' 2>&1)
expect_eq "--json: bytes that are not UTF-8 still make valid JSON" "$J" "1 binary $(printf '\357\277\275')"
OUT=$(S test --bundle "$B" --json --tap "$T_TMP/t_mixed.lua" 2>&1); RC=$?
expect_eq "--json with --tap: usage error" "$RC" 2

# A test file past its deadline is a failure, and the run goes on.
printf 'T.test("spins", function() while true do end end)\n' > "$T_TMP/t_spin.lua"
OUT=$(S test --bundle "$B" --timeout-ms 300 "$T_TMP/t_spin.lua" "$T_TMP/t_mixed.lua" 2>/dev/null); RC=$?
expect_match "a file past --timeout-ms fails" "$OUT" "FAIL $T_TMP/t_spin.lua: .*deadline exceeded \\(--timeout-ms\\)"
expect_match "and the next file still runs" "$OUT" "^1 passed, 2 failed$"

# Each file has its own deadline: files that each stay well within it, but
# together use more CPU than one deadline's RLIMIT_CPU backstop, all pass.
# (A busy loop of 0.6 s: 6 s of CPU in all on an idle machine, over the 3 s
# backstop of one 1.5 s deadline.)
printf 'local time = require "serfhand.time"\nT.test("spins 0.6 s", function()\n  local t = time.mono()\n  while time.mono() - t < 0.6 do end\nend)\n' > "$T_TMP/t_burn.lua"
BURN=""
for i in 1 2 3 4 5 6 7 8 9 10; do BURN="$BURN $T_TMP/t_burn.lua"; done
# shellcheck disable=SC2086 # the list on purpose
OUT=$(S test --bundle "$B" --timeout-ms 1500 $BURN 2>&1); RC=$?
expect_eq "10 files of 0.6 s CPU under --timeout-ms 1500: none killed (RLIMIT_CPU per run)" "$RC|$(printf '%s\n' "$OUT" | tail -n 1)" "0|10 passed, 0 failed"

OUT=$(S test --bundle "$T_TMP/nonexistent" "$T_TMP/t_mixed.lua" 2>&1); RC=$?
expect_eq "a missing bundle directory: usage error" "$RC" 2

OUT=$(S help test 2>&1)
expect_match "help shows the --bundle default" "$OUT" "--bundle DIR .*default: \\., the current directory"
expect_match "help names T.event and T.query" "$OUT" "T.event\\{type="
expect_match "help lists --tap" "$OUT" "--tap"
expect_match "help of run names --state" "$(S help run 2>&1)" "--state DIR"

finish
