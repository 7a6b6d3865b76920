# The Factom subcommands without a cluster: propose, action, tick and status
# argument handling and their failures (no agent, no factomd, no identity),
# and the bundle handlers run through `serfhand run` against one simulator.
. "$(dirname "$0")/../lib.sh"
SIM="$TOP/tests/sim/factomd_sim.py"
read -r _ CHAIN SEED PUB <<< "$(awk '$1 == 1' "$TOP/tests/fixtures/identities.txt")"
mkdir -p "$T_TMP/bundle" "$T_TMP/keys"
cp -r "$TOP/handlers" "$TOP/lua" "$T_TMP/bundle/"
"$SERFHAND" keygen -W -p "$T_TMP/keys/t.pub" -s "$T_TMP/keys/t.sec" > /dev/null 2>&1
"$SERFHAND" sign -s "$T_TMP/keys/t.sec" --version 1 --name factom "$T_TMP/bundle" > /dev/null
printf '[app]\nIdentityChainID = %s\nLocalServerPrivKey = %s\nLocalServerPublicKey = %s\n' "$CHAIN" "$SEED" "$PUB" > "$T_TMP/factomd.conf"
chmod 600 "$T_TMP/factomd.conf"
cat > "$T_TMP/c.conf" <<CONF
bundle = "$T_TMP/bundle"
state_dir = "$T_TMP/state"
trust = { keys = { "$T_TMP/keys/t.pub" } }
log = { target = "$T_TMP/log", level = "info" }
serf = { rpc_addr = "127.0.0.1:8439", timeout_ms = 300 }
factomd = { url = "http://127.0.0.1:18199/v2", conf = "$T_TMP/factomd.conf", network = "t",
  authorities = { "$CHAIN:$PUB" } }
reboot = { stall_minutes = 2 }
CONF
C=(-c "$T_TMP/c.conf")

out=$("$SERFHAND" "${C[@]}" propose 2>&1); rc=$?
expect_eq "propose without an action is a usage error" "$rc" 2
out=$("$SERFHAND" "${C[@]}" propose restart --in 2x 2>&1); rc=$?
expect_eq "bad duration: usage error" "$rc" 2
expect_match "bad duration named" "$out" "bad duration '2x'"
out=$("$SERFHAND" "${C[@]}" propose Restart! 2>&1); rc=$?
expect_eq "bad action name: usage error" "$rc" 2
out=$("$SERFHAND" "${C[@]}" propose restart --in 20m --ttl 15m 2>&1); rc=$?
expect_eq "--in not before --ttl fails" "$rc" 1
expect_match "--in must be shorter" "$out" "--in must be shorter than --ttl"
out=$("$SERFHAND" "${C[@]}" propose restart --in 1m --ttl 2m --dry-run 2>&1); rc=$?
expect_eq "dry run works without an agent" "$rc" 0
expect_match "dry run shows the payload" "$out" '^[A-Za-z0-9_-]{86}\.\{"act":"restart"'
out=$("$SERFHAND" "${C[@]}" propose restart --in 1m --ttl 2m 2>&1); rc=$?
expect_eq "propose with no agent fails" "$rc" 1
expect_match "and says why" "$out" "serf: cannot connect to 127.0.0.1:8439"
expect_match "nothing went out" "$out" "the proposal reached no node"
out=$("$SERFHAND" "${C[@]}" status 2>&1); rc=$?
expect_eq "status with no agent: exit 2" "$rc" 2
expect_match "status says why" "$out" "cannot connect"
out=$("$SERFHAND" "${C[@]}" action restart 2>&1); rc=$?
expect_eq "action needs ACT and PID" "$rc" 2
out=$("$SERFHAND" "${C[@]}" action '../x' "$(printf '%064d' 7)" 2>&1); rc=$?
expect_eq "action refuses a bad act name" "$rc" 2
PH=$(printf '%064d' 7)
out=$("$SERFHAND" "${C[@]}" action restart "$CHAIN:0011223344556677" 2>&1); rc=$?
expect_eq "action on a proposal id instead of its digest fails" "$rc" 1
expect_match "and says so" "$out" "bad proposal digest"
out=$("$SERFHAND" "${C[@]}" action restart "$PH" 2>&1); rc=$?
expect_eq "action on an unknown proposal fails" "$rc" 1
expect_match "and says so" "$out" "unknown proposal"
out=$("$SERFHAND" "${C[@]}" action nosuch "$PH" 2>&1); rc=$?
expect_eq "action without its handler fails" "$rc" 1

# tick and the status query: factomd down = unknown, then a simulator.
"$SERFHAND" "${C[@]}" tick --name t1; rc=$?
expect_eq "tick with factomd down exits 0" "$rc" 0
check "tick logged unknown" grep -q "tick: unknown: factomd: current-minute" "$T_TMP/log"
out=$("$SERFHAND" "${C[@]}" run query --name factomd-status --self t1 2>&1)
expect_match "status query: unknown, authority (pinned set)" "$out" '"state":"unknown"'
expect_match "status query: role" "$out" '"role":"authority"'
python3 "$SIM" --port 18199 --name t1 --identity "$CHAIN" --pubkey "$PUB" --blocktime-seconds 10 \
    --state-file "$T_TMP/sim.json" > "$T_TMP/sim.out" 2>&1 &
track $!
check "simulator up" wait_for 20 grep -qs ready "$T_TMP/sim.out"
out=$("$SERFHAND" "${C[@]}" run query --name factomd-status --self t1 2>&1)
expect_match "status query: healthy" "$out" '"state":"healthy"'
python3 "$SIM" ctl --state-file "$T_TMP/sim.json" stalled
sleep 2.2
out=$("$SERFHAND" "${C[@]}" run query --name factomd-status --self t1 2>&1)
expect_match "status query: sick after 2 factomd minutes" "$out" '"sick":true'
out=$("$SERFHAND" "${C[@]}" run query --name ping --self t1 2>&1)
expect_match "ping" "$out" "pong t1"
out=$("$SERFHAND" "${C[@]}" run member-join --member "$(printf 'm1\t127.0.0.1\trole\tk=v')" 2>&1)
expect_match "member-join logged" "$out" "member-join: m1 127.0.0.1"
out=$("$SERFHAND" "${C[@]}" run user --name factomd-restart-vote --payload "garbage" 2>&1)
expect_match "a garbage vote is dropped and logged" "$out" "dropped factomd-restart-vote: malformed"

# The relay query's answers (docs/protocol.md 4a), from restart.on_votes on a
# node whose pinned set is identities 2-4 (quorum 2; this node, identity 1,
# is not in it, so a decision starts no executor). Bad bundles are refused
# with their kind and keep nothing.
sed 's|authorities = { "[^"]*" }|authorities = { AUTHS }|' "$T_TMP/c.conf" > "$T_TMP/c2.conf"
auths="" ids=""
for i in 1 2 3 4; do
    read -r _ chain seed pub <<< "$(awk -v n="$i" '$1 == n' "$TOP/tests/fixtures/identities.txt")"
    [ "$i" -gt 1 ] && auths="$auths\"$chain:$pub\", "
    ids="${ids}ID[$i] = { chain = \"$chain\", seed = \"$seed\" }
"
done
sed -i "s|AUTHS|$auths|; s|state_dir = \"[^\"]*\"|state_dir = \"$T_TMP/state2\"|" "$T_TMP/c2.conf"
# A Lua test file for `serfhand test`: ID[1..4] = {chain, seed}, then stdin.
with_ids() { echo 'local ID = {}'; printf '%s' "$ids"; cat; }
with_ids > "$T_TMP/relay.lua" <<'LUA'
local restart = require "factom.restart"
local ballot = require "factom.ballot"
local envelope = require "factom.envelope"
local crypto = require "serfhand.crypto"
local store = require "serfhand.store"
local time = require "serfhand.time"
local now = math.floor(time.now())
local function signer(i)
  local sk = crypto.ed25519_keypair(crypto.unhex(ID[i].seed))
  return { chain_id = function() return ID[i].chain end, sign = function(m) return sk:sign(m) end }, sk
end
-- identity 2's proposal, and its digest
local P, _, PT = envelope.build(restart.PROPOSE, { act = "restart", at = now + 30, h = 1, b = 1 },
  { signer = signer(2), ttl = 60, net = "t", id = "00000000000000c1" })
local ph = envelope.digest(restart.PROPOSE, PT)
local function vote(i, over)
  local _, sk = signer(i)
  local body = envelope.vote_body(over or ph, ID[i].chain, now, now + 60, "t")
  return { by = ID[i].chain, sig = sk:sign(envelope.message(ballot.VOTE, body)) }
end
local function relay(votes, prop)
  local qs = ballot.encode(prop or P, votes, "query")
  T.eq(#qs, 1)
  return restart.on_votes({ payload = qs[1] })
end
local function kept() return #store.keys("vote/" .. ph .. "/", 10) end

T.test("bad bundles: dropped with their kind, nothing kept", function()
  T.eq(restart.on_votes({ payload = "FV2 not a bundle." }), "dropped malformed")
  local forged = vote(3)
  forged.sig = string.rep("\1", 64)
  T.eq(relay({ forged }), "dropped forged")
  T.eq(relay({ vote(1) }), "dropped forged", "a voter outside the set")
  T.eq(relay({ vote(3, ("0"):rep(64)) }), "dropped forged", "a vote for another digest")
  local old = envelope.build(restart.PROPOSE, { act = "restart", at = now - 3970, h = 1, b = 1 },
    { signer = signer(2), ttl = 600, net = "t", now = now - 4000 })
  T.eq(relay({ vote(3) }, old), "dropped expired")
  T.eq(kept(), 0)
end)

T.test("counted, decided, decided again", function()
  T.eq(relay({ vote(3) }), "counted 1")
  T.ok(store.get("proposal/" .. ph), "the proposal came with the votes")
  T.eq(relay({ vote(3), vote(4) }), "decided")
  T.eq(relay({ vote(4) }), "decided", "a later bundle finds it decided")
  T.ok(store.get("decided/" .. ph))
end)
LUA
out=$("$SERFHAND" -c "$T_TMP/c2.conf" test --bundle "$T_TMP/bundle" "$T_TMP/relay.lua" 2>&1)
expect_match "relay query answers (on_votes)" "$out" "^2 passed, 0 failed$"
printf '%s\n' "$out" | grep '^FAIL' | sed 's/^/  relay.lua: /'

# The ballot query's answers (docs/protocol.md 4a), from restart.on_ballot on
# the same node: it is not in the set, so it never votes, and says why.
with_ids > "$T_TMP/ballot.lua" <<'LUA'
local restart = require "factom.restart"
local envelope = require "factom.envelope"
local crypto = require "serfhand.crypto"
local time = require "serfhand.time"
local now = math.floor(time.now())
local function proposal(i, fields)
  local sk = crypto.ed25519_keypair(crypto.unhex(ID[i].seed))
  local signer = { chain_id = function() return ID[i].chain end, sign = function(m) return sk:sign(m) end }
  fields = fields or { act = "restart", at = now + 30, h = 1000, b = 1 }
  return assert(envelope.build(restart.PROPOSE, fields, { signer = signer, ttl = 60, net = "t" }))
end

T.test("a ballot this node cannot vote on: novote and why, the same on a replay", function()
  local p = proposal(2)
  local first = restart.on_ballot({ payload = p })
  T.eq(first, "novote " .. ID[1].chain .. " is not in the authority set")
  T.eq(restart.on_ballot({ payload = p }), first, "a replay gets the answer given then")
end)

T.test("refused ballots: novote dropped with the kind, or refused", function()
  local p = proposal(3)
  T.eq(restart.on_ballot({ payload = string.rep("A", 86) .. p:sub(87) }), "novote dropped: forged")
  T.eq(restart.on_ballot({ payload = proposal(1) }), "novote dropped: unauthorized",
    "a proposer outside the set")
  T.eq(restart.on_ballot({ payload = proposal(2, { act = "restart", at = now + 31, h = 1000, b = 1 }) }),
    "novote dropped: abuse", "a second open proposal from the same proposer")
  T.eq(restart.on_ballot({ payload = proposal(4, { act = "Restart!", at = now + 30, b = 1 }) }),
    "novote dropped: malformed", "a malformed act")
  T.eq(restart.on_ballot({ payload = proposal(4, { act = "restart", at = now + 5, b = 1 }) }),
    "novote dropped: malformed", "at before the window (reboot.at_min_seconds = 20)")
end)
LUA
out=$("$SERFHAND" -c "$T_TMP/c2.conf" test --bundle "$T_TMP/bundle" "$T_TMP/ballot.lua" 2>&1)
expect_match "ballot query answers (on_ballot)" "$out" "^2 passed, 0 failed$"
printf '%s\n' "$out" | grep -E '^(FAIL|  )' | head -20 | sed 's/^/  ballot.lua: /'
finish
