# json: every command that reports something has --json (issue 18, item 5):
# one line of JSON with a fixed key order, machine-readable fields (codes,
# integers, unix seconds) next to the prose; human output prints dates as
# UTC ISO 8601 with a relative time; `serfhand config` prints nested tables
# in the file's own syntax (its output is a valid configuration file).
. "$(dirname "$0")/../lib.sh"
. "$TOP/tests/forge.sh"

command -v jq > /dev/null || { echo "jq not installed"; echo "0 passed, 1 failed"; exit 1; }
cat > "$T_TMP/c.conf" <<CONF
state_dir = "$T_TMP/state"
trust = { keys = { "$T_TMP/k.pub" } }
log = { target = "$T_TMP/log" }
factomd = { tls = { pin = "sha256//AAAA" }, password = "hunter2" }
CONF
S() { "$SERFHAND" -c "$T_TMP/c.conf" "$@"; }
keys() { printf '%s' "$1" | jq -c "${2:-.} | keys_unsorted"; }
ISO='20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-5][0-9]Z'

# --- keygen ------------------------------------------------------------------------------
out=$("$SERFHAND" keygen -W -p "$T_TMP/k.pub" -s "$T_TMP/k.sec" --json); rc=$?
expect_eq "keygen --json: exit 0" "$rc" 0
expect_eq "keygen --json: keys" "$(keys "$out")" \
    '["key_id","public_key","public_key_file","secret_key_file","encrypted"]'
expect_eq "keygen --json: the public key is the file's" "$(printf '%s' "$out" | jq -r .public_key)" \
    "$(tail -n 1 "$T_TMP/k.pub")"
expect_eq "keygen --json: not encrypted" "$(printf '%s' "$out" | jq .encrypted)" false
"$SERFHAND" keygen -W -p "$T_TMP/u.pub" -s "$T_TMP/u.sec" > /dev/null

# --- sign ----------------------------------------------------------------------------------
B=$T_TMP/b
mkdir -p "$B/handlers/query"
echo 'return function(ev) return "hi" end' > "$B/handlers/query/hi.lua"
out=$(S sign -s "$T_TMP/k.sec" --name demo --version 3 --expires 30d "$B"); rc=$?
expect_eq "sign: exit 0" "$rc" 0
expect_match "sign: the expiry as ISO 8601 and relative" "$out" "expires $ISO, in 30 days"
out=$(S sign -s "$T_TMP/k.sec" --json --version 4 "$B"); rc=$?
expect_eq "sign --json: exit 0" "$rc" 0
expect_eq "sign --json: one line" "$(printf '%s\n' "$out" | wc -l)" 1
expect_eq "sign --json: keys" "$(keys "$out")" \
    '["bundle","version","manifest","key","signature","new_manifest","removed_signatures","files","created","expires"]'
expect_eq "sign --json: values" "$(printf '%s' "$out" | jq -c '[.bundle, .version, .new_manifest, .removed_signatures, .files, .expires - .created]')" \
    '["demo",4,true,1,1,15552000]'
expect_match "sign --json: the manifest hash" "$(printf '%s' "$out" | jq -r .manifest)" '^[0-9a-f]{64}$'
out=$(S sign -s "$T_TMP/k.sec" --json "$B"); rc=$?
expect_eq "sign --json, a later signer: no new manifest" "$(printf '%s' "$out" | jq -c '[.new_manifest, .version]')" '[false,4]'

# --- verify and check: codes next to the prose ------------------------------------------
out=$(S verify "$B"); rc=$?
expect_eq "verify: exit 0" "$rc" 0
expect_match "verify: created as ISO 8601, relative" "$out" "created     $ISO, (now|[0-9]+s ago)"
expect_match "verify: expires as ISO 8601, relative" "$out" "expires     $ISO, in 1(79|80) days"
out=$(S verify --json "$B"); rc=$?
expect_eq "verify --json: keys" "$(keys "$out")" \
    '["bundle","version","manifest","ok","threshold","valid_keys","created","expires","files","signatures","failed","problems"]'
expect_eq "verify --json: ok, no codes" "$(printf '%s' "$out" | jq -c '[.ok, .version, .failed]')" '[true,4,[]]'
cp -r "$B" "$T_TMP/bad"
echo '-- changed' >> "$T_TMP/bad/handlers/query/hi.lua"
out=$(S verify --json "$T_TMP/bad"); rc=$?
expect_eq "verify --json of a tampered bundle: exit 3" "$rc" 3
expect_eq "the failed check by code" "$(printf '%s' "$out" | jq -c .failed)" '["files"]'
if command -v minisign > /dev/null; then
    cp -r "$B" "$T_TMP/syntax"
    echo 'return (' > "$T_TMP/syntax/handlers/query/hi.lua"
    forge_sign "$T_TMP/syntax" "$T_TMP/k.sec"
    out=$(S verify --json "$T_TMP/syntax"); rc=$?
    expect_eq "signed but does not compile: exit 3" "$rc" 3
    expect_eq "code compile" "$(printf '%s' "$out" | jq -c .failed)" '["compile"]'
    expect_match "and the prose names file and line" "$(printf '%s' "$out" | jq -r '.problems[0]')" "^handlers/query/hi.lua:[0-9]+: "
else
    fail "minisign missing: the compile code is not tested"
fi
out=$(S verify --json "$T_TMP/nonexistent"); rc=$?
expect_eq "verify --json, no such directory" "$(printf '%s' "$out" | jq -c '[.ok, .failed]')" '[false,["bundle"]]'
rm "$B"/MANIFEST.json.*.minisig
cp -r "$B" "$T_TMP/unsigned"
S sign -s "$T_TMP/k.sec" "$B" > /dev/null
out=$(S verify --json "$T_TMP/unsigned"); rc=$?
expect_eq "no signature: code signatures" "$(printf '%s' "$out" | jq -c '.failed')" '["signatures"]'
S sign -s "$T_TMP/k.sec" --version 5 --expires 1s "$T_TMP/unsigned" > /dev/null
sleep 1.1
out=$(S verify --json "$T_TMP/unsigned"); rc=$?
expect_eq "expired: code expired" "$(printf '%s' "$out" | jq -c '.failed')" '["expired"]'
out=$(S verify "$T_TMP/unsigned"); rc=$?
expect_match "expired: the problem says when, as a date" "$out" "manifest expired at $ISO, (now|[0-9]+s ago)"

# --- install, check, rollback ------------------------------------------------------------
out=$(S install --json "$B"); rc=$?
expect_eq "install --json: exit 0" "$rc" 0
expect_eq "install --json: keys" "$(keys "$out")" '["ok","result","message","active"]'
expect_eq "install --json: the active bundle" "$(printf '%s' "$out" | jq -c '[.ok, .result, .active.bundle, .active.version, .active.ok]')" \
    '[true,"installed","demo",4,true]'
out=$(S install --json "$T_TMP/bad"); rc=$?
expect_eq "install --json of a tampered bundle: exit 3" "$rc" 3
expect_eq "install --json: refused, in JSON" "$(printf '%s' "$out" | jq -c '[.ok, .result]')" '[false,"refused"]'
expect_match "install --json: the reason" "$(printf '%s' "$out" | jq -r .message)" "hi.lua"
out=$(S check --json); rc=$?
expect_eq "check --json: exit 0" "$rc" 0
expect_eq "check --json: codes and an integer version" "$(printf '%s' "$out" | jq -c '[.ok, .version, .failed]')" '[true,4,[]]'
cp -r "$B" "$T_TMP/b5" && S sign -s "$T_TMP/k.sec" --version 5 "$T_TMP/b5" > /dev/null
S install "$T_TMP/b5" > /dev/null
out=$(S rollback --json); rc=$?
expect_eq "rollback --json without consent: exit 2" "$rc" 2
expect_eq "rollback --json: an error, in JSON" "$(printf '%s' "$out" | jq -c '[.ok, .result]')" '[false,"error"]'
out=$(S rollback --json --allow-downgrade); rc=$?
expect_eq "rollback --json: exit 0" "$rc" 0
expect_eq "rollback --json: keys and result" "$(keys "$out"):$(printf '%s' "$out" | jq -r .result)" \
    '["ok","result","message"]:rolled back'
out=$(S check --json); rc=$?
expect_eq "check --json after the rollback" "$(printf '%s' "$out" | jq -c '[.ok, .version]')" '[true,4]'

# --- announce (--print: nothing is sent) ----------------------------------------------------
out=$(S announce -s "$T_TMP/k.sec" --url https://example.invalid/b --no-check --print --json "$B"); rc=$?
expect_eq "announce --print --json: exit 0" "$rc" 0
expect_eq "announce --json: keys" "$(keys "$out")" \
    '["sent","bundle","version","manifest","url","expires","key","payload_bytes","payload_max","payload"]'
expect_eq "announce --json: values" "$(printf '%s' "$out" | jq -c '[.sent, .bundle, .version, .url, (.payload | length) == .payload_bytes]')" \
    '[false,"demo",4,"https://example.invalid/b",true]'
out=$(S announce -s "$T_TMP/u.sec" --url https://example.invalid/b --no-check --json "$B" 2>&1); rc=$?
expect_eq "announce with an untrusted key: exit 3" "$rc" 3
printf 'log = { target = "%s/log" }\ntrust = { keys = { "%s/k.pub" } }\nserf = { rpc_addr = "127.0.0.1:7489", timeout_ms = 300 }\n' \
    "$T_TMP" "$T_TMP" > "$T_TMP/down.conf"
out=$("$SERFHAND" -c "$T_TMP/down.conf" announce -s "$T_TMP/k.sec" --url https://example.invalid/b --no-check "$B" 2>&1); rc=$?
expect_eq "announce with the agent down: exit 1 (as its help says)" "$rc" 1
expect_match "help announce lists it" "$(S help announce)" "the agent is down"

# --- config: nested keys in the file's syntax, --json ------------------------------------------
out=$(S config); rc=$?
expect_eq "config: exit 0" "$rc" 0
expect_match "a nested table in the file's syntax" "$out" '  tls = \{'
expect_match "its keys inside" "$out" '    pin = "sha256//AAAA",'
check "no dotted key in the output" sh -c '! printf "%s" "$1" | grep -qE "^ *[a-z_]+\.[a-z_.]+ ="' - "$out"
printf '%s\n' "$out" > "$T_TMP/again.conf"
again=$("$SERFHAND" -c "$T_TMP/again.conf" config); rc=$?
expect_eq "the output is a valid configuration file" "$rc" 0
expect_eq "that says the same" "$(printf '%s' "$again" | sed 1d | sed 's/ (default)$//')" \
    "$(printf '%s' "$out" | sed 1d | sed 's/ (default)$//')"
out=$(S config --json); rc=$?
expect_eq "config --json: exit 0" "$rc" 0
expect_eq "config --json: keys" "$(keys "$out")" '["file","settings","from_file"]'
expect_eq "config --json: nested" "$(printf '%s' "$out" | jq -c '.settings.factomd.tls')" '{"ca_file":"","pin":"sha256//AAAA"}'
expect_eq "config --json: a secret stays masked" "$(printf '%s' "$out" | jq -r '.settings.factomd.password')" '(set)'
check "config --json: the secret is nowhere" sh -c '! printf "%s" "$1" | grep -q hunter2' - "$out"
expect_eq "config --json: what the file sets" "$(printf '%s' "$out" | jq -c .from_file)" \
    '["state_dir","trust.keys","log.target","factomd.password","factomd.tls.pin"]'
expect_eq "config --json: integers are numbers" "$(printf '%s' "$out" | jq '.settings.limits.response_bytes')" 900
expect_eq "config --json: lists are arrays" "$(printf '%s' "$out" | jq -c '.settings.trust.keys')" "[\"$T_TMP/k.pub\"]"
expect_eq "config --json: the same twice" "$(S config --json)" "$out"

# --- exit codes in every command's help -----------------------------------------------------
for c in handle tick status query propose action run test check verify sign keygen install \
    announce rollback config; do
    h=$(S help "$c")
    expect_match "help $c lists its exit codes" "$h" "^exit codes:"
    expect_match "help $c: what 0 means" "$(printf '%s' "$h" | sed -n '/^exit codes:/,$p')" "^  0 "
    expect_match "help $c: what 2 means" "$(printf '%s' "$h" | sed -n '/^exit codes:/,$p')" "^  2 "
done
expect_match "help announce: 1 when the agent is down" "$(S help announce | sed -n '/^  1 /,/^  2 /p')" "the agent is down"
expect_match "serfhand --help lists the common exit codes" "$("$SERFHAND" --help)" "^  7 bad event"
finish
