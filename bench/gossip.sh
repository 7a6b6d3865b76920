#!/usr/bin/env bash
# bench/gossip.sh [N] [EVENTS]: how Serf itself delivers user events, without
# serfhand. N agents on 127.0.0.1 (default 6, as in the cluster tests); one of
# them sends EVENTS non-coalesced events (default 300) of 400 bytes, 0.1 s
# apart. A shell handler on every node records when each arrives. Reports, per
# node, the deliveries that gossip missed (later than 2 s) and how long Serf's
# TCP push/pull took to repair them. The cluster tests' waits for "every node"
# (GOSSIP in tests/cluster/factom_restart.sh) and docs/protocol.md section 9
# rest on these figures. Ports 8241-8260 and 8641-8660.
set -u
cd "$(dirname "$0")/.." || exit 2
N=${1:-6}
EVENTS=${2:-300}
case "$N" in [2-9] | 1[0-9] | 20) ;; *) echo "bench/gossip: N must be 2 to 20 agents, not '$N'" >&2; exit 2 ;; esac
case "$EVENTS" in '' | *[!0-9]* | 0*) echo "bench/gossip: EVENTS must be a positive integer, not '$EVENTS'" >&2; exit 2 ;; esac
. tests/lib.sh
. tests/cluster/lib.bash

cat > "$T_TMP/handler" <<SH
#!/bin/sh
read -r k rest
echo "\$(date +%s.%N) \$k" >> "$T_TMP/\$SERF_SELF_NAME.got"
SH
chmod +x "$T_TMP/handler"
for i in $(seq 1 "$N"); do
    args=(agent -node="g$i" -bind="127.0.0.1:$((8240 + i))" -rpc-addr="127.0.0.1:$((8640 + i))"
        -event-handler "user=$T_TMP/handler")
    [ "$i" -gt 1 ] && args+=(-join 127.0.0.1:8241)
    serf "${args[@]}" > "$T_TMP/agent-g$i.log" 2>&1 &
    track $!
done
wait_for 30 members_alive 8641 "$N" || { echo "bench/gossip: the agents did not form a cluster" >&2; exit 2; }
sleep 2

pad=$(printf '%0400d' 0)
echo "== $N agents, $EVENTS events of 400 bytes, 0.1 s apart"
for k in $(seq 1 "$EVENTS"); do
    echo "$(date +%s.%N) $k" >> "$T_TMP/sent"
    serf event -rpc-addr=127.0.0.1:8641 -coalesce=false ev "$k $pad" > /dev/null || exit 2
    sleep 0.1
done
# Push/pull runs every 30 s per node: give the repairs up to three rounds.
delivered() { [ "$(cat "$T_TMP"/g*.got 2>/dev/null | wc -l)" -ge $((N * EVENTS)) ]; }
wait_for 100 delivered

python3 - "$T_TMP" "$N" "$EVENTS" <<'PY'
import sys
tmp, n, events = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sent = {}
for line in open(f"{tmp}/sent"):
    t, k = line.split()
    sent[k] = float(t)
late, missing = [], 0
for i in range(2, n + 1):  # g1 sent them: its own copies never travel
    got = {}
    try:
        for line in open(f"{tmp}/g{i}.got"):
            t, k = line.split()
            got.setdefault(k, float(t) - sent[k])
    except FileNotFoundError:
        pass
    missing += events - len(got)
    late += [(d, f"g{i}", k) for k, d in got.items() if d > 2]
total = (n - 1) * events
print(f"deliveries to the other {n - 1} nodes: {total}")
rate = f" (1 in {total // len(late)})" if late else ""
print(f"missed by gossip, repaired by push/pull: {len(late)}{rate}")
for d, node, k in sorted(late):
    print(f"  event {k} reached {node} after {d:.1f} s")
print(f"never delivered: {missing}")
print(f"RESULT gossip_missed {len(late)}")
print(f"RESULT gossip_repair_max_s {max((d for d, _, _ in late), default=0):.1f}")
print(f"RESULT never_delivered {missing}")
PY
