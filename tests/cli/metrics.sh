# metrics: metrics.enabled counts every handler run by event type and outcome
# (the exit code), with durations, refusals and limit hits; `serfhand metrics`
# prints them in the Prometheus text format (checked line by line); the tick
# writes node_exporter's textfile atomically; concurrent runs and compactions
# lose nothing; torn and hostile journal lines are skipped, not guessed at.
. "$(dirname "$0")/../lib.sh"
ms() { date +%s%3N; }

B=$T_TMP/bundle
S=$T_TMP/state
mkdir -p "$B/handlers/user" "$B/handlers/query" "$T_TMP/prom"
"$SERFHAND" keygen -W -p "$T_TMP/k.pub" -s "$T_TMP/k.sec" > /dev/null
base_conf() {
    cat <<CONF
bundle = "$B"
state_dir = "$S"
trust = { keys = { "$T_TMP/k.pub" } }
log = { target = "$T_TMP/log" }
limits = { event_ms = 200, query_ms = 200, grace_ms = 100, memory_mb = 8, response_bytes = 50 }
proc = { allow = { "/bin/sleep" } }
CONF
}
base_conf > "$T_TMP/off.conf"
{ base_conf; printf 'metrics = { enabled = true, textfile = "%s/prom/serfhand.prom" }\n' "$T_TMP"; } > "$T_TMP/on.conf"
echo 'return function() end' > "$B/handlers/user/ok.lua"
echo 'return function() error("no") end' > "$B/handlers/user/fail.lua"
echo 'return function() while true do end end' > "$B/handlers/user/spin.lua"
echo 'return function() local t = {} for i = 1, 1e8 do t[i] = i end end' > "$B/handlers/user/mem.lua"
echo 'return function() return string.rep("x", 100) end' > "$B/handlers/query/big.lua"
echo 'return function() return "pong" end' > "$B/handlers/query/ping.lua"
echo 'return function() end' > "$B/handlers/member-join.lua"
# leaves a child waiting: the run exits without its teardown (exit_now)
cat > "$B/handlers/query/later.lua" <<'LUA'
return function()
  local pid = assert(require("serfhand.proc").spawn({ "/bin/sleep", "0" }, { delay_ms = 60000 }))
  require("serfhand.log").info("child " .. pid)
  return "later"
end
LUA
"$SERFHAND" sign -s "$T_TMP/k.sec" --name b --version 1 "$B" > /dev/null 2>&1 || fail "sign"
mkdir -p "$S"

CONF=$T_TMP/on.conf
ev() { # TYPE NAME [CONF]: one event as Serf runs it; prints the exit code
    local var=SERF_USER_EVENT
    [ "$1" = query ] && var=SERF_QUERY_NAME
    env -i PATH="$PATH" "${SAN_ENV[@]}" SERF_EVENT="$1" "$var=$2" SERF_USER_LTIME=1 SERF_QUERY_LTIME=1 \
        SERF_SELF_NAME=n1 "$SERFHAND" -c "${3:-$CONF}" handle < /dev/null > /dev/null 2>&1
    echo $?
}

# --- off (the default): nothing is written ------------------------------------
expect_eq "off: handler runs" "$(ev user ok "$T_TMP/off.conf")" 0
expect_eq "off: tick runs" "$("$SERFHAND" -c "$T_TMP/off.conf" tick > /dev/null 2>&1; echo $?)" 0
expect_eq "off: no metrics file in state_dir" "$(ls "$S" | grep -c metrics)" 0
expect_eq "off: no textfile" "$(ls "$T_TMP/prom")" ""
OUT=$("$SERFHAND" -c "$T_TMP/off.conf" metrics 2> "$T_TMP/err"); RC=$?
expect_eq "off: metrics exits 0" "$RC" 0
expect_match "off: says it is off, on stderr" "$(cat "$T_TMP/err")" "metrics.enabled is false"
expect_match "off: zero refusals" "$OUT" "^serfhand_refusals_total 0"

# --- on: every outcome ---------------------------------------------------------
expect_eq "ok exits 0" "$(ev user ok)" 0
expect_eq "ok exits 0 (2)" "$(ev user ok)" 0
expect_eq "ok exits 0 (3)" "$(ev user ok)" 0
expect_eq "fail exits 1" "$(ev user fail)" 1
expect_eq "spin exits 4" "$(ev user spin)" 4
expect_eq "mem exits 5" "$(ev user mem)" 5
expect_eq "big response exits 6" "$(ev query big)" 6
expect_eq "ping exits 0" "$(ev query ping)" 0
expect_eq "a run that leaves a spawned child waiting exits 0" "$(ev query later)" 0
CHILD=$(sed -n 's/.*child \([0-9]*\)$/\1/p' "$T_TMP/log" | tail -n 1)
check "its child waits" kill -0 "${CHILD:-none}"
[ -n "$CHILD" ] && track "$CHILD"
expect_eq "member-join exits 0" "$(ev member-join "")" 0
expect_eq "bad event exits 7" "$(ev bogus-type x)" 7
expect_eq "bad name exits 7" "$(ev user 'bad name!')" 7
# a refusal: a file changed after signing
cp "$B/handlers/user/ok.lua" "$T_TMP/ok.lua"
echo '-- changed' >> "$B/handlers/user/ok.lua"
expect_eq "tampered bundle exits 3" "$(ev user ok)" 3
cp "$T_TMP/ok.lua" "$B/handlers/user/ok.lua"

# prom FILE: check the text format line by line and print "NAME{LABELS} VALUE"
# per sample, sorted; exits 1 with the reason on any violation.
prom() {
    python3 - "$1" <<'PY'
import re, sys
name = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
lab = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
sample = re.compile(r"(%s)(\{%s(?:,%s)*\})? (\S+)$" % (name, lab, lab))
text = open(sys.argv[1], encoding="utf-8").read()
assert text.endswith("\n"), "ends with a newline"
help_, type_, out, seen = {}, {}, [], set()
for n, line in enumerate(text.split("\n")[:-1], 1):
    if line.startswith("# HELP "):
        m = re.fullmatch(r"# HELP (%s) (.+)" % name, line)
        assert m and m.group(1) not in help_, "line %d: %r" % (n, line)
        help_[m.group(1)] = n
    elif line.startswith("# TYPE "):
        m = re.fullmatch(r"# TYPE (%s) (counter|gauge|histogram|summary|untyped)" % name, line)
        assert m and m.group(1) not in type_, "line %d: %r" % (n, line)
        assert m.group(1) in help_, "line %d: TYPE before HELP" % n
        type_[m.group(1)] = m.group(2)
    else:
        m = sample.fullmatch(line)
        assert m, "line %d: not a sample: %r" % (n, line)
        fam = re.sub(r"_(bucket|sum|count)$", "", m.group(1)) if m.group(1) not in type_ else m.group(1)
        assert fam in type_, "line %d: no TYPE for %s" % (n, m.group(1))
        if type_[fam] == "counter":
            assert fam.endswith("_total"), fam
        float(m.group(3))
        key = m.group(1) + (m.group(2) or "")
        assert key not in seen, "line %d: duplicate %s" % (n, key)
        seen.add(key)
        out.append("%s %s" % (key, m.group(3)))
# histograms: buckets cumulative, +Inf == _count
for fam, t in type_.items():
    if t != "histogram":
        continue
    series = {}
    for s in out:
        k, v = s.rsplit(" ", 1)
        m = re.fullmatch(fam + r"_bucket\{(.*),le=\"([^\"]+)\"\}", k)
        if m:
            series.setdefault(m.group(1), []).append((float(m.group(2)), float(v)))
    for labels, b in series.items():
        vals = [v for _, v in b]
        assert [l for l, _ in b] == sorted(l for l, _ in b), "le order"
        assert vals == sorted(vals), "cumulative: %r" % vals
        count = [s for s in out if s.startswith("%s_count{%s} " % (fam, labels))]
        assert count and float(count[0].rsplit(" ", 1)[1]) == vals[-1], "+Inf == count"
print("\n".join(sorted(out)))
PY
}

"$SERFHAND" -c "$CONF" metrics > "$T_TMP/m1" 2> "$T_TMP/err"; RC=$?
expect_eq "metrics exits 0" "$RC" 0
expect_eq "on: nothing on stderr" "$(cat "$T_TMP/err")" ""
OUT=$(prom "$T_TMP/m1" 2>&1); PRC=$?
expect_eq "the text format holds, line by line" "$PRC" 0
[ "$PRC" -eq 0 ] || printf '%s\n' "$OUT" | tail -n 3
ev_line() { printf '%s\n' "$OUT" | grep -F "serfhand_events_total{type=\"$1\",outcome=\"$2\"} " | awk '{ print $2 }'; }
expect_eq "user ok: 3" "$(ev_line user ok)" 3
expect_eq "user failed: 1" "$(ev_line user failed)" 1
expect_eq "user deadline: 1" "$(ev_line user deadline)" 1
expect_eq "user memory: 1" "$(ev_line user memory)" 1
expect_eq "user bad_event: 1" "$(ev_line user bad_event)" 1
expect_eq "user refused: 1" "$(ev_line user refused)" 1
expect_eq "query response: 1" "$(ev_line query response)" 1
expect_eq "query ok: 2 (one ended by exit_now)" "$(ev_line query ok)" 2
expect_eq "member-join ok: 1" "$(ev_line member-join ok)" 1
expect_eq "an unknown SERF_EVENT is other (no label from outside)" "$(ev_line other bad_event)" 1
expect_eq "no other series" "$(printf '%s\n' "$OUT" | grep -c '^serfhand_events_total')" 10
expect_match "refusals" "$OUT" "serfhand_refusals_total 1"
expect_match "deadline hits" "$OUT" 'serfhand_limit_hits_total\{limit="deadline"\} 1'
expect_match "memory hits" "$OUT" 'serfhand_limit_hits_total\{limit="memory"\} 1'
expect_match "response hits" "$OUT" 'serfhand_limit_hits_total\{limit="response"\} 1'
expect_match "durations: user count" "$OUT" 'serfhand_handler_duration_seconds_count\{type="user"\} 8'
le_01=$(printf '%s\n' "$OUT" | grep -F 'serfhand_handler_duration_seconds_bucket{type="user",le="0.1"}' | awk '{ print $2 }')
check "durations: the spinning run (200 ms deadline) is over 0.1 s" test "${le_01:-8}" -le 7
expect_match "a query's duration" "$OUT" 'serfhand_handler_duration_seconds_count\{type="query"\} 3'
expect_eq "metrics is read-only: the journal stays" "$(ls "$S" | grep -c '^metrics.journal$')" 1
expect_eq "journal mode 0600" "$(stat -c %a "$S/metrics.journal")" 600

# --- the tick: counted, compacts, writes the textfile -------------------------
"$SERFHAND" -c "$CONF" tick > /dev/null 2>&1
expect_eq "tick exits 0" "$?" 0
TF=$T_TMP/prom/serfhand.prom
check "textfile written" test -f "$TF"
expect_eq "textfile mode 0644 (node_exporter reads it)" "$(stat -c %a "$TF")" 644
OUT=$(prom "$TF" 2>&1); PRC=$?
expect_eq "textfile: the text format holds" "$PRC" 0
expect_eq "textfile: the tick itself counted" "$(ev_line tick ok)" 1
expect_eq "textfile: user ok still 3" "$(ev_line user ok)" 3
expect_eq "compacted: no journal" "$(ls "$S" | grep -c '^metrics.journal$')" 0
check "compacted: the state" test -f "$S/metrics.state"
"$SERFHAND" -c "$CONF" metrics > "$T_TMP/m2"
OUT=$(prom "$T_TMP/m2")
expect_eq "after compaction the counts are the same" "$(ev_line user ok)|$(ev_line tick ok)" "3|1"
expect_eq "no temp file left" "$(ls -A "$T_TMP/prom")" "serfhand.prom"

# --- concurrent runs while ticks compact: nothing lost, textfile always whole --
rm -f "$T_TMP/go" "$T_TMP/stop"
for w in 1 2 3; do
    (
        while [ ! -e "$T_TMP/go" ]; do sleep 0.01; done
        for _ in $(seq 40); do ev user ok > /dev/null; done
    ) &
    track $!
    eval "w$w=$!"
done
(
    while [ ! -e "$T_TMP/go" ]; do sleep 0.01; done
    while [ ! -e "$T_TMP/stop" ]; do "$SERFHAND" -c "$CONF" tick > /dev/null 2>&1; echo tick >> "$T_TMP/ticks"; done
) &
TICKER=$!
track $TICKER
(
    while [ ! -e "$T_TMP/stop" ]; do
        tail -n 1 "$TF" | grep -q '^serfhand_metrics_bad_records_total ' || echo torn >> "$T_TMP/torn"
    done
) &
READER=$!
track $READER
touch "$T_TMP/go"
wait "$w1" "$w2" "$w3"
touch "$T_TMP/stop"
wait "$TICKER" "$READER"
TICKS=$(wc -l < "$T_TMP/ticks")
"$SERFHAND" -c "$CONF" metrics > "$T_TMP/m3"
OUT=$(prom "$T_TMP/m3")
expect_eq "3 x 40 concurrent runs, all counted" "$(ev_line user ok)" 123
expect_eq "every tick counted" "$(ev_line tick ok)" $((TICKS + 1))
check "ticks ran during the runs" test "$TICKS" -gt 1
expect_eq "the textfile was never seen half-written" "$(cat "$T_TMP/torn" 2> /dev/null)" ""
expect_eq "still no bad records" "$(printf '%s\n' "$OUT" | grep '^serfhand_metrics_bad_records_total')" \
    "serfhand_metrics_bad_records_total 0"

# --- torn and hostile journal lines; a crashed compaction ----------------------
printf 'user ok 5000\nuser ok\nuser{x="y"} ok 1\nuser ok -1\nuser ok 99999999999999999999999\nquery ok 7000\nuser o' \
    >> "$S/metrics.journal"
"$SERFHAND" -c "$CONF" metrics > "$T_TMP/m4"
OUT=$(prom "$T_TMP/m4" 2>&1); PRC=$?
expect_eq "hostile lines: the format holds" "$PRC" 0
expect_eq "hostile lines: the good ones counted" "$(ev_line user ok)|$(ev_line query ok)" "124|3"
expect_match "hostile lines: 4 bad records, the unfinished last line waits" "$OUT" \
    "serfhand_metrics_bad_records_total 4"
printf 'k\n' >> "$S/metrics.journal" # the unfinished line ends: "user ok" + "k" is bad
"$SERFHAND" -c "$CONF" tick > /dev/null 2>&1
OUT=$(prom "$TF")
expect_match "compacted: the bad records kept" "$OUT" "serfhand_metrics_bad_records_total 5"
# a fold file left by a compaction that crashed before writing the state
# (generation G in the state, metrics.fold.G+1 on disk)
gen() { awk '$1 == "generation" { print $2 }' "$S/metrics.state"; }
G=$(gen)
printf 'member-join ok 1000\n' > "$S/metrics.fold.$((G + 1))"
"$SERFHAND" -c "$CONF" metrics > "$T_TMP/m5"
OUT=$(prom "$T_TMP/m5")
expect_eq "a leftover fold is counted" "$(ev_line member-join ok)" 2
"$SERFHAND" -c "$CONF" tick > /dev/null 2>&1
"$SERFHAND" -c "$CONF" tick > /dev/null 2>&1
OUT=$(prom "$TF")
expect_eq "... once, also after compactions" "$(ev_line member-join ok)" 2
expect_eq "... and removed" "$(ls "$S" | grep -c '^metrics.fold')" 0
# a fold file left by a compaction that crashed after writing the state:
# its generation is the state's own, so it is not counted again
printf 'member-join ok 1000\n' > "$S/metrics.fold.$(gen)"
"$SERFHAND" -c "$CONF" metrics > "$T_TMP/m6"
OUT=$(prom "$T_TMP/m6")
expect_eq "an absorbed fold is not counted twice" "$(ev_line member-join ok)" 2
"$SERFHAND" -c "$CONF" tick > /dev/null 2>&1
OUT=$(prom "$TF")
expect_eq "... nor by the next compaction" "$(ev_line member-join ok)" 2
expect_eq "... which removes it" "$(ls "$S" | grep -c '^metrics.fold')" 0
# a state file that is not one: a clear error, exit 2
cp "$S/metrics.state" "$T_TMP/state.copy"
printf 'garbage\n' > "$S/metrics.state"
OUT=$("$SERFHAND" -c "$CONF" metrics 2>&1); RC=$?
expect_eq "bad state: exit 2" "$RC" 2
expect_match "bad state: named" "$OUT" "metrics.state is not a metrics state file"
cp "$T_TMP/state.copy" "$S/metrics.state"

# --- a large journal is compacted by the writers themselves --------------------
python3 -c 'import sys; sys.stdout.write("user ok 1000\n" * 90000)' >> "$S/metrics.journal"
rm -f "$TF"
ev user ok > /dev/null
check "large journal compacted by a handler run" test ! -e "$S/metrics.journal"
check "... without writing the textfile (only the tick does)" test ! -e "$TF"
"$SERFHAND" -c "$CONF" metrics > "$T_TMP/m7"
OUT=$(prom "$T_TMP/m7")
expect_eq "... nothing lost" "$(ev_line user ok)" $((124 + 90000 + 1))

# --- a process stuck holding a lock delays nothing for long -----------------
# lock FILE: hold an exclusive flock on FILE until killed
hold_lock() {
    python3 -c 'import fcntl, os, sys, time
f = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(f, fcntl.LOCK_EX); print("locked", flush=True); time.sleep(60)' "$1" > "$T_TMP/hold.out" 2>&1 &
    HOLDER=$!
    track $HOLDER
    wait_for 10 grep -q locked "$T_TMP/hold.out"
}
"$SERFHAND" -c "$CONF" metrics > "$T_TMP/m8"
OUT=$(prom "$T_TMP/m8"); BEFORE=$(ev_line user ok)
# a compaction stuck holding metrics.lock: runs are counted, the tick gives up
hold_lock "$S/metrics.lock"
T0=$(ms); RC=$(ev user ok); T1=$(ms)
expect_eq "lock held: the run exits 0" "$RC" 0
check "lock held: the run is not delayed ($((T1 - T0)) ms)" test $((T1 - T0)) -lt 1000
: > "$T_TMP/log"
T0=$(ms); "$SERFHAND" -c "$CONF" tick > /dev/null 2>&1; RC=$?; T1=$(ms)
expect_eq "lock held: the tick exits 0" "$RC" 0
check "lock held: the tick gives up in time ($((T1 - T0)) ms)" test $((T1 - T0)) -lt 4000
expect_match "lock held: ... and logs why" "$(cat "$T_TMP/log")" "metrics: .*metrics.lock: Resource temporarily unavailable"
kill "$HOLDER"; wait "$HOLDER" 2> /dev/null
"$SERFHAND" -c "$CONF" metrics > "$T_TMP/m9"
OUT=$(prom "$T_TMP/m9")
expect_eq "lock held: the run was counted" "$(ev_line user ok)" $((BEFORE + 1))
# the journal itself locked (a compaction stopped while reading it): a run
# waits at most a few times 50 ms, drops its record and says so
ev user ok > /dev/null # the journal exists
hold_lock "$S/metrics.journal"
: > "$T_TMP/log"
T0=$(ms); RC=$(ev user ok); T1=$(ms)
expect_eq "journal locked: the run exits 0" "$RC" 0
check "journal locked: the run waits under 1 s ($((T1 - T0)) ms)" test $((T1 - T0)) -lt 1000
expect_match "journal locked: ... and logs it" "$(cat "$T_TMP/log")" "metrics: .*metrics.journal: "
kill "$HOLDER"; wait "$HOLDER" 2> /dev/null

# --- configuration -------------------------------------------------------------
for v in 'relative.prom' '/tmp/x.txt' '/tmp/.prom' '/'; do
    { base_conf; printf 'metrics = { textfile = "%s" }\n' "$v"; } > "$T_TMP/bad.conf"
    OUT=$("$SERFHAND" -c "$T_TMP/bad.conf" metrics 2>&1); RC=$?
    expect_eq "metrics.textfile = $v: exit 2" "$RC" 2
    expect_match "metrics.textfile = $v: named" "$OUT" "bad.conf:[0-9]+: metrics.textfile \"$v\" is not an absolute path to a \*.prom file"
done
{ base_conf; printf 'metrics = { enabled = "yes" }\n'; } > "$T_TMP/bad.conf"
OUT=$("$SERFHAND" -c "$T_TMP/bad.conf" metrics 2>&1); RC=$?
expect_eq "metrics.enabled = \"yes\": exit 2" "$RC" 2
# an unwritable textfile directory: the tick still succeeds and logs why
{ base_conf; printf 'metrics = { enabled = true, textfile = "%s/nodir/x.prom" }\n' "$T_TMP"; } > "$T_TMP/nodir.conf"
: > "$T_TMP/log"
"$SERFHAND" -c "$T_TMP/nodir.conf" tick > /dev/null 2>&1
expect_eq "textfile directory missing: tick exits 0" "$?" 0
expect_match "... and logs it" "$(cat "$T_TMP/log")" "metrics.textfile: .*nodir: No such file"
expect_match "help lists the command" "$("$SERFHAND" --help 2>&1)" "metrics +print the run counters"

finish
