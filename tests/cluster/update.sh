# update: a signed rollout over a real Serf cluster. Three agents run bundle
# version 1; `serfhand announce` sends serfhand-update; the two nodes with
# update.auto = true fetch version 2 from a local HTTP server, verify and
# switch within a bounded time (measured and printed); `serf query
# serfhand-check` shows it; the node with update.auto = false keeps version 1.
# Ports: bind 8101-8103, RPC 8501-8503, HTTP 18211.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib.bash"

PORT=18211
URL=http://127.0.0.1:$PORT/ok
PUB=$T_TMP/pub
BOUND_MS=${UPDATE_BOUND_MS:-15000}
"$SERFHAND" keygen -W -p "$T_TMP/k.pub" -s "$T_TMP/k.sec" > /dev/null
# mkb DIR VERSION: bundle "demo" whose user handler `ping` logs its version.
mkb() {
    local d=$PUB/$1
    mkdir -p "$d/handlers/user"
    cat > "$d/handlers/user/ping.lua" <<LUA
local log = require "serfhand.log"
return function(ev) log.info("ping handled by demo v$2 on " .. ev.self.name) end
LUA
    "$SERFHAND" -c "$T_TMP/n1.conf" sign -s "$T_TMP/k.sec" --name demo --version "$2" "$d" > /dev/null ||
        fail "signing $1"
}
for i in 1 2 3; do
    auto=true; [ "$i" = 3 ] && auto=false
    cat > "$T_TMP/n$i.conf" <<CONF
state_dir = "$T_TMP/state-n$i"
trust = { keys = { "$T_TMP/k.pub" } }
log = { target = "$T_TMP/n$i.log", level = "debug" }
serf = { rpc_addr = "127.0.0.1:850$i" }
update = { auto = $auto, allow_http = true, sources = { "$URL" } }
CONF
done
mkb b1 1
mkb b2 2
for i in 1 2 3; do
    check "n$i: version 1 installed" sh -c "'$SERFHAND' -c '$T_TMP/n$i.conf' install '$PUB/b1' > /dev/null"
done

python3 "$TOP/tests/sim/bundle_server.py" $PORT "$PUB" 2> "$T_TMP/server.log" &
track $!
start_agent n1 8101 8501 "$T_TMP/n1.conf"
wait_rpc 8501
start_agent n2 8102 8502 "$T_TMP/n2.conf" 8101
start_agent n3 8103 8503 "$T_TMP/n3.conf" 8101
check "three members are alive" wait_for 20 members_alive 8501 3
check "the bundle server is up" wait_for 10 sh -c "curl -sf -o /dev/null $URL/b2/MANIFEST.json"

# version_of JSON NODE: the version serfhand-check reports for NODE.
version_of() {
    printf '%s' "$1" | python3 -c 'import json,sys; r=json.load(sys.stdin)["Responses"]; print(json.loads(r[sys.argv[1]])["version"] if sys.argv[1] in r else "none")' "$2" 2>/dev/null
}
q=$(serf query -rpc-addr=127.0.0.1:8501 -format=json -timeout=3s serfhand-check 2>&1)
for i in 1 2 3; do
    expect_eq "before: serfhand-check shows version 1 on n$i" "$(version_of "$q" n$i)" 1
done

# The rollout: announce through n1's agent, watch every node's current link.
t0=$(date +%s%N)
out=$("$SERFHAND" -c "$T_TMP/n1.conf" announce -s "$T_TMP/k.sec" --url "$URL/b2" "$PUB/b2" 2>&1); rc=$?
expect_eq "announce succeeds" "$rc" 0
expect_match "announce reports the pointer and its size" "$out" "announced bundle demo version 2 .* \([0-9]+ of 456 payload bytes\)"
done_ms=""
while :; do
    now=$(date +%s%N)
    n1=$(readlink "$T_TMP/state-n1/current"); n2=$(readlink "$T_TMP/state-n2/current")
    if [ "${n1%%-*}" = bundles/2 ] && [ "${n2%%-*}" = bundles/2 ]; then
        done_ms=$(((now - t0) / 1000000)); break
    fi
    [ $(((now - t0) / 1000000)) -gt "$BOUND_MS" ] && break
    sleep 0.02
done
if [ -n "$done_ms" ]; then
    echo "rollout: announce -> version 2 active on both update.auto nodes in $done_ms ms (bound $BOUND_MS ms)"
    ok "every update.auto node switched within $BOUND_MS ms"
else
    fail "every update.auto node switched within $BOUND_MS ms" "n1=$n1 n2=$n2"
fi
# Where the time goes, from the nodes' own log timestamps (ms after announce).
for i in 1 2; do
    wait_for 5 grep -q "install: installed bundle demo version 2" "$T_TMP/n$i.log"
    python3 - "$T_TMP/n$i.log" "$t0" n$i <<'PY'
import sys, datetime
log, t0, node = sys.argv[1], int(sys.argv[2]) / 1e9, sys.argv[3]
def at(pat):  # the last line with pat
    t = float("nan")
    for line in open(log):
        if pat in line:
            ts = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
            t = (ts.replace(tzinfo=datetime.timezone.utc).timestamp() - t0) * 1000
    return t
print("%s: announcement handled at +%.0f ms, install started at +%.0f ms, switched at +%.0f ms"
      % (node, at("detached install from"), at("install: from"), at("install: installed bundle demo version 2")))
PY
done
q=$(serf query -rpc-addr=127.0.0.1:8503 -format=json -timeout=3s serfhand-check 2>&1)
expect_eq "after: serfhand-check shows version 2 on n1" "$(version_of "$q" n1)" 2
expect_eq "after: serfhand-check shows version 2 on n2" "$(version_of "$q" n2)" 2
expect_eq "after: n3 (update.auto = false) keeps version 1" "$(version_of "$q" n3)" 1
expect_match "after: serfhand-check is ok on n1" "$q" '\\"ok\\":true'
check "n3 logged the announcement without installing" \
    grep -q "update.auto is off, so nothing is installed" "$T_TMP/n3.log"
for i in 1 2; do
    check "n$i logged the detached install" grep -q "detached install from $URL/b2 started" "$T_TMP/n$i.log"
    check "n$i: the installer logged its success" wait_for 5 grep -q "install: installed bundle demo version 2" "$T_TMP/n$i.log"
done

# The new code runs: a user event is handled by version 2 on n1, n2, and by 1 on n3.
serf event -rpc-addr=127.0.0.1:8502 -coalesce=false ping x > /dev/null
check "n1 runs version 2" wait_for 10 grep -q "ping handled by demo v2 on n1" "$T_TMP/n1.log"
check "n2 runs version 2" wait_for 10 grep -q "ping handled by demo v2 on n2" "$T_TMP/n2.log"
check "n3 still runs version 1" wait_for 10 grep -q "ping handled by demo v1 on n3" "$T_TMP/n3.log"

# A replay of the same announcement (a new send, same pointer) is a no-op.
"$SERFHAND" -c "$T_TMP/n2.conf" announce -s "$T_TMP/k.sec" --url "$URL/b2" "$PUB/b2" > /dev/null 2>&1
check "a repeated announcement is a logged no-op on n1" wait_for 10 grep -q "already at this version, nothing to do" "$T_TMP/n1.log"
check "no agent blocked or reported a handler error" \
    sh -c "! grep -h 'Error invoking script' '$T_TMP'/agent-n?.log"
check "no node logged an error" sh -c "! grep -h ' error: ' '$T_TMP'/n?.log"

finish
