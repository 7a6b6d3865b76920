# The one argument parser, driven through the binary: every command names an
# unknown or malformed option, `help` is generated from the options each
# command declares, and a duration means the same everywhere (a bare number
# is seconds: `sign --expires 90` is 90 seconds).
. "$(dirname "$0")/../lib.sh"

cat > "$T_TMP/c.conf" <<CONF
state_dir = "$T_TMP/state"
bundle = "$T_TMP/b"
log = { target = "$T_TMP/log" }
CONF
S() { "$SERFHAND" -c "$T_TMP/c.conf" "$@"; }

# Every command, asked with an option it does not have, says which.
for c in handle tick status query propose action run test check verify sign keygen install \
    announce rollback config; do
    out=$(S "$c" --bogus 2>&1 < /dev/null); rc=$?
    expect_eq "$c --bogus is a usage error" "$rc" 2
    expect_match "$c names the unknown option" "$out" "^serfhand $c: unknown option --bogus"
    expect_match "$c shows its synopsis" "$out" "usage: serfhand \[-c FILE\] $c"
    out=$(S help "$c"); rc=$?
    expect_eq "help $c" "$rc" 0
    expect_match "help $c starts with the synopsis" "$out" "^usage: serfhand \[-c FILE\] $c"
    out2=$(S "$c" --help < /dev/null); rc=$?
    expect_eq "$c --help is help $c" "$out2" "$out"
done
out=$("$SERFHAND" --bogus 2>&1); rc=$?
expect_eq "a global option it does not know" "$rc" 2
expect_match "is named too" "$out" "unknown option --bogus"

# A query's stdout and stderr are its answer: handle says nothing there.
out=$(SERF_EVENT=query SERF_QUERY_NAME=x S handle --bogus 2>&1 < /dev/null); rc=$?
expect_eq "handle --bogus during a query: usage error" "$rc" 2
expect_eq "and not a byte of output" "$out" ""

# On a terminal without SERF_EVENT it is a person, not Serf: usage on stderr,
# exit 2 (it used to exit 7 with the reason only in the log). `script` gives
# the binary a pseudo-terminal as stdin; stderr goes to a file.
if command -v script > /dev/null; then
    script -qec "env -u SERF_EVENT $SERFHAND -c $T_TMP/c.conf 2> $T_TMP/tty.err > $T_TMP/tty.out; echo \$? > $T_TMP/tty.rc" /dev/null > /dev/null < /dev/null
    expect_eq "bare serfhand on a terminal: exit 2" "$(cat "$T_TMP/tty.rc")" 2
    expect_match "says why on stderr" "$(cat "$T_TMP/tty.err")" "^serfhand: not run by Serf \(no SERF_EVENT, stdin is a terminal\)"
    expect_match "then the usage, on stderr" "$(cat "$T_TMP/tty.err")" "^usage: serfhand \[-c FILE\]"
    expect_eq "nothing on stdout" "$(cat "$T_TMP/tty.out")" ""
    script -qec "env -u SERF_EVENT $SERFHAND -c $T_TMP/c.conf handle 2> /dev/null; echo \$? > $T_TMP/tty.rc" /dev/null > /dev/null < /dev/null
    expect_eq "serfhand handle on a terminal: exit 2 too" "$(cat "$T_TMP/tty.rc")" 2
    timeout 10 script -qec "SERF_EVENT=user SERF_USER_EVENT=x $SERFHAND -c $T_TMP/c.conf 2> /dev/null; echo \$? > $T_TMP/tty.rc" /dev/null > /dev/null < /dev/null
    expect_eq "with SERF_EVENT it handles the event (no bundle yet: refused, 3)" "$(cat "$T_TMP/tty.rc")" 3
else
    fail "script(1) missing: the terminal case is not tested"
fi
out=$(env -u SERF_EVENT "$SERFHAND" -c "$T_TMP/c.conf" 2>&1 < /dev/null); rc=$?
expect_eq "under Serf (stdin not a terminal) without SERF_EVENT: still a bad event" "$rc" 7
expect_eq "and silent, as before" "$out" ""

# The help of a command lists every option it declares, from the same table.
out=$(S help sign)
for o in "-s KEY.sec" "--version N" "--expires DURATION" "--name NAME"; do
    expect_match "help sign lists $o" "$out" "^  $o "
done
expect_match "help sign: a bare number is seconds" "$out" "a bare number is seconds"
out=$(S help run)
for o in "--name N" "--payload TEXT" "--payload-file F" "--tag k=v" "--member LINE" "--unsigned"; do
    expect_match "help run lists $o" "$out" "^  $o "
done
expect_match "a repeatable option shows ..." "$out" "\[--tag k=v\]\.\.\."
out=$(S help install)
check "an internal option is left out of the options" sh -c '! printf "%s" "$1" | grep -q "^  --manifest-hash"' - "$out"

# Malformed values are named with what was wanted.
out=$(S test --timeout-ms abc x.lua 2>&1); rc=$?
expect_eq "test --timeout-ms abc" "$rc" 2
expect_match "names the option and the value" "$out" "--timeout-ms needs an integer from 0 to [0-9]+, not 'abc'"
out=$(S status --timeout-ms 0 2>&1); rc=$?
expect_eq "status --timeout-ms 0" "$rc" 2
expect_match "says the range" "$out" "--timeout-ms needs an integer from 1 to 600000, not '0'"
out=$(S install --wait soon "$T_TMP" 2>&1); rc=$?
expect_eq "install --wait soon" "$rc" 2
expect_match "a bad duration is named" "$out" "--wait: bad duration 'soon'"
out=$(S sign -s 2>&1); rc=$?
expect_eq "sign -s without its value" "$rc" 2
expect_match "says what is missing" "$out" "-s needs a value \(KEY.sec\)"
out=$(S sign "$T_TMP" 2>&1); rc=$?
expect_eq "sign without -s" "$rc" 2
expect_match "a required option is named" "$out" "-s KEY.sec is required"
out=$(S verify 2>&1); rc=$?
expect_eq "verify without DIR" "$rc" 2
expect_match "names the missing operand" "$out" "missing DIR"
out=$(S verify a b 2>&1); rc=$?
expect_eq "verify with two DIRs" "$rc" 2
expect_match "names the extra operand" "$out" "unexpected argument 'b'"
out=$(S check --json=yes 2>&1); rc=$?
expect_eq "a flag given a value" "$rc" 2
expect_match "says it takes none" "$out" "--json takes no value"

# One duration syntax: a bare number is seconds everywhere, units s m h d w.
"$SERFHAND" keygen -W -p "$T_TMP/k.pub" -s "$T_TMP/k.sec" > /dev/null
mkdir -p "$T_TMP/b/handlers/user"
echo 'return function() end' > "$T_TMP/b/handlers/user/x.lua"
lifetime() { # the expiry of DIR's manifest minus its creation, in seconds
    tr -d ' \n' < "$1/MANIFEST.json" |
        sed -E 's/.*"created":([0-9]+).*"expires":([0-9]+).*/\2 \1/' | awk '{ print $1 - $2 }'
}
out=$(S sign -s "$T_TMP/k.sec" --name b --version 1 --expires 90 "$T_TMP/b" 2>&1); rc=$?
expect_eq "sign --expires 90" "$rc" 0
expect_eq "a bare --expires is seconds" "$(lifetime "$T_TMP/b")" 90
S sign -s "$T_TMP/k.sec" --version 2 --expires 2m "$T_TMP/b" > /dev/null
expect_eq "--expires 2m" "$(lifetime "$T_TMP/b")" 120
S sign -s "$T_TMP/k.sec" --version 3 --expires=2w "$T_TMP/b" > /dev/null
expect_eq "--expires=2w" "$(lifetime "$T_TMP/b")" 1209600
S sign -s "$T_TMP/k.sec" --version 4 "$T_TMP/b" > /dev/null
expect_eq "the default is 180 days" "$(lifetime "$T_TMP/b")" 15552000
out=$(S sign -s "$T_TMP/k.sec" --version 5 --expires 0 "$T_TMP/b" 2>&1); rc=$?
expect_eq "--expires 0 is refused" "$rc" 2
expect_match "out of range, named" "$out" "--expires: 0 is out of range"
out=$(S rollback --allow-downgrade --wait 1m 2>&1); rc=$?
expect_eq "rollback --wait takes a unit (it fails later: nothing to roll back to)" "$rc" 1
expect_match "and gets that far" "$out" "no previous bundle"
out=$(S propose restart --in 2x 2>&1); rc=$?
expect_eq "propose --in 2x" "$rc" 2
expect_match "the same parser names it" "$out" "--in: bad duration '2x'"

finish
