# install: signed runtime updates on one node. `serfhand install` from a
# directory and over HTTP, the copy verified, a SIGKILL at every step
# (test-only hook SERFHAND_TEST_CRASH_AT) leaving a working bundle and a rerun
# completing, downgrades, expiry, the lock, pruning, rollback, and the
# serfhand-update announcement (expired, replayed, untrusted, other name).
# HTTP server: tests/sim/bundle_server.py on 127.0.0.1:18210 (range 18200-18249).
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/forge.sh"

PORT=18210
URL=http://127.0.0.1:$PORT
LOG=$T_TMP/log
"$SERFHAND" keygen -W -p "$T_TMP/k.pub" -s "$T_TMP/k.sec" > /dev/null
"$SERFHAND" keygen -W -p "$T_TMP/u.pub" -s "$T_TMP/u.sec" > /dev/null
# conf NAME STATE [extra lines]: a node config (bundle = STATE/current);
# update.sources is $SOURCES (Lua list items), by default the server's ok/.
conf() {
    cat > "$T_TMP/$1.conf" <<CONF
state_dir = "$2"
trust = { keys = { "$T_TMP/k.pub" } }
log = { target = "$LOG", level = "debug" }
update = { timeout_ms = 1500, keep = 2, allow_http = true,
           sources = { ${SOURCES:-"\"http://127.0.0.1:$PORT/ok/\""} }${3:+, $3} }
CONF
}
conf c "$T_TMP/state"
conf auto "$T_TMP/state-auto" "auto = true"
cat > "$T_TMP/u.conf" <<CONF
state_dir = "$T_TMP/state-u"
trust = { keys = { "$T_TMP/u.pub" } }
log = { target = "$LOG" }
CONF
C="$SERFHAND -c $T_TMP/c.conf"
PUB=$T_TMP/pub
mkdir -p "$PUB"
# mkb DIR NAME VERSION [KEY] [EXPIRES]: a signed bundle whose query `ver`
# answers "NAME vVERSION"; published under $PUB too.
mkb() {
    local d=$PUB/$1
    mkdir -p "$d/handlers/query" "$d/handlers/user" "$d/lua/app"
    printf 'return function(ev) return require("app.v").s end\n' > "$d/handlers/query/ver.lua"
    printf 'return { s = "%s v%s" }\n' "$2" "$3" > "$d/lua/app/v.lua"
    printf 'return function(ev) end\n' > "$d/handlers/user/ping.lua"
    "$SERFHAND" -c "$T_TMP/c.conf" sign -s "${4:-$T_TMP/k.sec}" --name "$2" --version "$3" \
        --expires "${5:-30d}" "$d" > /dev/null || fail "signing $1"
}
mkb b1 demo 1
mkb b2 demo 2
mkb b3 demo 3
mkb b4 demo 4
mkb bexp demo 9 "$T_TMP/k.sec" 1s
mkb bother other 7
mkb buntr demo 8 "$T_TMP/u.sec"
cp -r "$PUB/b2" "$PUB/bbad" && echo '-- tampered' >> "$PUB/bbad/lua/app/v.lua"
cp -r "$PUB/b2" "$PUB/bextra" && echo 'return 1' > "$PUB/bextra/lua/app/extra.lua"
# Signed bundles whose Lua does not compile: `serfhand sign` refuses them, a
# signer using minisign directly does not (forge_sign).
mkb bsyn demo 5 && printf 'return function(ev) return ( end\n' > "$PUB/bsyn/handlers/user/ping.lua"
mkb bsynlua demo 5 && printf 'return { s = "x" \n' > "$PUB/bsynlua/lua/app/v.lua"
for d in bsyn bsynlua; do
    out=$("$SERFHAND" -c "$T_TMP/c.conf" sign -s "$T_TMP/k.sec" --version 6 "$PUB/$d" 2>&1); rc=$?
    expect_eq "sign refuses $d (does not compile): exit 3" "$rc" 3
    expect_match "sign says it signed nothing ($d)" "$out" "$d does not compile, nothing was signed:"
    expect_match "sign names file and line ($d)" "$out" "^  (handlers/user/ping.lua:1:|lua/app/v.lua:2:) "
    check "sign left the old signature alone ($d)" grep -q '"version": 5' "$PUB/$d/MANIFEST.json"
    forge_sign "$PUB/$d" "$T_TMP/k.sec" || fail "forging $d"
    out=$("$SERFHAND" -c "$T_TMP/c.conf" verify "$PUB/$d" 2>&1); rc=$?
    expect_eq "verify fails on $d: exit 3" "$rc" 3
    expect_match "verify names file and line ($d)" "$out" "PROBLEM +(handlers/user/ping.lua:1:|lua/app/v.lua:2:)"
    check "and only that problem ($d)" sh -c 'printf "%s" "$1" | grep -q "FAILED: 1 problem"' - "$out"
done

# ver STATE: the answer of query `ver` run by the active bundle of a config.
ver() {
    env -i PATH="$PATH" "${SAN_ENV[@]}" SERF_EVENT=query SERF_QUERY_NAME=ver SERF_QUERY_LTIME=1 \
        SERF_SELF_NAME=n1 SERF_SELF_ROLE= "$SERFHAND" -c "$1" handle < /dev/null 2>/dev/null
}
cur() { readlink "$1/current"; }
S=$T_TMP/state

# --- install from a directory ------------------------------------------------
out=$($C install "$PUB/b1" 2>&1); rc=$?
expect_eq "install from a directory succeeds" "$rc" 0
expect_match "it says what it installed" "$out" "installed bundle demo version 1 \(manifest [0-9a-f]{16}\)"
expect_match "current points to bundles/<version>-<16 hex of the manifest hash>" "$(cur "$S")" '^bundles/1-[0-9a-f]{16}$'
h1=$("$SERFHAND" -c "$T_TMP/c.conf" verify --json "$PUB/b1" | sed -n 's/.*"manifest":"\([0-9a-f]*\)".*/\1/p')
expect_eq "the directory name carries the manifest hash" "$(cur "$S")" "bundles/1-${h1:0:16}"
check "the copy verifies (serfhand verify)" sh -c "$C verify '$S/current' > /dev/null"
check "the copy holds the same bytes" diff -r "$PUB/b1" "$S/current"
check "serfhand check passes on the installed bundle" sh -c "$C check > /dev/null"
expect_eq "handlers run from the installed bundle" "$(ver "$T_TMP/c.conf")" "demo v1"
check "no temporary directory is left" sh -c "! ls -A '$S/bundles' | grep -q '^\.'"
out=$($C install "$PUB/b1" 2>&1); rc=$?
expect_eq "installing the active bundle again is a no-op success" "$rc" 0
check "and it keeps no previous link to itself" test ! -e "$S/previous"

out=$($C install "$PUB/b2" 2>&1)
expect_eq "upgrade to version 2" "$(ver "$T_TMP/c.conf")" "demo v2"
expect_match "the previous bundle is kept" "$(readlink "$S/previous")" '^bundles/1-'
check "the previous bundle still verifies" sh -c "$C verify '$S/previous' > /dev/null"

# --- refusals: nothing changes ------------------------------------------------
before=$(cur "$S")
refused() { # NAME EXPECTED-RC REGEX ARGS...: the install fails with RC, says REGEX, changes nothing
    local n=$1 want=$2 re=$3; shift 3
    : > "$LOG"
    local o r; o=$($C install "$@" 2>&1); r=$?
    expect_eq "$n: exit code" "$r" "$want"
    expect_match "$n: clear message" "$o" "$re"
    expect_match "$n: logged" "$(cat "$LOG")" "error: install failed, nothing changed: .*$re"
    expect_eq "$n: current unchanged" "$(cur "$S")" "$before"
    check "$n: no temporary directory left" sh -c "! ls -A '$S/bundles' | grep -q '^\.'"
}
refused "older version" 3 "version 1 is below the highest version this node accepted \(2\)" "$PUB/b1"
sleep 1.1
refused "expired bundle" 3 "expired at .* an expired bundle is never installed" "$PUB/bexp"
refused "bundle signed by an untrusted key" 3 "0 of 1 required distinct trusted keys" "$PUB/buntr"
refused "file changed after signing" 3 "lua/app/v.lua: .*(hash|bytes)" "$PUB/bbad"
refused "unlisted file" 3 "lua/app/extra.lua: not listed in the manifest" "$PUB/bextra"
refused "not a bundle" 3 "MANIFEST.json: missing" "$T_TMP"
refused "a handler that does not compile" 3 "does not compile: handlers/user/ping.lua:1: .*: refused" "$PUB/bsyn"
refused "a module that does not compile" 3 "does not compile: lua/app/v.lua:2: .*: refused" "$PUB/bsynlua"
check "the refused copies are gone" sh -c "! ls '$S/bundles' | grep -q '^5-'"
out=$($C install file:///etc 2>&1); rc=$?
expect_eq "file:// URLs are refused" "$rc" 2
expect_match "file:// says why" "$out" "only http:// and https://"
expect_eq "handlers still run version 2" "$(ver "$T_TMP/c.conf")" "demo v2"

# --- downgrade and rollback ---------------------------------------------------
out=$($C install --allow-downgrade "$PUB/b1" 2>&1); rc=$?
expect_eq "an older version with --allow-downgrade installs" "$rc" 0
expect_eq "and runs" "$(ver "$T_TMP/c.conf")" "demo v1"
check "serfhand check passes after the downgrade (recorded version lowered)" sh -c "$C check > /dev/null"
expect_match "the downgrade is logged" "$(cat "$LOG")" "warn: install: DOWNGRADE to bundle demo version 1"
$C install "$PUB/b2" > /dev/null 2>&1
expect_eq "upgrade again" "$(ver "$T_TMP/c.conf")" "demo v2"
out=$($C rollback 2>&1); rc=$?
expect_eq "rollback without --allow-downgrade is refused" "$rc" 2
expect_match "and says why" "$out" "only with --allow-downgrade"
expect_eq "and changes nothing" "$(ver "$T_TMP/c.conf")" "demo v2"
out=$($C rollback --allow-downgrade 2>&1); rc=$?
expect_eq "rollback --allow-downgrade succeeds" "$rc" 0
expect_eq "the previous bundle runs" "$(ver "$T_TMP/c.conf")" "demo v1"
check "serfhand check passes after rollback" sh -c "$C check > /dev/null"
expect_match "rollback is logged" "$(cat "$LOG")" "warn: rollback: current is now bundles/1-.*--allow-downgrade"
$C rollback --allow-downgrade > /dev/null 2>&1
expect_eq "rolling back twice returns to version 2" "$(ver "$T_TMP/c.conf")" "demo v2"

# --- prune: update.keep = 2 ---------------------------------------------------
$C install "$PUB/b3" > /dev/null 2>&1
$C install "$PUB/b4" > /dev/null 2>&1
expect_eq "version 4 runs" "$(ver "$T_TMP/c.conf")" "demo v4"
expect_eq "only update.keep = 2 bundles are kept" "$(ls "$S/bundles" | wc -l | tr -d ' ')" 2
check "the lowest versions were pruned" sh -c "! ls '$S/bundles' | grep -q '^[12]-'"
check "the kept ones are current and previous" sh -c "[ -d '$S/bundles/$(basename "$(cur "$S")")' ] && [ -d '$S/$(readlink "$S/previous")' ]"

# --- the lock -------------------------------------------------------------------
flock "$S/install.lock" sleep 3 &
lp=$!; track $lp
sleep 0.3
out=$($C install --wait 1 "$PUB/b4" 2>&1); rc=$?
expect_eq "a second install fails after --wait while the lock is held" "$rc" 1
expect_match "and says another install is running" "$out" "another install is running"
wait $lp 2>/dev/null
flock "$S/install.lock" sleep 1 &
lp=$!; track $lp
sleep 0.2
out=$($C install --wait 10 "$PUB/b4" 2>&1); rc=$?
expect_eq "a second install waits for the lock and then completes" "$rc" 0
wait $lp 2>/dev/null

# --- SIGKILL at every step (test-only hook), then a rerun -------------------------
for step in locked staged verified copy copied verified-copy renamed previous link switched recorded pruned; do
    St=$T_TMP/crash-$step
    conf "crash-$step" "$St"
    Cc="$SERFHAND -c $T_TMP/crash-$step.conf"
    Ch="$SERFHAND-test-hooks -c $T_TMP/crash-$step.conf" # the hook is only in this build
    $Cc install "$PUB/b1" > /dev/null 2>&1
    old=$(cur "$St")
    rc=$(SERFHAND_TEST_CRASH_AT=$step $Ch install "$PUB/b2" > /dev/null 2>&1; echo $?) 2>/dev/null
    expect_eq "crash at $step: the installer was killed" "$rc" 137
    case $step in
    switched|recorded|pruned)
        expect_match "crash at $step: the new bundle is active (the switch happened)" "$(cur "$St")" '^bundles/2-'
        expect_eq "crash at $step: the previous bundle is kept" "$(readlink "$St/previous")" "$old" ;;
    *)
        expect_eq "crash at $step: the previous bundle is still active" "$(cur "$St")" "$old" ;;
    esac
    check "crash at $step: serfhand check passes" sh -c "$Cc check > /dev/null"
    check "crash at $step: the old bundle is intact" sh -c "$Cc verify '$St/$old' > /dev/null"
    out=$($Cc install "$PUB/b2" 2>&1); rc=$?
    expect_eq "crash at $step: a rerun completes" "$rc" 0
    expect_eq "crash at $step: the rerun runs version 2" "$(ver "$T_TMP/crash-$step.conf")" "demo v2"
    check "crash at $step: nothing temporary is left" sh -c "! ls -A '$St/bundles' | grep -q '^\.' && ! ls -A '$St' | grep -q '^\.'"
    check "crash at $step: version 1 is now refused (version 2 recorded)" sh -c "! $Cc install '$PUB/b1' > /dev/null 2>&1"
done
St=$T_TMP/crash-rollback
conf crash-rollback "$St"
Cc="$SERFHAND -c $T_TMP/crash-rollback.conf"
$Cc install "$PUB/b1" > /dev/null 2>&1; $Cc install "$PUB/b2" > /dev/null 2>&1
rc=$(SERFHAND_TEST_CRASH_AT=rollback-link $SERFHAND-test-hooks -c $T_TMP/crash-rollback.conf rollback --allow-downgrade > /dev/null 2>&1; echo $?) 2>/dev/null
expect_eq "crash in rollback: the rollback was killed" "$rc" 137
expect_eq "crash in rollback before the switch: version 2 still runs" "$(ver "$T_TMP/crash-rollback.conf")" "demo v2"
check "crash in rollback: check passes" sh -c "$Cc check > /dev/null"
check "crash in rollback: a rerun completes" sh -c "$Cc rollback --allow-downgrade > /dev/null 2>&1"
expect_eq "crash in rollback: then version 1 runs" "$(ver "$T_TMP/crash-rollback.conf")" "demo v1"

# --- HTTP ---------------------------------------------------------------------------
python3 "$TOP/tests/sim/bundle_server.py" $PORT "$PUB" 2> "$T_TMP/server.log" &
track $!
check "the bundle server is up" wait_for 10 sh -c "curl -sf -o /dev/null $URL/ok/b1/MANIFEST.json"
Sh=$T_TMP/state-http
SOURCES="\"$URL/\"" conf http "$Sh" # every mode of the server
Ch="$SERFHAND -c $T_TMP/http.conf"
out=$($Ch install "$URL/ok/b1" 2>&1); rc=$?
expect_eq "install over HTTP succeeds" "$rc" 0
expect_eq "and runs" "$(ver "$T_TMP/http.conf")" "demo v1"
check "the HTTP copy holds the same bytes" diff -r "$PUB/b1" "$Sh/current"
before=$(cur "$Sh")
http_refused() { # MODE REGEX
    : > "$LOG"
    local t0 t1 o r; t0=$(date +%s%N)
    o=$($Ch install "$URL/$1/b2" 2>&1); r=$?
    t1=$(date +%s%N)
    check "HTTP $1: refused" test "$r" -ne 0
    expect_match "HTTP $1: clear message" "$o" "$2"
    expect_match "HTTP $1: logged" "$(cat "$LOG")" "error: install failed, nothing changed: .*$2"
    expect_eq "HTTP $1: current unchanged" "$(cur "$Sh")" "$before"
    expect_eq "HTTP $1: still runs version 1" "$(ver "$T_TMP/http.conf")" "demo v1"
    check "HTTP $1: nothing temporary left, no new bundle" sh -c "[ \$(ls -A '$Sh/bundles' | wc -l) -eq 1 ]"
    [ "$1" = slow ] && check "HTTP slow: gave up within the 1.5 s cap (+1 s)" test $(((t1 - t0) / 1000000)) -lt 2500
}
http_refused wrong "do not match the manifest"
http_refused trunc "GET $URL/trunc/b2/.*(transfer closed|bytes remaining|Partial)"
http_refused big "larger than [0-9]+ bytes"
http_refused slow "timed out after 1500 ms \(update.timeout_ms\)"
http_refused 404 "GET $URL/404/b2/handlers/.*HTTP 404|listed in the manifest but missing"
http_refused 500 "HTTP 500"
for d in bsyn bsynlua; do
    : > "$LOG"
    h=$("$SERFHAND" -c "$T_TMP/c.conf" verify --json "$PUB/$d" | sed -n 's/.*"manifest":"\([0-9a-f]*\)".*/\1/p')
    # the very command an update announcement starts (update.auto)
    out=$($Ch install --wait 300 --manifest-hash "$h" --expect-name demo "$URL/ok/$d" 2>&1); rc=$?
    expect_eq "HTTP $d (does not compile): refused, exit 3" "$rc" 3
    expect_match "HTTP $d: logged" "$(cat "$LOG")" "error: install failed, nothing changed: .*does not compile: (handlers/user/ping.lua:1|lua/app/v.lua:2)"
    expect_eq "HTTP $d: current unchanged" "$(cur "$Sh")" "$before"
    check "HTTP $d: nothing temporary left, no new bundle" sh -c "[ \$(ls -A '$Sh/bundles' | wc -l) -eq 1 ]"
done
out=$($Ch install "$URL/ok/nonexistent" 2>&1); rc=$?
expect_match "HTTP: a missing manifest is refused" "$out" "MANIFEST.json: missing"
expect_match "HTTP 404 on the manifest: the message names the URL and the status" "$out" \
    "$URL/ok/nonexistent: MANIFEST.json: missing \(GET $URL/ok/nonexistent/MANIFEST.json: HTTP 404\)"
check "HTTP 404 on the manifest: not called an unsigned bundle" sh -c "! printf '%s' \"\$1\" | grep -q 'not a signed bundle'" _ "$out"
expect_eq "HTTP 404 on the manifest: exit 1 (the source failed)" "$rc" 1
out=$($Ch install "$URL/m500/b2" 2>&1); rc=$?
expect_match "HTTP 500 on the manifest: the message names the URL and the status" "$out" \
    "$URL/m500/b2: MANIFEST.json: GET $URL/m500/b2/MANIFEST.json: HTTP 500"
expect_eq "HTTP 500 on the manifest: exit 1" "$rc" 1
out=$($Ch install --allow-source "http://127.0.0.1:1/b2" 2>&1); rc=$?
expect_match "a refused connection: the message names the URL and why" "$out" \
    "GET http://127.0.0.1:1/b2/MANIFEST.json: .*([Cc]onnect|refused)"
expect_eq "a refused connection: exit 1" "$rc" 1
cp -r "$PUB/b2" "$PUB/b2nosig" && rm "$PUB"/b2nosig/MANIFEST.json.*.minisig
out=$($Ch install "$URL/ok/b2nosig" 2>&1); rc=$?
expect_match "a signature the server does not serve: the refusal says what it answered" "$out" \
    "0 of 1 required .*refused; GET $URL/ok/b2nosig/MANIFEST.json\.[0-9A-F-]+\.minisig: HTTP 404"
expect_eq "a signature the server does not serve: exit 3 (unsigned)" "$rc" 3
out=$($Ch install --manifest-hash 0000000000000000000000000000000000000000000000000000000000000000 "$URL/ok/b2" 2>&1)
expect_match "HTTP: a manifest other than the announced one is refused" "$out" "the announcement named 0000000000000000"
expect_eq "HTTP: after all refusals, version 1 still runs" "$(ver "$T_TMP/http.conf")" "demo v1"
# --- download caps before any signature check ------------------------------
out=$($Ch install "$URL/mbig/b2" 2>&1); rc=$?
expect_match "an oversized manifest stops at the cap" "$out" \
    "GET $URL/mbig/b2/MANIFEST.json: response larger than 262144 bytes \(the cap read before any signature check\)"
expect_eq "an oversized manifest: exit 1, nothing installed" "$rc:$(ver "$T_TMP/http.conf")" "1:demo v1"
out=$($Ch install "$URL/sbig/b2" 2>&1); rc=$?
expect_match "an oversized signature file stops at the cap" "$out" \
    "GET $URL/sbig/b2/MANIFEST.json[^ ]*minisig: response larger than 10752 bytes"
expect_eq "an oversized signature file: exit 1, nothing installed" "$rc:$(ver "$T_TMP/http.conf")" "1:demo v1"
out=$($Ch install "$URL/ok/b2/" 2>&1); rc=$?
expect_eq "HTTP: then the good server installs version 2" "$(ver "$T_TMP/http.conf")" "demo v2"

# --- a manual install URL and update.sources -------------------------------------
# The operator's URL is checked as an announced one is: outside update.sources
# it needs --allow-source, plain http needs update.allow_http; a refusal
# fetches nothing.
gets() { grep -c "GET /ok/$1/" "$T_TMP/server.log"; } # requests the server saw
Ss=$T_TMP/state-manual
SOURCES="\"$URL/ok/b1\"" conf manual "$Ss"
Cs="$SERFHAND -c $T_TMP/manual.conf"
$Cs install "$PUB/b1" > /dev/null 2>&1
cp -r "$PUB/b2" "$PUB/bsrc"
: > "$LOG"
out=$($Cs install "$URL/ok/bsrc" 2>&1); rc=$?
expect_eq "install URL outside update.sources: refused, exit 2" "$rc" 2
expect_match "and the message names the setting and the flag" "$out" \
    "refused: $URL/ok/bsrc is under no prefix of update.sources \(1 allowed\); add its prefix to update.sources, or pass --allow-source"
expect_eq "and nothing was fetched" "$(gets bsrc)" 0
expect_match "and the refusal is logged" "$(cat "$LOG")" "error: install refused, nothing fetched: .*update.sources"
expect_eq "and version 1 still runs" "$(ver "$T_TMP/manual.conf")" "demo v1"
out=$($Cs install "$URL/ok/b1/../bsrc" 2>&1); rc=$?
expect_eq "a dot segment out of the allowed prefix: refused, exit 2" "$rc" 2
expect_match "and says why" "$out" "dot segment.*so it is under no prefix of update.sources"
expect_eq "and nothing was fetched" "$(gets b1/..)$(gets bsrc)" 00
: > "$LOG"
out=$($Cs install --allow-source "$URL/ok/bsrc" 2>&1); rc=$?
expect_eq "--allow-source: the operator's consent installs from it" "$rc" 0
expect_eq "--allow-source: version 2 runs" "$(ver "$T_TMP/manual.conf")" "demo v2"
expect_match "--allow-source: the log says the URL was outside update.sources" "$(cat "$LOG")" \
    "warn: install: $URL/ok/bsrc is outside update.sources \(--allow-source\)"
n=$(gets bsrc)
cat > "$T_TMP/manual-nohttp.conf" <<CONF
state_dir = "$T_TMP/state-manual-nohttp"
trust = { keys = { "$T_TMP/k.pub" } }
log = { target = "$LOG" }
CONF
for flag in "" --allow-source; do
    out=$("$SERFHAND" -c "$T_TMP/manual-nohttp.conf" install $flag "$URL/ok/bsrc" 2>&1); rc=$?
    expect_eq "plain http without update.allow_http${flag:+ ($flag)}: refused, exit 2" "$rc" 2
    expect_match "plain http${flag:+ ($flag)}: the message names update.allow_http" "$out" \
        "$URL/ok/bsrc is plain http \(no transport security\): refused unless update.allow_http = true"
done
out=$("$SERFHAND" -c "$T_TMP/manual-nohttp.conf" install "HTTP://127.0.0.1:$PORT/ok/bsrc" 2>&1); rc=$?
expect_eq "plain http in capitals: refused too" "$rc:$(gets bsrc)" "2:$n"
out=$("$SERFHAND" -c "$T_TMP/manual-nohttp.conf" install https://127.0.0.1:1/b 2>&1); rc=$?
expect_eq "https with update.sources empty (the default): refused, exit 2" "$rc" 2
expect_match "and says no prefix is allowed" "$out" "under no prefix of update.sources \(0 allowed\)"
expect_eq "plain http refused: nothing was fetched" "$(gets bsrc)" "$n"
check "the refusals made no state" test ! -e "$T_TMP/state-manual-nohttp/current"

# --- announcements (serfhand-update handled by the host) -------------------------
# ann CONF [announce args...]: a signed pointer, printed instead of sent.
ann() { local c=$1; shift; "$SERFHAND" -c "$c" announce --print "$@"; }
# deliver CONF PAYLOAD: run the handler as Serf does for user event serfhand-update.
deliver() {
    : > "$LOG"
    printf '%s\n' "$2" | env -i PATH="$PATH" "${SAN_ENV[@]}" SERF_EVENT=user SERF_USER_EVENT=serfhand-update \
        SERF_USER_LTIME=5 SERF_SELF_NAME=n1 SERF_SELF_ROLE= "$SERFHAND" -c "$1" handle > "$T_TMP/ho" 2>&1
    RC=$?
}
Sa=$T_TMP/state-auto
"$SERFHAND" -c "$T_TMP/auto.conf" install "$PUB/b1" > /dev/null 2>&1
p2=$(ann "$T_TMP/c.conf" -s "$T_TMP/k.sec" --url "$URL/ok/b2" "$PUB/b2")
expect_match "announce --print gives base64url.json" "$p2" '^[A-Za-z0-9_-]{182}\.\{"n":"demo","v":2,"h":"[0-9a-f]{64}","u":"http://127.0.0.1:18210/ok/b2","e":[0-9]+\}$'
check "the pointer fits the measured Serf budget" test ${#p2} -le 456
long=$(printf 'x%.0s' $(seq 1 200))
out=$(ann "$T_TMP/c.conf" -s "$T_TMP/k.sec" --url "$URL/$long" "$PUB/b2" 2>&1); rc=$?
expect_eq "a pointer over the size budget is refused" "$rc" 1
expect_match "and says by how much" "$out" "over the 456 bytes that fit Serf's 512-byte user event limit"
out=$(ann "$T_TMP/c.conf" -s "$T_TMP/u.sec" --url "$URL/ok/b2" "$PUB/b2" 2>&1); rc=$?
expect_eq "announce refuses a key that is not trusted" "$rc" 3
out=$(ann "$T_TMP/c.conf" -s "$T_TMP/k.sec" --url "$URL/ok/bbad" "$PUB/bbad" 2>&1); rc=$?
expect_eq "announce refuses a bundle that does not verify" "$rc" 3
out=$(ann "$T_TMP/c.conf" -s "$T_TMP/k.sec" --url "$URL/ok/bsyn" "$PUB/bsyn" 2>&1); rc=$?
expect_eq "announce refuses a bundle that does not compile" "$rc" 3
expect_match "and names file and line" "$out" "handlers/user/ping.lua:1:"

Sn=$T_TMP/state   # c.conf: update.auto off; it runs version 2 now
$C install "$PUB/b3" > /dev/null 2>&1; $C install "$PUB/b4" > /dev/null 2>&1 # back at 4
p5() { ann "$T_TMP/c.conf" -s "$T_TMP/k.sec" "$@"; }
deliver "$T_TMP/c.conf" "$(p5 --url "$URL/ok/b4" "$PUB/b4")"
expect_eq "replay of the current version: exit 0" "$RC" 0
expect_match "replay of the current version: a logged no-op" "$(cat "$LOG")" "already at this version, nothing to do"
check "the handler wrote nothing to stdout or stderr" test ! -s "$T_TMP/ho"
deliver "$T_TMP/c.conf" "$(p5 --url "$URL/ok/b2" "$PUB/b2")"
expect_eq "older version announced: refused" "$RC" 3
expect_match "older version: logged" "$(cat "$LOG")" "version 2 of bundle demo is below this node's version 4"
pe=$(p5 --ttl 1s --url "$URL/ok/b2" "$PUB/b2")
sleep 1.2
deliver "$T_TMP/auto.conf" "$pe"
expect_eq "expired announcement: refused" "$RC" 3
expect_match "expired announcement: logged" "$(cat "$LOG")" "refused: bundle demo version 2, announcement expired at"
deliver "$T_TMP/auto.conf" "$(ann "$T_TMP/u.conf" -s "$T_TMP/u.sec" --url "$URL/ok/buntr" "$PUB/buntr")"
expect_eq "announcement signed by an untrusted key: refused" "$RC" 3
expect_match "untrusted key: logged" "$(cat "$LOG")" "signed by key [0-9A-F]{16}, which is not in trust.keys"
deliver "$T_TMP/auto.conf" "$(p5 --url "$URL/ok/bother" "$PUB/bother")"
expect_eq "announcement for another bundle name: refused" "$RC" 3
expect_match "other name: logged" "$(cat "$LOG")" "it is for bundle other, this node runs bundle demo"
good=$(p5 --url "$URL/ok/b2" "$PUB/b2")
deliver "$T_TMP/auto.conf" "$(printf '%s' "$good" | sed 's/"v":2/"v":3/')"
expect_eq "a pointer changed after signing: refused" "$RC" 3
expect_match "changed pointer: logged" "$(cat "$LOG")" "signature by key .*verification failed"
deliver "$T_TMP/auto.conf" "garbage"
expect_eq "garbage: refused" "$RC" 3
expect_eq "after all refused announcements the auto node still runs version 1" "$(ver "$T_TMP/auto.conf")" "demo v1"
deliver "$T_TMP/auto.conf" "$good"
expect_eq "a valid announcement: exit 0" "$RC" 0
expect_match "update.auto on: a detached install is started" "$(cat "$LOG")" "detached install from $URL/ok/b2 started"
# answers CONF WANT: query ver, run as Serf runs it with CONF, answers WANT
answers() {
    [ "$(env -i PATH="$PATH" "${SAN_ENV[@]}" SERF_EVENT=query SERF_QUERY_NAME=ver SERF_QUERY_LTIME=1 \
        SERF_SELF_NAME=n1 SERF_SELF_ROLE= "$SERFHAND" -c "$1" handle < /dev/null 2> /dev/null)" = "$2" ]
}
check "the detached install switches the node to version 2" wait_for 10 answers "$T_TMP/auto.conf" 'demo v2'
check "the detached install logged its success" wait_for 5 grep -q "install: installed bundle demo version 2" "$LOG"
# --- update.sources ---------------------------------------------------------
conf src "$T_TMP/state-src" "auto = true"
"$SERFHAND" -c "$T_TMP/src.conf" install "$PUB/b1" > /dev/null 2>&1
deliver "$T_TMP/src.conf" "$(p5 --url "$URL/big/b2" "$PUB/b2")"
expect_eq "a pointer to a source not in update.sources: refused" "$RC" 3
expect_match "and logged naming update.sources" "$(cat "$LOG")" \
    "dropped: $URL/big/b2 is under no prefix of update.sources"
deliver "$T_TMP/src.conf" "$(p5 --url "$URL/ok/../big/b2" "$PUB/b2")"
expect_eq "a dot segment does not escape the prefix" "$RC" 3
expect_match "dot segment: logged" "$(cat "$LOG")" "dot segment.*under no prefix of update.sources"
cat > "$T_TMP/nohttp.conf" <<CONF
state_dir = "$T_TMP/state-src"
trust = { keys = { "$T_TMP/k.pub" } }
log = { target = "$LOG", level = "debug" }
update = { auto = true, sources = { "https://127.0.0.1:$PORT/ok/" } }
CONF
deliver "$T_TMP/nohttp.conf" "$good"
expect_eq "plain http without update.allow_http: refused" "$RC" 3
expect_match "plain http: logged" "$(cat "$LOG")" "is not https .*update.allow_http"
sed -i 's|"https://|"http://|' "$T_TMP/nohttp.conf"
out=$("$SERFHAND" -c "$T_TMP/nohttp.conf" config 2>&1); rc=$?
expect_eq "an http:// prefix without update.allow_http is a config error" "$rc" 2
expect_match "and says how to allow it" "$out" 'update.sources\[1\] "http://127.0.0.1:[0-9]+/ok/" is plain http: set update.allow_http = true'
sleep 0.3
expect_eq "after refused sources the node still runs version 1" "$(ver "$T_TMP/src.conf")" "demo v1"

# --- one pending installer per node ---------------------------------------
# Another install holds the lock, so the first announced installer waits;
# a second announcement meanwhile is dropped, not queued.
flock "$T_TMP/state-src/install.lock" sleep 3 &
hold=$!
sleep 0.3
deliver "$T_TMP/src.conf" "$good"
expect_match "first announcement: a detached install is started" "$(cat "$LOG")" "detached install from $URL/ok/b2 started"
check "it waits for the lock" wait_for 5 grep -q "install: waiting for another install to finish" "$LOG"
deliver "$T_TMP/src.conf" "$good"
expect_eq "a second announcement while one waits: exit 0" "$RC" 0
expect_match "a second pending installer is refused, logged" "$(cat "$LOG")" \
    "dropped: .*update.pending: held by an installer started by an earlier announcement \(at most one pending installer per node\)"
check "and no second installer was started" sh -c "! grep -q 'detached install from' '$LOG'"
wait "$hold"
check "the first installer then switches to version 2" wait_for 10 answers "$T_TMP/src.conf" 'demo v2'
check "and releases update.pending" wait_for 5 flock -n "$T_TMP/state-src/update.pending" true

conf off "$T_TMP/state-off"
"$SERFHAND" -c "$T_TMP/off.conf" install "$PUB/b1" > /dev/null 2>&1
deliver "$T_TMP/off.conf" "$good"
expect_eq "update.auto = false: exit 0" "$RC" 0
expect_match "update.auto = false: only logged" "$(cat "$LOG")" "update.auto is off, so nothing is installed"
sleep 0.5
expect_eq "update.auto = false: still version 1" "$(ver "$T_TMP/off.conf")" "demo v1"

finish
