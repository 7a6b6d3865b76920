#!/usr/bin/env bash
# examples/demo.sh: a stalled Factom network restarts itself, with no central
# party. Starts 5 `serf agent`s on 127.0.0.1, each running serfhand with the
# signed Factom bundle and a simulated factomd that holds an authority
# identity; freezes every factomd; waits until the nodes see the stall;
# proposes a restart; prints the timeline (proposal, votes, decisions,
# restarts at the agreed time) and the recovery; stops everything it started.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
. tests/lib.sh
. tests/cluster/lib.bash
. tests/cluster/factom_net.bash
N=5
T0=$(date +%s.%N)
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
step() { printf '\n== [%5s s] %s\n' "$(elapsed)" "$*"; }
die() { echo; echo "demo: FAILED: $*"; exit 1; }
status() { "$SERFHAND" -c "$T_TMP/n1.conf" status --timeout-ms 4000 2>&1; }
all_sick() { [ "$(status | grep -c ' sick ')" -eq "$N" ]; }
all_healthy() { [ "$(status | grep -c ' healthy ')" -eq "$N" ]; }

# Every factomd minute is 1 s here (10 s blocks), and 3 minutes without a new
# minute make a node sick; the restart is agreed for 4 s after the proposal.
step "signing the Factom bundle, starting $N simulated factomd nodes and $N serf agents"
# Copy the binary: a rebuild during the demo must not pull it from under the agents.
cp "$SERFHAND" "$T_TMP/serfhand" && SERFHAND=$T_TMP/serfhand
fnet_init 7930 7430 18400 || die "cannot sign the bundle"
fnet_authorities "$N"
for i in $(seq 1 "$N"); do fnet_node "$i" authority; fnet_conf "$i" stall=3; done
fnet_wait_sims || die "a simulator did not start"
for i in $(seq 1 "$N"); do fnet_start "$i"; done
wait_for 30 members_alive 7431 "$N" || die "the agents did not form a cluster"
serf members -rpc-addr=127.0.0.1:7431
wait_for 20 all_healthy || die "the nodes are not healthy at the start"
status

step "freezing factomd on every node (the chain stops)"
for i in $(seq 1 "$N"); do fnet_sim "$i" stalled; done
wait_for 30 all_sick || die "the nodes did not see the stall"
status

step "an authority operator proposes a restart: serfhand propose restart --in 4s"
"$SERFHAND" -c "$T_TMP/n1.conf" propose restart --in 4s 2>&1 || die "propose failed"
wait_for 60 sh -c "[ \$(wc -l < '$T_TMP/restarts') -ge $N ]" || die "not every node restarted"
# The timeline shows the done reports n1 heard: one event from each node.
heard_done() { [ "$(grep -c 'restart done' "$T_TMP/n1.log")" -ge "$N" ]; }
wait_for 20 heard_done ||
    echo "(n1 has not heard every done report yet: Serf repairs an event that gossip missed within about 30 s)"

step "timeline (from every node's log; node names for identity chain ids)"
names=""
for i in $(seq 1 "$N"); do
    chain=$(fnet_identity "$i" | cut -d' ' -f1)
    names="$names -e s/$chain/n$i/g -e s/${chain:0:16}[0-9a-f]*/n$i/g"
done
for i in $(seq 1 "$N"); do
    # every node hears every done event; show those n1 heard
    pat='proposal |voted for|abstain|votes for .*bundle|decided|executor for|restart [0-9a-f]+: started|command succeeded'
    [ "$i" -eq 1 ] && pat="$pat|restart done"
    grep -hE "$pat" "$T_TMP/n$i.log" | sed -e "s/ serfhand\[[0-9]*\]//" -e "s/^\([^ ]*\) \(info\|warn\|error\): /\1 n$i  /" $names
done | sort -s -k1,1 | sed -E 's/^[0-9-]+T([0-9:.]+)Z/\1/'

step "when each node ran its restart command (agreed time, spread)"
sort -n "$T_TMP/restarts" | awk 'NR == 1 { first = $1 } { printf "  %s  %s  +%.0f ms\n", $2, $1, ($1 - first) * 1000; last = $1 }
    END { printf "  spread: %.0f ms\n", (last - first) * 1000 }'

step "factomd recovered (the restart command told each simulator to recover)"
wait_for 30 all_healthy || die "the nodes did not recover"
status

step "stopping the agents and simulators"
[ "$(fnet_restarts)" -eq "$N" ] || die "expected $N restarts, saw $(fnet_restarts)"
fnet_stop_executors
echo "demo: success: the stalled network voted, restarted every factomd once at the agreed time, and recovered ($(elapsed) s)"
