# Three real serf agents on 127.0.0.1 run serfhand as their event handler:
# a user event reaches every node byte-exact, `serf query` gets every node's
# answer, member-join and member-failed handlers see the parsed members.
# Ports: bind 7901-7903, RPC 7401-7403.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/lib.bash"

B=$T_TMP/bundle
mkdir -p "$B/handlers/user" "$B/handlers/query"
cat > "$B/handlers/user/probe.lua" <<'LUA'
local log = require "serfhand.log"
return function(ev)
  local hex = ev.payload:gsub(".", function(c) return string.format("%02x", c:byte()) end)
  log.info("probe " .. ev.self.name .. " " .. hex)
end
LUA
cat > "$B/handlers/query/whoami.lua" <<'LUA'
return function(ev) return ev.self.name .. ":" .. ev.self.tags.color .. ":" .. ev.payload end
LUA
for e in member-join member-failed; do
cat > "$B/handlers/$e.lua" <<'LUA'
local log = require "serfhand.log"
return function(ev)
  for _, m in ipairs(ev.members) do
    log.info(string.format("%s name=%s addr=%s role=%s color=%s", ev.type, m.name, m.addr, m.role,
      tostring(m.tags.color)))
  end
end
LUA
done

"$SERFHAND" keygen -W -p "$T_TMP/k.pub" -s "$T_TMP/k.sec" > /dev/null
check "the test bundle is signed" sh -c "'$SERFHAND' sign -s '$T_TMP/k.sec' --name bundle --version 1 '$B' > /dev/null"
for i in 1 2 3; do
    cat > "$T_TMP/n$i.conf" <<CONF
bundle = "$B"
trust = { keys = { "$T_TMP/k.pub" } }
state_dir = "$T_TMP/state-n$i"
log = { target = "$T_TMP/n$i.log", level = "debug" }
CONF
done
start_agent n1 7901 7401 "$T_TMP/n1.conf" "" -tag role=r1 -tag color=red
wait_rpc 7401
start_agent n2 7902 7402 "$T_TMP/n2.conf" 7901 -tag role=r2 -tag color=green
start_agent n3 7903 7403 "$T_TMP/n3.conf" 7901 -tag role=r3 -tag color=blue
check "three members are alive" wait_for 20 members_alive 7401 3

# member-join: every node logs the others with their parsed fields.
check "n1 saw n3 join with its role and tags" wait_for 15 \
    grep -qs "member-join name=n3 addr=127.0.0.1 role=r3 color=blue" "$T_TMP/n1.log"
check "n3 saw n1 join" wait_for 15 grep -qs "member-join name=n1 addr=127.0.0.1 role=r1 color=red" "$T_TMP/n3.log"

# A user event with non-ASCII bytes reaches every node exactly.
payload=$'caf\xc3\xa9 \xff\x01end'
want=$(printf '%s' "$payload" | od -An -tx1 | tr -d ' \n')
serf event -rpc-addr=127.0.0.1:7402 -coalesce=false probe "$payload" > /dev/null
for i in 1 2 3; do
    check "n$i handled the user event with its exact payload" \
        wait_for 10 grep -qs "probe n$i $want\$" "$T_TMP/n$i.log"
done

# A query gets each node's response.
out=$(serf query -rpc-addr=127.0.0.1:7403 -format=json -timeout=2s whoami hello 2>&1)
expect_match "n1 answered the query" "$out" '"n1": "n1:red:hello"'
expect_match "n2 answered the query" "$out" '"n2": "n2:green:hello"'
expect_match "n3 answered the query" "$out" '"n3": "n3:blue:hello"'

# A query with no handler: no response, nothing logged as an error.
out=$(serf query -rpc-addr=127.0.0.1:7401 -format=json -timeout=1s nohandler x 2>&1)
expect_match "a query without a handler gets no responses" "$out" '"Responses": \{\}'

# member-failed: kill n3 hard; the survivors' handlers see it.
kill -9 "$AGENT_PID_n3"
check "n1 saw n3 fail" wait_for 30 grep -qs "member-failed name=n3 addr=127.0.0.1 role=r3 color=blue" "$T_TMP/n1.log"
check "n2 saw n3 fail" wait_for 10 grep -qs "member-failed name=n3" "$T_TMP/n2.log"
check "no handler failed on any node" sh -c "! grep -h ' error: ' '$T_TMP'/n?.log"
check "no agent reported a handler error" sh -c "! grep -h 'Error invoking script' '$T_TMP'/agent-n1.log '$T_TMP'/agent-n2.log"

finish
