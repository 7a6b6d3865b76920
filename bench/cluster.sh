#!/usr/bin/env bash
# bench/cluster.sh N: decision latency of the Factom bundle on N real serf
# agents (127.0.0.1), against the time one plain non-coalesced event takes to
# reach every node's handler in the same run, and the spread of the restart
# start times. For comparison it also times the floor of any protocol that
# collects votes and then spreads them: two ping query rounds (a quorum, then
# every node; bench/two_rounds.py). Prints "RESULT name value" lines for
# bench/run.
set -u
cd "$(dirname "$0")/.."
N=${1:-5}
. tests/lib.sh
. tests/cluster/lib.bash
. tests/cluster/factom_net.bash
# keep_logs: with KEEP_LOGS=DIR, copy the node and agent logs (and the
# proposals sent) there, whether the run ends well or not.
keep_logs() {
    [ -n "${KEEP_LOGS:-}" ] || return 0
    mkdir -p "$KEEP_LOGS" && cp "$T_TMP"/n*.log "$T_TMP"/agent-*.log "$T_TMP"/propose.out "$KEEP_LOGS"/ 2> /dev/null
    return 0
}
die() { echo "bench/cluster: $*" >&2; keep_logs; exit 2; }
cp "$SERFHAND" "$T_TMP/serfhand" && SERFHAND=$T_TMP/serfhand

# log line time (UTC, ms) -> seconds of the day
tod() { awk '{ split(substr($1, 12, 12), t, ":"); printf "%.3f\n", t[1] * 3600 + t[2] * 60 + t[3] }'; }
now_tod() { date -u +%H:%M:%S.%N | awk '{ split($1, t, ":"); printf "%.3f\n", t[1] * 3600 + t[2] * 60 + t[3] }'; }

fnet_init 8200 8600 18500 || die "cannot sign the bundle"
fnet_authorities "$N"
for i in $(seq 1 "$N"); do
    fnet_node "$i" authority
    fnet_conf "$i" stall=3 cooldown=30
    echo "log = { target = \"$T_TMP/n$i.log\", level = \"debug\" }" >> "$T_TMP/n$i.conf"
done
fnet_wait_sims || die "a simulator did not start"
for i in $(seq 1 "$N"); do fnet_start "$i"; done
wait_for 60 members_alive 8601 "$N" || die "the agents did not form a cluster"
sleep 2 # let the join events settle

# logs_have COUNT TEXT: true when the node logs hold COUNT lines with TEXT.
# One grep per call: the waits below poll it every 0.25 s, and each process
# they start competes for the CPU with the agents being measured (the times
# themselves come from the log lines, not from the polling).
logs_have() { [ "$(grep -hcF -- "$2" "$T_TMP"/n*.log | awk '{ s += $1 } END { print s + 0 }')" -ge "$1" ]; }
wait_logs() { # SECONDS COUNT TEXT
    local i=0
    while [ "$i" -lt $(($1 * 4)) ]; do logs_have "$2" "$3" && return 0; sleep 0.25; i=$((i + 1)); done
    return 1
}

# Rounds alternate plain events and one proposal (from n1, n2, ..., then n1
# again: a decision closes its proposer's open proposal on every node), so
# both see the same load; the ratio is median against median. Fifteen rounds:
# with nine, the 20-agent ratio moved between 2.2 and 2.8 from run to run
# with the same code (single decisions range from 0.9 to 1.7 s).
ROUNDS=${DECIDE_ROUNDS:-15}
IN=$((15 + ROUNDS * (7 + N / 5))) # the first restart comes after the last round (a round: 8-11 s)
for i in $(seq 1 "$N"); do fnet_sim "$i" stalled; done
sleep 5
# Every node must see the stall before the rounds; under the start-up load a
# node's status can come back unknown (its factomd call timed out): ask again.
for try in 1 2 3 4; do
    st=$("$SERFHAND" -c "$T_TMP/n1.conf" status --timeout-ms 8000 2>&1)
    sick=$(printf '%s\n' "$st" | grep -c ' sick ')
    [ "$sick" -eq "$N" ] && break
    [ "$try" -lt 4 ] || die "only $sick of $N nodes are sick:
$st"
    sleep 3
done
sleep 2 # let the status query's handler runs drain
plain="" floor="" decide=""
for r in $(seq 1 "$ROUNDS"); do
    # What the every-minute tick timer does on each node: record its health
    # (the nodes vote on that record, docs/protocol.md section 5).
    for i in $(seq 1 "$N"); do "$SERFHAND" -c "$T_TMP/n$i.conf" tick --name "n$i" > /dev/null 2>&1; done
    sleep 1
    # 1. Plain events: from `serf event` to the last node's handler run.
    #    Three a round: one gossip hop waits 0-200 ms for the sender's next
    #    gossip tick, so at 5 agents single samples range from 0.11 to
    #    0.31 s, and a median of five moved the ratio by 0.5 between runs.
    for k in 1 2 3; do
        e="bench-plain-$r-$k"
        t0=$(now_tod)
        serf event -rpc-addr=127.0.0.1:8601 -coalesce=false "$e" x > /dev/null
        wait_logs 30 "$N" "no handler handlers/user/$e.lua" || die "plain event $e did not reach every node"
        last=$(grep -h "no handler handlers/user/$e.lua" "$T_TMP"/n*.log | tod | sort -n | tail -n 1)
        plain="$plain $(awk -v a="$t0" -v b="$last" 'BEGIN { printf "%.3f", b - a }')"
        sleep 1
    done
    # 2. The floor of any vote-then-relay protocol: a query until a quorum
    #    answered, then one until every node did, with the trivial ping handler.
    f=$(python3 bench/two_rounds.py 127.0.0.1:8601 "$N" 2>> "$T_TMP/two_rounds.err") ||
        die "two ping rounds failed: $(cat "$T_TMP/two_rounds.err")"
    floor="$floor $f"
    sleep 1
    # 3. Every node stalled; from `serfhand propose` to the last node's decision.
    t0=$(now_tod)
    out=$("$SERFHAND" -c "$T_TMP/n$(((r - 1) % N + 1)).conf" propose restart --in "${IN}s" --ttl "$((IN + 60))s" 2>&1) ||
        die "propose failed: $out"
    pid=$(printf '%s\n' "$out" | sed -n 's/^proposal \([0-9a-f:]*\): .*/\1/p')
    printf 'round %s, sent at %s:\n%s\n' "$r" "$t0" "$out" >> "$T_TMP/propose.out"
    wait_logs 60 "$N" ": decided $pid" || die "not every node decided $pid"
    last=$(grep -h ": decided $pid" "$T_TMP"/n*.log | tod | sort -n | tail -n 1)
    decide="$decide $(awk -v a="$t0" -v b="$last" 'BEGIN { printf "%.3f", b - a }')"
    # let every agent's queue drain (each node sees every relay query) before the next round
    bundles=$(printf '%s\n' "$out" | sed -n 's/^relay: [0-9]* votes sent on in \([0-9]*\) quer.*/\1/p')
    wait_logs 60 $((N * ${bundles:-1})) "votes for $pid: " ||
        die "the votes for $pid did not reach every node"
    sleep 1
done
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
plain_med=$(median $plain)
decide_med=$(median $decide)
floor_med=$(median $floor)
# The first proposal's restart (later ones are inside the cooldown). Its start
# time is when serfhand's executor starts the command (it logs "running ...
# at T" right before exec); the test double's own first line also waits for
# the CPU, shared here by N agents and N simulators.
wait_for $((IN + 60)) sh -c "[ \$(wc -l < '$T_TMP/restarts') -ge $N ]" || die "not every node restarted"
spread=$(grep -h ': running .* at [0-9.]*$' "$T_TMP"/n*.log | sed 's/.* at //' | sort -n |
    awk 'NR == 1 { f = $1 } { l = $1 } END { printf "%.0f", (l - f) * 1000 }')
cmd_spread=$(sort -n "$T_TMP/restarts" | awk 'NR == 1 { f = $1 } { l = $1 } END { printf "%.0f", (l - f) * 1000 }')
fnet_stop_executors

echo "plain event to all $N nodes: runs$plain s, median $plain_med s"
echo "two ping query rounds (quorum, then all $N): runs$floor s, median $floor_med s"
[ -s "$T_TMP/two_rounds.err" ] && echo "two ping query rounds tried again after: $(cat "$T_TMP/two_rounds.err")"
echo "propose to the last of $N decisions: runs$decide s, median $decide_med s"
echo "restart start spread on $N nodes: $spread ms (first line of the restart command: $cmd_spread ms)"
echo "RESULT decision_ratio_$N $(awk -v d="$decide_med" -v p="$plain_med" 'BEGIN { printf "%.2f", d / p }')"
echo "RESULT spread_ms_$N $spread"
echo "RESULT floor_ratio_$N $(awk -v f="$floor_med" -v p="$plain_med" 'BEGIN { printf "%.2f", f / p }')"
keep_logs
