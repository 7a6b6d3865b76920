#!/usr/bin/env bash
# tests/cli/factomd.sh: serfhand.factomd against the factomd simulator, one
# run of tests/lua/factomd.lua per simulator mode, plus the libcurl loading
# checks. Simulators listen on 127.0.0.1:18001 and 18002 (range 18000-18049).
. "$(dirname "$0")/../lib.sh"
SIM="$TOP/tests/sim/factomd_sim.py"
LUATEST="$TOP/tests/lua/factomd.lua"
PORT_A=18001
PORT_B=18002

# The authority set of the test network: two federated servers, one audit.
{
    printf '[\n'
    for i in 1 2 3; do
        cid="888888$(printf 'chain%d' "$i" | sha256sum | cut -c7-64)"
        key=$(printf 'key%d' "$i" | sha256sum | cut -c1-64)
        st=federated; [ "$i" = 3 ] && st=audit
        printf '  {"chainid": "%s", "signingkey": "%s", "status": "%s"}%s\n' \
            "$cid" "$key" "$st" "$([ "$i" = 3 ] || echo ,)"
    done
    printf ']\n'
} >"$T_TMP/authorities.json"

# start_sim NAME PORT ARGS...: start a simulator, wait for its ready line.
start_sim() {
    local name=$1 port=$2; shift 2
    python3 "$SIM" --port "$port" --name node1 --role Leader --blocktime-seconds 60 \
        --authorities "$T_TMP/authorities.json" --state-file "$T_TMP/$name.state" "$@" \
        >"$T_TMP/$name.out" 2>&1 &
    local pid=$!
    track "$pid"
    eval "PID_$name=$pid"
    if wait_for 10 grep -qs "^factomd-sim ready port=$port pid=$pid" "$T_TMP/$name.out"; then
        ok "simulator $name ready"
    else
        fail "simulator $name ready" "$(cat "$T_TMP/$name.out")"
    fi
}
ctl() { python3 "$SIM" ctl --state-file "$T_TMP/$1.state" "${@:2}"; }

# run_case CASE CONFIG-BODY [serfhand test options...]: the Lua file with
# factomd.url tagged ?case=CASE; its counts are added to ours.
run_case() {
    local c=$1 conf="$T_TMP/$1.conf" out line p f; shift
    printf '%s\n' "$1" >"$conf"; shift
    out=$("$SERFHAND" -c "$conf" test "$@" "$LUATEST" 2>&1)
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    if [ -z "$line" ]; then
        fail "case $c" "no result line: $out"
        return
    fi
    printf '%s\n' "$out" | grep -E '^FAIL' | sed "s/^/[$c] /"
    p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
    T_PASS=$((T_PASS + p)); T_FAIL=$((T_FAIL + f))
}
url() { printf 'http://127.0.0.1:%s/v2?case=%s' "$1" "$2"; }

# ---- libcurl is not linked; it is mapped only after the first call
if ldd "$SERFHAND" | grep -q libcurl; then fail "binary does not link libcurl" "$(ldd "$SERFHAND" | grep curl)"; else ok "binary does not link libcurl"; fi

start_sim a $PORT_A
start_sim b $PORT_B --user alice --password 's3cret pass'

cat >"$T_TMP/maps.lua" <<'EOF'
local time = require "serfhand.time"
local factomd = require "serfhand.factomd"
T.test("first call after a pause", function()
  time.sleep(1500)
  assert(factomd.heights())
  time.sleep(1500)
end)
EOF
printf 'factomd = { url = "%s" }\n' "$(url $PORT_A maps)" >"$T_TMP/maps.conf"
"$SERFHAND" -c "$T_TMP/maps.conf" test "$T_TMP/maps.lua" >"$T_TMP/maps.out" 2>&1 &
mpid=$!
track "$mpid"
sleep 0.7
before=$(grep -c libcurl "/proc/$mpid/maps" 2>/dev/null)
sleep 1.6
after=$(grep -c libcurl "/proc/$mpid/maps" 2>/dev/null)
expect_eq "libcurl not mapped before the first call" "${before:-gone}" 0
expect_match "libcurl mapped after the first call" "${after:-gone}" '^[1-9]'
wait "$mpid"
expect_match "maps run passed" "$(cat "$T_TMP/maps.out")" '^1 passed, 0 failed'

# ---- one Lua run per mode
run_case offline 'factomd = { url = "http://127.0.0.1:18049/v2" }'
ctl a recover
run_case healthy "factomd = { url = \"$(url $PORT_A healthy)\", timeout_ms = 2000 }"
ctl a stalled
run_case stalled "factomd = { url = \"$(url $PORT_A stalled)\" }"
ctl a syncing
run_case syncing "factomd = { url = \"$(url $PORT_A syncing)\" }"
ctl a recover && ctl a down
run_case down "factomd = { url = \"$(url $PORT_A down)\", timeout_ms = 2000 }"
ctl a recover && ctl a slow --delay-ms 1500
run_case slow "factomd = { url = \"$(url $PORT_A slow)\", timeout_ms = 300 }"
ctl a slow --delay-ms 3000
run_case deadline "factomd = { url = \"$(url $PORT_A deadline)\", timeout_ms = 5000 }" --timeout-ms 600
ctl a garbage
run_case garbage "factomd = { url = \"$(url $PORT_A garbage)\" }"
ctl a http500
run_case http500 "factomd = { url = \"$(url $PORT_A http500)\" }"
ctl a oversized --size-bytes 3000000
run_case oversized "factomd = { url = \"$(url $PORT_A oversized)\", max_response_bytes = 1048576, timeout_ms = 3000 }"
ctl a oversized --size-bytes 3000000 --chunked
run_case chunked "factomd = { url = \"$(url $PORT_A chunked)\", max_response_bytes = 1048576, timeout_ms = 3000 }"

# basic auth: the simulator on port B requires alice / "s3cret pass"
run_case auth "factomd = { url = \"$(url $PORT_B auth)\", user = \"alice\", password = \"s3cret pass\" }"
run_case badauth "factomd = { url = \"$(url $PORT_B badauth)\", user = \"alice\", password = \"wrong\" }"
run_case badauth "factomd = { url = \"$(url $PORT_B badauth)\" }"

# ---- the simulator itself: down for a while comes back; SIGTERM stops it
cat >"$T_TMP/ping.lua" <<'EOF'
local factomd = require "serfhand.factomd"
T.test("ping", function() assert(factomd.heights()) end)
EOF
printf 'factomd = { url = "%s" }\n' "$(url $PORT_A ping)" >"$T_TMP/ping.conf"
ping() { "$SERFHAND" -c "$T_TMP/ping.conf" test "$T_TMP/ping.lua" >/dev/null 2>&1; }
ctl a recover
check "simulator answers after recover" ping
ctl a down --for-ms 1000
if ping; then fail "simulator down"; else ok "simulator down"; fi
check "simulator back after --for-ms" wait_for 5 ping
if ctl a bogus 2>/dev/null; then fail "ctl refuses unknown modes"; else ok "ctl refuses unknown modes"; fi
# ctl wakes the simulator through the pid in <state-file>.pid; without it the
# simulator still reads its file within a second. A stale pid that is not a
# simulator gets no signal (SIGUSR1 would end it).
expect_eq "the simulator wrote its pid file" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$T_TMP/a.state.pid")" "$PID_a"
ctl a stalled
expect_eq "ctl with the pid file" "$?" 0
# Right after that command the simulator's next look of its own is a second
# away: a command written now and signalled is acknowledged well before.
printf '{"mode": "recover", "seq": "by-hand"}\n' >"$T_TMP/a.state.tmp"
mv "$T_TMP/a.state.tmp" "$T_TMP/a.state"
kill -USR1 "$PID_a"
acked() { grep -qs by-hand "$T_TMP/a.state.ack"; }
i=0
while [ "$i" -lt 30 ] && ! acked; do sleep 0.01; i=$((i + 1)); done
check "SIGUSR1 makes the simulator read its file at once" acked
mv "$T_TMP/a.state.pid" "$T_TMP/a.state.pid.saved"
ctl a recover
expect_eq "ctl without a pid file: read within a second" "$?" 0
check "and applied" ping
sleep 60 &
other=$!
track "$other"
printf '{"pid": %d}\n' "$other" >"$T_TMP/a.state.pid"
ctl a recover
expect_eq "ctl with a stale pid file still works" "$?" 0
check "a process that is not a simulator got no SIGUSR1" kill -0 "$other"
kill "$other"
mv "$T_TMP/a.state.pid.saved" "$T_TMP/a.state.pid"
kill -TERM "$PID_a"
wait "$PID_a"
expect_eq "simulator exits 0 on SIGTERM" "$?" 0
check "and removes its pid file" test ! -e "$T_TMP/a.state.pid"
finish
