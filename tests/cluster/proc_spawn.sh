# proc_spawn: with a real `serf agent` whose event handler is serfhand, a
# handler that spawns a long-running child (`sleep 5`, detached with
# proc.spawn) returns at once, and the next user event runs within ~1 s
# instead of waiting for the child (Serf waits for EOF on the handler's
# stdout/stderr, reference/serf.md section 2). Also: proc.run inside a handler
# is cut at the handler's deadline and its child killed.
# Ports: bind 7970-7979, RPC 7470-7479 (this test's range).
. "$(dirname "$0")/../lib.sh"

BIND=127.0.0.1:7970
RPC=127.0.0.1:7470
B=$T_TMP/bundle
LOG=$T_TMP/serfhand.log
mkdir -p "$B/handlers/user"
cat > "$T_TMP/conf" <<CONF
bundle = "$B"
state_dir = "$T_TMP/state"
log = { target = "$LOG", level = "debug" }
limits = { event_ms = 500, grace_ms = 300 }
proc = { allow = { "/bin/sleep", "/bin/sh" } }
CONF
mkdir -p "$T_TMP/state"

cat > "$B/handlers/user/slow.lua" <<'LUA'
local proc = require "serfhand.proc"
local log = require "serfhand.log"
local time = require "serfhand.time"
return function(ev)
    log.info(string.format("slow-start %.3f", time.now()))
    local pid, err = proc.spawn { "sleep", "5" }
    if not pid then error(err) end
    log.info(string.format("slow-end %.3f pid=%d", time.now(), pid))
end
LUA
cat > "$B/handlers/user/fast.lua" <<'LUA'
local log = require "serfhand.log"
local time = require "serfhand.time"
return function(ev)
    log.info(string.format("fast-ran %.3f", time.now()))
end
LUA
# The payload names a file that gets the child's pid; the child outlives the
# handler's 500 ms deadline unless proc.run ends it.
cat > "$B/handlers/user/bounded.lua" <<'LUA'
local proc = require "serfhand.proc"
return function(ev)
    proc.run { "sh", "-c", "echo $$ > " .. ev.payload .. "; exec sleep 5" }
end
LUA

# Sign the bundle and trust the key, so this passes whether or not handle
# checks signatures yet.
if "$SERFHAND" keygen -W -p "$T_TMP/k.pub" -s "$T_TMP/k.sec" >/dev/null 2>&1 &&
    "$SERFHAND" sign -s "$T_TMP/k.sec" --name bundle "$B" >/dev/null 2>&1; then
    printf 'trust = { keys = { "%s" } }\n' "$T_TMP/k.pub" >> "$T_TMP/conf"
    ok "test bundle signed"
else
    fail "test bundle signed"
fi

now() { date +%s.%N; }
# field VALUE-OF "prefix" from the log: the number after it
logval() { sed -n "s/.*$1 \([0-9.]*\).*/\1/p" "$LOG" | tail -n 1; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

# --- the deadline bounds proc.run (no agent needed) --------------------------
t0=$(now)
printf '%s\n' "$T_TMP/bounded.pid" | env -i PATH="$PATH" "${SAN_ENV[@]}" SERF_EVENT=user SERF_USER_EVENT=bounded \
    SERF_USER_LTIME=1 SERF_SELF_NAME=n1 "$SERFHAND" -c "$T_TMP/conf" handle >/dev/null 2>&1
rc=$?
t1=$(now)
took=$(sub "$t1" "$t0")
echo "bounded: handler with proc.run of sleep 5 (event_ms=500) took ${took}s, exit $rc"
check "bounded handler ends near its deadline" lt "$took" 2.0
bpid=$(cat "$T_TMP/bounded.pid" 2>/dev/null)
if [ -n "$bpid" ]; then
    track "$bpid"
    if wait_for 2 sh -c "! kill -0 $bpid 2>/dev/null || grep -q '^State:.Z' /proc/$bpid/status 2>/dev/null"; then
        ok "child of proc.run killed at the deadline"
    else
        fail "child of proc.run killed at the deadline" "pid $bpid still alive"
    fi
else
    fail "bounded handler ran" "no pid file"
fi

# --- a real agent --------------------------------------------------------------
serf agent -node=procspawn -bind=$BIND -rpc-addr=$RPC -log-level=debug \
    -event-handler "user=$SERFHAND -c $T_TMP/conf handle" > "$T_TMP/agent.log" 2>&1 &
AGENT=$!
track "$AGENT"
if ! wait_for 10 serf members -rpc-addr=$RPC >/dev/null 2>&1; then
    fail "agent started" "$(tail -n 5 "$T_TMP/agent.log")"
    finish
    exit
fi
ok "agent started"
: > "$LOG"

t_slow=$(now)
serf event -rpc-addr=$RPC -coalesce=false slow >/dev/null
t_fast=$(now)
serf event -rpc-addr=$RPC -coalesce=false fast >/dev/null
if wait_for 8 grep -q fast-ran "$LOG"; then
    ok "fast event handled"
else
    fail "fast event handled" "$(tail -n 5 "$LOG")"
fi
s0=$(logval slow-start) s1=$(logval slow-end) f=$(logval fast-ran)
spid=$(sed -n 's/.*slow-end [0-9.]* pid=\([0-9]*\).*/\1/p' "$LOG" | tail -n 1)
[ -n "$spid" ] && track "$spid"
if [ -n "$s0" ] && [ -n "$s1" ] && [ -n "$f" ]; then
    slow_handler=$(sub "$s1" "$s0")
    slow_delay=$(sub "$s0" "$t_slow")
    fast_delay=$(sub "$f" "$t_fast")
    echo "slow: handler ran $slow_delay s after its send; spawn took $slow_handler s (pid $spid)"
    echo "fast: sent $(sub "$t_fast" "$t_slow") s after slow, handled $fast_delay s after its send"
    check "slow handler returned at once (< 0.5 s)" lt "$slow_handler" 0.5
    check "fast ran within 1 s of its send, not after sleep 5" lt "$fast_delay" 1.0
else
    fail "handler times logged" "$(cat "$LOG")"
fi
if [ -n "$spid" ] && kill -0 "$spid" 2>/dev/null; then
    ok "spawned sleep still running after fast"
    ppid=$(awk '/^PPid:/ { print $2 }' "/proc/$spid/status")
    if [ "$ppid" != "$AGENT" ]; then ok "spawned child is not the agent's"; else fail "spawned child is not the agent's"; fi
else
    fail "spawned sleep still running after fast" "pid '$spid'"
fi
if grep -q "slow, execution exceeding" "$T_TMP/agent.log"; then
    fail "agent saw no slow script" "$(grep 'exceeding' "$T_TMP/agent.log")"
else
    ok "agent saw no slow script"
fi

kill "$AGENT"
wait "$AGENT" 2>/dev/null
[ -n "$spid" ] && kill "$spid" 2>/dev/null
finish
