# announce: `serfhand announce` checks the published bundle before it sends
# (issue 13, item 11): it fetches BASE/MANIFEST.json and refuses, naming the
# HTTP status or the field that differs, when BASE does not serve the very
# manifest the signed pointer names; and it does so before it contacts the
# agent. A stand-in agent (a bare listener) records whether it was contacted.
# Ports: tests/sim/bundle_server.py on 127.0.0.1:18227, the listener on 18228.
. "$(dirname "$0")/../lib.sh"

PORT=18227
AGENT=18228
URL=http://127.0.0.1:$PORT
PUB=$T_TMP/pub
"$SERFHAND" keygen -W -p "$T_TMP/k.pub" -s "$T_TMP/k.sec" > /dev/null
cat > "$T_TMP/c.conf" <<CONF
state_dir = "$T_TMP/state"
trust = { keys = { "$T_TMP/k.pub" } }
log = { target = "$T_TMP/log" }
serf = { rpc_addr = "127.0.0.1:$AGENT", timeout_ms = 300 }
update = { timeout_ms = 1500 }
CONF
# mkb DIR NAME VERSION [EXPIRES]: a signed bundle under $PUB.
mkb() {
    mkdir -p "$PUB/$1/handlers/user"
    printf 'return function(ev) end\n' > "$PUB/$1/handlers/user/ping.lua"
    "$SERFHAND" -c "$T_TMP/c.conf" sign -s "$T_TMP/k.sec" --name "$2" --version "$3" \
        --expires "${4:-30d}" "$PUB/$1" > /dev/null || fail "signing $1"
}
mkb b1 demo 1
mkb b2 demo 2
mkb bother other 2
cp -r "$PUB/b2" "$PUB/b2again"   # demo 2 again, signed anew: another manifest
rm "$PUB/b2again/MANIFEST.json"
mkb b2again demo 2 29d
mkdir -p "$PUB/junk" && printf 'not json\n' > "$PUB/junk/MANIFEST.json"

python3 "$TOP/tests/sim/bundle_server.py" $PORT "$PUB" 2> "$T_TMP/server.log" &
track $!
# the stand-in agent: counts connections, answers nothing
python3 - "$AGENT" "$T_TMP/agent.log" 2> /dev/null <<'PY' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
while True:
    c, _ = s.accept()
    open(sys.argv[2], "a").write("connected\n")
    c.close()
PY
track $!
check "the bundle server is up" wait_for 10 sh -c "curl -sf -o /dev/null $URL/ok/b1/MANIFEST.json"
check "the stand-in agent is up" wait_for 10 sh -c "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", $AGENT))'"
sleep 0.2
: > "$T_TMP/agent.log"

# ann NAME URL DIR [args]: announce (sent, not printed); sets OUT, RC, and
# checks the agent was not contacted and nothing reached stdout.
refused() {
    local n=$1 u=$2 d=$3; shift 3
    : > "$T_TMP/agent.log"
    OUT=$("$SERFHAND" -c "$T_TMP/c.conf" announce -s "$T_TMP/k.sec" --url "$u" "$@" "$PUB/$d" 2> "$T_TMP/err"); RC=$?
    ERR=$(cat "$T_TMP/err")
    expect_eq "$n: nothing printed" "$OUT" ""
    expect_match "$n: nothing was sent" "$ERR" "nothing was sent"
    sleep 0.1
    check "$n: the agent was not contacted" test ! -s "$T_TMP/agent.log"
}

# --- the URL serves the bundle: announce goes on to the agent ------------------
: > "$T_TMP/agent.log"
OUT=$("$SERFHAND" -c "$T_TMP/c.conf" announce -s "$T_TMP/k.sec" --url "$URL/ok/b2/" "$PUB/b2" 2>&1); RC=$?
check "a matching URL passes the check and announce contacts the agent" wait_for 3 test -s "$T_TMP/agent.log"
expect_match "(the stand-in agent does not answer: a serf error, exit 1)" "$RC:$OUT" "^1:serfhand announce: serf: "
OUT=$("$SERFHAND" -c "$T_TMP/c.conf" announce --print -s "$T_TMP/k.sec" --url "$URL/ok/b2" "$PUB/b2" 2>&1); RC=$?
expect_eq "--print after a passed check: exit 0" "$RC" 0
expect_match "--print prints the pointer" "$OUT" '"n":"demo","v":2'

# --- refusals ------------------------------------------------------------------
refused "404" "$URL/ok/nowhere" b2
expect_eq "404: exit 1" "$RC" 1
expect_match "404: names the URL and the status" "$ERR" "GET $URL/ok/nowhere/MANIFEST.json: HTTP 404: the URL does not serve the bundle"
refused "500" "$URL/m500/b2" b2
expect_eq "500: exit 1" "$RC" 1
expect_match "500: names the URL and the status" "$ERR" "GET $URL/m500/b2/MANIFEST.json: HTTP 500"
refused "connection refused" "http://127.0.0.1:1/b2" b2
expect_eq "connection refused: exit 1" "$RC" 1
expect_match "connection refused: names the URL, says there was no HTTP status" "$ERR" \
    "GET http://127.0.0.1:1/b2/MANIFEST.json: .*([Cc]onnect|refused).*, no HTTP status"
refused "another version" "$URL/ok/b1" b2
expect_eq "another version: exit 3" "$RC" 3
expect_match "another version: names the field" "$ERR" "HTTP 200, but it is version 1, $PUB/b2 is version 2"
refused "another bundle" "$URL/ok/bother" b2
expect_eq "another bundle: exit 3" "$RC" 3
expect_match "another bundle: names the field" "$ERR" "HTTP 200, but it is bundle other, $PUB/b2 is bundle demo"
refused "the same version signed anew" "$URL/ok/b2" b2again
expect_eq "the same version signed anew: exit 3" "$RC" 3
expect_match "the same version signed anew: says the manifest differs" "$ERR" \
    "bundle demo version 2, but another manifest \(hash [0-9a-f]{16}\.\.\., .*b2again has [0-9a-f]{16}\.\.\.\)"
refused "not a manifest" "$URL/ok/junk" b2
expect_eq "not a manifest: exit 3" "$RC" 3
expect_match "not a manifest: says so" "$ERR" "HTTP 200, but not a valid manifest"
refused "--print is checked too" "$URL/ok/b1" b2 --print
expect_eq "--print is checked too: exit 3" "$RC" 3

# --- the escape hatch: a URL only the nodes can reach ----------------------------
OUT=$("$SERFHAND" -c "$T_TMP/c.conf" announce --print --no-check -s "$T_TMP/k.sec" --url "http://127.0.0.1:1/b2" "$PUB/b2" 2>&1); RC=$?
expect_eq "--no-check skips the fetch" "$RC" 0
expect_match "and prints the pointer" "$OUT" '"u":"http://127.0.0.1:1/b2"'

finish
