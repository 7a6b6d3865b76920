# cluster_view: `serfhand query` and `serfhand check --cluster` against three
# real Serf agents (issue 18, item 4). Both return as soon as every alive
# member answered (far below the --timeout given), print every answer escaped
# (control bytes, invalid UTF-8, a 6000-byte answer, a node name with an
# escape sequence), keep a stable JSON key order, and say who is missing.
# n3 runs a tampered copy of the bundle: check --cluster names its problem.
# Ports: bind 7980-7982, RPC 7480-7482; 7489 stays closed.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib.bash"

command -v serf > /dev/null || { echo "serf not installed"; echo "0 passed, 1 failed"; exit 1; }
command -v jq > /dev/null || { echo "jq not installed"; echo "0 passed, 1 failed"; exit 1; }

B=$T_TMP/bundle
mkdir -p "$B/handlers/query"
"$SERFHAND" keygen -W -p "$T_TMP/k.pub" -s "$T_TMP/k.sec" > /dev/null
cat > "$B/handlers/query/echo.lua" <<'LUA'
return function(ev) return ev.self.name .. ":" .. ev.payload end
LUA
# Bytes a hostile member could answer: a terminal escape that clears the
# screen, NUL, CR, bytes that are not UTF-8, and a valid multibyte character.
cat > "$B/handlers/query/hostile.lua" <<'LUA'
return function(ev) return "\27[2J\27]0;owned\7x\0y\r\n\255\254\192\175é" end
LUA
cat > "$B/handlers/query/big.lua" <<'LUA'
return function(ev) return string.rep("0123456789", 600) end
LUA
cat > "$B/handlers/query/json.lua" <<'LUA'
return function(ev) return { node = ev.self.name, n = 1 } end
LUA
"$SERFHAND" sign -s "$T_TMP/k.sec" --name view --version 4 "$B" > /dev/null || fail "signing"
cp -r "$B" "$T_TMP/tampered"
echo 'return function() end' > "$T_TMP/tampered/handlers/query/extra.lua" # not signed

# Node 2's name carries an escape sequence and a byte that is not UTF-8: a
# member picks its own name. In JSON that byte is U+FFFD (N2J).
N2=$(printf 'n2\033[7m\377')
N2J=$(printf 'n2\033[7m\357\277\275')
for i in 1 2 3; do
    bundle=$B; [ "$i" = 3 ] && bundle=$T_TMP/tampered
    cat > "$T_TMP/n$i.conf" <<CONF
state_dir = "$T_TMP/state-n$i"
bundle = "$bundle"
trust = { keys = { "$T_TMP/k.pub" } }
log = { target = "$T_TMP/n$i.log", level = "debug" }
limits = { response_bytes = 8192 }
CONF
    printf '{"query_response_size_limit": 16384}\n' > "$T_TMP/agent$i.json"
done
agent() { # I NAME: bind 798I-1, RPC 748I-1
    local i=$1 name=$2 j=$(($1 - 1))
    exec serf agent -node="$name" -bind="127.0.0.1:798$j" -rpc-addr="127.0.0.1:748$j" \
        -config-file="$T_TMP/agent$i.json" -tag role="r$i" \
        -event-handler "*=exec $SERFHAND -c $T_TMP/n$i.conf" > "$T_TMP/agent$i.log" 2>&1
}
agent 1 n1 &
track $!
agent 2 "$N2" &
track $!
agent 3 n3 &
track $!
for p in 7480 7481 7482; do wait_rpc "$p" || fail "agent on $p up"; done
serf join -rpc-addr=127.0.0.1:7481 127.0.0.1:7980 > /dev/null
serf join -rpc-addr=127.0.0.1:7482 127.0.0.1:7980 > /dev/null
wait_for 15 members_alive 7480 3 && ok "3 members alive" || fail "3 members alive"

cat > "$T_TMP/c.conf" <<CONF
log = { target = "$T_TMP/client.log" }
serf = { rpc_addr = "127.0.0.1:7480" }
trust = { keys = { "$T_TMP/k.pub" } }
CONF
S() { "$SERFHAND" -c "$T_TMP/c.conf" "$@"; }
ms_now() { date +%s%3N; }

# --- query: early return, one line per node ----------------------------------------
t0=$(ms_now)
out=$(S query --timeout 10 echo hello); rc=$?
took=$(($(ms_now) - t0))
expect_eq "query echo: exit 0" "$rc" 0
expect_match "n1 answered" "$out" "^n1 +[0-9]+ ms +8 B  n1:hello$"
expect_match "n3 answered" "$out" "n3 +[0-9]+ ms +8 B  n3:hello"
expect_match "the node name is escaped" "$out" 'n2\\x1b\[7m\\xff +[0-9]+ ms +13 B  n2\\x1b\[7m\\xff:hello'
expect_match "a summary line" "$out" "3 answered, 3 acks, 0 missing, in [0-9]+ ms$"
check "returned once all 3 answered, not at the 10 s timeout ($took ms)" [ "$took" -lt 5000 ]
echo "query echo, 3 agents: $took ms (timeout 10 s)"

# --json: stable key order, sorted nodes, exact answers
j1=$(S query --json --timeout 10 echo hello); rc=$?
expect_eq "query --json: exit 0" "$rc" 0
expect_eq "top-level keys in a fixed order" "$(printf '%s' "$j1" | jq -c keys_unsorted)" \
    '["query","answered","expected","elapsed_ms","answers","acks","missing"]'
expect_eq "answer keys in a fixed order" "$(printf '%s' "$j1" | jq -c '.answers[0] | keys_unsorted')" \
    '["node","ms","bytes","answer"]'
expect_eq "answers sorted by node" "$(printf '%s' "$j1" | jq -r '.answers[].node' | od -An -c | tr -s ' ')" \
    "$(printf 'n1\n%s\nn3\n' "$N2J" | od -An -c | tr -s ' ')"
expect_eq "the answers, exact" "$(printf '%s' "$j1" | jq -r '.answers[2].answer')" "n3:hello"
expect_eq "counts" "$(printf '%s' "$j1" | jq -c '[.answered, .expected, (.acks | length), .missing]')" '[3,3,3,[]]'
j2=$(S query --json --timeout 10 echo hello)
strip() { printf '%s' "$1" | sed -E 's/"(ms|elapsed_ms)":[0-9]+//g'; }
expect_eq "two runs give the same document (times aside)" "$(strip "$j2")" "$(strip "$j1")"
j=$(S query --json --timeout 10 json)
expect_eq "a JSON answer is a string: fromjson reads it" "$(printf '%s' "$j" | jq -c '[.answers[0,2].answer | fromjson | .node]')" '["n1","n3"]'
expect_eq "n2's answer holds its name's byte that is not UTF-8: base64" \
    "$(printf '%s' "$j" | jq -r '.answers[1].answer_base64' | base64 -d | jq -c .node)" \
    "$(jq -cn --arg n2 "$N2J" '$n2')"

# --- hostile answers -------------------------------------------------------------------
out=$(S query --timeout 10 hostile); rc=$?
expect_eq "query hostile: exit 0" "$rc" 0
check "no byte outside printable ASCII and newline reaches the terminal" \
    sh -c '! printf "%s" "$1" | LC_ALL=C grep -q "[^ -~]"' - "$out"
expect_match "escaped, readable" "$out" '^n1 +[0-9]+ ms +25 B  \\x1b\[2J\\x1b\]0;owned\\x07x\\x00y\\r\\n\\xff\\xfe\\xc0\\xaf\\xc3\\xa9$'
j=$(S query --json --timeout 10 hostile); rc=$?
check "the JSON parses" sh -c 'printf "%s" "$1" | jq -e . > /dev/null' - "$j"
check "the JSON is valid UTF-8" sh -c 'printf "%s" "$1" | iconv -f UTF-8 -t UTF-8 > /dev/null' - "$j"
check "and holds no raw control byte" sh -c '! printf "%s" "$1" | tr -d "\n" | LC_ALL=C grep -q "[[:cntrl:]]"' - "$j"
expect_eq "bytes that are not UTF-8 come back exact, in base64" \
    "$(printf '%s' "$j" | jq -r '.answers[0].answer_base64' | base64 -d | od -An -tx1 | tr -s ' ')" \
    "$(printf '\033[2J\033]0;owned\007x\000y\r\n\377\376\300\257\303\251' | od -An -tx1 | tr -s ' ')"
expect_eq "and there is no \"answer\" then" "$(printf '%s' "$j" | jq -c '.answers[0] | keys_unsorted')" \
    '["node","ms","bytes","answer_base64"]'

out=$(S query --timeout 10 big); rc=$?
expect_eq "a 6000-byte answer: exit 0" "$rc" 0
line=$(printf '%s\n' "$out" | grep '^n1 ')
expect_match "its size is shown" "$line" " 6000 B  0123456789"
check "the terminal line is cut (${#line} bytes)" [ "${#line}" -lt 300 ]
expect_match "and says so" "$line" '\.\.\.$'
expect_eq "--json holds all of it" "$(S query --json --timeout 10 big | jq -r '.answers[0].answer | length')" 6000

# --- filters, missing nodes, --expect -----------------------------------------------------
out=$(S query --node n1 --json --timeout 10 echo x); rc=$?
expect_eq "--node n1: exit 0" "$rc" 0
expect_eq "--node n1: only n1" "$(printf '%s' "$out" | jq -c '[.answers[].node, .expected, .missing]')" '["n1",1,[]]'
t0=$(ms_now)
out=$(S query --node n1 --node nosuch --timeout 2 --json echo x); rc=$?
took=$(($(ms_now) - t0))
expect_eq "a node that is not a member: exit 1" "$rc" 1
expect_eq "it is missing" "$(printf '%s' "$out" | jq -c '.missing')" '["nosuch"]'
check "it did not wait for a node that is no member ($took ms)" [ "$took" -lt 1500 ]
out=$(S query --tag role=r3 --expect 1 --timeout 10 --json echo x); rc=$?
expect_eq "--tag role=r3 --expect 1: exit 0" "$rc" 0
expect_eq "--tag: only n3" "$(printf '%s' "$out" | jq -c '[.answers[].node]')" '["n3"]'
out=$(S query --tag role=r1 --timeout 2 --json echo x); rc=$?
expect_eq "--tag without --expect waits for Serf, then exit 0" "$rc" 0
expect_eq "--tag: the acks are the matched nodes" "$(printf '%s' "$out" | jq -c '[.acks, .missing]')" '[["n1"],[]]'
out=$(S query --expect 1 --timeout 10 --json echo x); rc=$?
expect_eq "--expect 1 returns after one answer, the rest missing: exit 1" "$rc" 1
expect_eq "one answer" "$(printf '%s' "$out" | jq '.answered')" 1
out=$(S query --tag role=r1 --timeout 1 typo-no-handler); rc=$?
expect_eq "--tag, nobody answers: exit 1" "$rc" 1
expect_match "the node that acked is shown as not answering" "$out" "^n1 +\(no answer\)
0 answered, 1 acks, 1 missing"
out=$(S query --timeout 1 typo-no-handler 2>&1); rc=$?
expect_eq "a query nobody handles: exit 1" "$rc" 1
expect_match "every node is listed as not answering" "$out" "^n1 +\(no answer\)"
expect_match "counted" "$out" "0 answered, 3 acks, 3 missing"
out=$(S query 'bad name' 2>&1); rc=$?
expect_eq "an invalid query name: exit 2" "$rc" 2
out=$(S query --tag noequals x 2>&1); rc=$?
expect_eq "--tag without =: exit 2" "$rc" 2
expect_match "says what it wants" "$out" "--tag wants KEY=REGEXP"
printf 'log = { target = "%s/client.log" }\nserf = { rpc_addr = "127.0.0.1:7489", timeout_ms = 500 }\n' "$T_TMP" > "$T_TMP/down.conf"
out=$("$SERFHAND" -c "$T_TMP/down.conf" query echo 2>&1); rc=$?
expect_eq "agent down: exit 2" "$rc" 2
expect_match "named" "$out" "serfhand query: serf: cannot connect to 127.0.0.1:7489"

# --- check --cluster ------------------------------------------------------------------------
t0=$(ms_now)
out=$(S check --cluster); rc=$?
took=$(($(ms_now) - t0))
echo "check --cluster, 3 agents: $took ms"
expect_eq "check --cluster with a tampered node: exit 1" "$rc" 1
check "returned once all 3 answered ($took ms)" [ "$took" -lt 3000 ]
expect_match "a header" "$out" "^NODE +BUNDLE +VERSION +PROBLEMS"
expect_match "n1 ok" "$out" "n1 +view +4 +-"
expect_match "n2 ok, name escaped" "$out" 'n2\\x1b\[7m\\xff +view +4 +-'
expect_match "n3's problem is named" "$out" "n3 +view +4 +handlers/query/extra.lua: not listed in the manifest"
expect_match "a summary" "$out" "3 of 3 alive members answered, 1 with problems"
j=$(S check --cluster --json); rc=$?
expect_eq "check --cluster --json: exit 1" "$rc" 1
expect_eq "check --cluster --json: keys" "$(printf '%s' "$j" | jq -c keys_unsorted)" '["alive","answered","problems","nodes","missing"]'
expect_eq "per node: integer version, ok, codes" \
    "$(printf '%s' "$j" | jq -c '[.nodes[] | [.node, .bundle, .version, .ok, .failed]]')" \
    "$(jq -cn --arg n2 "$N2J" '[["n1","view",4,true,[]],[$n2,"view",4,true,[]],["n3","view",4,false,["files"]]]')"
expect_match "n3's problems are listed" "$(printf '%s' "$j" | jq -r '.nodes[2].problems[0]')" "extra.lua"
rm "$T_TMP/tampered/handlers/query/extra.lua"
out=$(S check --cluster); rc=$?
expect_eq "all nodes fine: exit 0" "$rc" 0
expect_match "every node answered, none with problems" "$out" "3 of 3 alive members answered, 0 with problems"
# `status` on a cluster without the Factom bundle points at the generic view.
out=$(S status --timeout-ms 1500 2> "$T_TMP/status.err"); rc=$?
expect_eq "status on a non-Factom cluster: exit 1" "$rc" 1
expect_match "status says where to look" "$(cat "$T_TMP/status.err")" "no member answered query factomd-status .*serfhand check --cluster"

# A node whose handler fails answers nothing: missing, exit 1, after the timeout.
echo 'this is not a config' > "$T_TMP/n3.conf"
t0=$(ms_now)
out=$(S check --cluster --timeout 2); rc=$?
took=$(($(ms_now) - t0))
expect_eq "a node that does not answer: exit 1" "$rc" 1
expect_match "it is shown" "$out" "^n3 +\(no answer\)"
expect_match "and counted" "$out" "2 of 3 alive members answered, 0 with problems"
check "after the timeout ($took ms)" [ "$took" -ge 1800 ]
expect_eq "--json: missing" "$(S check --cluster --timeout 2 --json | jq -c .missing)" '["n3"]'
finish
