# The Factom bundle on a real Serf cluster: 5 authority nodes and 1 follower,
# each with a simulated factomd (10 s blocks: a factomd minute is 1 s, so
# stall_minutes = 2 means sick after 2 s), a signed bundle, and a restart
# command that records its time and recovers its simulator. Cases (a)-(j) of
# issue 5, on restart protocol 2 (issue 14: a proposal is named by its
# digest, every vote travels with it). Ports: bind 8001-8006, RPC
# 8401-8406, simulators 18101-18106.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/factom_net.bash"

PROPOSE=factomd-restart-propose
VOTE=factomd-restart-vote
NODES="1 2 3 4 5 6"
AUTH="1 2 3 4 5"
# A user event sent once reaches each node by gossip within a second or, where
# gossip missed the node (about 1 delivery in 300 with 6 agents), by Serf's TCP
# push/pull, every 30 s: 7-34 s after the send (bench/gossip.sh), 49 s seen on
# a loaded CI host. A check that every node saw such an event waits GOSSIP
# seconds, and crafted envelopes live longer than that, so that a late copy is
# still dropped for its own reason and not as expired.
GOSSIP=90

# A private copy of the binary: a rebuild of build/ during the run must not
# break the agents' handlers or the executors (/proc/self/exe).
cp "$SERFHAND" "$T_TMP/serfhand" && SERFHAND=$T_TMP/serfhand
fnet_init 8000 8400 18100
fnet_authorities 5
for i in $AUTH; do fnet_node "$i" authority; done
fnet_node 6 follower # identity 6 exists but is not in the authority set
check "six simulators are up" fnet_wait_sims
for i in $NODES; do fnet_start "$i"; done
check "six members are alive" wait_for 20 members_alive 8401 6
trap 'fnet_stop_executors; t_cleanup' EXIT

# nodes_logging N REGEX: true when N node logs match REGEX.
nodes_logging() {
    local want=$1 n=0 i
    for i in $NODES; do grep -qE -- "$2" "$T_TMP/n$i.log" 2>/dev/null && n=$((n + 1)); done
    [ "$n" -eq "$want" ]
}
# await_nodes SECONDS N REGEX: waits until N node logs match REGEX; if they
# do not, shows which nodes miss it, the end of their logs, and their agent's
# last push/pulls and warnings (how a missed gossip would have been repaired).
await_nodes() {
    wait_for "$1" nodes_logging "$2" "$3" && return 0
    local i
    for i in $NODES; do
        grep -qE -- "$3" "$T_TMP/n$i.log" 2>/dev/null && continue
        echo "  n$i has no /$3/; its log ends:"
        tail -n 12 "$T_TMP/n$i.log" 2>/dev/null | cut -c1-220 | sed 's/^/    /'
        echo "  and its agent's last push/pulls and warnings:"
        grep -E 'push/pull|Stream connection|\[WARN\]|\[ERR\]' "$T_TMP/agent-n$i.log" 2>/dev/null |
            grep -v 'agent.ipc: Failed to stream' | tail -n 6 | cut -c1-220 | sed 's/^/    /'
    done
    return 1
}
count_nodes() {
    local n=0 i
    for i in $NODES; do grep -qE -- "$1" "$T_TMP/n$i.log" 2>/dev/null && n=$((n + 1)); done
    echo "$n"
}
stall() { local i; for i in "$@"; do fnet_sim "$i" stalled; done; }
recover() { local i; for i in "$@"; do fnet_sim "$i" recover; done; }
propose() { # NODE ARGS... -> prints the proposal's digest
    "$SERFHAND" -c "$T_TMP/n$1.conf" propose restart "${@:2}" 2> "$T_TMP/propose.err" |
        sed -n 's/^proposal \([0-9a-f:]*\): .*/\1/p'
}
# ph_of CHAIN ID: the digest of proposal CHAIN:ID, from the first node log
# that recorded it.
# (logs name it by its first 12 hex: the whole digest is read from the store
# of the node that logged it).
ph_of() {
    local i short
    for i in $NODES; do
        short=$(grep -ho "proposal [0-9a-f]\{12\} ($1:$2)" "$T_TMP/n$i.log" 2>/dev/null | head -n 1 | cut -d' ' -f2)
        [ -n "$short" ] && break
    done
    [ -n "$short" ] || return 0
    printf 'T.test("ph", function()\n  for _, k in ipairs(require("serfhand.store").keys("proposal/%s", 10)) do T.report(k:sub(10)) end\nend)\n' \
        "$short" > "$T_TMP/ph_of.lua"
    "$SERFHAND" -c "$T_TMP/n$i.conf" test --bundle "$T_TMP/bundle" --state "$T_TMP/state-n$i" "$T_TMP/ph_of.lua" 2>/dev/null |
        grep -E '^[0-9a-f]{64}$' | head -n 1
}
# craft FILE: run Lua (stdin) that signs envelopes with fixture identities
# and sends them through node 1's agent, as an attacker or a late voter would.
craft() {
    local f=$T_TMP/craft-$1.lua i chain seed pub
    {
        echo 'local envelope = require "factom.envelope"'
        echo 'local crypto = require "serfhand.crypto"'
        echo 'local serf = require "serfhand.serf"'
        echo 'local ballot = require "factom.ballot"'
        echo 'local store = require "serfhand.store"'
        echo 'local time = require "serfhand.time"'
        echo 'local ID = {}'
        for i in 1 2 3 4 5 6 7; do
            read -r chain seed pub <<< "$(fnet_identity "$i")"
            echo "ID[$i] = { chain = \"$chain\", seed = \"$seed\" }"
        done
        cat <<'LUA'
local function signer(i)
  local sk = crypto.ed25519_keypair(crypto.unhex(ID[i].seed))
  return { chain_id = function() return ID[i].chain end, sign = function(m) return sk:sign(m) end }
end
local function env(name, fields, i, o)
  o = o or {}
  o.signer = signer(i)
  o.net = o.net or "serfhand-test"
  return assert(envelope.build(name, fields, o))
end
local function send(name, payload) assert(serf.event(name, payload)) time.sleep(100) end
local function now() return math.floor(time.now()) end
-- vote(i, payload): identity i's vote on the proposal envelope payload
local function vote(i, payload)
  local text = payload:match("%.(.*)$")
  local b = require("serfhand.json").decode(text)
  local ph = envelope.digest("factomd-restart-propose", text)
  local sk = crypto.ed25519_keypair(crypto.unhex(ID[i].seed))
  local body = envelope.vote_body(ph, ID[i].chain, b.iat, b.exp, "serfhand-test")
  return { by = ID[i].chain, sig = sk:sign(envelope.message("factomd-restart-vote", body)) }
end
local PROPOSE, VOTE, DONE = "factomd-restart-propose", "factomd-restart-vote", "factomd-restart-done"
T.test("craft", function()
LUA
        cat
        echo 'end)'
    } > "$f"
    "$SERFHAND" -c "$T_TMP/n1.conf" test --bundle "$T_TMP/bundle" --state "$T_TMP/state-n1" --timeout-ms 20000 "$f" | grep -q '^1 passed, 0 failed'
}
restarts_since() { tail -n +"$(($1 + 1))" "$T_TMP/restarts"; }

# Let every node cache the authority set once (used when factomd is down).
for i in $NODES; do "$SERFHAND" -c "$T_TMP/n$i.conf" tick --name "n$i" || fail "tick n$i"; done

# (d) A proposal signed by a non-authority identity: ignored everywhere, logged.
check "(d) crafted proposal by identity 6 sent" craft d <<'LUA'
  send(PROPOSE, env(PROPOSE, { act = "restart", at = now() + 5, h = 1 }, 6, { ttl = 600 }))
LUA
check "(d) every node drops it as unauthorized" await_nodes "$GOSSIP" 6 \
    "dropped $PROPOSE: unauthorized: signer ${ID6:-888888}"
out=$("$SERFHAND" -c "$T_TMP/n6.conf" propose restart --in 3s 2>&1)
expect_match "(d) propose on a non-authority node is refused" "$out" "not in the authority set"

# (e) Forged, replayed, expired, future-dated, other-network envelopes.
check "(e) crafted bad envelopes sent" craft e <<'LUA'
  local p = env(PROPOSE, { act = "restart", at = now() + 5, h = 1 }, 1, { ttl = 600 })
  send(PROPOSE, (p:gsub('"h":1', '"h":2')))                                   -- forged body
  local q = env(PROPOSE, { act = "restart", at = now() + 5, h = 1 }, 2, { ttl = 600 })
  send(PROPOSE, q:match("^[^.]+") .. "." .. p:match("%.(.*)$"))              -- wrong key
  send(PROPOSE, env(PROPOSE, { act = "restart", at = now() - 3995, h = 1 }, 1, { now = now() - 4000, ttl = 600 }))
  send(PROPOSE, env(PROPOSE, { act = "restart", at = now() + 300, h = 1 }, 1, { now = now() + 300, ttl = 600 }))
  send(PROPOSE, env(PROPOSE, { act = "restart", at = now() + 5, h = 1 }, 1, { net = "MAIN", ttl = 600 }))
  send(VOTE, env(PROPOSE, { act = "restart", at = now() + 5, h = 1 }, 1, { ttl = 600 })) -- proposal sent as a vote
  -- a vote bundle whose proposal carries another identity's signature
  send(VOTE, ballot.encode(q:match("^[^.]+") .. "." .. p:match("%.(.*)$"), { { by = ID[2].chain, sig = string.rep("\1", 64) } })[1])
  local d = env(DONE, { ph = string.rep("e1", 32), ok = true, st = 0 }, 3, { ttl = 600 })
  send(DONE, d)                                                              -- for nothing decided here
LUA
for k in "$PROPOSE: forged" "$PROPOSE: expired" "$PROPOSE: future" "$PROPOSE: network" "$VOTE: malformed" \
         "$VOTE: forged" "factomd-restart-done: unknown"; do
    check "(e) every node drops: $k" await_nodes "$GOSSIP" 6 "dropped $k"
done
check "(e) the wrong-key proposal is dropped as forged too" await_nodes "$GOSSIP" 6 \
    "dropped $PROPOSE: forged: bad signature by $(fnet_identity 1 | cut -d' ' -f1)"
check "(e) crafted vote bundles sent" craft eb <<'LUA'
  local t = now()
  local bad = { { by = ID[2].chain, sig = string.rep("\1", 64) } }
  -- a real proposal (identity 3's: it is recorded, nobody votes) with a forged vote
  send(ballot.EVENT, ballot.encode(env(PROPOSE, { act = "restart", at = t + 5, h = 1, b = 1 }, 3, { ttl = 600 }), bad)[1])
  send(ballot.EVENT, ballot.encode(env(PROPOSE, { act = "restart", at = t - 3995, h = 1 }, 1,
    { now = t - 4000, ttl = 500 }), bad)[1])
  send(ballot.EVENT, "FV2 not a bundle.")
LUA
for k in forged expired malformed; do
    check "(e) every node drops a $k vote bundle" await_nodes "$GOSSIP" 6 "dropped factomd-restart-votes: $k"
done
expect_eq "(e) nothing was decided or restarted" "$(count_nodes 'decided [0-9a-f]{64}:')$(fnet_restarts)" "00"

# (b) 2 of 5 stalled: votes from the two sick nodes, no restart.
stall 1 2; sleep 2.5
pid_b=$(propose 1 --in 5s --ttl 8s)
exp_b=$(($(date +%s) + 8)) # the proposal's expiry, at the latest
expect_match "(b) proposal sent, named by its digest" "$pid_b" '^[0-9a-f]{64}$'
check "(b) the sick authorities vote" await_nodes 10 2 "voted for ${pid_b:0:12}"
check "(b) the healthy authorities abstain" await_nodes 10 3 "abstain on ${pid_b:0:12}: healthy"
check "(j) the follower does not vote" await_nodes 10 1 "no vote on ${pid_b:0:12}: .* is not in the authority set"
check "(b) every node counted 2 of 5 votes" await_nodes "$GOSSIP" 6 "tally ${pid_b:0:12}: 2 of 5 votes \(quorum 3\)"

# (c) The proposal expires before a quorum; a late vote changes nothing.
while [ "$(date +%s)" -le $((exp_b + 1)) ]; do sleep 0.2; done
check "(c) a late vote (a valid signature, with its proposal) sent after expiry" craft c <<LUA
  local p = assert(store.get("proposal/$pid_b")).payload
  send(VOTE, ballot.encode(p, { vote(3, p) })[1])
LUA
check "(c) every node drops it: the agreed time has passed" await_nodes "$GOSSIP" 6 \
    "dropped $VOTE: (late|expired): "
sleep 1
expect_eq "(b,c) no decision and no restart anywhere" "$(count_nodes "decided ${pid_b:0:12}")$(fnet_restarts)" "00"
recover 1 2

# (f) Votes that arrive before their proposal still count; (g) duplicates of
# every event give one restart; (j) a follower restarts when configured to.
fnet_conf 6 followers=true
n0=$(fnet_restarts)
check "(f) votes of 2, 3, 4 sent (each with its proposal) before the proposal, then duplicates of all" craft f <<'LUA'
  local t = now()
  local p = env(PROPOSE, { act = "restart", at = t + 5, h = 1000 }, 1, { ttl = 30, id = "00000000000000f1" })
  local v = {}
  for i = 2, 4 do v[i] = ballot.encode(p, { vote(i, p) })[1] send(VOTE, v[i]) end
  send(PROPOSE, p)
  send(PROPOSE, p) send(VOTE, v[2]) send(VOTE, v[3]) send(VOTE, v[4]) send(PROPOSE, p)
LUA
pid_f=$(ph_of "$(fnet_identity 1 | cut -d' ' -f1)" 00000000000000f1)
expect_match "(f) the first vote event taught the proposal" "$pid_f" '^[0-9a-f]{64}$'
check "(f) every node decided" await_nodes "$GOSSIP" 6 "decided ${pid_f:0:12}: 3 of 5 votes"
sleep 1
for i in $NODES; do
    expect_eq "(g) n$i decided once, whatever the duplicates" "$(grep -c "decided ${pid_f:0:12}:" "$T_TMP/n$i.log")" 1
done
check "(f) six restarts (5 authorities + the follower configured to)" wait_for 15 \
    sh -c "[ \$(wc -l < '$T_TMP/restarts') -ge $((n0 + 6)) ]"
sleep 1
got=$(restarts_since "$n0" | awk '{print $2}' | sort | tr '\n' ' ')
expect_eq "(g) each node restarted exactly once" "$got" "n1 n2 n3 n4 n5 n6 "
fnet_conf 6 followers=false

# (h) factomd down on one node: it abstains (unknown), the others decide.
n0=$(fnet_restarts)
fnet_sim 5 down
stall 1 2 3 4; sleep 2.5
pid_h=$(propose 1 --in 5s --ttl 30s)
check "(h) the node whose factomd is down abstains" await_nodes 10 1 "abstain on ${pid_h:0:12}: unknown"
check "(h) every node decided" await_nodes "$GOSSIP" 6 "decided ${pid_h:0:12}: [34] of 5 votes"
check "(h) the authorities restarted, not the follower" wait_for 15 \
    sh -c "[ \$(wc -l < '$T_TMP/restarts') -ge $((n0 + 5)) ]"
sleep 1
got=$(restarts_since "$n0" | awk '{print $2}' | sort | tr '\n' ' ')
expect_eq "(h) one restart per authority" "$got" "n1 n2 n3 n4 n5 "

# (the restart brought n5's factomd back: take it down again for this check)
fnet_sim 5 down
"$SERFHAND" -c "$T_TMP/n5.conf" tick --name n5
check "(h) with factomd down, the cached authority set is used" grep -q "using the cached set" "$T_TMP/n5.log"
fnet_sim 5 recover

# (a) All 5 stalled: votes, quorum, each authority restarts once at `at`,
# start times spread under 100 ms; everyone recovers.
for i in $NODES; do fnet_conf "$i" cooldown=30; done
n0=$(fnet_restarts)
stall 1 2 3 4 5 6; sleep 2.5
# nodes 1-3 have a fresh tick record saying sick and vote on it; 4 and 5 ask factomd
for i in 1 2 3; do "$SERFHAND" -c "$T_TMP/n$i.conf" tick --name "n$i" > /dev/null || fail "tick n$i"; done
pid_a=$(propose 2 --in 5s --ttl 30s)
at=$(sed -n 's/.* at \([0-9]*\) (in .*/\1/p' "$T_TMP/n2.log" | tail -n 1)
check "(a) five authorities vote" await_nodes 10 5 "voted for ${pid_a:0:12}"
check "(a) three of them on their tick record" nodes_logging 3 "voted for ${pid_a:0:12}: .*\(tick [0-9]+ s ago\)"
check "(j) the follower does not vote" await_nodes 10 1 "no vote on ${pid_a:0:12}: .* is not in the authority set"
check "(a) every node decided" await_nodes "$GOSSIP" 6 "decided ${pid_a:0:12}: [345] of 5 votes"
check "(a) five restarts" wait_for 15 sh -c "[ \$(wc -l < '$T_TMP/restarts') -ge $((n0 + 5)) ]"
# each executor logs its command's start (the exec's time) once it has ended
check "(a) five executors logged their command's start" wait_for 15 nodes_logging 5 "restart ${pid_a:0:12}: started"
got=$(restarts_since "$n0" | awk '{print $2}' | sort | tr '\n' ' ')
expect_eq "(a,j) each authority restarted exactly once, the follower not" "$got" "n1 n2 n3 n4 n5 "
spread_ms() { awk 'NR==1{lo=$1;hi=$1} {if($1<lo)lo=$1; if($1>hi)hi=$1} END{printf "%d", (hi-lo)*1000}'; }
cmd_spread=$(restarts_since "$n0" | spread_ms)
exe_spread=$(grep -ho "restart ${pid_a:0:12}: started .* at [0-9.]*" "$T_TMP"/n?.log | awk '{print $NF}' | spread_ms)
echo "restart spread at agreed time $at: executors ${exe_spread} ms, restart commands' first line ${cmd_spread} ms"
check "(a) executors started the command within 100 ms of each other (${exe_spread} ms)" [ "$exe_spread" -lt 100 ]
if [ "$exe_spread" -ge 100 ]; then # what each node did, for the failure report
    for i in $NODES; do
        grep -hE "(proposal|decided|executor for|restart) ${pid_a:0:12}|after the agreed time" "$T_TMP/n$i.log" \
            "$T_TMP/action-n$i.log" 2>/dev/null | cut -c1-160 | sed "s/^/  n$i: /"
    done
fi
check "(a) the commands themselves started within 250 ms (${cmd_spread} ms, loaded 2-core host)" [ "$cmd_spread" -lt 250 ]
early=$(restarts_since "$n0" | awk -v at="$at" '$1 < at' | wc -l)
expect_eq "(a) no restart before the agreed time" "$early" "0"
check "(a) done reports from all five" wait_for "$GOSSIP" sh -c \
    "[ \$(grep -c 'restart done for ${pid_a:0:12} by .*: ok=true' '$T_TMP/n1.log') -eq 5 ]"
recover 6
sleep 0.5
for _ in 1 2 3; do # a query answer can be lost on a loaded host: ask again
    out=$("$SERFHAND" -c "$T_TMP/n3.conf" status 2>&1) && break
done
echo "$out"
expect_eq "(a) status: six nodes healthy" "$(printf '%s\n' "$out" | grep -c ' healthy ')" "6"
expect_match "(a) status: every alive member answered" "$out" "6 of 6 alive members answered"
expect_match "(a) status: last restart shown" "$out" "n1 +authority .*s ago ok"
out=$("$SERFHAND" -c "$T_TMP/n3.conf" status --json 2>&1)
expect_match "status --json" "$out" '^\{"alive":6,"answered":6,"nodes":\{"n1":\{'

# (i) A second proposal within the cooldown: decided, but no second restart.
n0=$(fnet_restarts)
stall 1 2 3 4 5; sleep 2.5
pid_i=$(propose 1 --in 5s --ttl 30s)
check "(i) every node decided" await_nodes "$GOSSIP" 6 "decided ${pid_i:0:12}"
check "(i) the authorities skip it for the cooldown" await_nodes 15 5 "restart ${pid_i:0:12} skipped: cooldown"
expect_eq "(i) no second restart" "$(fnet_restarts)" "$n0"
check "(i) reported as skipped" wait_for 10 grep -q "restart done for ${pid_i:0:12} by .*: ok=false .*(cooldown)" "$T_TMP/n1.log"
check "(i) the votes came relayed in bundles" nodes_logging 6 "votes for ${pid_i:0:12}: [0-9]+ in a bundle"
expect_eq "(i) no node sent its vote as its own event" "$(count_nodes "vote for ${pid_i:0:12} sent with its proposal")" 0

# The relay's fallbacks, with two nodes on a bundle (signed, same version)
# that lacks one query handler, as in a rollout: n4 cannot answer the ballot,
# so it meets the proposal first in the relay's bundle, which carries it
# (and votes then, sending its vote with it); n5 cannot answer the relay
# query. The proposer then sends the votes, each event with the proposal,
# and every node decides.
for q in propose votes; do
    cp -r "$T_TMP/bundle" "$T_TMP/bundle-no-$q"
    rm "$T_TMP/bundle-no-$q/handlers/query/factomd-restart-$q.lua" "$T_TMP/bundle-no-$q"/MANIFEST.json*
    "$SERFHAND" sign -s "$T_TMP/keys/t.sec" --version 1 --name factom "$T_TMP/bundle-no-$q" > /dev/null ||
        fail "sign bundle-no-$q"
done
# The relay query waits out its 5 s for n5: an agreed time 12 s away leaves
# the vote events time to arrive before it (no node decides after it).
for i in 1 2 3 6; do fnet_conf "$i" cooldown=30 atmax=15; done
fnet_conf 4 cooldown=30 atmax=15 bundle="$T_TMP/bundle-no-propose"
fnet_conf 5 cooldown=30 atmax=15 bundle="$T_TMP/bundle-no-votes"
out=$("$SERFHAND" -c "$T_TMP/n1.conf" propose restart --in 12s --ttl 30s 2>&1)
echo "$out" | sed 's/^/  /'
pid_r=$(printf '%s\n' "$out" | sed -n 's/^proposal \([0-9a-f:]*\): .*/\1/p')
expect_match "(relay) the proposal went out as an event too" "$out" \
    "^the proposal went out as an event too$"
expect_match "(relay) n5 did not answer the relay query: the votes went out as events" "$out" \
    "^the votes went out in [0-9]+ events? too \(no answer from ([a-z0-9]+ )*n5( [a-z0-9]+)*\)$"
check "(relay) every node decided" await_nodes "$GOSSIP" 6 "decided ${pid_r:0:12}: [345] of 5 votes"
# (n5 may decide before the event comes, on the vote events of nodes that
# met the proposal first in the relay's bundle: the event still comes)
check "(relay) n5 counted the votes from the event" wait_for "$GOSSIP" grep -qE \
    "user:factomd-restart-votes: votes for ${pid_r:0:12}: [0-9]+ in a bundle" "$T_TMP/n5.log"
fnet_conf 4 cooldown=30
fnet_conf 5 cooldown=30

# A ballot proposal whose query never came (only its event, 25 s old): the
# nodes keep their votes, and tick sends them on their own; the nodes decide.
# The event goes out twice (the second copy is a replay where the first
# arrived), and the agreed time is 75 s away, which leaves the proposal
# and then the votes sent by tick time to arrive by push/pull (30 s apart)
# where gossip missed a node.
# (n1-n5 voted for the relay's proposal: an honest node votes again only
# once the agreed time of its open vote has passed)
at_r=$(printf '%s\n' "$out" | sed -n 's/^proposal [0-9a-f]*: restart at \([0-9]*\) .*/\1/p')
while [ "$(date +%s)" -le "${at_r:-0}" ]; do sleep 0.2; done
# (its agreed time, 100 s after its issue time, needs a wider window)
for i in $NODES; do fnet_conf "$i" cooldown=30 atmax=110; done
check "(k) a ballot proposal sent as an event only" craft k <<'LUA'
  local t = now()
  local p = env(PROPOSE, { act = "restart", at = t + 75, h = 1, b = 1 }, 2,
    { now = t - 25, ttl = 140, id = "00000000000000a1" })
  send(PROPOSE, p)
  send(PROPOSE, p)
LUA
check "(k) the proposal reached the nodes" wait_for 20 sh -c \
    "grep -qs 'proposal [0-9a-f]* ($(fnet_identity 2 | cut -d' ' -f1):00000000000000a1)' '$T_TMP'/n?.log"
pid_k=$(ph_of "$(fnet_identity 2 | cut -d' ' -f1)" 00000000000000a1)
at_k=$(grep -ho "proposal ${pid_k:0:12} ([0-9a-f:]*): restart at [0-9]*" "$T_TMP"/n?.log | head -n 1 | sed 's/.* //')
check "(k) the sick authorities keep their votes" await_nodes 40 5 "voted for ${pid_k:0:12}"
sleep 1
expect_eq "(k) no vote goes out before tick" "$(count_nodes "vote for ${pid_k:0:12} sent with its proposal")" 0
for i in 1 2; do "$SERFHAND" -c "$T_TMP/n$i.conf" tick --name "n$i" > /dev/null || fail "tick n$i"; done
check "(k) tick sent them" await_nodes 5 2 "vote for ${pid_k:0:12} sent with its proposal"
check "(k) n3, n4, n5 decided on their own vote and those two" \
    await_nodes 30 3 "decided ${pid_k:0:12}: 3 of 5 votes"
# n1, n2 and the follower n6 hold two votes: they need n3's, which n3's tick
# sends although n3 has decided.
"$SERFHAND" -c "$T_TMP/n3.conf" tick --name n3 > /dev/null || fail "tick n3"
check "(k) a node that decided still sends its vote" await_nodes 5 3 "vote for ${pid_k:0:12} sent with its proposal"
check "(k) every node decided" await_nodes "$GOSSIP" 6 "decided ${pid_k:0:12}: 3 of 5 votes"
"$SERFHAND" -c "$T_TMP/n1.conf" tick --name n1 > /dev/null
expect_eq "(k) tick sends it again until the agreed time: nothing stops it" \
    "$(grep -c "vote for ${pid_k:0:12} sent with its proposal" "$T_TMP/n1.log")" 2
# Its agreed time is still far: the executors wait (forked, not exec'd)
# until 10 s before it, then run their checks (here: within the cooldown).
check "(k) the executors wait to start until 10 s before the agreed time" \
    nodes_logging 5 "executor for ${pid_k:0:12} started \(pid [0-9]+, runs 10 s before\)"
expect_eq "(k) and nothing has run yet" "$(count_nodes "restart ${pid_k:0:12}")" 0
check "(k) then they run, once each (skipped: cooldown)" \
    await_nodes $((${at_k:-0} - $(date +%s) > 0 ? ${at_k:-0} - $(date +%s) + 20 : 20)) 5 "restart ${pid_k:0:12} skipped: cooldown"
fnet_stop_executors
recover 1 2 3 4 5

check "no handler failed on any node" sh -c "! grep -h ' error: ' '$T_TMP'/n?.log"
check "no agent reported a handler error" sh -c "! grep -h 'Error invoking script' '$T_TMP'/agent-n?.log"
finish
