# A malicious authority (issue 14, item 9): five honest authority nodes, each
# in its own network namespace (tests/cluster/netns.bash), and an attacker
# who holds identity 5's key (a stolen key: n5 itself stays honest) and
# reaches the cluster through n1's agent. The attacker's tool is Lua run by
# `serfhand test` (evil() below) that signs with that key through the
# bundle's own modules and uses Serf as any member can: events, and queries
# to chosen nodes only. (r) re-issues a proposal id with new times;
# (e) equivocates on `at` (two proposals with one id to two groups of
# nodes); (v) double votes; (f) floods votes for made-up proposals. Each
# case prints what every node did, then checks what DESIGN section 7
# promises: no honest node restarts unless a quorum of distinct authorities
# voted for that exact proposal, no two honest nodes restart for
# conflicting proposals, the store one signer can fill is bounded.
. "$(dirname "$0")/netns.bash"
ns_private "$0" "$@"
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib.bash"
. "$(dirname "$0")/factom_net.bash"
. "$(dirname "$0")/netns.bash"

NODES="1 2 3 4 5"
FLOOD=120 # votes for made-up proposals in (f)
cp "$SERFHAND" "$T_TMP/serfhand" && SERFHAND=$T_TMP/serfhand
fnet_init 8000 8400 18100
fnet_authorities 5
check "namespaces and bridges" ns_init
# `at` up to 40 s after iat: the cases use 20 to 35 s
for i in $NODES; do ns_node "$i" authority && fnet_conf "$i" atmax=160 || fail "node n$i"; done
check "five simulators are up" fnet_wait_sims
for i in $NODES; do ns_start "$i"; done
check "five members are alive" wait_for 60 ns_alive 1 5
trap 'fnet_stop_executors; t_cleanup' EXIT
EVIL=$(fnet_identity 5 | cut -d' ' -f1)

stall() { local i; for i in "$@"; do fnet_sim "$i" stalled; done; }
recover() { local i; for i in "$@"; do fnet_sim "$i" recover; done; }
nodes_logging() { # N REGEX: at least N node logs match REGEX
    local n=0 i
    for i in $NODES; do grep -qE -- "$2" "$T_TMP/n$i.log" 2>/dev/null && n=$((n + 1)); done
    [ "$n" -ge "$1" ]
}
# evil NAME: run the attacker's Lua (stdin) through n1's agent and with
# n1's config (the attacker reads proposals from n1's store: they are
# gossiped to every member, so it could have read them off the wire);
# note() lines land in n1's log.
evil() {
    local f=$T_TMP/evil-$1.lua chain seed pub i
    read -r chain seed pub <<< "$(fnet_identity 5)"
    {
        echo 'local envelope = require "factom.envelope"'
        echo 'local ballot = require "factom.ballot"'
        echo 'local crypto = require "serfhand.crypto"'
        echo 'local serf = require "serfhand.serf"'
        echo 'local store = require "serfhand.store"'
        echo 'local time = require "serfhand.time"'
        echo "local EVIL = { chain = \"$chain\", seed = \"$seed\" }"
        echo 'local CHAINS = {}'
        for i in 1 2 3 4 5; do echo "CHAINS[#CHAINS + 1] = \"$(fnet_identity "$i" | cut -d' ' -f1)\""; done
        cat <<'LUA'
local sk = crypto.ed25519_keypair(crypto.unhex(EVIL.seed))
local signer = { chain_id = function() return EVIL.chain end, sign = function(m) return sk:sign(m) end }
local PROPOSE, VOTE, VOTES = "factomd-restart-propose", "factomd-restart-vote", ballot.EVENT
local function now() return math.floor(time.now()) end
local function note(s) print("EVIL " .. s) end
local function send(name, payload) assert(serf.event(name, payload)) time.sleep(50) end
-- propose(fields, o) -> payload, body, ph: a proposal signed by the attacker
local function propose(fields, o)
  o.signer, o.net, o.max = signer, "serfhand-test", ballot.PROPOSAL_MAX
  local payload, body, text = assert(envelope.build(PROPOSE, fields, o))
  return payload, body, envelope.digest(PROPOSE, text)
end
-- vote(ph, body) -> {by, sig}: the attacker's vote on proposal ph (body: its iat, exp)
local function vote(ph, body)
  local p = assert(envelope.build(VOTE, { ph = ph }, { signer = signer, net = "serfhand-test",
    now = body.iat, ttl = body.exp - body.iat, id = envelope.vote_id(ph) }))
  return { by = EVIL.chain, sig = crypto.unb64url(p:match("^([^.]+)%.")) }
end
local function by_short(short)
  for _, c in ipairs(CHAINS) do if ballot.short(c) == short then return c end end
end
-- ballot_to(payload, nodes) -> votes {{by, sig}}: the proposal as a query to
-- the chosen nodes only, their signed votes collected as a proposer would:
-- asked again when gossip missed one, answers relayed (factom.proposer's
-- deliver), so that a lost UDP packet does not change the case.
local function ballot_to(payload, nodes)
  local votes = {}
  serf.query(PROPOSE, payload, { nodes = nodes, expect = #nodes, timeout_ms = 4000,
    retry_nodes = nodes, relay_factor = 1,
    on_response = function(_, answer)
      local v = ballot.uncompact(answer:match("^vote (.*)$"))
      if v then votes[#votes + 1] = { by = by_short(v.short), sig = v.sig } end
    end })
  return votes
end
-- relay(payload, votes): the proposal and the votes to every node, as events
local function relay(payload, votes)
  for _, b in ipairs(ballot.encode(payload, votes)) do send(VOTES, b) end
end
T.test("evil", function()
LUA
        cat
        echo 'end)'
    } > "$f"
    nx 1 "$SERFHAND" -c "$T_TMP/n1.conf" test --bundle "$T_TMP/bundle" --state "$T_TMP/state-n1" --timeout-ms 30000 "$f" > "$T_TMP/evil-$1.run" 2>&1
    grep -q '^1 passed, 0 failed' "$T_TMP/evil-$1.run" || { cat "$T_TMP/evil-$1.run"; return 1; }
}
# note lines of the attacker's run come through the log (print goes there)
evil_note() { grep -ho "EVIL $1 .*" "$T_TMP"/n1.log | tail -n 1 | cut -d' ' -f3-; }
report() { # PH: what each node did with it (netns.bash), and its alerts
    local i
    ns_report "$1"
    for i in $NODES; do
        grep -hoE "ALERT: [^:]*$EVIL[^;]{0,0}|ALERT: decision on ${1:0:12} withdrawn" "$T_TMP/n$i.log" 2>/dev/null | sort -u |
            sed "s/$EVIL/<attacker>/; s/^/    n$i: /"
    done
}
# (an executor that set the command to start counts, whether it ran yet or not)
restarts_for() { [ -n "$1" ] || return 0; grep -l "restart ${1:0:12}: starting" "$T_TMP"/n?.log 2>/dev/null | sed 's/.*\/\(n[0-9]*\)\.log/\1/' | tr '\n' ' '; }

# (r) Re-issue a proposal id. The attacker's proposal P1 goes, as a ballot,
# only to the sick n1 and n2: they vote, and the attacker relays their two
# votes to every node. P1 expires. The attacker re-issues the same id with
# new times (P2), to every node, with its own vote. Protocol 1 counted n1's
# and n2's old votes for P2 where P1 was never recorded, and those nodes
# decided 3 of 5 and restarted, healthy, on votes nobody gave for P2.
# Protocol 2: the old votes name P1's digest; P2 has one vote; and P1 and
# P2 with one id are evidence against the attacker.
stall 1 2; sleep 2.5
check "(r) P1 to n1 and n2, their votes relayed to all; P1 expires; P2 re-issues its id" evil r <<'LUA'
  local id = crypto.hex(crypto.random(8))
  local t = now()
  local p1, b1, ph1 = propose({ act = "restart", at = t + 4, h = 1000, b = 1 }, { now = t, ttl = 5, id = id })
  local votes = ballot_to(p1, { "n1", "n2" })
  relay(p1, votes)
  note("r1 " .. ph1 .. " votes " .. #votes)
  time.sleep(8000) -- P1 has expired
  local t2 = now()
  local p2, b2, ph2 = propose({ act = "restart", at = t2 + 20, h = 1000 }, { now = t2, ttl = 120, id = id })
  send(PROPOSE, p2)
  relay(p2, { vote(ph2, b2) })
  note("r2 " .. ph2 .. " at " .. b2.at)
LUA
ph_r1=$(evil_note r1 | awk '{ print $1 }')
ph_r2=$(evil_note r2 | awk '{ print $1 }')
at_r=$(evil_note r2 | awk '{ print $3 }')
expect_match "(r) the honest sick nodes voted for P1" "$(evil_note r1)" "votes 2$"
recover 1 2
while [ "$(date +%s)" -lt $((${at_r:-0} + 3)) ]; do sleep 0.5; done
echo "(r) P1 $ph_r1:"
report "$ph_r1"
echo "(r) P2 $ph_r2 (the same id, re-issued):"
report "$ph_r2"
expect_eq "(r) no node restarted for P1 or P2" "$(restarts_for "$ph_r1")$(restarts_for "$ph_r2")" ""
expect_eq "(r) no node decided P2" "$(grep -l "decided ${ph_r2:0:12}" "$T_TMP"/n?.log | wc -l)" 0
check "(r) the nodes hold evidence against the attacker (one id, two proposals)" \
    nodes_logging 1 "ALERT: equivocation by authority $EVIL"
fnet_stop_executors

# (e) Equivocation on `at`: two proposals with one id, A (at + 20 s) as a
# ballot to n1 and n2, B (at + 35 s) to n3 and n4; the attacker relays each
# with its votes and its own vote to every node. Protocol 1 votes named only
# the id: n1, n2 decided A and n3, n4 decided B, and restarted 15 s apart.
# Protocol 2: A and B have 3 votes each, but together they are evidence
# against the attacker: its votes are ignored, 2 of 5 are left, and any
# decision is withdrawn before `at`.
ns_fresh_state r
stall 1 2 3 4 5; sleep 2.5
check "(e) A and B sent to two groups, votes relayed" evil e <<'LUA'
  local id = crypto.hex(crypto.random(8))
  local t = now()
  local a, ba, pha = propose({ act = "restart", at = t + 20, h = 1000, b = 1 }, { now = t, ttl = 120, id = id })
  local b, bb, phb = propose({ act = "restart", at = t + 35, h = 1000, b = 1 }, { now = t, ttl = 120, id = id })
  local va = ballot_to(a, { "n1", "n2" })
  local vb = ballot_to(b, { "n3", "n4" })
  va[#va + 1] = vote(pha, ba)
  vb[#vb + 1] = vote(phb, bb)
  relay(a, va)
  relay(b, vb)
  note("e " .. pha .. " " .. phb .. " votes " .. #va .. " " .. #vb .. " at " .. ba.at .. " " .. bb.at)
LUA
ph_ea=$(evil_note e | awk '{ print $1 }')
ph_eb=$(evil_note e | awk '{ print $2 }')
at_e=$(evil_note e | awk '{ print $NF }')
while [ "$(date +%s)" -lt $((${at_e:-0} + 3)) ]; do sleep 0.5; done
echo "(e) A $ph_ea and B $ph_eb, one id ($(evil_note e)):"
echo " A:"; report "$ph_ea"
echo " B:"; report "$ph_eb"
times=$(grep -hoE "restart (${ph_ea:0:12}|${ph_eb:0:12}): starting .* at [0-9]*" "$T_TMP"/n?.log | awk '{ print $NF }' | sort -u | tr '\n' ' ')
echo "  restart times: ${times:-none}"
expect_eq "(e) no two nodes restarted at different times" "$(echo "$times" | wc -w | awk '{ print ($1 <= 1) }')" 1
expect_eq "(e) no node restarted for A or B" "$(restarts_for "$ph_ea")$(restarts_for "$ph_eb")" ""
check "(e) every node holds evidence against the attacker" nodes_logging 5 "ALERT: equivocation by authority $EVIL"
fnet_stop_executors

# (v) Double voting: n1 proposes P; only n1 and n2 are sick (2 of 5). The
# attacker votes for P (3: decided everywhere) and then, while that vote is
# live, for a proposal of its own, R. Protocol 2: two live votes of one
# authority for different proposals are evidence when both agreed times lie
# beyond twice the clock skew (120 s) on the receiver's clock (closer than
# that, an honest node's next vote under +-60 s clocks looks the same:
# docs/protocol.md); P loses its quorum without the attacker, the decision
# is withdrawn on every node that took it, and the executor's check before
# `at` (tests/lua/factom_protocol.lua) stops the restart. Protocol 1
# restarted every node.
ns_fresh_state e
stall 1 2; recover 3 4 5; sleep 2.5
ns_serfhand 1 propose restart --in 150s --ttl 300s > "$T_TMP/propose-v.out" 2>&1
sed 's/^/  /' "$T_TMP/propose-v.out"
ph_v=$(sed -n 's/^proposal \([0-9a-f]*\): .*/\1/p' "$T_TMP/propose-v.out")
check "(v) the attacker votes for P, then for its own R" evil v <<LUA
  local ph = "$ph_v"
  local rec = assert(store.get("proposal/" .. ph), "P is not in n1's store")
  relay(rec.payload, { vote(ph, rec) })
  time.sleep(3000)
  local t = now()
  local r, br, phr = propose({ act = "restart", at = t + 150, h = 1000 }, { now = t, ttl = 300 })
  send(PROPOSE, r)
  relay(r, { vote(phr, br) })
  note("v " .. phr)
LUA
ph_vr=$(evil_note v | awk '{ print $1 }')
check "(v) P was decided first" nodes_logging 1 "decided ${ph_v:0:12}"
withdrawn_everywhere() {
    local f
    for f in "$T_TMP"/n?.log; do
        ! grep -q "decided ${ph_v:0:12}" "$f" || grep -q "ALERT: decision on ${ph_v:0:12} withdrawn" "$f" || return 1
    done
}
check "(v) the decision on P was withdrawn on every node that took it" wait_for 60 withdrawn_everywhere
echo "(v) P = $ph_v (n1's):"
report "$ph_v"
echo "(v) R = $ph_vr (the attacker's):"
report "$ph_vr"
expect_eq "(v) no node restarted for P" "$(restarts_for "$ph_v")" ""
expect_eq "(v) no node decided R" "$(grep -l "decided ${ph_vr:0:12}" "$T_TMP"/n?.log 2>/dev/null)" ""
fnet_stop_executors
recover 1 2

# (f) A flood: FLOOD made-up proposals of the attacker, each as a vote event
# with its vote. Every node checks them; what one signer can leave in the
# store must be bounded (DESIGN section 7, "Abuse"), far below what it sent.
ns_fresh_state v
live_rows() { [ -f "$T_TMP/state-n$1/serfhand.db" ] || { echo 0; return; }; sqlite3 "$T_TMP/state-n$1/serfhand.db" \
    "SELECT count(*) FROM kv WHERE expires IS NULL OR expires > strftime('%s','now') * 1000"; }
for i in $NODES; do eval "rows0_$i=$(live_rows "$i")"; done
check "(f) $FLOOD made-up proposals, each with the attacker's vote, sent" evil f <<LUA
  for i = 1, $FLOOD do
    local t = now()
    local p, b, ph = propose({ act = "restart", at = t + 4, h = 1000 }, { now = t, ttl = 3600 })
    assert(serf.event(VOTE, ballot.encode(p, { vote(ph, b) })[1]))
    if i % 20 == 0 then time.sleep(200) end
  end
  note("f sent")
LUA
# one handler process per event: count the distinct pids that logged one
flood_runs() { grep -o 'serfhand\[[0-9]*\] [a-z]*: user:factomd-restart-vote:' "$T_TMP/n$1.log" | sort -u | wc -l; }
check "(f) every node handled the flood" wait_for 180 sh -c \
    "for i in $NODES; do [ \$(grep -o 'serfhand\[[0-9]*\] [a-z]*: user:factomd-restart-vote:' '$T_TMP'/n\$i.log | sort -u | wc -l) -ge $FLOOD ] || exit 1; done"
for i in $NODES; do
    eval "rows=\$(( \$(live_rows $i) - rows0_$i ))"
    echo "  n$i: $rows new live store rows after $FLOOD proposals and votes of one signer ($(flood_runs "$i") handler runs)"
    check "(f) n$i keeps fewer than $((FLOOD / 4)) of them ($rows)" [ "$rows" -lt $((FLOOD / 4)) ]
done

# An executor started for a decision that was withdrawn before it woke is
# a refusal the protocol expects (DESIGN section 7: "a withdrawn decision
# does not run"), not a handler failure: it should skip and report
# `decision withdrawn` as it does when the withdrawal comes later.
withdrawn_as_error=$(grep -h ' error: action:restart: action: [0-9a-f]* is not decided' "$T_TMP"/n?.log | wc -l)
expect_eq "(e,v) executors skip a decision withdrawn before they woke, without an error" "$withdrawn_as_error" 0
check "no handler failed on any node (other than that)" sh -c \
    "! grep -h ' error: ' '$T_TMP'/n?.log | grep -v 'action: [0-9a-f]* is not decided'"
finish
