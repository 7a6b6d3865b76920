#!/usr/bin/env bash
# tests/cli/factomd.sh: serfhand.factomd against the factomd simulator, one
# run of tests/lua/factomd.lua per simulator mode, plus the libcurl loading
# checks; the Factom bundle's stall rule, authority set and identity check
# (tests/lua/factom_real.lua) in the modes that follow the real factomd; TLS
# with a self-signed certificate generated here. Simulators listen on
# 127.0.0.1:18001-18006 (range 18000-18049).
. "$(dirname "$0")/../lib.sh"
SIM="$TOP/tests/sim/factomd_sim.py"
LUATEST="$TOP/tests/lua/factomd.lua"
REAL="$TOP/tests/lua/factom_real.lua"
PORT_A=18001
PORT_B=18002
PORT_T=18003 # TLS
PORT_O=18004 # factomd 6.0.0: no diagnostics
PORT_I=18005 # identity checks
PORT_N=18006 # no audit servers

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

# run_case CASE CONFIG-BODY [serfhand test options...]: the Lua file
# ($LUATEST, or $T_FILE) with factomd.url tagged ?case=CASE; its counts are
# added to ours.
run_case() {
    local c=$1 conf="$T_TMP/$1.conf" out line p f; shift
    printf '%s\nstate_dir = "%s/state-%s"\nlog = { target = "%s/%s.log", level = "debug" }\n' \
        "$1" "$T_TMP" "$c" "$T_TMP" "$c" >"$conf"; shift
    out=$("$SERFHAND" -c "$conf" test "$@" "${T_FILE:-$LUATEST}" 2>&1)
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
ctl a booting
run_case booting "factomd = { url = \"$(url $PORT_A booting)\" }"
ctl a syncing --behind-blocks 40
run_case syncing "factomd = { url = \"$(url $PORT_A syncing)\" }"
ctl a behind --behind-blocks 8
run_case behind "factomd = { url = \"$(url $PORT_A behind)\" }"
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
# ... or from factomd.conf, as factomd itself reads them, when the config has no user
printf '\357\273\277; factomd.conf\n[App]\nfactomdrpcuser = alice\nFactomdRpcPass = "s3cret pass" ; quoted\n' >"$T_TMP/auth-factomd.conf"
run_case confauth "factomd = { url = \"$(url $PORT_B confauth)\", conf = \"$T_TMP/auth-factomd.conf\" }"
printf '[app]\nFactomdRpcUser = alice\nFactomdRpcPass = wrong\n' >"$T_TMP/bad-factomd.conf"
run_case confbadauth "factomd = { url = \"$(url $PORT_B confbadauth)\", conf = \"$T_TMP/bad-factomd.conf\" }"
# the config's own user wins over factomd.conf's
run_case badauth "factomd = { url = \"$(url $PORT_B badauth)\", user = \"alice\", password = \"wrong\", conf = \"$T_TMP/auth-factomd.conf\" }"

# ---- TLS: factomd -tls serves a self-signed certificate
if openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=factomd \
    -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    -keyout "$T_TMP/tls.key" -out "$T_TMP/tls.crt" >/dev/null 2>&1 &&
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=other \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$T_TMP/other.key" -out "$T_TMP/other.crt" >/dev/null 2>&1; then
    ok "self-signed certificates made"
else
    fail "self-signed certificates made"
fi
pin_of() { # the sha256//base64 pin of a certificate's public key, as libcurl wants it
    printf 'sha256//%s' "$(openssl x509 -in "$1" -pubkey -noout | openssl pkey -pubin -outform der |
        openssl dgst -sha256 -binary | base64)"
}
start_sim t $PORT_T --tls-cert "$T_TMP/tls.crt" --tls-key "$T_TMP/tls.key"
expect_match "simulator t serves TLS" "$(cat "$T_TMP/t.out")" 'ready port=18003 .* tls$'
turl() { printf 'https://127.0.0.1:%s/v2?case=%s' "$PORT_T" "$1"; }
run_case tls "factomd = { url = \"$(turl tls)\", tls = { ca_file = \"$T_TMP/tls.crt\" } }"
run_case tlspin "factomd = { url = \"$(turl tlspin)\", tls = { pin = \"$(pin_of "$T_TMP/tls.crt")\" } }"
run_case tlsboth "factomd = { url = \"$(turl tlsboth)\", tls = { ca_file = \"$T_TMP/tls.crt\", pin = \"$(pin_of "$T_TMP/tls.crt")\" } }"
run_case tlsnoca "factomd = { url = \"$(turl tlsnoca)\" }"
run_case tlsbadca "factomd = { url = \"$(turl tlsbadca)\", tls = { ca_file = \"$T_TMP/other.crt\" } }"
run_case tlsbadpin "factomd = { url = \"$(turl tlsbadpin)\", tls = { pin = \"$(pin_of "$T_TMP/other.crt")\" } }"
run_case tlsbadpin "factomd = { url = \"$(turl tlsbadpin)\", tls = { ca_file = \"$T_TMP/tls.crt\", pin = \"$(pin_of "$T_TMP/other.crt")\" } }"

# ---- the Factom bundle against the real factomd's states (factom_real.lua):
# 10 s blocks, so one factomd minute is 1 s and stall_minutes = 1 is 1 s
T_FILE=$REAL
rconf() { printf 'factomd = { url = "%s"%s }\nreboot = { stall_minutes = 1%s }' "$(url "$1" "$2")" "${3:+, $3}" "${4:+, $4}"; }
start_sim r 18007 --blocktime-seconds 10
run_case offline 'factomd = { url = "http://127.0.0.1:18049/v2" }'
run_case healthy "$(rconf 18007 healthy)"
ctl r stalled --minute 7
run_case stalled "$(rconf 18007 stalled)"
ctl r booting
run_case booting "$(rconf 18007 booting)"
ctl r syncing --behind-blocks 50
run_case syncing "$(rconf 18007 syncing)"
ctl r behind --behind-blocks 6
run_case behind "$(rconf 18007 behind)"
# a catch-up that reaches the network's height follows it: healthy again
ctl r syncing --sync-blocks-per-second 1000
sleep 0.3
run_case healthy "$(rconf 18007 healthy)"
kill "$PID_r"

# factomd 6.0.0 (no diagnostics): the set from authorities[].status
start_sim o $PORT_O --version 6.0.0
run_case oldrelease "$(rconf $PORT_O oldrelease)"
T_FILE=$LUATEST run_case oldrelease "factomd = { url = \"$(url $PORT_O oldrelease)\" }"
# ... and one whose authorities name no federated or audit server: a warning
# that names the release
printf '[{"chainid": "888888%s", "signingkey": "%s", "status": "none"}]\n' \
    "$(printf x | sha256sum | cut -c7-64)" "$(printf y | sha256sum | cut -c1-64)" >"$T_TMP/none.json"
python3 "$SIM" ctl --state-file "$T_TMP/o.state" healthy >/dev/null
cp "$T_TMP/authorities.json" "$T_TMP/authorities.json.saved"
cp "$T_TMP/none.json" "$T_TMP/authorities.json"
run_case ancient "$(rconf $PORT_O ancient)"
expect_match "a warning names the release" "$(cat "$T_TMP/ancient.log")" \
    'warn.*authset: factomd 6\.0\.0 gives no authority set \(neither diagnostics\.authset nor authorities\[\]\.status\)'
cp "$T_TMP/authorities.json.saved" "$T_TMP/authorities.json"

# no audit servers: diagnostics.authset.audits is null
printf '[{"chainid": "%s", "signingkey": "%s", "status": "federated"}, {"chainid": "%s", "signingkey": "%s", "status": "federated"}]\n' \
    "$(sed -n 2p "$T_TMP/authorities.json" | grep -o '888888[0-9a-f]*')" "$(sed -n 2p "$T_TMP/authorities.json" | grep -o '"signingkey": "[0-9a-f]*' | cut -c16-)" \
    "$(sed -n 3p "$T_TMP/authorities.json" | grep -o '888888[0-9a-f]*')" "$(sed -n 3p "$T_TMP/authorities.json" | grep -o '"signingkey": "[0-9a-f]*' | cut -c16-)" \
    >"$T_TMP/feds.json"
start_sim n $PORT_N --authorities "$T_TMP/feds.json"
run_case noaudits "$(rconf $PORT_N noaudits "" "min_authorities = 1")" # two feds: a test network
T_FILE=$LUATEST run_case noaudits "factomd = { url = \"$(url $PORT_N noaudits)\" }"

# the identity factomd runs (diagnostics) against factomd.conf's
read -r _ ICHAIN ISEED IPUB < <(grep -v '^#' "$TOP/tests/fixtures/identities.txt" | head -n 1)
printf '[app]\nIdentityChainID = %s\nLocalServerPrivKey = %s\n' "$ICHAIN" "$ISEED" >"$T_TMP/id-factomd.conf"
chmod 600 "$T_TMP/id-factomd.conf"
printf '[{"chainid": "%s", "signingkey": "%s", "status": "federated"}]\n' "$ICHAIN" "$IPUB" >"$T_TMP/id-auth.json"
# a test network of one authority: below the default reboot.min_authorities
iconf() { rconf $PORT_I "$1" "conf = \"$T_TMP/id-factomd.conf\", network = \"t\"" "min_authorities = 1"; }
start_sim i $PORT_I --authorities "$T_TMP/id-auth.json" --identity "$ICHAIN" --pubkey "$IPUB"
run_case idsame "$(iconf idsame)"
kill "$PID_i"; wait "$PID_i" 2>/dev/null
start_sim i $PORT_I --authorities "$T_TMP/id-auth.json" --identity "888888${IPUB:6}" --pubkey "$IPUB"
run_case iddiff "$(iconf iddiff)"
expect_match "iddiff: a warning" "$(cat "$T_TMP/iddiff.log")" 'warn.*identity: factomd runs identity 888888'
kill "$PID_i"; wait "$PID_i" 2>/dev/null
start_sim i $PORT_I --authorities "$T_TMP/id-auth.json" --identity "$ICHAIN" --pubkey "$ISEED"
run_case keydiff "$(iconf keydiff)"
kill "$PID_i"; wait "$PID_i" 2>/dev/null
T_FILE=

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
