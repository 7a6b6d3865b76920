# store: require "serfhand.store" through the real binary: the Lua tests on a
# fresh state_dir, many processes adding one key at once (exactly one wins),
# a corrupt database file and one locked by another process: clear
# nil, "store: ..." errors, no crash, nothing changed.
. "$(dirname "$0")/../lib.sh"

S=$T_TMP/state/deep
CONF=$T_TMP/conf
printf 'state_dir = "%s"\nlog = { target = "%s" }\n' "$S" "$T_TMP/log" > "$CONF"
st() { "$SERFHAND" -c "$CONF" test --state "$S" "$@" 2>&1; }
ms() { date +%s%3N; }

# --- the Lua tests, with a state_dir made on first use ------------------------
OUT=$(st "$TOP/tests/lua/store.lua"); RC=$?
expect_match "lua tests pass" "$OUT" "^[0-9]+ passed, 0 failed"
expect_eq "lua tests exit 0" "$RC" 0
printf '%s\n' "$OUT" | grep -q "skipped" && fail "lua database tests ran" "they were skipped"
expect_eq "state_dir made 0700" "$(stat -c %a "$S")" 700
check "database file made" test -f "$S/serfhand.db"

# The host's copy of a value on its way to Lua is kept for the next call;
# it counts against limits.memory_mb for as long as it is (a process of its
# own, so that no earlier call has grown it).
cat > "$T_TMP/scratch.lua" <<'LUA'
local store = require "serfhand.store"
T.test("the buffer a value passes through counts against the memory cap", function()
  T.ok(store.put("big/bytes", string.rep("x", 1000000)))
  local before = collectgarbage("count")
  local v = store.get("big/bytes")
  T.eq(#v, 1000000)
  -- the value as a Lua string, and the host's copy it was read into
  T.ok(collectgarbage("count") - before >= 1950, "counted: " .. (collectgarbage("count") - before) .. " KiB")
  local again = collectgarbage("count")
  T.eq(#store.get("big/bytes"), 1000000)
  T.ok(collectgarbage("count") - again < 1100, "the kept buffer is charged once")
  T.ok(store.del("big/bytes"))
end)
LUA
OUT=$(st "$T_TMP/scratch.lua")
expect_match "the store's buffer is charged to the cap" "$OUT" "^[0-9]+ passed, 0 failed"

# --- the race: N processes add the same key at once ---------------------------
# race KEY N: each process waits for $T_TMP/go, then adds KEY and reports.
race() {
    local key=$1 n=$2 i
    rm -f "$T_TMP/go" "$T_TMP"/race.*
    for i in $(seq 1 "$n"); do
        cat > "$T_TMP/race.$i.lua" <<LUA
local store = require "serfhand.store"
T.test("add", function()
  local won, err = store.add("$key", "p$i")
  T.report("RESULT p$i " .. (won == true and "won" or won == false and "lost" or "error " .. tostring(err)))
  T.ok(won ~= nil, err)
end)
LUA
        (
            while [ ! -e "$T_TMP/go" ]; do sleep 0.01; done
            exec "$SERFHAND" -c "$CONF" test --state "$S" "$T_TMP/race.$i.lua" > "$T_TMP/race.$i.out" 2>&1
        ) &
        track $!
        eval "race_pid_$i=$!"
    done
    sleep 0.3
    touch "$T_TMP/go"
    local rcs=0 pid
    for i in $(seq 1 "$n"); do
        eval "pid=\$race_pid_$i"
        wait "$pid" || rcs=$((rcs + 1))
    done
    RESULTS=$(cat "$T_TMP"/race.*.out | grep '^RESULT')
    RACE_FAILED=$rcs
}
check_race() { # LABEL KEY N
    local label=$1 key=$2 n=$3 winner
    race "$key" "$n"
    expect_eq "$label: every process answered" "$(printf '%s\n' "$RESULTS" | grep -c .)" "$n"
    expect_eq "$label: exactly one won" "$(printf '%s\n' "$RESULTS" | grep -c ' won$')" 1
    expect_eq "$label: the others lost" "$(printf '%s\n' "$RESULTS" | grep -c ' lost$')" $((n - 1))
    expect_eq "$label: no process failed" "$RACE_FAILED" 0
    winner=$(printf '%s\n' "$RESULTS" | awk '$3 == "won" { print $2 }')
    cat > "$T_TMP/winner.lua" <<LUA
T.test("winner kept", function() T.eq(require("serfhand.store").get("$key"), "$winner") end)
LUA
    OUT=$(st "$T_TMP/winner.lua")
    expect_match "$label: the winner's value is stored" "$OUT" "^1 passed, 0 failed"
}
S=$T_TMP/race-fresh
printf 'state_dir = "%s"\nlog = { target = "%s" }\n' "$S" "$T_TMP/log" > "$CONF"
check_race "fresh database" "vote/1" 20
check_race "existing database" "vote/2" 20

# --- store.incr from two processes at once: no increment lost -----------------
S=$T_TMP/incr
printf 'state_dir = "%s"\nlog = { target = "%s" }\n' "$S" "$T_TMP/log" > "$CONF"
cat > "$T_TMP/incr.lua" <<'LUA'
local store = require "serfhand.store"
local time = require "serfhand.time"
T.test("incr 500 times", function()
  -- both processes start incrementing together (a barrier in the store)
  store.incr("ctr/ready")
  local t0 = time.mono()
  while store.get("ctr/ready") < 2 do
    T.ok(time.mono() - t0 < 10, "the other process never reached the barrier (another store?)")
    time.sleep(1)
  end
  for i = 1, 500 do
    local v, err = store.incr("ctr/shared")
    T.ok(math.type(v) == "integer", "incr " .. i .. ": " .. tostring(err))
  end
end)
LUA
printf 'T.test("open", function() T.eq(require("serfhand.store").put("x", "1"), true) end)\n' > "$T_TMP/incr-open.lua"
st "$T_TMP/incr-open.lua" > /dev/null # the database exists before the race
rm -f "$T_TMP/go"
for i in 1 2; do
    (
        while [ ! -e "$T_TMP/go" ]; do sleep 0.01; done
        exec "$SERFHAND" -c "$CONF" test --state "$S" --timeout-ms 60000 "$T_TMP/incr.lua" > "$T_TMP/incr.$i.out" 2>&1
    ) &
    track $!
    eval "incr_pid_$i=$!"
done
sleep 0.2
touch "$T_TMP/go"
wait "$incr_pid_1"; expect_eq "incr race: process 1 exit 0" "$?" 0
wait "$incr_pid_2"; expect_eq "incr race: process 2 exit 0" "$?" 0
expect_match "incr race: process 1 passed" "$(cat "$T_TMP/incr.1.out")" "^1 passed, 0 failed"
expect_match "incr race: process 2 passed" "$(cat "$T_TMP/incr.2.out")" "^1 passed, 0 failed"
cat > "$T_TMP/incr-total.lua" <<'LUA'
T.test("total", function() T.eq(require("serfhand.store").get("ctr/shared"), 1000) end)
LUA
OUT=$(st "$T_TMP/incr-total.lua")
expect_match "incr race: 2 x 500 increments give 1000" "$OUT" "^1 passed, 0 failed"
expect_eq "incr race: stored as an INTEGER" \
    "$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT typeof(value), value FROM kv WHERE key = ?", ("ctr/shared",)).fetchone())' "$S/serfhand.db")" \
    "('integer', 1000)"

# --- a corrupt database file ---------------------------------------------------
S=$T_TMP/corrupt
mkdir -p "$S"
printf 'state_dir = "%s"\nlog = { target = "%s" }\n' "$S" "$T_TMP/log" > "$CONF"
head -c 16384 /dev/urandom > "$S/serfhand.db"
cp "$S/serfhand.db" "$T_TMP/corrupt.copy"
cat > "$T_TMP/bad.lua" <<'LUA'
local store = require "serfhand.store"
local function refused(name, ...)
  local n = select("#", ...)
  local v, err = ...
  T.eq(n, 2, name .. ": two results")
  T.eq(v, nil, name .. ": nil")
  T.ok(type(err) == "string" and err:find("^store: ") and err:find(WANT, 1, true),
       name .. ": message: " .. tostring(err))
end
T.test("every call fails cleanly", function()
  refused("get", store.get("k"))
  refused("put", store.put("k", "v"))
  refused("add", store.add("k", {1}))
  refused("del", store.del("k"))
  refused("incr", store.incr("k"))
  refused("count", store.count(""))
  refused("keys", store.keys("", 5))
  local ran = false
  refused("tx", store.tx(function() ran = true end))
  T.eq(ran, false, "tx did not run fn")
end)
LUA
sed 's/WANT/"not a database"/' "$T_TMP/bad.lua" > "$T_TMP/corrupt.lua"
OUT=$(st "$T_TMP/corrupt.lua"); RC=$?
expect_match "corrupt: clear errors" "$OUT" "^1 passed, 0 failed"
expect_eq "corrupt: exit 0" "$RC" 0
check "corrupt: file left as it was" cmp -s "$S/serfhand.db" "$T_TMP/corrupt.copy"

# A real database whose pages were overwritten: errors, not a crash.
S=$T_TMP/pages
printf 'state_dir = "%s"\nlog = { target = "%s" }\n' "$S" "$T_TMP/log" > "$CONF"
cat > "$T_TMP/fill.lua" <<'LUA'
local store = require "serfhand.store"
T.test("fill", function()
  store.tx(function()
    for i = 1, 300 do store.put(string.format("k/%04d", i), string.rep("v", 200)) end
  end)
end)
LUA
OUT=$(st "$T_TMP/fill.lua")
expect_match "pages: filled" "$OUT" "^1 passed, 0 failed"
python3 - "$S/serfhand.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1]); c.execute("PRAGMA wal_checkpoint(TRUNCATE)"); c.close()
with open(sys.argv[1], "r+b") as f:
    for page in range(2, 12):
        f.seek(page * 4096); f.write(bytes((i * 37 + page) % 256 for i in range(4096)))
PY
cat > "$T_TMP/pages.lua" <<'LUA'
local store = require "serfhand.store"
T.test("corrupt pages", function()
  local n, err = store.count("k/")
  T.eq(n, nil, "count fails")
  T.ok(tostring(err):find("^store: "), "message: " .. tostring(err))
  local v, err2 = store.keys("k/", 1000)
  T.eq(v, nil, "keys fails")
  T.ok(tostring(err2):find("^store: "), "message: " .. tostring(err2))
end)
LUA
OUT=$(st "$T_TMP/pages.lua"); RC=$?
expect_match "pages: clear errors" "$OUT" "^1 passed, 0 failed"
expect_eq "pages: exit 0" "$RC" 0

# A state_dir that cannot be made.
printf 'x' > "$T_TMP/file"
S=$T_TMP/file/state
printf 'state_dir = "%s"\nlog = { target = "%s" }\n' "$S" "$T_TMP/log" > "$CONF"
sed 's/WANT/"Not a directory"/' "$T_TMP/bad.lua" > "$T_TMP/nodir.lua"
OUT=$(st "$T_TMP/nodir.lua")
expect_match "bad state_dir: clear errors" "$OUT" "^1 passed, 0 failed"

# --- a database locked by another process -------------------------------------
S=$T_TMP/locked
printf 'state_dir = "%s"\nlog = { target = "%s" }\n' "$S" "$T_TMP/log" > "$CONF"
cat > "$T_TMP/seed.lua" <<'LUA'
T.test("seed", function() T.eq(require("serfhand.store").put("kept", {v = 1}), true) end)
LUA
st "$T_TMP/seed.lua" > /dev/null
python3 - "$S/serfhand.db" > "$T_TMP/lock.out" 2>&1 <<'PY' &
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
c.execute("PRAGMA locking_mode=EXCLUSIVE")
c.execute("BEGIN EXCLUSIVE")
c.execute("SELECT count(*) FROM kv").fetchall()
print("locked", flush=True)
time.sleep(30)
PY
LOCKER=$!
track $LOCKER
if wait_for 10 grep -q locked "$T_TMP/lock.out"; then
    # Default: each call waits out the 2 s busy timeout, then fails.
    sed 's/WANT/"database is locked"/' "$T_TMP/bad.lua" |
        sed 's/^  refused("put".*//; s/^  refused("add".*//; s/^  refused("del".*//; s/^  refused("incr".*//;
             s/^  refused("count".*//; s/^  refused("keys".*//' > "$T_TMP/locked.lua"
    T0=$(ms)
    OUT=$(st "$T_TMP/locked.lua"); RC=$?
    T1=$(ms)
    expect_match "locked: clear errors" "$OUT" "^1 passed, 0 failed"
    expect_eq "locked: exit 0" "$RC" 0
    expect_match "locked: waited the busy timeout (ms)" "$(( (T1 - T0) / 2 ))" "^(1[89][0-9][0-9]|2[0-9][0-9][0-9])$"
    # With a 600 ms deadline the wait ends before it, and the handler goes on.
    cat > "$T_TMP/deadline.lua" <<'LUA'
local store = require "serfhand.store"
T.test("put before the deadline", function()
  local ok, err = store.put("k", "v")
  T.eq(ok, nil)
  T.ok(tostring(err):find("^store: .*database is locked"), tostring(err))
  T.eq(store.add("k", "v"), nil, "later calls fail at once")
end)
LUA
    T0=$(ms)
    OUT=$("$SERFHAND" -c "$CONF" test --state "$S" --timeout-ms 600 "$T_TMP/deadline.lua" 2>&1); RC=$?
    T1=$(ms)
    expect_match "deadline: clear error" "$OUT" "^1 passed, 0 failed"
    expect_eq "deadline: not stopped by the deadline" "$RC" 0
    expect_match "deadline: gave up in time (ms)" "$((T1 - T0))" "^[3-9][0-9][0-9]$"
else
    fail "locker started" "$(cat "$T_TMP/lock.out")"
fi
kill "$LOCKER" 2>/dev/null
wait "$LOCKER" 2>/dev/null
cat > "$T_TMP/after.lua" <<'LUA'
local store = require "serfhand.store"
T.test("after the lock", function()
  T.eq(store.get("kept"), {v = 1}, "nothing lost")
  T.eq(store.get("k"), nil, "nothing written while locked")
  T.eq(store.put("k", "v"), true, "writes work again")
end)
LUA
OUT=$(st "$T_TMP/after.lua")
expect_match "locked: state intact afterwards" "$OUT" "^1 passed, 0 failed"

finish
