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
# The example's own tests (outside handlers/ and lua/: not signed) pass.
OUT=$(cd "$TOP/examples/hello" && "$SERFHAND" -c "$T_TMP/conf" test tests/fmt.lua 2>&1); RC=$?
expect_eq "the example's tests pass with serfhand test" "$RC" 0
expect_match "and count" "$OUT" '^2 passed, 0 failed'

# docs/authors.md walks through this example first: its commands, run as
# written (the example from the repository instead of the installed copy).
awk '/^## Start here/ { on = 1 } on && /^```sh$/ { code = 1; next } code && /^```$/ { exit } code' \
    "$TOP/docs/authors.md" | sed "s|/usr/local/share/doc/serfhand/examples/hello|$TOP/examples/hello|" \
    > "$T_TMP/walk.sh"
check "docs/authors.md has the walkthrough" grep -q 'serfhand sign' "$T_TMP/walk.sh"
mkdir "$T_TMP/walk"
OUT=$(cd "$T_TMP/walk" && PATH="$TOP/$BUILD:$PATH" bash -e "$T_TMP/walk.sh" 2>&1); RC=$?
expect_eq "the walkthrough of docs/authors.md runs as written" "$RC" 0
expect_match "its unsigned run answers" "$OUT" '"asked":"hi"'
expect_match "its test passes" "$OUT" '2 passed, 0 failed'
expect_match "its bundle verifies" "$OUT" 'threshold +1 of 1'
expect_eq "its unsigned and its signed run both answer" "$(printf '%s\n' "$OUT" | grep -c '"asked":"hi"')" 2

# share/luacheckrc, the luacheck configuration authors get: the example is
# clean, a handler that uses what the sandbox removed is flagged line by line.
if ! command -v luacheck > /dev/null; then
    fail "luacheck is needed (make deps installs lua-check)"
else
    RC_FILE="$TOP/share/luacheckrc"
    OUT=$(cd "$TOP/examples/hello" && luacheck --no-color --config "$RC_FILE" . 2>&1); RC=$?
    expect_eq "luacheck with share/luacheckrc finds nothing in examples/hello" "$RC" 0
    expect_match "it checked the handlers, the module and the tests" "$OUT" '0 warnings / 0 errors in 5 files'
    mkdir -p "$T_TMP/bad/handlers/user" "$T_TMP/bad/tests"
    cat > "$T_TMP/bad/handlers/user/bad.lua" <<'LUA'
return function(ev)
  local code = string.dump(print)
  local f = io.open("/etc/serfhand/serfhand.conf")
  collectgarbage("collect")
  counter = (counter or 0) + 1
  T.ok(ev)
  os.execute("id")
  return code, f, dofile("x"), loadfile("y"), package.path, debug.getinfo, string.formt("%d", 1)
end
LUA
    printf 'T.test("x", function() T.eq(1, 1); T.equal(1, 1) end)\n' > "$T_TMP/bad/tests/t.lua"
    OUT=$(cd "$T_TMP/bad" && luacheck --no-color --codes --config "$RC_FILE" . 2>&1); RC=$?
    expect_eq "luacheck fails on the bad bundle" "$RC" 1
    for w in "2:.*W143.*field 'dump' of global 'string'" "3:.*W113.*variable 'io'" \
        "4:.*W113.*variable 'collectgarbage'" "5:.*W111.*global variable 'counter'" \
        "6:.*W113.*variable 'T'" "7:.*W113.*variable 'os'" "8:.*W113.*variable 'dofile'" \
        "8:.*W113.*variable 'loadfile'" "8:.*W113.*variable 'package'" "8:.*W113.*variable 'debug'" \
        "8:.*W143.*field 'formt' of global 'string'" "tests/t.lua:1:.*W143.*field 'equal' of global 'T'"; do
        expect_match "flagged: $w" "$OUT" "$w"
    done
    expect_match "T itself is known in tests/" "$OUT" "tests/t.lua +1 warning"
fi
finish
