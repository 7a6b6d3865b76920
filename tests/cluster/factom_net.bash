# tests/cluster/factom_net.bash: a test Factom network on loopback for the
# cluster tests and the demo: N serf agents, each with a simulated factomd
# (tests/sim/factomd_sim.py) and a factomd.conf holding a PUBLIC test
# identity from tests/fixtures/identities.txt, and one signed bundle.
# Source after tests/lib.sh and tests/cluster/lib.bash.
#
#   fnet_init NET_BIND_BASE NET_RPC_BASE SIM_BASE      ports: base+i for node i
#   fnet_node I [authority|follower]                   sim + conf (before the agent)
#   fnet_wait_sims                                     all simulators listening
#   fnet_start I                                       the agent (joins node 1)
#   fnet_conf I [KEY=VALUE...]                         (re)write node I's config
#   fnet_sim I MODE                                    factomd_sim.py ctl
SIM="$TOP/tests/sim/factomd_sim.py"
FNET_N=0
FNET_AUTH=""

# Fixture identity I: prints "chain seed pubkey".
fnet_identity() { awk -v n="$1" '$1 == n { print $2, $3, $4 }' "$TOP/tests/fixtures/identities.txt"; }

fnet_init() {
    FNET_BIND=$1 FNET_RPC=$2 FNET_SIM=$3
    mkdir -p "$T_TMP/bundle" "$T_TMP/keys"
    cp -r "$TOP/handlers" "$TOP/lua" "$T_TMP/bundle/"
    "$SERFHAND" keygen -W -p "$T_TMP/keys/t.pub" -s "$T_TMP/keys/t.sec" > /dev/null 2>&1 || return 1
    "$SERFHAND" sign -s "$T_TMP/keys/t.sec" --version 1 --name factom "$T_TMP/bundle" > /dev/null || return 1
    printf '#!/bin/sh\n# restart command of node $1: record the time, recover its simulator\necho "$(date +%%s.%%N) $1" >> "%s/restarts"\nexec python3 "%s" ctl --state-file "%s/sim-$1.json" recover > /dev/null\n' \
        "$T_TMP" "$SIM" "$T_TMP" > "$T_TMP/restart.sh"
    chmod +x "$T_TMP/restart.sh"
    : > "$T_TMP/restarts"
    echo '[]' > "$T_TMP/authorities.json"
}

# The authority set every simulator reports: nodes 1..K (federated).
fnet_authorities() {
    local k=$1 i out="" chain seed pub
    for i in $(seq 1 "$k"); do
        read -r chain seed pub <<< "$(fnet_identity "$i")"
        out="$out${out:+,}{\"chainid\":\"$chain\",\"signingkey\":\"$pub\",\"status\":\"federated\"}"
    done
    echo "[$out]" > "$T_TMP/authorities.json"
}

# fnet_conf I [key=value ...]: the serfhand config of node I; extra settings
# override the reboot table (stall_minutes, cooldown_minutes, followers,
# at_max_seconds (atmax=, default 5: the cooldown is never shorter) ...)
# or the bundle directory (bundle=DIR).
fnet_conf() {
    local i=$1; shift
    local stall=2 cooldown=0 followers=false auto=false bundle=$T_TMP/bundle atmax=5 kv
    for kv in "$@"; do
        case $kv in
        stall=*) stall=${kv#*=} ;; cooldown=*) cooldown=${kv#*=} ;;
        followers=*) followers=${kv#*=} ;; auto=*) auto=${kv#*=} ;;
        bundle=*) bundle=${kv#*=} ;; atmax=*) atmax=${kv#*=} ;;
        esac
    done
    cat > "$T_TMP/n$i.conf.tmp" <<CONF
bundle = "$bundle"
state_dir = "$T_TMP/state-n$i"
trust = { keys = { "$T_TMP/keys/t.pub" }, threshold = 1 }
log = { target = "$T_TMP/n$i.log", level = "info" }
serf = { rpc_addr = "127.0.0.1:$((FNET_RPC + i))" }
factomd = {
  url = "http://127.0.0.1:$((FNET_SIM + i))/v2",
  conf = "$T_TMP/factomd-n$i.conf",
  network = "serfhand-test",
  restart = { "$T_TMP/restart.sh", "n$i" },
}
reboot = { stall_minutes = $stall, cooldown_minutes = $cooldown, followers = $followers,
  auto_propose = $auto, delay_seconds = 3, ttl_minutes = 1, log = "$T_TMP/action-n$i.log",
  at_min_seconds = 2, at_max_seconds = $atmax }
CONF
    mv "$T_TMP/n$i.conf.tmp" "$T_TMP/n$i.conf"
}

# fnet_node I ROLE: identity I's factomd.conf, its simulator, its config.
fnet_node() {
    local i=$1 role=${2:-authority} chain seed pub
    read -r chain seed pub <<< "$(fnet_identity "$i")"
    printf '; factomd.conf of test node %s (PUBLIC test identity)\n[app]\nIdentityChainID = %s\nLocalServerPrivKey = %s\nLocalServerPublicKey = %s\n' \
        "$i" "$chain" "$seed" "$pub" > "$T_TMP/factomd-n$i.conf"
    chmod 600 "$T_TMP/factomd-n$i.conf"
    python3 "$SIM" --port $((FNET_SIM + i)) --name "n$i" --identity "$chain" --pubkey "$pub" \
        --role "$([ "$role" = authority ] && echo Leader || echo Follower)" \
        --authorities "$T_TMP/authorities.json" --blocktime-seconds 10 \
        --state-file "$T_TMP/sim-n$i.json" > "$T_TMP/sim-n$i.out" 2>&1 &
    track $!
    fnet_conf "$i"
    FNET_N=$((FNET_N > i ? FNET_N : i))
}

# Wait until every simulator started by fnet_node is listening.
fnet_wait_sims() {
    local i
    for i in $(seq 1 "$FNET_N"); do
        wait_for 20 grep -qs ready "$T_TMP/sim-n$i.out" || { echo "simulator of n$i did not start" >&2; return 1; }
    done
}

fnet_start() {
    local i=$1
    if [ "$i" -eq 1 ]; then
        start_agent n1 $((FNET_BIND + 1)) $((FNET_RPC + 1)) "$T_TMP/n1.conf"
        wait_rpc $((FNET_RPC + 1))
    else
        start_agent "n$i" $((FNET_BIND + i)) $((FNET_RPC + i)) "$T_TMP/n$i.conf" $((FNET_BIND + 1))
    fi
}

fnet_sim() { python3 "$SIM" ctl --state-file "$T_TMP/sim-n$1.json" "$2" > /dev/null; }

# Lines of the restarts file (one per restart command run).
fnet_restarts() { wc -l < "$T_TMP/restarts" | tr -d ' '; }

# Kill the detached executors the nodes started (their pids are in the logs).
# Executors are detached (setsid): stop them however the test ends.
t_cleanup_hook() { fnet_stop_executors; }
fnet_stop_executors() {
    local p
    for p in $(grep -ho 'executor for [^ ]* started (pid [0-9]*' "$T_TMP"/n*.log 2>/dev/null | grep -o '[0-9]*$'); do
        kill "$p" 2>/dev/null
    done
}
