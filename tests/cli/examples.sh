# The example bundle in examples/hello keeps working: signed, checked, and
# each handler run through `serfhand run` as Serf would.
. "$(dirname "$0")/../lib.sh"

cp -r "$TOP/examples/hello" "$T_TMP/b"
"$SERFHAND" keygen -W -p "$T_TMP/k.pub" -s "$T_TMP/k.sec" > /dev/null
check "the example bundle signs" sh -c "'$SERFHAND' sign -s '$T_TMP/k.sec' --name hello --version 1 '$T_TMP/b' > /dev/null"
cat > "$T_TMP/conf" <<CONF
bundle = "$T_TMP/b"
state_dir = "$T_TMP/state"
trust = { keys = { "$T_TMP/k.pub" } }
log = { target = "$T_TMP/log" }
CONF
OUT=$("$SERFHAND" -c "$T_TMP/conf" check 2>&1); RC=$?
expect_eq "serfhand check passes on the example bundle" "$RC" 0
OUT=$("$SERFHAND" -c "$T_TMP/conf" run query --name whoami --payload hi --tag role=web 2>/dev/null)
expect_match "whoami answers JSON" "$OUT" '"asked":"hi"'
expect_match "whoami has the role" "$OUT" '"role":"web"'
OUT=$("$SERFHAND" -c "$T_TMP/conf" run user --name greet --payload 'hello' 2>&1 >/dev/null)
expect_match "run shows the handler's log on stderr" "$OUT" 'got greet #1: "hello"'
OUT=$("$SERFHAND" -c "$T_TMP/conf" run member-join --member "$(printf 'n1\t127.0.0.1\tweb\trole=web')" 2>&1)
expect_match "member-join uses the bundle module" "$OUT" 'sees joined: n1@127.0.0.1\(web\)'
OUT=$("$SERFHAND" -c "$T_TMP/conf" run user 2>&1); RC=$?
expect_eq "run without --name is a usage error" "$RC" 2
expect_match "and says so" "$OUT" "user needs --name"
OUT=$("$SERFHAND" -c "$T_TMP/conf" run query --name whoami --payload x 2>&1 >/dev/null)
expect_match "run reports the exit code and what Serf does" "$OUT" "exit 0; Serf sends this response"
echo 'return function() return 1 end' > "$T_TMP/b/handlers/query/whoami.lua"
OUT=$("$SERFHAND" -c "$T_TMP/conf" run query --name whoami 2>&1); RC=$?
expect_eq "an altered handler is refused (exit 3)" "$RC" 3
expect_match "run shows that Serf gets nothing" "$OUT" "exit 3; Serf sends no response"
OUT=$("$SERFHAND" -c "$T_TMP/conf" run query --name whoami --unsigned 2>&1); RC=$?
expect_eq "--unsigned runs the work in progress" "$RC" 6
finish
