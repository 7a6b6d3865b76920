# handle: the event handler contract, driven with a fake Serf environment
# (SERF_* variables and stdin exactly as Serf sets them), and every bad input.
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/forge.sh"

B=$T_TMP/bundle
LOG=$T_TMP/log
mkdir -p "$B/handlers/user" "$B/handlers/query" "$B/lua/util"
"$SERFHAND" keygen -W -p "$T_TMP/k.pub" -s "$T_TMP/k.sec" > /dev/null
cat > "$T_TMP/conf" <<CONF
bundle = "$B"
state_dir = "$T_TMP/state"
trust = { keys = { "$T_TMP/k.pub" } }
log = { target = "$LOG", level = "debug" }
limits = { event_ms = 400, query_ms = 400, grace_ms = 300, memory_mb = 16, response_bytes = 100 }
proc = { allow = { "/bin/sleep" } } -- query/later spawns it (DESIGN 4b: operator-approved only)
CONF
# h NAME: write handlers/NAME.lua from stdin and sign the bundle anew.
VERSION=0
sign() {
    VERSION=$((VERSION + 1))
    "$SERFHAND" sign -s "$T_TMP/k.sec" --name bundle --version "$VERSION" "$B" > /dev/null 2>&1 || fail "signing the test bundle"
}
h() { cat > "$B/handlers/$1.lua"; sign; }

# serf_event TYPE NAME [STDIN-FILE]: run handle like Serf does; sets OUT, RC.
# $WRAP, when set, is put before the binary (e.g. WRAP="timeout 10").
serf_event() {
    local type=$1 name=$2 in=${3:-/dev/null} var ltvar
    case $type in
    user) var=SERF_USER_EVENT ltvar=SERF_USER_LTIME ;;
    query) var=SERF_QUERY_NAME ltvar=SERF_QUERY_LTIME ;;
    *) var=SERF_X_UNUSED ltvar=SERF_X_UNUSED2 ;;
    esac
    : > "$LOG"
    OUT=$(env -i PATH="$PATH" "${SAN_ENV[@]}" SERF_EVENT="$type" "$var=$name" "$ltvar=7" SERF_SELF_NAME=n1 \
        SERF_SELF_ROLE=auth SERF_TAG_ROLE=auth SERF_TAG_FOO_BAR=v1 \
        ${WRAP:-} "$SERFHAND" -c "$T_TMP/conf" handle < "$in" 2>&1; echo "~$?")
    RC=${OUT##*~}
    OUT=${OUT%~*}
}

# --- the contract -----------------------------------------------------------
h user/echo <<'LUA'
local log = require "serfhand.log"
return function(ev)
  local hex = ev.payload:gsub(".", function(c) return string.format("%02x", c:byte()) end)
  log.info("payload=" .. hex .. " type=" .. ev.type .. " name=" .. ev.name .. " ltime=" .. ev.ltime
    .. " self=" .. ev.self.name .. " role=" .. ev.self.role .. " tag=" .. ev.self.tags.foo_bar)
end
LUA
printf 'a\000b\377c\n' > "$T_TMP/in1"
serf_event user echo "$T_TMP/in1"
expect_eq "user event exits 0" "$RC" 0
expect_eq "user event prints nothing" "$OUT" ""
expect_match "payload is byte-exact, trailing LF removed" "$(cat "$LOG")" \
    "payload=610062ff63 type=user name=echo ltime=7 self=n1 role=auth tag=v1"
printf 'x\n\n' > "$T_TMP/in2"
serf_event user echo "$T_TMP/in2"
expect_match "only one trailing LF is removed" "$(cat "$LOG")" "payload=780a "

h query/hello <<'LUA'
return function(ev) print("to the log, not the response"); return "hello " .. ev.payload end
LUA
printf 'bob\n' > "$T_TMP/in3"
serf_event query hello "$T_TMP/in3"
expect_eq "query response is the return value" "$OUT" "hello bob"
expect_eq "query exits 0" "$RC" 0
expect_match "print goes to the log" "$(cat "$LOG")" "to the log, not the response"

h query/table <<'LUA'
return { description = "table form", handle = function(ev) return { n = 1, who = ev.self.name } end }
LUA
serf_event query table
expect_match "a table is answered as JSON" "$OUT" '^\{("n":1,"who":"n1"|"who":"n1","n":1)\}$'

h query/none <<'LUA'
return function() return nil end
LUA
serf_event query none
expect_eq "nil means no response" "$OUT|$RC" "|0"

serf_event query missing
expect_eq "missing handler: exit 0, no output" "$OUT|$RC" "|0"
expect_match "missing handler is logged, naming the file looked for" "$(cat "$LOG")" "no handler handlers/query/missing.lua"
# A query with no handler is most often a typo: an operator at the default
# level (info) sees it.
sed 's/level = "debug"/level = "info"/' "$T_TMP/conf" > "$T_TMP/conf.info"
: > "$LOG"
env -i PATH="$PATH" "${SAN_ENV[@]}" SERF_EVENT=query SERF_QUERY_NAME=tpyo SERF_QUERY_LTIME=1 \
    "$SERFHAND" -c "$T_TMP/conf.info" handle < /dev/null > /dev/null 2>&1
expect_match "missing handler: logged at info, naming the file" "$(cat "$LOG")" \
    "info: .*no handler handlers/query/tpyo.lua in bundle $B"

# ev.bundle.version is an integer, like every version (serfhand-check's too).
h query/version <<'LUA'
return function(ev) return math.type(ev.bundle.version) .. " " .. ev.bundle.version .. " " .. ev.bundle.name end
LUA
serf_event query version
expect_eq "ev.bundle.version is an integer" "$OUT|$RC" "integer $VERSION bundle|0"
OUT=$("$SERFHAND" -c "$T_TMP/conf" run query --name version --unsigned 2>/dev/null)
expect_eq "an unsigned working copy is version 0" "$OUT" "integer 0 unsigned"

h member-join <<'LUA'
local log = require "serfhand.log"
return function(ev)
  for _, m in ipairs(ev.members) do
    local tags = {}
    for k, v in pairs(m.tags) do tags[#tags + 1] = k .. "=" .. v end
    table.sort(tags)
    log.info(string.format("member [%s] [%s] [%s] [%s]", m.name, m.addr, m.role, table.concat(tags, ";")))
  end
end
LUA
printf 'n1\t127.0.0.1\tr1\tweird=a\\tb,role=r1\nn\\t2\t127.0.0.2\t\t\n' > "$T_TMP/members"
serf_event member-join "" "$T_TMP/members"
expect_eq "member-join exits 0" "$RC" 0
L=$(cat "$LOG")
expect_match "member line parsed, escapes undone" "$L" 'member \[n1\] \[127.0.0.1\] \[r1\] \[role=r1;weird=a\\tb\]'
expect_match "escaped tab in a name" "$L" 'member \[n\\t2\] \[127.0.0.2\] \[\] \[\]'

# A run that leaves a child waiting (proc.spawn with delay_ms) ends without
# tearing down its memory, which the child shares copy-on-write. The answer,
# the log and the store are complete all the same.
h query/later <<'LUA'
local log = require "serfhand.log"
local proc = require "serfhand.proc"
local store = require "serfhand.store"
return function(ev)
  assert(store.put("later/" .. ev.payload, "kept"))
  local pid = assert(proc.spawn({ "/bin/sleep", "0" }, { delay_ms = tonumber(ev.payload) }))
  log.info("child " .. pid)
  return "spawned " .. ev.payload
end
LUA
h query/stored <<'LUA'
return function(ev) return tostring(require("serfhand.store").get("later/" .. ev.payload)) end
LUA
# later DELAY_MS: run query/later; sets OUT, RC, L (the log) and CHILD.
later() {
    printf '%s\n' "$1" > "$T_TMP/in-later"
    serf_event query later "$T_TMP/in-later"
    L=$(cat "$LOG")
    CHILD=$(printf '%s\n' "$L" | sed -n 's/.*child \([0-9]*\)$/\1/p')
}
later 60000
expect_eq "a run with a waiting child answers" "$OUT|$RC" "spawned 60000|0"
expect_match "and exits without the teardown" "$L" "exit 0 after .*, without teardown: a spawned child shares this memory"
expect_match "after its own log lines" "$L" "child [0-9]+"
check "the child waits" kill -0 "${CHILD:-none}"
[ -n "$CHILD" ] && track "$CHILD"
printf '60000\n' > "$T_TMP/in-later"
serf_event query stored "$T_TMP/in-later"
expect_eq "what it stored was committed" "$OUT" "kept"
later 0
expect_eq "a child that execs at once" "$OUT|$RC" "spawned 0|0"
expect_match "leaves the usual teardown" "$L" "exit 0 after [0-9]+ ms \([0-9]+ ms of CPU\)$"
check "and no shortcut" sh -c '! grep -q "without teardown" "$1"' - "$LOG"

# --- bad input --------------------------------------------------------------
serf_event bogus x
expect_eq "unknown SERF_EVENT exits 7" "$RC" 7
expect_match "unknown SERF_EVENT is logged" "$(cat "$LOG")" 'unknown SERF_EVENT "bogus"'

for bad in "../x" "a/b" "" "$(printf 'x%.0s' $(seq 65))" ".hidden" "-x"; do
    serf_event user "$bad"
    expect_eq "invalid name [$bad] exits 7" "$RC" 7
done
expect_match "invalid name is logged" "$(cat "$LOG")" "invalid user event name"

serf_event query "../hello"
expect_eq "invalid query name: no response" "$OUT|$RC" "|7"

printf 'n1\t127.0.0.1\tr\tt\textra\n' > "$T_TMP/badmember"
serf_event member-join "" "$T_TMP/badmember"
expect_eq "malformed member line exits 7" "$RC" 7

h user/raise <<'LUA'
local function inner() error("boom") end
return function() inner() end
LUA
serf_event user raise
expect_eq "a raising handler exits 1" "$RC" 1
L=$(cat "$LOG")
expect_match "the error names file and line" "$L" "handlers/user/raise.lua:1: boom"
expect_match "the log has a traceback" "$L" "stack traceback"
expect_match "the error names the bundle" "$L" "\\[bundle bundle version [0-9]+\\]"

h user/notfn <<'LUA'
return 42
LUA
serf_event user notfn
expect_eq "a file not returning a function exits 1" "$RC" 1
expect_match "and says so" "$(cat "$LOG")" "must return a function"

# `serfhand sign` refuses a syntax error, a signer using minisign does not.
printf 'return function( end\n' > "$B/handlers/user/syntax.lua"
"$SERFHAND" sign -s "$T_TMP/k.sec" --version $((VERSION + 1)) "$B" > /dev/null 2>&1
expect_eq "sign refuses a handler with a syntax error (exit 3)" "$?" 3
forge_sign "$B" "$T_TMP/k.sec" || fail "forging the test bundle"
serf_event user syntax
expect_eq "a syntax error exits 1" "$RC" 1
expect_match "the syntax error names the line" "$(cat "$LOG")" "handlers/user/syntax.lua:1:"
rm -f "$B/handlers/user/syntax.lua"
sign

h query/fn <<'LUA'
return function() return print end
LUA
serf_event query fn
expect_eq "query returning a function: refused, no output" "$OUT|$RC" "|6"
expect_match "and logged" "$(cat "$LOG")" "not a function"

h query/ud <<'LUA'
local json = require "serfhand.json"
return function() return json.null end
LUA
serf_event query ud
expect_eq "query returning userdata: refused, no output" "$OUT|$RC" "|6"

h query/big <<'LUA'
return function() return string.rep("x", 101) end
LUA
serf_event query big
expect_eq "response over the cap: refused, no partial output" "$OUT|$RC" "|6"
expect_match "the cap is named" "$(cat "$LOG")" "101 bytes is over limits.response_bytes = 100"

h query/fits <<'LUA'
return function() return string.rep("x", 100) end
LUA
serf_event query fits
expect_eq "response at the cap is sent" "${#OUT}|$RC" "100|0"

h query/raise <<'LUA'
return function() error("query failed") end
LUA
serf_event query raise
expect_eq "a raising query handler sends nothing" "$OUT|$RC" "|1"

# --- limits -----------------------------------------------------------------
timed() { local t0 t1; t0=$(date +%s%N); "$@"; t1=$(date +%s%N); MS=$(((t1 - t0) / 1000000)); }

h user/loop <<'LUA'
return function() while true do end end
LUA
timed serf_event user loop
expect_eq "an endless loop exits 4" "$RC" 4
check "the endless loop stops near the deadline ($MS ms)" test "$MS" -lt 1500
expect_match "the deadline is logged" "$(cat "$LOG")" "deadline of 400 ms exceeded"

h user/pcallloop <<'LUA'
return function()
  while true do pcall(function() while true do end end) end
end
LUA
timed serf_event user pcallloop
expect_eq "a loop around pcall exits 4" "$RC" 4
check "pcall cannot swallow the deadline ($MS ms)" test "$MS" -lt 1500

h user/longsleep <<'LUA'
return function() require("serfhand.time").sleep(math.maxinteger) end
LUA
timed serf_event user longsleep
expect_eq "time.sleep(math.maxinteger) ends at the deadline: exit 4" "$RC" 4
check "and near it ($MS ms)" test "$MS" -lt 1500

h user/coloop <<'LUA'
return function()
  while true do
    local co = coroutine.wrap(function() while true do pcall(error, "x") end end)
    pcall(co)
  end
end
LUA
timed serf_event user coloop
expect_eq "a coroutine loop with pcall exits 4" "$RC" 4

h user/membomb <<'LUA'
return function()
  local t, kb = {}, string.rep("x", 1024) -- 1 MiB a step, copied in 1 KiB pieces
  for i = 1, 1e9 do t[i] = string.rep(kb, 1024) .. i end
end
LUA
serf_event user membomb
expect_eq "a memory bomb exits 5" "$RC" 5
expect_match "the memory cap is logged" "$(cat "$LOG")" "memory cap"

h user/rep <<'LUA'
return function() return string.rep("x", 1 << 30) end
LUA
serf_event user rep
expect_eq "string.rep of 1 GiB exits 5" "$RC" 5

h user/pcallmem <<'LUA'
return function()
  local ok = pcall(string.rep, "x", 1 << 30)
  local t, kb = {}, string.rep("y", 1024)
  for i = 1, 1e9 do t[i] = string.rep(kb, 1024) .. i end
end
LUA
serf_event user pcallmem
expect_eq "a caught memory error does not lift the cap" "$RC" 5

# Past the deadline the state is abandoned, not closed; under make SANITIZE=1
# the leak checker at exit took its memory for a leak and exit 4 became 1.
h user/repspin <<'LUA'
return function()
  local keep, kb = {}, string.rep("x", 1024)
  for i = 1, 8 do keep[i] = string.rep(kb, 1024) .. i end
  while true do keep[9] = string.rep(kb, 1024) end -- the deadline hits in string.rep
end
LUA
serf_event user repspin
expect_eq "a deadline with 8 MiB held exits 4 (also under the leak checker)" "$RC" 4

h user/find <<'LUA'
return function() return (string.rep("a", 300)):find(".-.-.-b") end
LUA
timed serf_event user find
expect_eq "a pathological string.find is ended by the backstop (exit 4)" "$RC" 4
check "the backstop ends it within deadline + grace ($MS ms)" test "$MS" -lt 1600
expect_match "the backstop is logged, naming its setting" "$(cat "$LOG")" "deadline of 400 ms exceeded \(limits\.event_ms\) where no hook runs"

h query/loop <<'LUA'
return function() while true do end end
LUA
serf_event query loop
expect_eq "a query past its deadline sends nothing" "$OUT|$RC" "|4"

h query/findq <<'LUA'
return function() return (string.rep("a", 300)):find(".-.-.-b") end
LUA
serf_event query findq
expect_eq "a query killed by the backstop sends nothing" "$OUT|$RC" "|4"

# --- escapes ----------------------------------------------------------------
esc() { h user/esc <<LUA
return function() $1 end
LUA
serf_event user esc; }
esc 'os.execute("touch '"$T_TMP"'/pwned")'
expect_eq "os.execute is not there" "$RC" 1
check "and nothing ran" test ! -e "$T_TMP/pwned"
expect_match "os is nil" "$(cat "$LOG")" "global 'os'"
esc 'io.open("/etc/passwd")'
expect_eq "io.open is not there" "$RC" 1
esc 'require("../../etc/passwd")'
expect_eq "require of an arbitrary path fails" "$RC" 1
expect_match "require names the module" "$(cat "$LOG")" "module '../../etc/passwd' not found"
esc 'assert(load("\27Lua\84\0"))'
expect_eq "load of bytecode fails" "$RC" 1
expect_match "bytecode is refused" "$(cat "$LOG")" "binary chunk"
esc 'return string.dump(print)'
expect_eq "string.dump is gone" "$RC" 1
esc 'return getmetatable("").__index.dump(print)'
expect_eq 'getmetatable("").__index.dump is unreachable' "$RC" 1
esc 'package.loadlib("libc.so.6", "system")'
expect_eq "package is not there" "$RC" 1
esc 'debug.sethook()'
expect_eq "debug is not there" "$RC" 1

# bundle modules
cat > "$B/lua/util/greet.lua" <<'LUA'
local M = {}
function M.greet(n) return "hi " .. n end
return M
LUA
sign
h query/usemod <<'LUA'
local greet = require "util.greet"
return function(ev) return greet.greet(ev.payload) end
LUA
printf 'ann' > "$T_TMP/in4"
serf_event query usemod "$T_TMP/in4"
expect_eq "bundle modules load through require" "$OUT" "hi ann"

# --- a bundle module that fails verification is a refusal -------------------
# Whatever the handler does with the error (pcall, xpcall, a coroutine, a
# finalizer, a metamethod, another module), the run ends with exit 3, the
# `refused:` log line and no answer.
mkdir -p "$B/lua/refmod"
printf 'return { v = "ok" }\n' > "$B/lua/refmod/m.lua"
printf 'return { v = "ok" }\n' > "$T_TMP/outside.lua" # same bytes, outside the bundle
printf 'local ok = pcall(require, "refmod.m")\nreturn { v = "outer went on" }\n' > "$B/lua/refmod/outer.lua"
cat > "$B/handlers/query/req.lua" <<'LUA'
return function(ev) return require(ev.payload).v end
LUA
cat > "$B/handlers/query/preq.lua" <<'LUA'
return function(ev)
  local ok, err = pcall(require, ev.payload)
  return "survived: " .. tostring(ok) .. " " .. tostring(err)
end
LUA
sign
printf 'refmod.m' > "$T_TMP/in-m"
serf_event query req "$T_TMP/in-m"
expect_eq "a verified module loads" "$OUT|$RC" "ok|0"
serf_event query preq "$T_TMP/in-m"
expect_eq "and pcall(require) of it succeeds" "$OUT|$RC" "survived: true table: ${OUT##*table: }|0"

# refusal WHAT MODULE: query req (plain require) and preq (pcall) of MODULE
# are refused: exit 3, no answer, the refused: line names the module.
refusal() {
    printf '%s' "$2" > "$T_TMP/in-mod"
    for q in req preq; do
        WRAP="timeout 10" serf_event query $q "$T_TMP/in-mod"
        expect_eq "$1, $q: exit 3 and no answer" "$OUT|$RC" "|3"
        expect_match "$1, $q: the refused: line" "$(cat "$LOG")" "error: [a-z:-]* ?refused: module '$2': lua/"
    done
}
M=$B/lua/refmod/m.lua
cp "$M" "$T_TMP/m.orig"
restore() { rm -f "$M" "$B/lua/refmod/extra.lua"; cp "$T_TMP/m.orig" "$M"; }
printf -- '-- changed after signing\n' >> "$M"
refusal "a changed module" refmod.m
restore
printf 'return { v = "unlisted" }\n' > "$B/lua/refmod/extra.lua"
refusal "a module not in the manifest" refmod.extra
restore
rm -f "$M"
refusal "a listed module that is missing" refmod.m
expect_match "the missing file is named" "$(cat "$LOG")" "lua/refmod/m.lua"
restore
rm -f "$M"; ln -s "$T_TMP/outside.lua" "$M"
refusal "a module that is a symlink out of the bundle (same bytes)" refmod.m
restore
rm -f "$M"; mkfifo "$M"
refusal "a module that is a FIFO" refmod.m
restore
ln -s "$T_TMP/outside.lua" "$B/lua/refmod/extra.lua"
refusal "an unlisted symlink out of the bundle" refmod.extra
restore
serf_event query req "$T_TMP/in-m"
expect_eq "restored, the module loads again" "$OUT|$RC" "ok|0"
printf 'refmod.nope' > "$T_TMP/in-nope"
serf_event query preq "$T_TMP/in-nope"
expect_eq "a module neither listed nor present is an ordinary error (pcall catches it)" "$OUT|$RC" "survived: false module 'refmod.nope' not found in the bundle (lua/refmod/nope.lua)|0"
serf_event query req "$T_TMP/in-nope"
expect_eq "uncaught, it fails the handler (exit 1)" "$OUT|$RC" "|1"

# Every way to catch or delay the error; each is a signed query handler that
# would answer "survived", run while refmod/m.lua is changed.
catcher() { cat > "$B/handlers/query/$1.lua"; }
catcher xpcall <<'LUA'
return function()
  xpcall(require, function(e) return e end, "refmod.m")
  return "survived"
end
LUA
catcher cowrap <<'LUA'
return function()
  local co = coroutine.wrap(function() return pcall(require, "refmod.m") end)
  pcall(co)
  return "survived"
end
LUA
catcher coresume <<'LUA'
local log = require "serfhand.log"
return function()
  local outer = coroutine.create(function()
    local inner = coroutine.create(function() require "refmod.m" end)
    coroutine.resume(inner)
    log.info("the resuming coroutine went on")
    coroutine.yield("after")
  end)
  coroutine.resume(outer)
  return "survived"
end
LUA
catcher gc <<'LUA'
return function()
  setmetatable({}, { __gc = function() pcall(require, "refmod.m") end })
  local t = {}
  for i = 1, 200000 do t[i % 64] = { i } end
  return "survived"
end
LUA
catcher gcclose <<'LUA'
kept = setmetatable({}, { __gc = function() pcall(require, "refmod.m") end }) -- luacheck: ignore
return function() return "survived" end
LUA
catcher close <<'LUA'
return function()
  do
    local x <close> = setmetatable({}, { __close = function() pcall(require, "refmod.m") end })
  end
  return "survived"
end
LUA
catcher index <<'LUA'
return function()
  local t = setmetatable({}, { __index = function(_, k) pcall(require, k); return "x" end })
  local _ = t["refmod.m"]
  return "survived"
end
LUA
catcher nested <<'LUA'
return function()
  local ok, o = pcall(require, "refmod.outer")
  return "survived " .. tostring(ok and o.v)
end
LUA
catcher toplevel <<'LUA'
pcall(require, "refmod.m")
return function() return "survived" end
LUA
cat > "$B/handlers/user/preq.lua" <<'LUA'
return function() pcall(require, "refmod.m") end
LUA
cat > "$B/handlers/user/tostr.lua" <<'LUA'
return function()
  return setmetatable({}, { __tostring = function() pcall(require, "refmod.m"); return "fine" end })
end
LUA
mkdir -p "$B/handlers/action"
cat > "$B/handlers/action/probe.lua" <<'LUA'
return function(ev) pcall(require, "refmod.m"); return "acted" end
LUA
cat > "$B/handlers/tick.lua" <<'LUA'
return function() pcall(require, "refmod.m") end
LUA
sign
serf_event query nested
expect_eq "untampered, the catchers run (nested)" "$OUT|$RC" "survived outer went on|0"
serf_event query gcclose
expect_eq "untampered, the catchers run (gcclose)" "$OUT|$RC" "survived|0"
printf -- '-- changed after signing\n' >> "$M"
for q in xpcall cowrap coresume gc gcclose close index nested toplevel; do
    serf_event query $q
    expect_eq "caught by $q: still exit 3, no answer" "$OUT|$RC" "|3"
    expect_match "caught by $q: the refused: line" "$(cat "$LOG")" "error: [a-z:-]* ?refused: module 'refmod.m': lua/refmod/m.lua"
done
serf_event query coresume
check "a coroutine that resumed the refused one stops at once" sh -c '! grep -q "went on" "$1"' - "$LOG"
serf_event user preq
expect_eq "a user event that catches the refusal and returns: exit 3" "$RC" 3
serf_event user tostr
expect_eq "a refusal in the __tostring of the returned value: exit 3" "$RC" 3
: > "$LOG"
OUT=$("$SERFHAND" -c "$T_TMP/conf" tick --name n1 2>&1); RC=$?
expect_eq "tick: a caught refusal exits 3" "$RC" 3
expect_match "tick: the refused: line" "$(cat "$LOG")" "error: [a-z:-]* ?refused: module 'refmod.m'"
: > "$LOG"
OUT=$("$SERFHAND" -c "$T_TMP/conf" action probe 1 2>&1); RC=$?
expect_eq "action: a caught refusal exits 3" "$RC" 3
expect_match "action: says refused, never acted" "$OUT" "refused: module 'refmod.m'"
check "action: printed no result" sh -c '! printf "%s" "$1" | grep -q acted' - "$OUT"
OUT=$("$SERFHAND" -c "$T_TMP/conf" run query --name preq --payload refmod.m 2>&1); RC=$?
expect_eq "run (signed): a caught refusal exits 3" "$RC" 3
OUT=$("$SERFHAND" -c "$T_TMP/conf" check 2>&1); RC=$?
expect_eq "check: a changed module is a refusal (exit 3)" "$RC" 3
expect_match "check: names the module file" "$OUT" "lua/refmod/m.lua"
OUT=$("$SERFHAND" -c "$T_TMP/conf" verify "$B" 2>&1); RC=$?
expect_eq "verify: a changed module is a refusal (exit 3)" "$RC" 3
restore
# An unsigned dev run has no manifest: a missing module is an ordinary error.
OUT=$("$SERFHAND" -c "$T_TMP/conf" run query --name preq --payload refmod.nope --unsigned 2>&1); RC=$?
expect_eq "run --unsigned: a missing module is caught like any error" "$RC" 0
expect_match "run --unsigned: and named" "$OUT" "survived: false module 'refmod.nope' not found"
OUT=$("$SERFHAND" -c "$T_TMP/conf" run query --name req --payload refmod.nope --unsigned 2>&1); RC=$?
expect_eq "run --unsigned: uncaught, it fails the handler (exit 1)" "$RC" 1
rm -f "$B/handlers/tick.lua" "$B/handlers/action/probe.lua"
sign

# check loads every handler's top level through the runner, all of them
# within one limits.query_ms (serfhand-check answers a query with it).
h user/toploop <<'LUA'
while true do end
LUA
timed sh -c '"$1" -c "$2" check > "$3" 2>&1; echo $? > "$3.rc"' - "$SERFHAND" "$T_TMP/conf" "$T_TMP/check.out"
expect_eq "check: a looping top level fails the check (exit 1)" "$(cat "$T_TMP/check.out.rc")" 1
expect_match "check: names the file and the deadline" "$(cat "$T_TMP/check.out")" \
    "handlers/user/toploop.lua.*deadline.*limits\.query_ms"
check "check: ends near limits.query_ms ($MS ms)" test "$MS" -lt 1500
rm -f "$B/handlers/user/toploop.lua"
sign

# --- configuration ------------------------------------------------------------
cfgerr() { printf '%b' "$1" > "$T_TMP/bad.conf"; OUT=$("$SERFHAND" -c "$T_TMP/bad.conf" config 2>&1); RC=$?; }
cfgerr 'log = { level = "info" }\nlimits = {\n  query_ms = 10,\n  bogus = 1,\n}\n'
expect_eq "unknown key exits 2" "$RC" 2
expect_match "unknown key names key and line" "$OUT" "bad.conf:4: unknown key limits.bogus"
cfgerr 'trust = {\n  threshold = "two",\n}\n'
expect_match "wrong type names key, line and type" "$OUT" "bad.conf:2: trust.threshold must be an integer, not string"
cfgerr 'state_dir = 5\n'
expect_match "wrong top-level type" "$OUT" "bad.conf:1: state_dir must be a string, not number"
cfgerr 'limits = { memory_mb = 0 }\n'
expect_match "out of range" "$OUT" "limits.memory_mb must be between 1 and 4096, not 0"
cfgerr 'log = {\n target = "x"\n'
expect_eq "syntax error exits 2" "$RC" 2
expect_match "syntax error names the line" "$OUT" "bad.conf:3:"
cfgerr 'x = 1\n'
expect_match "unknown top-level key" "$OUT" "bad.conf:1: unknown key x"
cfgerr 'os.execute("true")\n'
expect_match "the config cannot call anything" "$OUT" "attempt to index a nil value"
cfgerr 'while true do end\n'
expect_match "the config cannot loop" "$OUT" "must be plain data"
cfgerr 'trust = { keys = { "a", 2 } }\n'
expect_match "list of strings checked" "$OUT" "trust.keys must be a list of strings"
cfgerr 'return { log = { level = "debug" }, reboot = { followers = 1 } }\n'
expect_match "return-table style reports the line too" "$OUT" "bad.conf:1: reboot.followers must be a boolean"
OUT=$("$SERFHAND" -c "$T_TMP/nonexistent.conf" config 2>&1); RC=$?
expect_eq "an explicit missing config exits 2" "$RC" 2
expect_match "and names the file" "$OUT" "nonexistent.conf: No such file"
OUT=$(SERFHAND_CONFIG="$T_TMP/conf" "$SERFHAND" config 2>&1)
expect_match "SERFHAND_CONFIG is read" "$OUT" "response_bytes = 100"
OUT=$("$SERFHAND" -c "$TOP/serfhand.conf.sample" config 2>&1); RC=$?
expect_eq "the sample config is valid" "$RC" 0
expect_match "config prints the settings in effect" "$OUT" "stall_minutes = 30,"

# A query whose config is broken sends nothing (errors go to syslog).
cfgerr 'x = 1\n'
OUT=$(env -i PATH="$PATH" "${SAN_ENV[@]}" SERF_EVENT=query SERF_QUERY_NAME=hello "$SERFHAND" -c "$T_TMP/bad.conf" < /dev/null 2>&1); RC=$?
expect_eq "broken config during a query: no output" "$OUT|$RC" "|2"

finish
