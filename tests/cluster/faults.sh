# The voted restart under injected faults (issue 14, item 9): five authority
# nodes, each in its own network namespace (tests/cluster/netns.bash) with a
# real serf agent and a simulated factomd, all of them stalled. (a) a 3|2
# partition during the vote, healed after the agreed time; (c) a serf agent
# restarted mid-vote; (b) clocks 60 s fast and 60 s slow on two nodes; (d)
# a stolen key locks a voter with a proposal it never completes. Each
# case prints what every node did, then checks it. A timer runs `serfhand
# tick` on every node every 10 s, as the minute timer would.
. "$(dirname "$0")/netns.bash"
ns_private "$0" "$@"
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/factom_net.bash"
. "$(dirname "$0")/netns.bash"

NODES="1 2 3 4 5"
GOSSIP=60 # a healed partition or a rejoined agent: Serf's push/pull repairs within this
cp "$SERFHAND" "$T_TMP/serfhand" && SERFHAND=$T_TMP/serfhand
fnet_init 8000 8400 18100
fnet_authorities 5
check "namespaces and bridges" ns_init
# `at` may lie 2..120 s after iat (the cases use 25 s, and 100 s in (b2));
# the cooldown, never shorter than that window, is 120 s: each case starts
# from empty stores (ns_fresh_state).
for i in $NODES; do ns_node "$i" authority && fnet_conf "$i" atmax=120 || fail "node n$i"; done
check "five simulators are up" fnet_wait_sims
for i in $NODES; do ns_start "$i"; done
check "five members are alive" wait_for 60 ns_alive 1 5

nodes_logging() { # N REGEX: N node logs match REGEX
    local n=0 i
    for i in $NODES; do grep -qE -- "$2" "$T_TMP/n$i.log" 2>/dev/null && n=$((n + 1)); done
    [ "$n" -ge "$1" ]
}
await_nodes() { wait_for "$1" nodes_logging "$2" "$3"; }
logged() { grep -qE -- "$2" "$T_TMP/n$1.log" 2>/dev/null; } # I REGEX
stall() { local i; for i in "$@"; do fnet_sim "$i" stalled; done; }
propose() { # NODE ARGS... -> prints the pid; the whole output in propose-NODE.out
    ns_serfhand "$1" propose restart "${@:2}" > "$T_TMP/propose-$1.out" 2>&1
    sed -n 's/^proposal \([0-9a-f:]*\): .*/\1/p' "$T_TMP/propose-$1.out"
}
agreed_at() { sed -n "s/^proposal $1: restart at \([0-9]*\) .*/\1/p" "$T_TMP"/propose-*.out | head -n 1; }
spread_ms() { awk 'NR==1{lo=$1;hi=$1} {if($1<lo)lo=$1; if($1>hi)hi=$1} END{printf "%d", (hi-lo)*1000}'; }
# ticker: every node's tick every 10 s until the test ends
( while :; do
    for i in $NODES; do ns_serfhand "$i" tick --name "n$i" > /dev/null 2>&1; done
    sleep 10
done ) &
track $!
trap 'fnet_stop_executors; t_cleanup' EXIT

# (a) A 3|2 partition during the vote, healed after the agreed time. The
# majority {n1,n2,n3} decides and restarts once each, together; the minority
# {n4,n5} cannot decide on its own, and what reaches it after the heal must
# not restart it after the agreed time (protocol 2: `at` is never in the
# past when a node decides; the executor refuses to start late).
stall 1 2 3 4 5; sleep 2.5
n0=$(fnet_restarts)
ns_partition 4 5
check "(a) the majority sees 3 alive" wait_for 40 ns_alive 1 3
check "(a) the minority sees 2 alive" wait_for 40 ns_alive 4 2
pid_a=$(propose 1 --in 25s --ttl 120s)
pid_m=$(propose 4 --in 25s --ttl 120s)
at_a=$(agreed_at "$pid_a")
expect_match "(a) majority proposal sent" "$pid_a" '^[0-9a-f]{64}$'
expect_match "(a) minority proposal sent" "$pid_m" '^[0-9a-f]{64}$'
check "(a) the majority decided" await_nodes 20 3 "decided ${pid_a:0:12}"
while [ "$(date +%s)" -lt $((at_a + 5)) ]; do sleep 0.5; done
ns_heal
check "(a) healed: five alive" wait_for "$GOSSIP" ns_alive 1 5
sleep 20 # what the heal carries (push/pull, ticks) arrives
echo "(a) after the heal, majority proposal $pid_a (agreed time $at_a):"
ns_report "$pid_a"
echo "(a) minority proposal $pid_m:"
ns_report "$pid_m"
got=$(ns_restarts_since "$n0")
echo "$got" | sed 's/^/  restart: /'
for i in 1 2 3; do
    expect_eq "(a) n$i (majority) restarted exactly once" "$(echo "$got" | grep -c " n$i$")" 1
done
expect_eq "(a) n1..n3 restarted within 100 ms" \
    "$(echo "$got" | grep -E ' n[123]$' | spread_ms | awk '{ print ($1 < 100) }')" 1
expect_eq "(a) nobody restarted before the agreed time" \
    "$(echo "$got" | awk -v at="$at_a" '$1 < at' | wc -l)" 0
expect_eq "(a) nobody restarted more than 5 s after the agreed time" \
    "$(echo "$got" | awk -v at="$at_a" '$1 > at + 5' | tr '\n' ' ')" ""
for i in 4 5; do
    expect_eq "(a) n$i (minority) restarted at most once" "$(echo "$got" | grep -c " n$i$" | awk '{ print ($1 <= 1) }')" 1
done
expect_eq "(a) no node decided the minority's proposal" "$(grep -l "decided ${pid_m:0:12}" "$T_TMP"/n?.log | wc -l)" 0
fnet_stop_executors

# (c) A serf agent restarted mid-vote: n3's agent stops as the ballot goes
# out and comes back a second later, while the relay goes on; it rejoins
# without replay (as after a crash), so it ignores the events sent before. A sick majority restarts: n3 too
# (protocol 2: the proposal travels with the votes and as an event, and tick
# re-sends votes until a decision), once, with the others.
ns_fresh_state a
stall 1 2 3 4 5; sleep 2.5
n0=$(fnet_restarts)
ns_stop_agent 3
( propose 1 --in 30s --ttl 120s > "$T_TMP/pid_c" ) &
p=$!
sleep 1
ns_start 3
wait "$p" 2> /dev/null
pid_c=$(cat "$T_TMP/pid_c")
at_c=$(agreed_at "$pid_c")
check "(c) n3's agent is back" wait_for 30 ns_alive 1 5
expect_match "(c) proposal sent" "$pid_c" '^[0-9a-f]{64}$'
check "(c) at least n1 n2 n4 n5 decided" await_nodes 20 4 "decided ${pid_c:0:12}"
check "(c) n3 decided too, before the agreed time" wait_for $((at_c - $(date +%s) > 0 ? at_c - $(date +%s) : 1)) \
    logged 3 "decided ${pid_c:0:12}"
while [ "$(date +%s)" -lt $((at_c + 3)) ]; do sleep 0.5; done
echo "(c) proposal $pid_c (agreed time $at_c), n3's agent restarted during the ballot:"
ns_report "$pid_c"
got=$(ns_restarts_since "$n0")
echo "$got" | sed 's/^/  restart: /'
expect_eq "(c) each node restarted exactly once" "$(echo "$got" | awk '{ print $2 }' | sort | tr '\n' ' ')" \
    "n1 n2 n3 n4 n5 "
expect_eq "(c) within 100 ms of each other" "$(echo "$got" | spread_ms | awk '{ print ($1 < 100) }')" 1
fnet_stop_executors

# (b) Clock skew: n4's clock 60 s fast, n5's 60 s slow. (b1) A proposal by
# n1 (right clock), `at` 25 s ahead: the right clocks n1..n3 restart
# together at `at`; n4 reads `at` as 35 s past when it decides, and protocol
# 2 forbids a late start (DESIGN section 7): n4 must not restart more than a
# few seconds after `at` by its own clock (protocol 1 restarts it at once,
# 25 s before the others). (b2) A proposal by n4, `at` 100 s ahead: n5 reads
# its iat as 120 s ahead and drops it as `future`; protocol 2 has it sent
# again (tick re-sends each vote with its proposal until `at`), and n5
# decides once its clock has caught up. (Only the nodes with the right clock
# can bring it: n4's own re-sends end before n5 can take them. They re-send
# from iat + 20 s, which is 80 s after n4 sent it by the true clock, so `at`
# must lie more than 80 s after iat plus a tick period for n5 to decide.)
ns_fresh_state c
ns_skew 4 60
ns_skew 5 -60
stall 1 2 3 4 5; sleep 2.5
expect_eq "(b) n4's clock is 60 s fast" "$(($(nx 4 date +%s) - $(date +%s)))" 60
expect_eq "(b) n5's clock is 60 s slow" "$(($(nx 5 date +%s) - $(date +%s)))" -60
n0=$(fnet_restarts)
pid_b1=$(propose 1 --in 25s --ttl 300s)
at_b1=$(agreed_at "$pid_b1")
check "(b1) the right clocks decided" await_nodes 20 3 "decided ${pid_b1:0:12}"
while [ "$(date +%s)" -lt $((at_b1 + 3)) ]; do sleep 0.5; done
echo "(b1) proposal $pid_b1 by n1 (right clock), agreed time $at_b1:"
ns_report "$pid_b1"
got=$(ns_restarts_since "$n0")
echo "$got" | sed 's/^/  restart (true time): /'
for i in 1 2 3; do
    expect_eq "(b1) n$i restarted once" "$(echo "$got" | grep -c " n$i$")" 1
done
expect_eq "(b1) the right clocks n1..n3 restarted within 100 ms" \
    "$(echo "$got" | grep -E ' n[123]$' | spread_ms | awk '{ print ($1 < 100) }')" 1
expect_eq "(b1) n4 (60 s fast) did not restart more than 5 s after \`at\` by its clock" \
    "$(echo "$got" | awk -v at="$at_b1" '$2 == "n4" && $1 + 60 > at + 5' | wc -l)" 0
fnet_stop_executors
ns_fresh_state b1
stall 1 2 3 4 5; sleep 2.5
pid_b2=$(propose 4 --in 100s --ttl 300s)
check "(b2) n5 (60 s slow) dropped it as future" await_nodes 20 1 "dropped factomd-restart-[a-z]+: future"
check "(b2) n1..n4 decided" await_nodes 30 4 "decided ${pid_b2:0:12}"
check "(b2) n5 got it again and decided" wait_for 150 logged 5 "decided ${pid_b2:0:12}"
echo "(b2) proposal $pid_b2 by n4 (60 s fast):"
ns_report "$pid_b2"
fnet_stop_executors
ns_skew 4 0
ns_skew 5 0

# (d) A stolen key locks a voter (the liveness gap of the model, closed by
# tick's vote). n1, n2, n3 are sick, n4, n5 healthy: the real proposal P
# needs all three sick votes. The attacker holds n5's key and sends its own
# proposal M (`at` 30 s ahead) as a ballot to n1 only: n1 votes for it and
# is locked until M's `at`; the attacker does nothing more, so M never
# completes. n2 then proposes P (`at` 240 s ahead): n1 answers "no vote"
# (locked), n2 and n3 vote: 2 of 5. Once M's `at` has passed, n1's tick votes
# for P (its `at` is still more than 120 s ahead): every node decides P and
# n1..n5 restart once, together, at P's `at`. Before tick voted, n1 never
# voted for P and nothing decided. (`at` up to 300 s: the configs change.)
ns_fresh_state b2
for i in $NODES; do fnet_conf "$i" atmax=300; done
for i in 4 5; do fnet_sim "$i" recover; done
stall 1 2 3; sleep 2.5
n0=$(fnet_restarts)
read -r chain_m seed_m _ <<< "$(fnet_identity 5)"
cat > "$T_TMP/lock.lua" <<LUA
local envelope = require "factom.envelope"
local crypto = require "serfhand.crypto"
local serf = require "serfhand.serf"
local time = require "serfhand.time"
local sk = crypto.ed25519_keypair(crypto.unhex("$seed_m"))
local signer = { chain_id = function() return "$chain_m" end, sign = function(m) return sk:sign(m) end }
T.test("the attacker's proposal, as a ballot to n1 only", function()
  local now = math.floor(time.now())
  local payload, _, text = assert(envelope.build("factomd-restart-propose", { act = "restart", at = now + 30,
    h = 0, b = 1 }, { signer = signer, net = "serfhand-test", now = now, ttl = 90 }))
  local answers = {}
  serf.query("factomd-restart-propose", payload, { nodes = { "n1" }, expect = 1, timeout_ms = 4000,
    on_response = function(node, answer) answers[#answers + 1] = node .. " " .. tostring(answer:match("^%l+")) end })
  print("LOCK " .. envelope.digest("factomd-restart-propose", text) .. " " .. table.concat(answers, ","))
end)
LUA
nx 1 "$SERFHAND" -c "$T_TMP/n1.conf" test --bundle "$T_TMP/bundle" "$T_TMP/lock.lua" > "$T_TMP/lock.run" 2>&1
ph_m=$(grep -ho 'LOCK [0-9a-f]* .*' "$T_TMP/n1.log" | tail -n 1 | cut -d' ' -f2)
expect_match "(d) n1 voted for the attacker's proposal" "$(grep -ho 'LOCK .*' "$T_TMP/n1.log" | tail -n 1)" ' n1 vote$'
pid_d=$(propose 2 --in 240s --ttl 300s)
at_d=$(agreed_at "$pid_d")
expect_match "(d) proposal sent" "$pid_d" '^[0-9a-f]{64}$'
check "(d) n1 did not vote for it: locked by the attacker's" \
    grep -q "no vote on ${pid_d:0:12}: this node's vote for ${ph_m:0:12} is open" "$T_TMP/n1.log"
check "(d) once the lock lapsed, n1's tick voted for it" wait_for 60 logged 1 "tick voted for ${pid_d:0:12}"
check "(d) every node decided" await_nodes "$GOSSIP" 5 "decided ${pid_d:0:12}: 3 of 5 votes"
expect_eq "(d) nothing decided the attacker's proposal" "$(grep -l "decided ${ph_m:0:12}" "$T_TMP"/n?.log | wc -l)" 0
while [ "$(date +%s)" -lt $((at_d + 3)) ]; do sleep 0.5; done
echo "(d) attacker's proposal $ph_m (to n1 only):"
ns_report "$ph_m"
echo "(d) proposal $pid_d by n2, agreed time $at_d:"
ns_report "$pid_d"
got=$(ns_restarts_since "$n0")
echo "$got" | sed 's/^/  restart: /'
expect_eq "(d) each node restarted exactly once" "$(echo "$got" | awk '{ print $2 }' | sort | tr '\n' ' ')" \
    "n1 n2 n3 n4 n5 "
expect_eq "(d) at the agreed time, within 100 ms of each other" \
    "$(echo "$got" | awk -v at="$at_d" '$1 < at || $1 > at + 5' | wc -l)$(echo "$got" | spread_ms | awk '{ print ($1 < 100) }')" 01
fnet_stop_executors

check "no handler failed on any node" sh -c "! grep -h ' error: ' '$T_TMP'/n?.log"
finish
