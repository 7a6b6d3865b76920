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
out=$("$SERFHAND" "${C[@]}" action '../x' "$CHAIN:0011223344556677" 2>&1); rc=$?
expect_eq "action refuses a bad act name" "$rc" 2
out=$("$SERFHAND" "${C[@]}" action restart "$CHAIN:0011223344556677" 2>&1); rc=$?
expect_eq "action on an unknown proposal fails" "$rc" 1
expect_match "and says so" "$out" "unknown proposal"
out=$("$SERFHAND" "${C[@]}" action nosuch "$CHAIN:0011223344556677" 2>&1); rc=$?
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
finish
