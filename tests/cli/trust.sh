# trust: signed bundles through the real binary. keygen, sign (first and
# second signer), verify, check, serfhand-check, and every bad input of
# issue 3: each is refused with a clear error and the handler does not run.
. "$(dirname "$0")/../lib.sh"

W=$T_TMP
LOG=$W/log
STATE=$W/state
export SERFHAND_KDF=interactive # quick scrypt: honoured by serfhand-test-hooks only
unset SERFHAND_PASSWORD

# conf FILE KEYS... [threshold=N] [cap=N] [bundle=DIR]: a config trusting KEYS.
conf() {
    local f=$1 keys="" thr=1 cap=1048576 bundle=$W/b a; shift
    for a in "$@"; do
        case $a in
        threshold=*) thr=${a#threshold=} ;;
        cap=*) cap=${a#cap=} ;;
        bundle=*) bundle=${a#bundle=} ;;
        *) keys="$keys \"$a\"," ;;
        esac
    done
    cat > "$f" <<CONF
bundle = "$bundle"
state_dir = "$STATE"
trust = { keys = { $keys }, threshold = $thr }
limits = { file_bytes = $cap }
log = { target = "$LOG", level = "debug" }
CONF
}
pubstr() { sed -n 2p "$1"; }
q() { "$@" > /dev/null 2>&1; }
keyid() { sed -n 1p "$1" | awk '{print $NF}'; }

# query NAME [CONF]: run handle for query NAME like Serf; sets OUT, RC, LOGTXT.
query() {
    : > "$LOG"
    OUT=$(env -i PATH="$PATH" "${SAN_ENV[@]}" SERF_EVENT=query SERF_QUERY_NAME="$1" SERF_QUERY_LTIME=3 \
        SERF_SELF_NAME=n1 "$SERFHAND" -c "${2:-$W/conf}" handle < /dev/null 2>&1; echo "~$?")
    RC=${OUT##*~}
    OUT=${OUT%~*}
    LOGTXT=$(cat "$LOG")
}
# refused NAME WHY-REGEX [QUERY]: the query handler must not run and the log says why.
refused() {
    query "${3:-ping}"
    if [ "$RC" -ne 0 ] && [ -z "$OUT" ] && printf '%s' "$LOGTXT" | grep -qE -- "$2"; then
        ok "$1"
    else
        fail "$1" "rc=$RC out=[$OUT] log=[$LOGTXT]"
    fi
}
# vfail NAME WHY-REGEX: verify fails (exit 3: a node would refuse it) and says why.
vfail() {
    local out rc
    out=$("$SERFHAND" -c "$W/conf" verify "$W/b" 2>&1); rc=$?
    if [ "$rc" -eq 3 ] && printf '%s' "$out" | grep -qE -- "$2"; then ok "$1"; else fail "$1" "rc=$rc: $out"; fi
}

# --- keys -------------------------------------------------------------------
cd "$W" || exit 1
check "keygen -W" q "$SERFHAND" keygen -W -p k1.pub -s k1.sec
check "keygen second key" q "$SERFHAND" keygen -W -p k2.pub -s k2.sec
check "keygen untrusted key" q "$SERFHAND" keygen -W -p k3.pub -s k3.sec
OUT=$("$SERFHAND" keygen -W -p k1.pub -s k1.sec 2>&1); RC=$?
expect_eq "keygen refuses to overwrite" "$RC" 2
expect_match "keygen says -f" "$OUT" "use -f"
expect_eq "secret key mode 0600" "$(stat -c %a k1.sec)" 600
expect_match "public key is minisign format" "$(cat k1.pub)" "^untrusted comment: .*
RW[A-Za-z0-9+/]{54}$"
OUT=$(SERFHAND_PASSWORD=sesame "$SERFHAND-test-hooks" keygen -p kp.pub -s kp.sec 2>&1); RC=$?
expect_eq "keygen with password" "$RC" 0
expect_match "encrypted key prefix" "$(sed -n 2p kp.sec)" "^RWRTY0Iy"
# kdf_limits KEY.sec: the scrypt opslimit and memlimit the key file names
# (little-endian u64 at bytes 38 and 46 of its base64 line).
kdf_limits() { sed -n 2p "$1" | base64 -d | od -An -t u8 -j 38 -N 16 | tr -s ' ' | sed 's/^ //'; }
expect_eq "the test binary honours SERFHAND_KDF=interactive" "$(kdf_limits kp.sec)" "524288 16777216"
# The production binary ignores the test hook: minisign's sensitive limits
# (scrypt over 1 GiB, about a second), whatever the environment says.
OUT=$(SERFHAND_PASSWORD=sesame "$SERFHAND" keygen -p kk.pub -s kk.sec 2>&1); RC=$?
expect_eq "keygen with password (production binary)" "$RC" 0
expect_eq "the production binary ignores SERFHAND_KDF" "$(kdf_limits kk.sec)" "33554432 1073741824"
OUT=$("$SERFHAND" keygen -p kq.pub -s kq.sec < /dev/null 2>&1); RC=$?
expect_eq "keygen without terminal or SERFHAND_PASSWORD fails" "$RC" 2

# --- a good bundle ------------------------------------------------------------
mkdir -p src/handlers/query src/lua/lib
cat > src/handlers/query/ping.lua <<'LUA'
local m = require "lib.m"
return function(ev) return "RAN " .. m.word end
LUA
printf 'return { word = "pong" }\n' > src/lua/lib/m.lua
printf 'return function(ev) return "OTHER" end\n' > src/handlers/query/other.lua
cp -a src good
OUT=$("$SERFHAND" sign -s k1.sec --name demo --version 3 good 2>&1); RC=$?
expect_eq "sign exits 0" "$RC" 0
expect_match "sign says what it wrote" "$OUT" "wrote MANIFEST.json: bundle demo version 3, 3 files"
ID1=$(keyid k1.pub); ID2=$(keyid k2.pub); ID3=$(keyid k3.pub)
check "signature file named after the key id" test -f "good/MANIFEST.json.$ID1.minisig"
cp good/MANIFEST.json manifest.before
OUT=$("$SERFHAND" sign -s k2.sec good 2>&1); RC=$?
expect_eq "second signer exits 0" "$RC" 0
check "second signer leaves the manifest unchanged" cmp -s good/MANIFEST.json manifest.before
check "first signature kept" test -f "good/MANIFEST.json.$ID1.minisig"
check "second signature added" test -f "good/MANIFEST.json.$ID2.minisig"
OUT=$("$SERFHAND" sign -s k2.sec --expires 3d good 2>&1); RC=$?
expect_eq "second signer cannot change expiry" "$RC" 2

reset() { rm -rf "$W/b"; cp -a "$W/good" "$W/b"; }
reset
conf "$W/conf" "$(pubstr k1.pub)"
query ping
expect_eq "signed handler runs" "$OUT" "RAN pong"
expect_eq "signed handler exits 0" "$RC" 0
OUT=$("$SERFHAND" -c "$W/conf" verify "$W/b" 2>&1); RC=$?
expect_eq "verify ok exits 0" "$RC" 0
expect_match "verify reports the version" "$OUT" "name +demo version 3"
expect_match "verify lists the untrusted second signature" "$OUT" "$ID2 is not trusted"
OUT=$("$SERFHAND" -c "$W/conf" verify --json "$W/b"); RC=$?
expect_match "verify --json" "$OUT" '^\{"bundle":"demo","version":3,"manifest":"[0-9a-f]{64}","ok":true'
OUT=$("$SERFHAND" -c "$W/conf" check 2>&1); RC=$?
expect_eq "check ok exits 0" "$RC" 0
OUT=$("$SERFHAND" -c "$W/conf" check --json); RC=$?
expect_match "check --json ok" "$OUT" '"ok":true'
query serfhand-check
expect_match "serfhand-check answers ok" "$OUT" '^\{"bundle":"demo","version":3,"manifest":"[0-9a-f]{64}","ok":true,"problems":\[\]\}$'
conf "$W/conf2" "$(pubstr k1.pub)" "$(pubstr k2.pub)" threshold=2
query ping "$W/conf2"
expect_eq "threshold 2 with two keys runs" "$OUT" "RAN pong"
printf '%s\n' "$(pubstr k1.pub)" > k1.only
conf "$W/conf3" "$W/k1.pub"
query ping "$W/conf3"
expect_eq "trust.keys may name a .pub file" "$OUT" "RAN pong"

# --- second signer on changed files -------------------------------------------
cp -a good changed
printf -- '-- edit\n' >> changed/lua/lib/m.lua
OUT=$("$SERFHAND" sign -s k2.sec changed 2>&1); RC=$?
expect_eq "sign on changed files fails" "$RC" 1
expect_match "sign says the manifest no longer matches" "$OUT" "no longer matches the files"
expect_match "sign names the changed file" "$OUT" "lua/lib/m.lua: changed"
check "changed: manifest untouched" cmp -s changed/MANIFEST.json manifest.before
OUT=$("$SERFHAND" sign -s k2.sec --version 2 changed 2>&1); RC=$?
expect_eq "new manifest must raise the version" "$RC" 2
OUT=$("$SERFHAND" sign -s k2.sec --version 4 changed 2>&1); RC=$?
expect_eq "new version signs" "$RC" 0
check "old signatures removed" test ! -e "changed/MANIFEST.json.$ID1.minisig"

# --- the bundle name (issue 13, item 10) --------------------------------------
# It is the bundle's identity (nodes refuse an announcement for another name),
# so it is never guessed from the directory and never silently changed.
rm -rf counter-v1; cp -a src counter-v1
OUT=$("$SERFHAND" sign -s k1.sec --version 1 counter-v1 2>&1); RC=$?
expect_eq "a new manifest without --name: exit 2" "$RC" 2
expect_match "and asks for --name" "$OUT" "counter-v1 has no valid MANIFEST.json: a new manifest needs the bundle's name, --name NAME"
check "nothing written without --name" test -z "$(ls counter-v1 | grep MANIFEST)"
OUT=$("$SERFHAND" sign -s k1.sec counter-v1 2>&1); RC=$?
expect_eq "nor without --version" "$RC" 2
OUT=$("$SERFHAND" sign -s k1.sec --name 'two words' counter-v1 2>&1); RC=$?
expect_eq "an invalid --name: exit 2" "$RC" 2
expect_match "says what a name may be" "$OUT" "--name must match"
OUT=$("$SERFHAND" sign -s k1.sec --name counter counter-v1 2>&1); RC=$?
expect_eq "--name on a new manifest signs" "$RC" 0
expect_match "under that name" "$OUT" "bundle counter version 1"
cp counter-v1/MANIFEST.json counter.before
OUT=$("$SERFHAND" sign -s k2.sec --name other counter-v1 2>&1); RC=$?
expect_eq "a later signer with another --name: exit 2" "$RC" 2
expect_match "says which name the manifest has" "$OUT" "MANIFEST.json names bundle counter, not other"
OUT=$("$SERFHAND" sign -s k1.sec --name other --version 2 counter-v1 2>&1); RC=$?
expect_eq "a new version with another --name: exit 2" "$RC" 2
check "the manifest is unchanged by both" cmp -s counter-v1/MANIFEST.json counter.before
check "and no second signature was added" test ! -e "counter-v1/MANIFEST.json.$ID2.minisig"
OUT=$("$SERFHAND" sign -s k2.sec --name counter counter-v1 2>&1); RC=$?
expect_eq "a later signer may repeat the manifest's --name" "$RC" 0
check "the manifest is still unchanged" cmp -s counter-v1/MANIFEST.json counter.before
OUT=$("$SERFHAND" sign -s k1.sec --version 2 counter-v1 2>&1); RC=$?
expect_eq "a new version without --name: exit 0" "$RC" 0
expect_match "keeps the manifest's name" "$OUT" "bundle counter version 2"

# --- one byte changed ---------------------------------------------------------
flip() { # FILE OFFSET: change one byte (to x, or y if it was x)
    python3 - "$1" "$2" <<'PY'
import sys
p, off = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, 'rb').read())
b[off] = ord('y') if b[off] == ord('x') else ord('x')
open(p, 'wb').write(bytes(b))
PY
}
reset; flip b/MANIFEST.json 60
refused "manifest byte changed: refused" "signatures: 0 of 1"
vfail "manifest byte changed: verify fails" "signature verification failed"
reset; flip b/handlers/query/ping.lua 10
refused "handler byte changed: refused" "handlers/query/ping.lua: BLAKE2b-256 hash does not match"
vfail "handler byte changed: verify fails" "ping.lua: BLAKE2b-256 hash does not match"
reset; flip b/lua/lib/m.lua 12
refused "module byte changed: refused" "lua/lib/m.lua: BLAKE2b-256 hash does not match"
reset; flip "b/MANIFEST.json.$ID1.minisig" 80
refused "signature line byte changed: refused" "signatures: 0 of 1.*(signature|base64)"
reset; sed -i 's/^trusted comment: timestamp:/trusted comment: timestamp:1/' "b/MANIFEST.json.$ID1.minisig"
refused "trusted comment changed: refused" "trusted comment signature verification failed"
vfail "trusted comment changed: verify fails" "trusted comment signature verification failed"
reset; sed -i '1s/.*/untrusted comment: edited/' "b/MANIFEST.json.$ID1.minisig"
query ping
expect_eq "untrusted comment is not signed (still runs)" "$OUT" "RAN pong"

# --- files ----------------------------------------------------------------------
reset; printf 'return function() return "EVIL" end\n' > b/handlers/query/extra.lua
refused "unlisted handler: refused" "handlers/query/extra.lua: not listed in the signed manifest" extra
vfail "unlisted file: verify fails" "handlers/query/extra.lua: not listed in the manifest"
OUT=$("$SERFHAND" -c "$W/conf" check 2>&1); RC=$?
expect_eq "unlisted file: check fails (refused, 3)" "$RC" 3
reset; rm b/lua/lib/m.lua
refused "missing listed module: refused" "lua/lib/m.lua: listed in the manifest but missing"
vfail "missing listed file: verify fails" "lua/lib/m.lua: listed in the manifest but missing"
reset; rm b/handlers/query/other.lua
refused "missing listed handler: refused" "other.lua: listed in the manifest but missing" other
reset; cp b/lua/lib/m.lua "$W/outside.lua"; rm b/lua/lib/m.lua; ln -s "$W/outside.lua" b/lua/lib/m.lua
refused "symlink out of the bundle (same bytes): refused" "symlink leads out of the bundle"
vfail "symlink out of the bundle: verify fails" "symlink leads out of the bundle"
OUT=$("$SERFHAND" sign -s k1.sec --version 9 b 2>&1); RC=$?
expect_eq "sign refuses a symlink out of the bundle" "$RC" 1
reset; ln -s m.lua b/lua/lib/n.lua
vfail "symlink inside the bundle must still be listed" "lua/lib/n.lua: not listed"
reset; head -c 3000 /dev/zero | tr '\0' '-' >> b/lua/lib/m.lua
"$SERFHAND" sign -s k1.sec --version 4 b > /dev/null 2>&1
conf "$W/conf" "$(pubstr k1.pub)" cap=1024
refused "file over limits.file_bytes: refused" "over the limit of 1024"
vfail "file over cap: verify fails" "over the limit of 1024"
conf "$W/conf" "$(pubstr k1.pub)"

# --- hand-made manifests, signed with the real minisign -----------------------
# They carry version 3; forget the versions the cases above were run with.
rm -rf "$STATE"
msign() { # DIR KEY [-l]: sign DIR/MANIFEST.json with minisign under the serfhand name
    minisign -S ${3:-} -s "$2" -m "$1/MANIFEST.json" -x "$1/MANIFEST.json.$(keyid "${2%.sec}.pub").minisig" \
        -t "hand-made" > /dev/null 2>&1 < /dev/null
}
H0=$(python3 -c "import hashlib;print(hashlib.blake2b(open('$W/good/lua/lib/m.lua','rb').read(),digest_size=32).hexdigest())")
S0=$(stat -c %s good/lua/lib/m.lua)
handmade() { # FILES-JSON
    reset; rm -f b/MANIFEST.json.*.minisig
    printf '{"format":1,"bundle":"demo","version":3,"created":1,"expires":4102444800,"files":{%s}}\n' "$1" > b/MANIFEST.json
    msign b k1.sec
}
handmade '"lua/../lua/lib/m.lua":{"size":'"$S0"',"blake2b":"'"$H0"'"}'
refused "'..' in a manifest path: refused" 'invalid path "lua/\.\./lua/lib/m.lua"'
handmade '"/etc/passwd":{"size":1,"blake2b":"'"$H0"'"}'
refused "absolute path in the manifest: refused" 'invalid path "/etc/passwd"'
reset; rm -f b/MANIFEST.json.*.minisig
sed 's/"version": 3,/"version": 3, "version": 30,/' good/MANIFEST.json > b/MANIFEST.json
msign b k1.sec
refused "duplicate JSON key: refused" 'duplicate key "version"'
vfail "duplicate JSON key: verify fails" 'duplicate key "version"'
reset; rm -f b/MANIFEST.json.*.minisig; msign b k1.sec -l
refused "legacy signature: refused" "legacy"
vfail "legacy signature: verify fails" "legacy"
reset; rm -f b/MANIFEST.json.*.minisig; msign b k1.sec
query ping
expect_eq "manifest signed by the real minisign runs" "$OUT" "RAN pong"

# --- keys and threshold -------------------------------------------------------
rm -rf b; cp -a src b; "$SERFHAND" sign -s k3.sec --name demo b > /dev/null 2>&1
refused "untrusted key only: refused" "signatures: 0 of 1"
vfail "untrusted key: verify fails" "$ID3 is not trusted"
reset; conf "$W/conf" "$(pubstr k1.pub)" "$(pubstr k2.pub)" threshold=2
rm -f "b/MANIFEST.json.$ID2.minisig"
refused "threshold 2 with one valid signature: refused" "signatures: 1 of 2"
# one key, two key ids: same Ed25519 key, new random id, checksum redone
python3 - "$W/k1.sec" "$W/k1.pub" "$W/k1b.sec" "$W/k1b.pub" <<'PY'
import sys, base64, hashlib
sec, pub, sec2, pub2 = sys.argv[1:]
raw = bytearray(base64.b64decode(open(sec).read().split('\n')[1]))
newid = bytes(b ^ 0x5a for b in raw[54:62]); raw[54:62] = newid
raw[126:158] = hashlib.blake2b(b'Ed' + bytes(raw[54:126]), digest_size=32).digest()
open(sec2, 'w').write('untrusted comment: same key, other id\n' + base64.b64encode(bytes(raw)).decode() + '\n')
p = bytearray(base64.b64decode(open(pub).read().split('\n')[1])); p[2:10] = newid
kid = int.from_bytes(newid, 'little')
open(pub2, 'w').write('untrusted comment: minisign public key %016X\n' % kid + base64.b64encode(bytes(p)).decode() + '\n')
PY
reset; rm -f "b/MANIFEST.json.$ID2.minisig"
check "sign with the same key under another id" q "$SERFHAND" sign -s k1b.sec b
# (k2 makes the threshold reachable: k1 and k1b alone are one key, which the
# configuration itself refuses, below)
conf "$W/conf" "$(pubstr k1.pub)" "$(pubstr k1b.pub)" "$(pubstr k2.pub)" threshold=2
refused "one key signing twice under two ids counts once" "signatures: 1 of 2"
vfail "one key twice: verify says counted once" "counted once"
conf "$W/conf" "$(pubstr k1.pub)" "$(pubstr k1b.pub)" threshold=2
OUT=$("$SERFHAND" -c "$W/conf" config 2>&1); RC=$?
expect_eq "one key under two ids cannot meet threshold 2: a config error" "$RC" 2
expect_match "and says so" "$OUT" "holds 1 distinct key \(entries 1 and 2 are the same key\)"
conf "$W/conf"
refused "no trusted keys configured: refused" "no trusted keys configured"
conf "$W/conf" "$(pubstr k1.pub)"

# --- signature files ----------------------------------------------------------
reset; head -c 150 "good/MANIFEST.json.$ID1.minisig" > "b/MANIFEST.json.$ID1.minisig"
refused "truncated signature file: refused" "line"
vfail "truncated signature file: verify fails" "MANIFEST.json.$ID1.minisig"
reset; head -c 20000 /dev/zero | tr '\0' 'a' >> "b/MANIFEST.json.$ID1.minisig"
refused "oversized signature file: refused" "larger than|over the limit"
reset; printf 'extra\n' >> "b/MANIFEST.json.$ID1.minisig"
refused "5-line signature file: refused" "more than 4 lines"

# --- expiry and version ---------------------------------------------------------
rm -rf b; cp -a src b
"$SERFHAND" sign -s k1.sec --name demo --version 6 --expires 4s b > /dev/null 2>&1
sleep 5
query ping
expect_eq "expired bundle still runs" "$OUT" "RAN pong"
expect_match "expired bundle logs a warning" "$LOGTXT" "warn.*expired"
OUT=$("$SERFHAND" -c "$W/conf" check 2>&1); RC=$?
expect_eq "check fails on an expired bundle (refused, 3)" "$RC" 3
expect_match "check says expired" "$OUT" "expired"
vfail "verify fails on an expired bundle" "expired"
# the runs above recorded version 6
"$SERFHAND" sign -s k1.sec --name demo --version 7 b > /dev/null 2>&1
query ping
expect_eq "version 7 runs" "$OUT" "RAN pong"
rm -rf b; cp -a src b; "$SERFHAND" sign -s k1.sec --name demo --version 5 b > /dev/null 2>&1
refused "version below the recorded one: refused" "version 5 is below the highest version this node accepted \(7\)"
cp "$STATE/bundle-version" "$W/version.saved"
printf 'seven\n' > "$STATE/bundle-version"
refused "a damaged version record: refused (fail closed)" "bundle-version: not a version number"
cp "$W/version.saved" "$STATE/bundle-version"
OUT=$("$SERFHAND" -c "$W/conf" check 2>&1); RC=$?
expect_match "check reports the recorded version" "$OUT" "below the highest version this node accepted \(7\)"
query serfhand-check
expect_match "serfhand-check answers even for a refused bundle" "$OUT" '"ok":false'
check "serfhand-check at most 900 bytes" test "${#OUT}" -le 900

# --- Lua syntax in check -----------------------------------------------------------
# `serfhand sign` refuses it (tests/cli/install.sh); minisign signs anything.
. "$TOP/tests/forge.sh"
rm -rf b; cp -a src b; "$SERFHAND" sign -s k1.sec --name demo --version 8 b > /dev/null 2>&1
printf 'return function( oops\n' > b/handlers/query/bad.lua
"$SERFHAND" sign -s k1.sec --version 9 b > /dev/null 2>&1
expect_eq "sign refuses a syntax error" "$?" 3
forge_sign b k1.sec
OUT=$("$SERFHAND" -c "$W/conf" check 2>&1); RC=$?
expect_eq "check fails on a syntax error (refused, 3)" "$RC" 3
expect_match "check names the file" "$OUT" "handlers/query/bad.lua:"
rm -rf b; cp -a src b; printf 'return 42\n' > b/handlers/query/bad.lua
printf 'error("top level failed")\n' > b/handlers/query/raises.lua
"$SERFHAND" sign -s k1.sec --name demo --version 8 b > /dev/null 2>&1
OUT=$("$SERFHAND" -c "$W/conf" check 2>&1); RC=$?
expect_eq "check fails on a handler that returns no function" "$RC" 1
expect_match "check says what the file returned" "$OUT" "handlers/query/bad.lua: returns a number, not a function"
expect_match "check reports a handler whose loading raises" "$OUT" "handlers/query/raises.lua: loading raised: handlers/query/raises.lua:1: top level failed"

# --- passwords ----------------------------------------------------------------------
rm -rf b; cp -a src b
OUT=$(SERFHAND_PASSWORD=wrong "$SERFHAND" sign -s kp.sec --name demo --version 9 b 2>&1); RC=$?
expect_eq "wrong password: sign fails" "$RC" 1
expect_match "wrong password: clear error" "$OUT" "wrong password"
check "wrong password: nothing written" test ! -e b/MANIFEST.json
OUT=$(SERFHAND_PASSWORD=sesame "$SERFHAND" sign -s kp.sec --name demo --version 9 b 2>&1); RC=$?
expect_eq "right password signs" "$RC" 0
conf "$W/conf" "$(pubstr kp.pub)"
query ping
expect_eq "bundle signed with an encrypted key runs" "$OUT" "RAN pong"

finish
