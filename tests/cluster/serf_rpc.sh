# serf_rpc: require "serfhand.serf" against three real Serf agents on
# 127.0.0.1 (bind ports 7950-7952, RPC ports 7450-7452; 7469 stays closed).
# n2 has rpc_auth in a JSON config file. Covers binary events, exact member
# tags, queries returning early on `expect`, filters, acks, the refusal
# inside a handler, wrong/missing token, agent down, oversize payloads and
# the RPC timeout against a frozen agent; several queries at once on one
# connection (query_many: concurrent, each ending on its own, errors,
# reserve_ms); retries to the nodes a query missed (retry_nodes); answers
# also relayed through other members (relay_factor).
. "$(dirname "$0")/../lib.sh"

command -v serf >/dev/null || { echo "serf not installed"; echo "0 passed, 1 failed"; exit 1; }

TOKEN=s3cret-token
B=$T_TMP/bundle
mkdir -p "$B/handlers/query"
"$SERFHAND" keygen -W -p "$T_TMP/k.pub" -s "$T_TMP/k.sec" > /dev/null
cat > "$T_TMP/hconf" <<CONF
log = { target = "$T_TMP/handler.log", level = "debug" }
state_dir = "$T_TMP/state"
trust = { keys = { "$T_TMP/k.pub" } }
serf = { rpc_addr = "127.0.0.1:7450" }
CONF
cat > "$B/handlers/query/nested.lua" <<'LUA'
local serf = require "serfhand.serf"
return function(ev)
  local ok, err = pcall(serf.query, "echo", "x")
  local m = serf.members()
  return (ok and "not refused" or "refused: " .. tostring(err)) .. "; members=" .. #m
end
LUA
"$SERFHAND" sign -s "$T_TMP/k.sec" --name bundle --version 1 "$B" > /dev/null || fail "signing the test bundle"

# query "slow": the node named in the payload ("NODE [SECONDS]") answers
# SECONDS (0.6) late, the others at once; every answer is "<node>-<NODE>".
SLOW='read p d; [ "$p" = "$SERF_SELF_NAME" ] && sleep "${d:-0.6}"; printf "%s-%s" "$SERF_SELF_NAME" "$p"'
SLOW_JSON=$(printf '%s' "$SLOW" | sed 's/"/\\"/g')

# agent NAME N EXTRA...: bind 127.0.0.1:795N, RPC 127.0.0.1:745N.
agent() {
    local name=$1 n=$2; shift 2
    serf agent -node="$name" -bind="127.0.0.1:795$n" -rpc-addr="127.0.0.1:745$n" \
        -log-level=debug "$@" > "$T_TMP/$name.log" 2>&1 &
    track $!
    eval "PID_$name=$!"
}
agent n1 0 -tag role=r1 -tag foo-bar.baz=v1 -tag "weird=a,b=c	tab" \
    -event-handler "user:bin=cat > $T_TMP/ev1.out" \
    -event-handler "query:echo=printf resp-n1" \
    -event-handler "query:slow=$SLOW" \
    -event-handler "query:cat=cat" \
    -event-handler "query:nested=$SERFHAND -c $T_TMP/hconf handle --bundle $B"
cat > "$T_TMP/n2.json" <<JSON
{ "node_name": "n2", "bind": "127.0.0.1:7951", "rpc_addr": "127.0.0.1:7451",
  "rpc_auth": "$TOKEN", "log_level": "debug", "tags": { "role": "r2" },
  "event_handlers": [ "user:bin=cat > $T_TMP/ev2.out", "query:echo=printf resp-n2",
                      "query:slow=$SLOW_JSON" ] }
JSON
serf agent -config-file="$T_TMP/n2.json" > "$T_TMP/n2.log" 2>&1 &
track $!
agent n3 2 -tag role=r3 -event-handler "query:echo=printf resp-n3" -event-handler "query:slow=$SLOW"

alive_members() { # RPC-PORT [TOKEN]: number of alive members seen there
    serf members -rpc-addr="127.0.0.1:$1" ${2:+-rpc-auth="$2"} -status=alive 2>/dev/null | wc -l
}
wait_for 10 sh -c "serf members -rpc-addr=127.0.0.1:7450 >/dev/null 2>&1" || fail "n1 up"
wait_for 10 sh -c "serf members -rpc-addr=127.0.0.1:7451 -rpc-auth=$TOKEN >/dev/null 2>&1" || fail "n2 up"
wait_for 10 sh -c "serf members -rpc-addr=127.0.0.1:7452 >/dev/null 2>&1" || fail "n3 up"
serf join -rpc-addr=127.0.0.1:7451 -rpc-auth="$TOKEN" 127.0.0.1:7950 >/dev/null
serf join -rpc-addr=127.0.0.1:7452 127.0.0.1:7950 >/dev/null
wait_for 10 sh -c "[ \$(serf members -rpc-addr=127.0.0.1:7450 -status=alive | wc -l) -eq 3 ]" \
    && ok "3 members alive" || fail "3 members alive" "$(alive_members 7450)"

conf() { # NAME CONTENT: a config file with a log file and CONTENT
    printf 'log = { target = "%s", level = "debug" }\n%s\n' "$T_TMP/test.log" "$2" > "$T_TMP/$1.conf"
}
conf c1 'serf = { rpc_addr = "127.0.0.1:7450" }'
conf c2 "serf = { rpc_addr = \"127.0.0.1:7451\", rpc_auth = \"$TOKEN\" }"
conf c2bad 'serf = { rpc_addr = "127.0.0.1:7451", rpc_auth = "wrong" }'
conf c2none 'serf = { rpc_addr = "127.0.0.1:7451" }'
conf cdown 'serf = { rpc_addr = "127.0.0.1:7469", timeout_ms = 500 }'
conf cenv ''
conf cfrozen 'serf = { rpc_addr = "127.0.0.1:7452", timeout_ms = 300 }'

# lua NAME CONF [ENV...]: run the Lua test file read from stdin; it must pass.
lua() {
    local name=$1 c=$2 out; shift 2
    cat > "$T_TMP/$name.lua"
    out=$(env "$@" "$SERFHAND" -c "$T_TMP/$c.conf" test "$T_TMP/$name.lua" 2>&1)
    if printf '%s\n' "$out" | grep -qE '^[1-9][0-9]* passed, 0 failed$'; then
        ok "$name"
    else
        fail "$name" "$out"
    fi
    LUA_OUT=$out
}

lua event_binary c1 <<'LUA'
local serf = require "serfhand.serf"
T.test("binary payload with NUL and 0xff", function()
  T.eq(serf.event("bin", "a\0b\255c"), true)
end)
LUA
exact=$(printf 'a\000b\377c\n' | od -An -tx1)
wait_for 5 test -s "$T_TMP/ev1.out" && wait_for 5 test -s "$T_TMP/ev2.out"
expect_eq "event bytes exact on n1" "$(od -An -tx1 < "$T_TMP/ev1.out" 2>/dev/null)" "$exact"
expect_eq "event bytes exact on n2" "$(od -An -tx1 < "$T_TMP/ev2.out" 2>/dev/null)" "$exact"

lua members c2 <<'LUA'
local serf = require "serfhand.serf"
T.test("members with exact tags", function()
  local m, err = serf.members()
  T.ok(m, err)
  T.eq(#m, 3)
  local by = {}
  for _, x in ipairs(m) do by[x.name] = x end
  local n1 = by.n1
  T.eq(n1.addr, "127.0.0.1")
  T.eq(n1.port, 7950)
  T.eq(n1.status, "alive")
  T.eq(n1.tags.role, "r1")
  T.eq(n1.tags["foo-bar.baz"], "v1")
  T.eq(n1.tags.weird, "a,b=c\ttab")
  local n = 0
  for _ in pairs(n1.tags) do n = n + 1 end
  T.eq(n, 3)
  T.eq(by.n2.tags.role, "r2")
  T.eq(by.n2.port, 7951)
  T.eq(by.n3.tags.role, "r3")
end)
LUA

lua query_expect c1 <<'LUA'
local serf = require "serfhand.serf"
local time = require "serfhand.time"
T.test("query returns as soon as expect responses arrived", function()
  local t0 = time.mono()
  local r, err = serf.query("echo", "hi", { expect = 3 })
  local ms = (time.mono() - t0) * 1000
  T.ok(r, err)
  T.eq(r.n, 3)
  T.eq(r.responses.n1, "resp-n1")
  T.eq(r.responses.n2, "resp-n2")
  T.eq(r.responses.n3, "resp-n3")
  T.eq(r.done, false)
  T.ok(ms < 1500, "took " .. ms .. " ms")
  local report = T.report or print
  report(string.format("query expect=3: %.0f ms", ms))
end)
LUA
printf '%s\n' "$LUA_OUT" | grep -E '^query expect' | sed 's/^/  measured: /'

lua query_on_response c1 <<'LUA'
local serf = require "serfhand.serf"
T.test("on_response sees each answer and ends the query when it returns true", function()
  local seen = {}
  local r = assert(serf.query("echo", "", { timeout_ms = 3000, on_response = function(node, payload)
    seen[#seen + 1] = node .. "=" .. payload
    return #seen == 2
  end }))
  T.eq(#seen, 2)
  T.eq(r.n, 2)
  T.eq(r.done, false)
  for _, x in ipairs(seen) do T.ok(x:match("^n%d=resp%-n%d$"), x) end
end)
T.test("on_response returning false waits for the rest", function()
  local calls = 0
  local r = assert(serf.query("echo", "", { expect = 3, on_response = function() calls = calls + 1 end }))
  T.eq(calls, 3)
  T.eq(r.n, 3)
end)
T.test("an error in on_response is raised, the connection closed", function()
  T.raises(function()
    serf.query("echo", "", { timeout_ms = 3000, on_response = function() error("stop here") end })
  end, "stop here")
  T.ok(serf.members(), "the next call works")
end)
T.test("on_response must be a function", function()
  T.raises(function() serf.query("echo", "", { on_response = 1 }) end, "on_response")
end)
LUA

lua query_filters c1 <<'LUA'
local serf = require "serfhand.serf"
T.test("nodes filter", function()
  local r = assert(serf.query("echo", "", { nodes = { "n2" }, expect = 1 }))
  T.eq(r.n, 1)
  T.eq(r.responses.n2, "resp-n2")
end)
T.test("tags filter and done at the timeout, with acks", function()
  local r = assert(serf.query("echo", "", { tags = { role = "r[13]" }, timeout_ms = 600, ack = true }))
  T.eq(r.n, 2)
  T.eq(r.responses.n1, "resp-n1")
  T.eq(r.responses.n3, "resp-n3")
  T.eq(r.done, true)
  table.sort(r.acks)
  T.eq(table.concat(r.acks, ","), "n1,n3")
end)
T.test("binary query payload and response", function()
  local r = assert(serf.query("cat", "a\0b\255c", { nodes = { "n1" }, expect = 1 }))
  T.eq(r.responses.n1, "a\0b\255c\n")
end)
T.test("no acks unless asked", function()
  local r = assert(serf.query("echo", "", { timeout_ms = 300 }))
  T.eq(#r.acks, 0)
  T.eq(r.n, 3)
end)
LUA

lua query_many c1 <<'LUA'
local serf = require "serfhand.serf"
local time = require "serfhand.time"
T.test("query_many: every query's answers, apart", function()
  local rs, err = serf.query_many("slow", { "x", "y" }, { expect = 3, timeout_ms = 5000 })
  T.ok(rs, err)
  T.eq(#rs, 2)
  for i, p in ipairs({ "x", "y" }) do
    T.eq(rs[i].n, 3)
    T.eq(rs[i].done, false)
    for _, n in ipairs({ "n1", "n2", "n3" }) do T.eq(rs[i].responses[n], n .. "-" .. p) end
  end
end)
T.test("query_many: the queries run at once, not one after the other", function()
  -- n1 answers the first query 0.6 s late, n2 the second: one after the
  -- other takes 1.2 s, at once 0.6 s (each node runs its two handlers in turn).
  local t0 = time.mono()
  local rs = assert(serf.query_many("slow", { "n1", "n2" }, { expect = 3, timeout_ms = 5000 }))
  local ms = (time.mono() - t0) * 1000
  T.eq(rs[1].n + rs[2].n, 6)
  T.eq(rs[1].responses.n1, "n1-n1")
  T.eq(rs[2].responses.n2, "n2-n2")
  T.ok(ms >= 550 and ms < 1000, "took " .. ms .. " ms")
  local report = T.report or print
  report(string.format("query_many of two 0.6 s queries: %.0f ms", ms))
end)
T.test("query_many: on_response gets the query's index; true ends only that query", function()
  local seen = {}
  local rs = assert(serf.query_many("slow", { "a", "b", "c" }, { expect = 3, timeout_ms = 5000,
    on_response = function(node, payload, i)
      T.eq(payload, node .. "-" .. ({ "a", "b", "c" })[i])
      seen[i] = (seen[i] or 0) + 1
      return i == 2 -- the second query ends at its first answer
    end }))
  T.eq(seen[1], 3)
  T.eq(seen[2], 1)
  T.eq(seen[3], 3)
  T.eq(rs[1].n, 3)
  T.eq(rs[2].n, 1)
  T.eq(rs[3].n, 3)
end)
T.test("query_many: an error in on_response ends every query and is raised", function()
  local calls = 0
  local t0 = time.mono()
  T.raises(function()
    serf.query_many("slow", { "a", "b" }, { timeout_ms = 3000,
      on_response = function() calls = calls + 1; error("stop all") end })
  end, "stop all")
  T.eq(calls, 1)
  T.ok(time.mono() - t0 < 1.5, "did not wait for the queries' timeout")
  T.ok(serf.members(), "the next call works")
end)
T.test("query_many: Serf refusing one query fails the call with Serf's text", function()
  local rs, err = serf.query_many("echo", { "ok", string.rep("p", 2000) }, { timeout_ms = 500 })
  T.eq(rs, nil)
  T.eq(err, "serf: query exceeds limit of 1024 bytes")
end)
T.test("query_many: the relay's budget holds: 1024 - 122 - name - node bytes pass with an 8 s timeout", function()
  -- factom.ballot.relay_budget: Serf's query encoding is 106 bytes + name +
  -- sender's node name (measured with a 5-byte timeout), + 8 kept for a
  -- timeout in nanoseconds past 2^32 (4 bytes more) and a Lamport time past
  -- 2^32. "slow" answers with the payload's first line.
  local fit = 1024 - 122 - #"slow" - #"n1"
  local rs, err = serf.query_many("slow", { string.rep("a", fit), "b" }, { expect = 3, timeout_ms = 8000 })
  T.ok(rs, err)
  T.eq(rs[1].n, 3)
  T.eq(rs[1].responses.n2, "n2-" .. string.rep("a", fit))
  -- a retry names the nodes not heard from: factom.proposer.filter_bytes
  -- bounds what that adds (8 + 2 per name + the names)
  local names = { "n1", "n2", "n3" }
  local filter = 8
  for _, n in ipairs(names) do filter = filter + #n + 2 end
  local r3, err3 = serf.query("slow", string.rep("a", fit - filter), { nodes = names, expect = 3, timeout_ms = 8000 })
  T.ok(r3, err3)
  T.eq(r3 and r3.n, 3)
  local r2, err2 = serf.query("slow", string.rep("a", fit + 40), { expect = 3, timeout_ms = 8000 })
  T.eq(r2, nil, "not far from the limit")
  T.eq(err2, "serf: query exceeds limit of 1024 bytes")
end)
T.test("query_many: the done of each query at Serf's timeout", function()
  local rs = assert(serf.query_many("echo", { "1", "2" }, { timeout_ms = 400 }))
  T.eq(rs[1].done, true)
  T.eq(rs[2].done, true)
  T.eq(rs[1].n, 3)
  T.eq(rs[2].n, 3)
end)
LUA
printf '%s\n' "$LUA_OUT" | grep -E '^query_many of' | sed 's/^/  measured: /'

# Retries (retry_nodes): Serf sends a query once, by gossip; a node it
# missed gets it again, addressed to it, while a node that acked is not
# asked twice. A miss is made certain here with FilterNodes: the first
# query leaves n3 out, the retries name the nodes not heard from. Each
# agent logs every query it hands to its handler.
received() { grep -c "Received event: query: $1" "$T_TMP/$2.log"; }
slow3=$(received slow n3)
lua query_retry c1 <<'LUA'
local serf = require "serfhand.serf"
local time = require "serfhand.time"
T.test("retry: a node the query did not reach gets it again, and answers", function()
  local t0 = time.mono()
  local r, err = serf.query("echo", "", { nodes = { "n1", "n2" }, retry_nodes = { "n1", "n2", "n3" },
    retry_ms = 300, timeout_ms = 4000, expect = 3 })
  local ms = (time.mono() - t0) * 1000
  T.ok(r, err)
  T.eq(r.n, 3)
  T.eq(r.responses.n3, "resp-n3")
  T.ok(ms >= 280 and ms < 2000, "took " .. ms .. " ms")
  local acks = {}
  for _, a in ipairs(r.acks) do acks[#acks + 1] = a end
  table.sort(acks)
  T.eq(table.concat(acks, ","), "n1,n2,n3", "retry_nodes asks for acks")
end)
T.test("retry: retry_max names that many per retry, the next ones in the next retry", function()
  local t0 = time.mono()
  local r, err = serf.query("echo", "", { nodes = { "n1" }, retry_nodes = { "n1", "n2", "n3" },
    retry_ms = 400, retry_max = 1, timeout_ms = 4000, expect = 3 })
  local ms = (time.mono() - t0) * 1000
  T.ok(r, err)
  T.eq(r.n, 3)
  T.ok(ms >= 1180, "n2 at the first retry (400 ms), n3 at the second (1200 ms): took " .. ms .. " ms")
end)
T.test("relay_factor: answers come, also through another member (the agents log it)", function()
  local r, err = serf.query("echo", "relayed", { relay_factor = 1, timeout_ms = 3000, expect = 3 })
  T.ok(r, err)
  T.eq(r.n, 3)
  T.eq(r.responses.n2, "resp-n2")
end)
T.test("retry: without it the same query never reaches n3", function()
  local r = assert(serf.query("echo", "", { nodes = { "n1", "n2" }, timeout_ms = 1200, expect = 3 }))
  T.eq(r.n, 2)
  T.eq(r.responses.n3, nil)
end)
T.test("retry: a node that acked but answers late is not asked again", function()
  -- (gossip brings a query within a gossip interval or two, 200 ms each, and
  -- the ack comes back at once; the retry at 1.2 s leaves room for a loaded
  -- host, n3's answer at 2.5 s comes well after it. A retry_ms shorter than
  -- the gossip's delay asks nodes that just had not got it yet: not this.)
  local t0 = time.mono()
  local r = assert(serf.query("slow", "n3 2.5", { retry_nodes = { "n1", "n2", "n3" }, retry_ms = 1200,
    timeout_ms = 6000, expect = 3 }))
  T.eq(r.responses.n3, "n3-n3")
  T.ok((time.mono() - t0) * 1000 >= 2400, "n3 answered after its 2.5 s")
end)
T.test("retry: a node that is never heard from is asked at most MAX_RETRIES times", function()
  local t0 = time.mono()
  local r = assert(serf.query_many("echo", { "a", "b" }, { retry_nodes = { "n1", "n2", "n3", "ghost" },
    retry_ms = 150, timeout_ms = 1500, expect = 4 }))
  T.eq(r[1].n, 3)
  T.eq(r[2].n, 3)
  T.eq(r[1].responses.ghost, nil)
  T.ok(time.mono() - t0 >= 1.4, "waited for the query's timeout")
end)
LUA
sleep 0.5
expect_eq "retry: n3's handler ran once for the late answer" "$(($(received slow n3) - slow3))" 1
relayed=$(cat "$T_TMP"/n[123].log | grep -ac 'Relaying response to addr')
check "relay_factor 1: every node's answer went through another member too ($relayed)" [ "$relayed" -ge 3 ]


# A query handler (serfhand handle under the agent) may not query.
out=$(serf query -rpc-addr=127.0.0.1:7450 -node=n1 -format=json -timeout=3s nested "" 2>&1)
expect_match "query refused inside a handler" "$out" 'refused: .*inside a handler'
expect_match "members works inside a handler" "$out" 'members=3'

lua auth_errors c2bad <<'LUA'
local serf = require "serfhand.serf"
T.test("wrong token", function()
  local m, err = serf.members()
  T.eq(m, nil)
  T.eq(err, "serf: Invalid authentication token")
  local ok, err2 = serf.event("x", "y")
  T.eq(ok, nil)
  T.eq(err2, "serf: Invalid authentication token")
end)
LUA
lua auth_missing c2none <<'LUA'
local serf = require "serfhand.serf"
T.test("no token for an agent with rpc_auth", function()
  local m, err = serf.members()
  T.eq(m, nil)
  T.eq(err, "serf: Authentication required")
end)
LUA
lua auth_env cenv SERF_RPC_ADDR=127.0.0.1:7451 SERF_RPC_AUTH=$TOKEN <<'LUA'
local serf = require "serfhand.serf"
T.test("address and token from SERF_RPC_ADDR / SERF_RPC_AUTH", function()
  local m, err = serf.members()
  T.ok(m, err)
  T.eq(#m, 3)
end)
LUA
lua config_wins c1 SERF_RPC_ADDR=127.0.0.1:7469 <<'LUA'
local serf = require "serfhand.serf"
T.test("serf.rpc_addr wins over SERF_RPC_ADDR", function()
  T.ok(serf.members())
end)
LUA

lua agent_down cdown <<'LUA'
local serf = require "serfhand.serf"
T.test("agent down", function()
  local ok, err = serf.event("x", "y")
  T.eq(ok, nil)
  T.eq(err, "serf: cannot connect to 127.0.0.1:7469: Connection refused")
  local m, err2 = serf.members()
  T.eq(m, nil)
  T.eq(err2, "serf: cannot connect to 127.0.0.1:7469: Connection refused")
  local r, err3 = serf.query("echo", "")
  T.eq(r, nil)
  T.eq(err3, "serf: cannot connect to 127.0.0.1:7469: Connection refused")
end)
LUA

lua oversize c1 <<'LUA'
local serf = require "serfhand.serf"
T.test("event over Serf's limit: Serf's own message", function()
  local ok, err = serf.event("x", string.rep("p", 600))
  T.eq(ok, nil)
  T.eq(err, "serf: user event exceeds configured limit of 512 bytes before encoding")
  ok, err = serf.event("q", string.rep("p", 490))
  T.eq(ok, nil)
  T.eq(err, "serf: encoded user event exceeds configured limit of 512 bytes after encoding")
end)
T.test("query over Serf's limit: Serf's own message", function()
  local r, err = serf.query("echo", string.rep("p", 2000))
  T.eq(r, nil)
  T.eq(err, "serf: query exceeds limit of 1024 bytes")
end)
LUA

# An agent that accepts but never answers: the RPC timeout bounds the wait.
kill -STOP "$PID_n3"
lua frozen_agent cfrozen <<'LUA'
local serf = require "serfhand.serf"
local time = require "serfhand.time"
T.test("timeout from serf.timeout_ms", function()
  local t0 = time.mono()
  local m, err = serf.members()
  local ms = (time.mono() - t0) * 1000
  T.eq(m, nil)
  T.eq(err, "serf: timed out waiting for 127.0.0.1:7452")
  T.ok(ms >= 250 and ms < 1000, "took " .. ms .. " ms")
end)
LUA
kill -CONT "$PID_n3"

# A query that would outlive the run's deadline returns what arrived 100 ms
# before it, so the run can still use it: `tick` (deadline 1500 ms) asks for
# more answers than there are nodes, with a longer timeout.
B2=$T_TMP/bundle2
mkdir -p "$B2/handlers"
cat > "$B2/handlers/tick.lua" <<'LUA'
local serf = require "serfhand.serf"
local time = require "serfhand.time"
return function()
  local t0 = time.mono()
  local r, err = serf.query("echo", "x", { timeout_ms = 5000, expect = 99 })
  local ms = math.floor((time.mono() - t0) * 1000)
  if not r then return "no result: " .. tostring(err) end
  return string.format("query ended after %d ms with %d answers, done=%s", ms, r.n, tostring(r.done))
end
LUA
"$SERFHAND" sign -s "$T_TMP/k.sec" --name bundle2 --version 1 "$B2" > /dev/null || fail "signing the tick bundle"
cat > "$T_TMP/tick.conf" <<CONF
log = { target = "$T_TMP/tick.log", level = "debug" }
bundle = "$B2"
state_dir = "$T_TMP/state-tick"
trust = { keys = { "$T_TMP/k.pub" } }
serf = { rpc_addr = "127.0.0.1:7450" }
limits = { tick_ms = 1500 }
CONF
"$SERFHAND" -c "$T_TMP/tick.conf" tick > /dev/null 2>&1
rc=$?
line=$(grep -o 'query ended after [0-9]* ms with [0-9]* answers, done=false' "$T_TMP/tick.log")
ms=$(printf '%s\n' "$line" | sed -n 's/.*after \([0-9]*\) ms.*/\1/p')
if [ "$rc" -eq 0 ] && [ -n "$ms" ] && [ "$ms" -ge 1000 ] && [ "$ms" -lt 1450 ] && [ "${line#*with 3 answers}" != "$line" ]; then
    ok "a query cut by the deadline returns what arrived, in time for the run to use it"
else
    fail "a query cut by the deadline returns what arrived" "exit $rc; $(tail -n 5 "$T_TMP/tick.log")"
fi

# reserve_ms keeps that much of the run's time for what follows the query
# (the proposer's fallback events): query_many with reserve_ms = 800 under a
# 1500 ms deadline ends about 700 ms into the run, and a query whose reserve
# leaves no time is not sent at all.
cat > "$B2/handlers/tick.lua" <<'LUA'
local serf = require "serfhand.serf"
local time = require "serfhand.time"
return function()
  local t0 = time.mono()
  local rs, err = serf.query_many("echo", { "a", "b" }, { timeout_ms = 5000, expect = 99, reserve_ms = 800 })
  local ms = math.floor((time.mono() - t0) * 1000)
  if not rs then return "no result: " .. tostring(err) end
  local r2, err2 = serf.query("echo", "c", { timeout_ms = 5000, reserve_ms = 5000 })
  return string.format("query_many ended after %d ms with %d+%d answers; then %s", ms, rs[1].n, rs[2].n,
    r2 and "sent" or tostring(err2))
end
LUA
"$SERFHAND" sign -s "$T_TMP/k.sec" --name bundle2 --version 2 "$B2" > /dev/null || fail "signing the tick bundle"
"$SERFHAND" -c "$T_TMP/tick.conf" tick > /dev/null 2>&1
rc=$?
line=$(grep -o 'query_many ended after .*' "$T_TMP/tick.log")
ms=$(printf '%s\n' "$line" | sed -n 's/.*after \([0-9]*\) ms.*/\1/p')
if [ "$rc" -eq 0 ] && [ -n "$ms" ] && [ "$ms" -ge 300 ] && [ "$ms" -lt 850 ] &&
    [ "${line#*with 3+3 answers; then serf: no time left}" != "$line" ]; then
    ok "reserve_ms: query_many ends in time for the rest of the run; no time left, no query"
else
    fail "reserve_ms" "exit $rc; $line; $(tail -n 5 "$T_TMP/tick.log")"
fi

finish
