#!/usr/bin/env bash
# bench/cluster.sh N: decision latency of the Factom bundle on N real serf
# agents (127.0.0.1), against the time one plain non-coalesced event takes to
# reach every node's handler in the same run, and the spread of the restart
# start times. Prints "RESULT name value" lines for bench/run.
set -u
cd "$(dirname "$0")/.."
N=${1:-5}
. tests/lib.sh
. tests/cluster/lib.bash
. tests/cluster/factom_net.bash
die() { echo "bench/cluster: $*" >&2; exit 2; }
cp "$SERFHAND" "$T_TMP/serfhand" && SERFHAND=$T_TMP/serfhand

# log line time (UTC, ms) -> seconds of the day
tod() { awk '{ split(substr($1, 12, 12), t, ":"); printf "%.3f\n", t[1] * 3600 + t[2] * 60 + t[3] }'; }
now_tod() { date -u +%H:%M:%S.%N | awk '{ split($1, t, ":"); printf "%.3f\n", t[1] * 3600 + t[2] * 60 + t[3] }'; }

fnet_init 8200 8600 18500 || die "cannot sign the bundle"
fnet_authorities "$N"
for i in $(seq 1 "$N"); do
    fnet_node "$i" authority
    fnet_conf "$i" stall=3
    echo "log = { target = \"$T_TMP/n$i.log\", level = \"debug\" }" >> "$T_TMP/n$i.conf"
done
fnet_wait_sims || die "a simulator did not start"
for i in $(seq 1 "$N"); do fnet_start "$i"; done
wait_for 60 members_alive 8601 "$N" || die "the agents did not form a cluster"
sleep 2 # let the join events settle

# 1. A plain event: from `serf event` to the last node's handler run.
plain=""
for r in 1 2 3; do
    t0=$(now_tod)
    serf event -rpc-addr=127.0.0.1:8601 -coalesce=false "bench-plain-$r" x > /dev/null
    wait_for 30 sh -c "[ \$(cat '$T_TMP'/n*.log | grep -c 'no handler handlers/user/bench-plain-$r.lua') -ge $N ]" ||
        die "plain event $r did not reach every node"
    last=$(grep -h "no handler handlers/user/bench-plain-$r.lua" "$T_TMP"/n*.log | tod | sort -n | tail -n 1)
    plain="$plain $(awk -v a="$t0" -v b="$last" 'BEGIN { printf "%.3f", b - a }')"
done
plain_med=$(printf '%s\n' $plain | sort -n | sed -n 2p)

# 2. Every node stalled; from `serfhand propose` to the last node's decision.
# Sickness is checked with one status query after the threshold has passed:
# polling would fill every agent's serial handler queue with status queries.
for i in $(seq 1 "$N"); do fnet_sim "$i" stalled; done
sleep 5
sick=$("$SERFHAND" -c "$T_TMP/n1.conf" status --timeout-ms 8000 2>/dev/null | grep -c ' sick ')
[ "$sick" -eq "$N" ] || die "only $sick of $N nodes are sick"
sleep 2 # let the status query's handler runs drain
t0=$(now_tod)
"$SERFHAND" -c "$T_TMP/n1.conf" propose restart --in 10s > /dev/null 2>&1 || die "propose failed"
wait_for 60 sh -c "[ \$(cat '$T_TMP'/n*.log | grep -c ': decided ') -ge $N ]" || die "not every node decided"
last=$(grep -h ': decided ' "$T_TMP"/n*.log | tod | sort -n | tail -n 1)
echo "propose issued at $t0 (seconds of the UTC day)"
decide=$(awk -v a="$t0" -v b="$last" 'BEGIN { printf "%.3f", b - a }')
wait_for 60 sh -c "[ \$(wc -l < '$T_TMP/restarts') -ge $N ]" || die "not every node restarted"
# The start time of a restart is when serfhand's executor starts the command
# (it logs "running ... at T" right before exec); the test double's own first
# line also waits for the CPU, shared here by N agents and N simulators.
spread=$(grep -h ': running .* at [0-9.]*$' "$T_TMP"/n*.log | sed 's/.* at //' | sort -n |
    awk 'NR == 1 { f = $1 } { l = $1 } END { printf "%.0f", (l - f) * 1000 }')
cmd_spread=$(sort -n "$T_TMP/restarts" | awk 'NR == 1 { f = $1 } { l = $1 } END { printf "%.0f", (l - f) * 1000 }')
fnet_stop_executors

echo "plain event to all $N nodes: runs$plain s, median $plain_med s"
echo "propose to the last of $N decisions: $decide s"
echo "restart start spread on $N nodes: $spread ms (first line of the restart command: $cmd_spread ms)"
echo "RESULT decision_ratio_$N $(awk -v d="$decide" -v p="$plain_med" 'BEGIN { printf "%.2f", d / p }')"
echo "RESULT spread_ms_$N $spread"
if [ -n "${KEEP_LOGS:-}" ]; then mkdir -p "$KEEP_LOGS" && cp "$T_TMP"/n*.log "$T_TMP"/agent-*.log "$KEEP_LOGS"/; fi
