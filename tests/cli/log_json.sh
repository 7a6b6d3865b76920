# log_json: log.format = "json": every line of the log is one JSON object with
# the keys in a fixed order, valid whatever bytes a handler logs (control
# bytes, quotes, ill-formed UTF-8), on every path (handler lines, host lines,
# the deadline's signal-safe line); bad values of log.format are named.
. "$(dirname "$0")/../lib.sh"

B=$T_TMP/bundle
LOG=$T_TMP/log
mkdir -p "$B/handlers/user"
"$SERFHAND" keygen -W -p "$T_TMP/k.pub" -s "$T_TMP/k.sec" > /dev/null
cat > "$T_TMP/conf" <<CONF
bundle = "$B"
state_dir = "$T_TMP/state"
trust = { keys = { "$T_TMP/k.pub" } }
log = { target = "$LOG", level = "debug", format = "json" }
limits = { event_ms = 300, grace_ms = 100 }
CONF
cat > "$B/handlers/user/bytes.lua" <<'LUA'
local log = require "serfhand.log"
return function(ev)
  -- every byte value, then the classic traps, one line each
  local all = {}
  for i = 0, 255 do all[#all + 1] = string.char(i) end
  log.info(table.concat(all))
  log.warn('quote " backslash \\ slash / tab \t newline \n cr \r nul \0 del \127 end')
  log.error("bad utf-8: \xff \xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82 cut")
  log.debug("good utf-8: ü € 𝄞 \u{2028}")
  print("print", 1, nil)
  log.info(ev.payload)
end
LUA
cat > "$B/handlers/user/fails.lua" <<'LUA'
return function() error("boom \"quoted\"\n\1") end
LUA
cat > "$B/handlers/user/spin.lua" <<'LUA'
return function() while true do end end
LUA
"$SERFHAND" sign -s "$T_TMP/k.sec" --name logbundle --version 3 "$B" > /dev/null 2>&1 || fail "sign"

run() { # NAME [STDIN-FILE]: one user event; sets RC
    env -i PATH="$PATH" "${SAN_ENV[@]}" SERF_EVENT=user SERF_USER_EVENT="$1" SERF_USER_LTIME=1 SERF_SELF_NAME=n1 \
        "$SERFHAND" -c "$T_TMP/conf" handle < "${2:-/dev/null}" > /dev/null 2>&1
    RC=$?
}

# validate FILE: every line parses as one JSON object with exactly the keys
# ts, level, pid, event, bundle, msg in that order; prints the messages, one
# JSON string a line, then "lines N".
validate() {
    python3 - "$1" <<'PY'
import json, re, sys
keys = ["ts", "level", "pid", "event", "bundle", "msg"]
raw = open(sys.argv[1], "rb").read()
assert raw.endswith(b"\n"), "the log ends with a newline"
lines = raw.split(b"\n")[:-1]
for n, b in enumerate(lines, 1):
    s = b.decode("utf-8")  # strict: raises on ill-formed UTF-8
    o = json.loads(s, object_pairs_hook=lambda p: p)
    assert [k for k, _ in o] == keys, "line %d keys %r" % (n, [k for k, _ in o])
    d = dict(o)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", d["ts"]), d["ts"]
    assert d["level"] in ("debug", "info", "warn", "error"), d["level"]
    assert isinstance(d["pid"], int) and d["pid"] > 0
    assert d["event"] is None or isinstance(d["event"], str)
    assert d["bundle"] is None or isinstance(d["bundle"], str)
    assert isinstance(d["msg"], str)
    print(json.dumps([d["level"], d["event"], d["bundle"], d["msg"]], ensure_ascii=True))
print("lines", len(lines))
PY
}

printf 'payload "x" \001\n' > "$T_TMP/in"
: > "$LOG"
run bytes "$T_TMP/in"
expect_eq "handler exits 0" "$RC" 0
OUT=$(validate "$LOG" 2>&1); VRC=$?
expect_eq "every line is one JSON object, keys in order" "$VRC" 0
[ "$VRC" -eq 0 ] || printf '%s\n' "$OUT" | tail -n 5
expect_match "every byte value, escaped" "$OUT" \
    '"\\u0000\\u0001\\u0002.*\\u001f !\\"#.*\[\\\\\].*~\\u007f(\\ufffd){128}"\]'
expect_match "quote, backslash, tab, newline, CR, NUL, DEL" "$OUT" \
    'quote \\" backslash \\\\ slash / tab \\t newline \\n cr \\r nul \\u0000 del \\u007f end'
expect_match "ill-formed UTF-8 replaced (overlong, surrogate, > U+10FFFF, truncated)" "$OUT" \
    'bad utf-8: \\ufffd \\ufffd\\ufffd \\ufffd\\ufffd\\ufffd \\ufffd\\ufffd\\ufffd\\ufffd \\ufffd\\ufffd cut'
expect_match "well-formed UTF-8 kept" "$OUT" 'good utf-8: \\u00fc \\u20ac \\ud834\\udd1e \\u2028"'
expect_match "print goes to the log" "$OUT" '"print\\t1\\tnil"'
expect_match "the payload, escaped" "$OUT" '"payload \\"x\\" \\u0001"'
expect_match "event and bundle fields" "$OUT" '\["info", "user:bytes", "logbundle@3", "print'
expect_match "levels" "$OUT" '\["error", "user:bytes", "logbundle@3", "bad utf-8'

# Host lines: a handler that raises, and one stopped by the deadline (the
# line written from the signal handler, if any, must parse too).
: > "$LOG"
run fails
expect_eq "raising handler exits 1" "$RC" 1
run spin
expect_eq "spinning handler exits 4" "$RC" 4
OUT=$(validate "$LOG" 2>&1); VRC=$?
expect_eq "host lines are JSON too" "$VRC" 0
[ "$VRC" -eq 0 ] || printf '%s\n' "$OUT" | tail -n 5
expect_match "the error line, escaped" "$OUT" '"error", "user:fails", "logbundle@3", ".*boom \\"quoted\\"\\n\\u0001'
expect_match "the deadline line" "$OUT" '"user:spin", "logbundle@3", ".*deadline'

# Lines before the event is known: event and bundle are null.
: > "$LOG"
env -i PATH="$PATH" "${SAN_ENV[@]}" SERF_EVENT=bogus "$SERFHAND" -c "$T_TMP/conf" handle < /dev/null > /dev/null 2>&1
OUT=$(validate "$LOG" 2>&1); VRC=$?
expect_eq "refused event: JSON" "$VRC" 0
expect_match "refused event: null event and bundle" "$OUT" '\["error", null, null, "refused event'

# The deadline's last resort, the signal-safe line: a handler stuck in one
# long C call (a backtracking pattern) that the hook cannot interrupt.
cat > "$B/handlers/user/crunch.lua" <<'LUA'
return function() string.rep("a", 5000):find(".-.-.-.-b") end
LUA
"$SERFHAND" sign -s "$T_TMP/k.sec" --name logbundle --version 4 "$B" > /dev/null 2>&1 || fail "sign"
: > "$LOG"
run crunch
expect_eq "crunching handler exits 4" "$RC" 4
OUT=$(validate "$LOG" 2>&1); VRC=$?
expect_eq "deadline lines are JSON" "$VRC" 0
[ "$VRC" -eq 0 ] || printf '%s\n' "$OUT" | tail -n 5
expect_match "the signal handler's line" "$OUT" '"error", "user:crunch", "logbundle@4", '

# text stays the default
sed 's/, format = "json"//' "$T_TMP/conf" > "$T_TMP/text.conf"
: > "$LOG"
env -i PATH="$PATH" "${SAN_ENV[@]}" SERF_EVENT=user SERF_USER_EVENT=fails SERF_USER_LTIME=1 SERF_SELF_NAME=n1 \
    "$SERFHAND" -c "$T_TMP/text.conf" handle < /dev/null > /dev/null 2>&1
expect_match "text is the default" "$(head -n 1 "$LOG")" '^[0-9-]+T[0-9:.]+Z serfhand\[[0-9]+\] '

# Bad values are named, with their line.
for v in '"JSON"' '"xml"' '""' '"json "'; do
    printf 'log = {\n  format = %s,\n}\n' "$v" > "$T_TMP/bad.conf"
    OUT=$("$SERFHAND" -c "$T_TMP/bad.conf" config 2>&1); RC=$?
    expect_eq "log.format = $v: exit 2" "$RC" 2
    expect_match "log.format = $v: named" "$OUT" "bad.conf:2: log.format \"${v:1:-1}\" is not text or json"
done
for v in '"debgu"' '"INFO"' '""' '"warning"'; do
    printf 'log = {\n  level = %s,\n}\n' "$v" > "$T_TMP/bad.conf"
    OUT=$("$SERFHAND" -c "$T_TMP/bad.conf" config 2>&1); RC=$?
    expect_eq "log.level = $v: exit 2" "$RC" 2
    expect_match "log.level = $v: named" "$OUT" "bad.conf:2: log.level \"${v:1:-1}\" is not debug, info, warn or error"
done
for v in debug info warn error; do
    printf 'log = { level = "%s" }\n' "$v" > "$T_TMP/good.conf"
    check "log.level = $v: taken" "$SERFHAND" -c "$T_TMP/good.conf" config
done
printf 'log = { format = 1 }\n' > "$T_TMP/bad.conf"
OUT=$("$SERFHAND" -c "$T_TMP/bad.conf" config 2>&1); RC=$?
expect_eq "log.format = 1: exit 2" "$RC" 2
expect_match "log.format = 1: named" "$OUT" "log.format"

finish
