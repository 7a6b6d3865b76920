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
for i in $NODES; do ns_node "$i" authority || fail "node n$i"; done
check "five simulators are up" fnet_wait_sims
for i in $NODES; do ns_start "$i"; done
check "five members are alive" wait_for 30 ns_alive 1 5
trap 'fnet_stop_executors; t_cleanup' EXIT
EVIL=$(fnet_identity 5 | cut -d' ' -f1)

stall() { local i; for i in "$@"; do fnet_sim "$i" stalled; done; }
recover() { local i; for i in "$@"; do fnet_sim "$i" recover; done; }
nodes_logging() { # N REGEX: at least N node logs match REGEX
    local n=0 i
    for i in $NODES; do grep -qE -- "$2" "$T_TMP/n$i.log" 2>/dev/null && n=$((n + 1)); done
    [ "$n" -ge "$1" ]
}
# evil NAME: run the attacker's Lua (stdin) through n1's agent; what it
# prints with note() lands in evil-NAME.out.
evil() {
    local f=$T_TMP/evil-$1.lua chain seed pub
    read -r chain seed pub <<< "$(fnet_identity 5)"
    {
        echo 'local envelope = require "factom.envelope"'
        echo 'local ballot = require "factom.ballot"'
        echo 'local crypto = require "serfhand.crypto"'
        echo 'local serf = require "serfhand.serf"'
        echo 'local time = require "serfhand.time"'
        echo "local EVIL = { chain = \"$chain\", seed = \"$seed\" }"
        cat <<'LUA'
local sk = crypto.ed25519_keypair(crypto.unhex(EVIL.seed))
local signer = { chain_id = function() return EVIL.chain end, sign = function(m) return sk:sign(m) end }
local PROPOSE, VOTE = "factomd-restart-propose", "factomd-restart-vote"
local function now() return math.floor(time.now()) end
local function env(name, fields, o)
  o = o or {}
  o.signer = signer
  o.net = "serfhand-test"
  return assert(envelope.build(name, fields, o))
end
local function send(name, payload) assert(serf.event(name, payload)) time.sleep(50) end
local function note(s) print("EVIL " .. s) end
-- ballot(payload, nodes) -> votes {{by, sig}}: the proposal as a query to
-- the chosen nodes only, their signed votes collected as a proposer would.
local function ballot_to(payload, nodes)
  local votes = {}
  serf.query(PROPOSE, payload, { nodes = nodes, expect = #nodes, timeout_ms = 4000,
    on_response = function(_, answer)
      local v = answer:match("^vote (.*)$")
      if v then
        local _, _, b = envelope.parse(v)
        votes[#votes + 1] = { by = b.by, sig = crypto.unb64url(v:match("^([^.]+)%.")) }
      end
    end })
  return votes
end
T.test("evil", function()
LUA
        cat
        echo 'end)'
    } > "$f"
    nx 1 "$SERFHAND" -c "$T_TMP/n1.conf" test --bundle "$T_TMP/bundle" --timeout-ms 30000 "$f" > "$T_TMP/evil-$1.run" 2>&1
    grep -q '^1 passed, 0 failed' "$T_TMP/evil-$1.run" || { cat "$T_TMP/evil-$1.run"; return 1; }
}
# note lines of the attacker's run come through the log (print goes there)
evil_note() { grep -ho "EVIL $1 .*" "$T_TMP"/n1.log | tail -n 1 | cut -d' ' -f3-; }
report() { # PID: each node's lines about it
    local i
    for i in $NODES; do
        echo "  n$i: $(grep -E "$1" "$T_TMP/n$i.log" 2>/dev/null | grep -oE '(proposal|voted for|abstain on|votes for|vote for|tally|decided|executor for|restart|dropped)[^:]*(: [^:]{0,40})?' |
            sed "s/$EVIL/EVIL/g; s/[0-9a-f]\{64\}:/…:/g" | sort | uniq -c | awk '{ $1 = $1 "x"; print }' | tr '\n' ';' | cut -c1-600)"
    done
}
restarts_for() { grep -l "restart $1: running" "$T_TMP"/n?.log 2>/dev/null | sed 's/.*\/\(n[0-9]*\)\.log/\1/' | tr '\n' ' '; }

# (r) Re-issue a proposal id. The attacker's proposal P1 goes, as a ballot,
# only to the sick n1 and n2: they vote, and the attacker relays their two
# votes to every node in a bundle; n3..n5 keep them (the proposal never
# reached them). P1 expires. The attacker re-issues the same id with new
# times (P2), as an event to all, with its own vote. Protocol 1 counts n1's
# and n2's old votes for P2 on n3..n5, which decide 3 of 5 and restart,
# healthy, on votes nobody gave for P2.
stall 1 2; sleep 2.5
check "(r) P1 to n1 and n2, their votes relayed to all; P1 expires; P2 re-issues its id" evil r <<'LUA'
  local id = crypto.hex(crypto.random(8))
  local t = now()
  local p1 = env(PROPOSE, { act = "restart", at = t + 4, h = 1000, b = 1 }, { ttl = 5, id = id })
  local pid = EVIL.chain .. ":" .. id
  local votes = ballot_to(p1, { "n1", "n2" })
  note("r pid " .. pid .. " votes " .. #votes)
  for _, b in ipairs(ballot.encode(pid, t, t + 5, votes)) do send(ballot.EVENT, b) end
  time.sleep(7000) -- P1 has expired
  local t2 = now()
  local p2 = env(PROPOSE, { act = "restart", at = t2 + 20, h = 1000 }, { ttl = 120, id = id })
  send(PROPOSE, p2)
  send(VOTE, env(VOTE, { pid = pid }, { ttl = 120 }))
  note("r at " .. (t2 + 20))
LUA
pid_r=$(evil_note r | sed -n 's/^pid \([^ ]*\) .*/\1/p')
at_r=$(evil_note r | sed -n 's/^at \([0-9]*\)/\1/p')
expect_match "(r) the honest sick nodes voted for P1" "$(evil_note r)" "votes 2$"
recover 1 2
while [ "$(date +%s)" -lt $((${at_r:-0} + 3)) ]; do sleep 0.5; done
echo "(r) re-issued proposal $pid_r:"
report "$pid_r"
expect_eq "(r) no node restarted for the re-issued id" "$(restarts_for "$pid_r")" ""
fnet_stop_executors

# (e) Equivocation on `at`: two proposals with one id, A (at + 20 s) as a
# ballot to n1 and n2, B (at + 35 s) to n3 and n4; the attacker relays all
# four votes, and its own, to every node. Protocol 1 votes name only the
# id: n1, n2 decide A and n3, n4 decide B, and restart 15 s apart.
# Protocol 2: the votes are for different digests, neither has a quorum,
# and A and B together are evidence against the attacker.
stall 1 2 3 4 5; sleep 2.5
check "(e) A and B sent to two groups, votes relayed" evil e <<'LUA'
  local id = crypto.hex(crypto.random(8))
  local t = now()
  local a = env(PROPOSE, { act = "restart", at = t + 20, h = 1000, b = 1 }, { ttl = 120, id = id, now = t })
  local b = env(PROPOSE, { act = "restart", at = t + 35, h = 1000, b = 1 }, { ttl = 120, id = id, now = t })
  local pid = EVIL.chain .. ":" .. id
  local votes = ballot_to(a, { "n1", "n2" })
  for _, v in ipairs(ballot_to(b, { "n3", "n4" })) do votes[#votes + 1] = v end
  local mine = env(VOTE, { pid = pid }, { now = t, ttl = 120, id = envelope.vote_id(pid) })
  votes[#votes + 1] = { by = EVIL.chain, sig = crypto.unb64url(mine:match("^([^.]+)%.")) }
  for _, p in ipairs(ballot.encode(pid, t, t + 120, votes)) do send(ballot.EVENT, p) end
  note("e pid " .. pid .. " votes " .. #votes .. " at " .. (t + 20) .. " " .. (t + 35))
LUA
pid_e=$(evil_note e | sed -n 's/^pid \([^ ]*\) .*/\1/p')
at_e=$(evil_note e | awk '{ print $NF }')
while [ "$(date +%s)" -lt $((${at_e:-0} + 3)) ]; do sleep 0.5; done
echo "(e) equivocated id $pid_e ($(evil_note e)):"
report "$pid_e"
times=$(grep -ho "restart $pid_e: running .* at [0-9]*" "$T_TMP"/n?.log | awk '{ print $NF }' | sort -u | tr '\n' ' ')
echo "  restart times: ${times:-none}"
expect_eq "(e) no two nodes restarted at different times for one id" "$(echo "$times" | wc -w | awk '{ print ($1 <= 1) }')" 1
expect_eq "(e) no node restarted for the equivocated id" "$(restarts_for "$pid_e")" ""
check "(e) every node that saw both holds evidence against the attacker (logged)" \
    nodes_logging 1 "(equivocat|evidence).*$EVIL"
fnet_stop_executors

# (v) Double voting: n1 proposes P; only n1 and n2 are sick (2 of 5). The
# attacker votes for P (3: decided everywhere) and, while that vote is
# live, for a proposal of its own, R. Protocol 2: two live votes of one
# authority for different proposals are evidence; P loses its quorum
# without the attacker, the decision is withdrawn, and the executor's
# check before `at` stops the restart. Protocol 1 restarts every node.
stall 1 2; recover 3 4 5; sleep 2.5
ns_serfhand 1 propose restart --in 30s --ttl 120s > "$T_TMP/propose-v.out" 2>&1
pid_v=$(sed -n 's/^proposal \([0-9a-f:]*\): .*/\1/p' "$T_TMP/propose-v.out")
at_v=$(sed -n 's/^proposal [0-9a-f:]*: restart at \([0-9]*\) .*/\1/p' "$T_TMP/propose-v.out")
cat "$T_TMP/propose-v.out" | sed 's/^/  /'
check "(v) the attacker votes for P, then for its own R" evil v <<LUA
  local pid = "$pid_v"
  send(VOTE, env(VOTE, { pid = pid }, { ttl = 120 }))
  time.sleep(2000)
  local t = now()
  local rid = crypto.hex(crypto.random(8))
  send(PROPOSE, env(PROPOSE, { act = "restart", at = t + 25, h = 1000 }, { ttl = 120, id = rid }))
  send(VOTE, env(VOTE, { pid = EVIL.chain .. ":" .. rid }, { ttl = 120 }))
  note("v r " .. EVIL.chain .. ":" .. rid)
LUA
pid_vr=$(evil_note v | awk '{ print $2 }')
while [ "$(date +%s)" -lt $((${at_v:-0} + 3)) ]; do sleep 0.5; done
echo "(v) P = $pid_v (n1's):"
report "$pid_v"
echo "(v) R = $pid_vr (the attacker's):"
report "$pid_vr"
expect_eq "(v) no node restarted for P" "$(restarts_for "$pid_v")" ""
expect_eq "(v) no node restarted for R" "$(restarts_for "$pid_vr")" ""
fnet_stop_executors
recover 1 2

# (f) A flood: FLOOD votes for made-up proposals, all signed by the
# attacker. Every node checks them; what one signer can leave in the store
# must be bounded (DESIGN section 7, "Abuse"), far below what it sent.
check "(f) $FLOOD votes for made-up proposals sent" evil f <<LUA
  for i = 1, $FLOOD do
    local pid = EVIL.chain .. ":" .. crypto.hex(crypto.random(8))
    assert(serf.event(VOTE, env(VOTE, { pid = pid }, { ttl = 3600 })))
    if i % 20 == 0 then time.sleep(200) end
  end
LUA
check "(f) every node handled the flood" wait_for 120 sh -c \
    "for i in $NODES; do [ \$(grep -c 'vote for $EVIL:' '$T_TMP'/n\$i.log) -ge $FLOOD ] || exit 1; done"
for i in $NODES; do
    rows=$(sqlite3 "$T_TMP/state-n$i/serfhand.db" \
        "SELECT count(*) FROM kv WHERE key LIKE '%$EVIL%' AND (expires IS NULL OR expires > strftime('%s','now')*1000)")
    echo "  n$i: $rows store rows name the attacker after $FLOOD votes"
    check "(f) n$i keeps fewer than half of them ($rows)" [ "$rows" -lt $((FLOOD / 2)) ]
done

check "no handler failed on any node" sh -c "! grep -h ' error: ' '$T_TMP'/n?.log"
finish
