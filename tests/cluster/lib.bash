# tests/cluster/lib.bash: start and stop real `serf agent`s on 127.0.0.1 with
# serfhand as their event handler. Source after tests/lib.sh.
# start_agent NAME BINDPORT RPCPORT CONF [JOINPORT] [extra serf args...]
start_agent() {
    local name=$1 bind=$2 rpc=$3 conf=$4 join=${5:-}
    shift 4; [ $# -gt 0 ] && shift
    local args=(agent -node="$name" -bind="127.0.0.1:$bind" -rpc-addr="127.0.0.1:$rpc"
        -log-level=debug -event-handler "*=exec $SERFHAND -c $conf")
    [ -n "$join" ] && args+=(-join "127.0.0.1:$join")
    serf "${args[@]}" "$@" > "$T_TMP/agent-$name.log" 2>&1 &
    local pid=$!
    disown "$pid" 2>/dev/null
    track "$pid"
    eval "AGENT_PID_$name=$pid"
}
# members_alive RPCPORT N: true when the agent sees N alive members.
members_alive() {
    [ "$(serf members -rpc-addr="127.0.0.1:$1" -status=alive 2>/dev/null | wc -l)" -eq "$2" ]
}
# wait_rpc RPCPORT: true once the agent's RPC answers.
wait_rpc() { wait_for 10 sh -c "serf members -rpc-addr=127.0.0.1:$1 >/dev/null 2>&1"; }
