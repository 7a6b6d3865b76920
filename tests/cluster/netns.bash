# tests/cluster/netns.bash: the Factom test network of factom_net.bash with
# every node in a network namespace of its own, so that faults can be
# injected the way they happen between machines. Source after tests/lib.sh,
# tests/cluster/lib.bash and tests/cluster/factom_net.bash; the script must
# have called ns_private first (as root: namespaces need CAP_SYS_ADMIN).
#
#   ns_private "$0" "$@"        re-run the script in a private network namespace
#   ns_init                     bridges fbr0 (the network) and fbr1 (a cut-off side)
#   ns_node I ROLE              namespaces, veth 10.77.0.I on fbr0, simulator, config
#   ns_skew I SECONDS           node I's clock runs SECONDS (+60, -60, 0) off from the
#                               next process on: libfaketime, loaded by the
#                               /etc/ld.so.preload of an overlay of /etc in the node's own
#                               mount namespace, reads the offset from its /etc/faketimerc.
#                               serfhand, its executors and the restart command see it
#                               (a cleaned environment cannot shed it); Serf (Go) reads the
#                               clock without libc and keeps the true time, and the
#                               simulated factomd runs outside the mount namespace: its
#                               stall clock stays continuous when the offset changes
#   ns_start I [JOIN]           the node's serf agent (joins node JOIN, default 1)
#   ns_stop_agent I             SIGTERM to the agent (no leave: the others see it fail)
#   nx I CMD...                 run CMD inside node I's namespaces
#   ns_partition I...           move nodes I... to fbr1: they only reach each other
#   ns_heal                     every node back on fbr0
#
# Agents bind 10.77.0.I:FNET_BIND+I; RPC and simulator stay on each node's own
# 127.0.0.1, as factom_net.bash's configs say. Nothing is visible outside the
# script's private namespace; everything dies with the tracked pids.
NS_LIBFAKETIME=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1

ns_private() {
    [ -n "${SERFHAND_NS_PRIVATE:-}" ] && return 0
    if ! unshare -n true 2>/dev/null; then
        echo "FAIL this test needs network namespaces (run as root): unshare -n failed"
        echo "0 passed, 1 failed"
        exit 1
    fi
    local script=$1; shift
    SERFHAND_NS_PRIVATE=1 exec unshare -n -- bash "$script" "$@"
}

ns_init() {
    ip link set lo up || return 1
    ip link add fbr0 type bridge && ip link add fbr1 type bridge || return 1
    ip link set fbr0 up && ip link set fbr1 up
}

# ns_holder I: a process whose namespaces are node I's (net + mount).
ns_holder() {
    local i=$1 d=$T_TMP/ns-n$1
    [ -r "$NS_LIBFAKETIME" ] || { echo "libfaketime missing: $NS_LIBFAKETIME (package faketime)" >&2; return 1; }
    mkdir -p "$d/upper" "$d/work"
    echo "$NS_LIBFAKETIME" > "$d/upper/ld.so.preload"
    echo "+0s" > "$d/upper/faketimerc"
    eval "NS_SKEW_$i=0"
    unshare -n -m --propagation private sh -c \
        "mount -t overlay overlay -o lowerdir=/etc,upperdir=$d/upper,workdir=$d/work /etc && exec sleep 100000" &
    local pid=$!
    track "$pid"
    # ready once the mount is done and sleep runs in the new namespace
    wait_for 10 sh -c "[ \"\$(cat /proc/$pid/comm 2>/dev/null)\" = sleep ] &&
        [ \"\$(readlink /proc/$pid/ns/net)\" != \"\$(readlink /proc/$$/ns/net)\" ]" ||
        { echo "namespace of n$i did not come up" >&2; return 1; }
    eval "NS_PID_$i=$pid"
}

nx() {
    local i=$1; shift
    local pid; eval "pid=\${NS_PID_$i}"
    nsenter -t "$pid" -n -m -- "$@"
}
nx_bg() {
    local i=$1; shift
    local pid; eval "pid=\${NS_PID_$i}"
    exec nsenter -t "$pid" -n -m -- "$@"
}

# ns_skew I SECONDS (signed): see above. NS_SKEW_I keeps it.
ns_skew() {
    printf '%+ds\n' "$2" > "$T_TMP/ns-n$1/upper/faketimerc"
    eval "NS_SKEW_$1=$2"
}

# nxn I CMD...: CMD in node I's network namespace only (the true clock).
# nx_bg and nxn_bg are the same for `cmd &`: they exec, so that the pid $!
# gives, and that track() stops, is CMD's own and not a subshell's.
nxn() {
    local i=$1; shift
    local pid; eval "pid=\${NS_PID_$i}"
    nsenter -t "$pid" -n -- "$@"
}
nxn_bg() {
    local i=$1; shift
    local pid; eval "pid=\${NS_PID_$i}"
    exec nsenter -t "$pid" -n -- "$@"
}

ns_node() {
    local i=$1 role=${2:-authority} chain seed pub pid
    ns_holder "$i" || return 1
    eval "pid=\${NS_PID_$i}"
    ip link add "fv$i" type veth peer name eth0 netns "$pid" || return 1
    ip link set "fv$i" master fbr0 up
    nx "$i" ip link set lo up
    nx "$i" ip addr add "10.77.0.$i/24" dev eth0
    nx "$i" ip link set eth0 up
    read -r chain seed pub <<< "$(fnet_identity "$i")"
    printf '; factomd.conf of test node %s (PUBLIC test identity)\n[app]\nIdentityChainID = %s\nLocalServerPrivKey = %s\nLocalServerPublicKey = %s\n' \
        "$i" "$chain" "$seed" "$pub" > "$T_TMP/factomd-n$i.conf"
    chmod 600 "$T_TMP/factomd-n$i.conf"
    nxn_bg "$i" python3 "$SIM" --port $((FNET_SIM + i)) --name "n$i" --identity "$chain" --pubkey "$pub" \
        --role "$([ "$role" = authority ] && echo Leader || echo Follower)" \
        --authorities "$T_TMP/authorities.json" --blocktime-seconds 10 \
        --state-file "$T_TMP/sim-n$i.json" > "$T_TMP/sim-n$i.out" 2>&1 &
    track $!
    fnet_conf "$i"
    FNET_N=$((FNET_N > i ? FNET_N : i))
}

# Agents reconnect to failed members every 3 s (Serf's default is 30 s), so
# that a healed partition joins up within seconds and the test stays short;
# what the protocol sees is the same, only sooner.
ns_start() {
    local i=$1 join=${2:-1}
    [ -f "$T_TMP/agent.json" ] || echo '{"reconnect_interval": "3s"}' > "$T_TMP/agent.json"
    local args=(agent -node="n$i" -bind="10.77.0.$i:$((FNET_BIND + i))" -rpc-addr="127.0.0.1:$((FNET_RPC + i))"
        -log-level=debug -config-file="$T_TMP/agent.json" -event-handler "*=exec $SERFHAND -c $T_TMP/n$i.conf")
    [ "$join" != "$i" ] && args+=(-join "10.77.0.$join:$((FNET_BIND + join))")
    nx_bg "$i" serf "${args[@]}" >> "$T_TMP/agent-n$i.log" 2>&1 &
    local pid=$!
    track "$pid"
    eval "AGENT_PID_$i=$pid"
    # an agent whose -join finds nobody listening exits: the first one must answer first
    [ "$join" = "$i" ] && wait_for 10 ns_alive "$i" 1
    return 0
}

ns_stop_agent() {
    local pid; eval "pid=\${AGENT_PID_$1}"
    kill "$pid" 2>/dev/null
    wait_for 10 sh -c "! kill -0 $pid 2>/dev/null"
}

# ns_alive I N: true when node I's agent sees N alive members.
ns_alive() {
    [ "$(nx "$1" serf members -rpc-addr="127.0.0.1:$((FNET_RPC + $1))" -status=alive 2>/dev/null | wc -l)" -eq "$2" ]
}

ns_partition() { local i; for i in "$@"; do ip link set "fv$i" master fbr1; done; }
ns_heal() { local i; for i in $(seq 1 "$FNET_N"); do ip link set "fv$i" master fbr0; done; }

# ns_serfhand I ARGS...: serfhand as node I's operator runs it.
ns_serfhand() { local i=$1; shift; nx "$i" "$SERFHAND" -c "$T_TMP/n$i.conf" "$@"; }

# ns_restarts_since N0: the restart commands run after line N0 of the
# restarts file, "TRUE_TIME nI", each time taken back to the true clock.
ns_restarts_since() {
    local line t n s
    tail -n +"$(($1 + 1))" "$T_TMP/restarts" | while read -r t n; do
        eval "s=\${NS_SKEW_${n#n}:-0}"
        awk -v t="$t" -v s="$s" -v n="$n" 'BEGIN { printf "%.3f %s\n", t - s, n }'
    done
}

# ns_report PID: what node each node did with proposal PID, one line each.
ns_report() {
    local i f line s=${1:0:12} # log lines name a digest by its first 12 hex
    for i in $(seq 1 "$FNET_N"); do
        f=$T_TMP/n$i.log
        line=""
        grep -qE "proposal ${s}[: ]" "$f" 2>/dev/null && line="$line proposal-seen"
        grep -qE "dropped factomd-restart-[a-z]+: future" "$f" 2>/dev/null && line="$line (a proposal dropped as future)"
        grep -qF "voted for $s" "$f" 2>/dev/null && line="$line voted"
        grep -qF "abstain on $s" "$f" 2>/dev/null && line="$line abstained"
        line="$line $(grep -oE "tally $s: [0-9]+ of [0-9]+ votes" "$f" 2>/dev/null | tail -n 1 | sed 's/.*: /last-tally /;s/ votes//;s/ /-/g')"
        grep -qF "decided $s" "$f" 2>/dev/null && line="$line DECIDED"
        grep -qF "executor for $s started" "$f" 2>/dev/null && line="$line executor-started"
        grep -qE "restart $s: started" "$f" 2>/dev/null && line="$line RAN-AT-$(grep -oE "restart $s: started .* at [0-9.]+" "$f" | tail -n 1 | sed 's/.* at //')"
        grep -qE "restart $s skipped|restart $s: skipped" "$f" 2>/dev/null && line="$line skipped"
        grep -qE "restart $s: decided [0-9]+ ms after|restart $s skipped: .*late" "$f" 2>/dev/null && line="$line LATE-START"
        grep -qE "dropped [a-z-]+: late: .*$s" "$f" 2>/dev/null && line="$line (late copies dropped)"
        grep -qE "ALERT: decision on $s withdrawn" "$f" 2>/dev/null && line="$line WITHDRAWN"
        eval "echo \"  n$i (clock \${NS_SKEW_$i:-0} s):\$line\""
    done
}

# ns_fresh_state TAG: every node starts the next case with an empty store
# (the last one is kept as state-nI.TAG): a vote stays live until its `at`
# + 120 s (protocol 2), and one case's votes, open proposals, evidence and
# cooldown must not decide the next case's outcome.
ns_fresh_state() {
    local i
    for i in $(seq 1 "$FNET_N"); do mv "$T_TMP/state-n$i" "$T_TMP/state-n$i.$1" 2>/dev/null; done
}
