#!/usr/bin/env bash
# examples/demo.sh: a local Serf cluster running serfhand. Starts three
# `serf agent`s on 127.0.0.1 with the example bundle in examples/hello,
# sends a user event and a query, shows what every node's handler did, and
# stops everything it started.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SERFHAND=$PWD/$BUILD/serfhand
TMP=$(mktemp -d)
PIDS=""
stop() {
    for p in $PIDS; do kill "$p" 2>/dev/null; done
    for p in $PIDS; do wait "$p" 2>/dev/null; done
    rm -rf "$TMP"
}
trap stop EXIT
step() { printf '\n== %s\n' "$*"; }

step "signing the example bundle (examples/hello) with a new key"
cp -r examples/hello "$TMP/bundle"
"$SERFHAND" keygen -W -p "$TMP/demo.pub" -s "$TMP/demo.sec"
"$SERFHAND" sign -s "$TMP/demo.sec" --version 1 "$TMP/bundle"

step "starting 3 serf agents on 127.0.0.1 (handler: $SERFHAND)"
for i in 1 2 3; do
    cat > "$TMP/n$i.conf" <<CONF
bundle = "$TMP/bundle"
trust = { keys = { "$TMP/demo.pub" } }
state_dir = "$TMP/state$i"
log = { target = "$TMP/n$i.log" }
CONF
    join=""
    [ "$i" -gt 1 ] && join="-join=127.0.0.1:7921"
    serf agent -node="node$i" -bind="127.0.0.1:792$i" -rpc-addr="127.0.0.1:742$i" \
        -tag role="role$i" $join -event-handler "*=$SERFHAND -c $TMP/n$i.conf" \
        > "$TMP/agent$i.log" 2>&1 &
    PIDS="$PIDS $!"
    sleep 0.3
done
for _ in $(seq 100); do
    [ "$(serf members -rpc-addr=127.0.0.1:7421 -status=alive 2>/dev/null | wc -l)" -eq 3 ] && break
    sleep 0.1
done
serf members -rpc-addr=127.0.0.1:7421

step "serf event -coalesce=false greet 'hello, cluster'"
serf event -rpc-addr=127.0.0.1:7422 -coalesce=false greet 'hello, cluster'
sleep 1.5

step "serf query whoami 'who are you?'"
serf query -rpc-addr=127.0.0.1:7423 -timeout=1s whoami 'who are you?'

step "serf query serfhand-check (answered by the host itself)"
serf query -rpc-addr=127.0.0.1:7421 -timeout=1s serfhand-check

step "what each node's handlers logged"
for i in 1 2 3; do
    sed -e "s/^[^ ]* serfhand\[[0-9]*\] //" "$TMP/n$i.log" | sed "s/^/node$i: /"
done

ok=1
for i in 1 2 3; do grep -q "greet #" "$TMP/n$i.log" || ok=0; done
step "stopping the agents"
if [ "$ok" = 1 ]; then
    echo "demo: success: every node handled the event and answered the query"
else
    echo "demo: FAILED: not every node handled the event (see above)"
    exit 1
fi
