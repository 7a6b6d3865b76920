# minisign_interop: serfhand and the real `minisign` (Debian 0.11), both ways.
# Keys from `minisign -G` (with and without a password) sign bundles that
# serfhand accepts; `minisign -V` verifies every signature serfhand writes;
# serfhand's keys work in `minisign -S`; the known-answer vector verifies.
. "$(dirname "$0")/../lib.sh"

if ! command -v minisign > /dev/null; then
    fail "minisign installed" "apt-get install minisign"
    finish
    exit 1
fi
W=$T_TMP
cd "$W" || exit 1
unset SERFHAND_PASSWORD
export SERFHAND_KDF=interactive
q() { "$@" > /dev/null 2>&1; }
# the key id as serfhand names signature files: 16 hex digits (minisign prints
# it without leading zeros, and serfhand accepts files named that way too)
shortid() { sed -n 1p "$1" | awk '{print $NF}'; }
keyid() { printf '%16s' "$(shortid "$1")" | tr ' ' 0; }

mkdir -p src/handlers/query src/lua/lib
printf 'local m = require "lib.m"\nreturn function() return "RAN " .. m.w end\n' > src/handlers/query/ping.lua
printf 'return { w = "pong" }\n' > src/lua/lib/m.lua
conf() { # PUBKEY-FILE...
    local keys="" k
    for k in "$@"; do keys="$keys \"$(sed -n 2p "$k")\","; done
    printf 'bundle = "%s"\nstate_dir = "%s"\ntrust = { keys = { %s }, threshold = %d }\nlog = { target = "%s" }\n' \
        "$W/b" "$W/state" "$keys" "$#" "$W/log" > "$W/conf"
}
runs() { # NAME: the signed query handler runs
    local out
    out=$(env -i PATH="$PATH" "${SAN_ENV[@]}" SERF_EVENT=query SERF_QUERY_NAME=ping SERF_QUERY_LTIME=1 \
        "$SERFHAND" -c "$W/conf" handle < /dev/null 2>&1)
    expect_eq "$1" "$out" "RAN pong"
}
mverify() { # NAME PUB DIR: minisign -V (prehashed only, -H) on DIR's signature by PUB
    check "$1" q minisign -V -H -p "$2" -m "$3/MANIFEST.json" -x "$3/MANIFEST.json.$(keyid "$2").minisig"
}

# --- minisign keys sign, serfhand accepts ---------------------------------------
check "minisign -G -W" q minisign -G -W -p m1.pub -s m1.key
rm -rf b; cp -a src b
check "serfhand sign with a minisign -W key" q "$SERFHAND" sign -s m1.key --name demo b
conf m1.pub
runs "bundle signed with a minisign key runs"
check "serfhand verify accepts it" q "$SERFHAND" -c "$W/conf" verify b
mverify "minisign -V verifies serfhand's signature (minisign key)" m1.pub b

printf 'pw\npw\n' | q minisign -G -p m2.pub -s m2.key
check "minisign -G with a password" test -s m2.key
# (minisign -G uses scrypt at 1 GiB: one derivation each way keeps this quick;
# wrong passwords are tested with lighter keys in trust.sh)
check "serfhand sign with a password-protected minisign key" q env SERFHAND_PASSWORD=pw "$SERFHAND" sign -s m2.key b
conf m1.pub m2.pub
runs "bundle signed by two minisign keys runs (threshold 2)"
mverify "minisign -V verifies the second signature" m2.pub b

# the manifest signed by minisign itself
rm -f b/MANIFEST.json.*.minisig
check "minisign -S signs the manifest" q minisign -S -s m1.key -m b/MANIFEST.json -x "b/MANIFEST.json.$(keyid m1.pub).minisig"
conf m1.pub
runs "manifest signed by minisign -S runs"

# --- a key id with leading zeros ---------------------------------------------------
# minisign prints such an id short ("untrusted comment: minisign public key
# 7988734479A7892"); one key in 16 has one. Make keys until one does.
for _ in $(seq 200); do
    q minisign -G -W -f -p z.pub -s z.key
    [ "$(shortid z.pub)" != "$(keyid z.pub)" ] && break
done
check "a minisign key with a short key id" test "$(shortid z.pub)" != "$(keyid z.pub)"
rm -rf b; cp -a src b
check "serfhand sign with the short-id key" q "$SERFHAND" sign -s z.key --name demo b
check "serfhand names the file with 16 digits" test -s "b/MANIFEST.json.$(keyid z.pub).minisig"
mverify "minisign -V verifies it" z.pub b
conf z.pub
runs "bundle signed by the short-id key runs"
rm -f b/MANIFEST.json.*.minisig
check "minisign -S, file named from minisign's short id" \
    q minisign -S -s z.key -m b/MANIFEST.json -x "b/MANIFEST.json.$(shortid z.pub).minisig"
runs "a signature file named with the short id runs"
OUT=$("$SERFHAND" -c "$W/conf" verify b 2>&1)
expect_match "verify counts the short-named file" "$OUT" "MANIFEST.json.$(shortid z.pub).minisig: valid"
printf 'state_dir = "%s/state"\ntrust = { keys = { "%s" }, threshold = 1 }\nlog = { target = "%s" }\n' \
    "$W" "$(sed -n 2p z.pub)" "$W/log" > "$W/iconf"
check "install takes the short-named signature" q "$SERFHAND" -c "$W/iconf" install b
check "the installed copy names it with 16 digits" \
    test -s "$W/state/current/MANIFEST.json.$(keyid z.pub).minisig"
check "serfhand check passes on the installed copy" q "$SERFHAND" -c "$W/iconf" check
check "re-signing with the same key" q "$SERFHAND" sign -s z.key b
check "replaces the short-named file" test "$(ls b/MANIFEST.json.*.minisig)" = "b/MANIFEST.json.$(keyid z.pub).minisig"
# a file named for one key id that holds another key's signature is refused
cp "b/MANIFEST.json.$(keyid z.pub).minisig" "b/MANIFEST.json.$(shortid m1.pub)0.minisig"
OUT=$("$SERFHAND" -c "$W/conf" verify b 2>&1); RC=$?
expect_eq "verify: a signature under another key's name fails (exit 3)" "$RC" 3
expect_match "and names the mismatch" "$OUT" "not the one in its file name"
rm -f "b/MANIFEST.json.$(shortid m1.pub)0.minisig"

# --- serfhand keys work in minisign ------------------------------------------------
check "serfhand keygen -W" q "$SERFHAND" keygen -W -p s1.pub -s s1.key
printf 'hello\n' > f
check "minisign -S with a serfhand -W key" q minisign -S -s s1.key -m f
check "minisign -V with a serfhand public key" q minisign -V -H -p s1.pub -m f
# serfhand-test-hooks: SERFHAND_KDF=interactive (quick scrypt) is a test hook
check "serfhand keygen with a password" q env SERFHAND_PASSWORD=pw2 "$SERFHAND-test-hooks" keygen -p s2.pub -s s2.key
printf 'pw2\n' | q minisign -S -s s2.key -m f -x f.2.minisig
check "minisign -S with a password-protected serfhand key" q minisign -V -H -p s2.pub -m f -x f.2.minisig
printf 'nope\n' | q minisign -S -s s2.key -m f -x f.3.minisig
check "minisign refuses the wrong password for a serfhand key" test ! -s f.3.minisig

# every signature serfhand writes verifies with minisign -V
rm -rf b; cp -a src b
check "serfhand sign (serfhand key)" q "$SERFHAND" sign -s s1.key --name demo --version 2 b
check "second signer (encrypted serfhand key)" q env SERFHAND_PASSWORD=pw2 "$SERFHAND" sign -s s2.key b
mverify "minisign -V verifies serfhand sign (first signer)" s1.pub b
mverify "minisign -V verifies serfhand sign (second signer)" s2.pub b
OUT=$(minisign -V -p s1.pub -m b/MANIFEST.json -x "b/MANIFEST.json.$(keyid s1.pub).minisig" -Q)
expect_match "trusted comment names bundle and version" "$OUT" "bundle:demo	version:2"
conf s1.pub s2.pub
runs "serfhand-signed bundle runs"

# --- legacy signatures: minisign makes them, serfhand refuses them -------------------
rm -f b/MANIFEST.json.*.minisig
q minisign -S -l -s s1.key -m b/MANIFEST.json -x "b/MANIFEST.json.$(keyid s1.pub).minisig"
conf s1.pub
OUT=$("$SERFHAND" -c "$W/conf" verify b 2>&1); RC=$?
expect_eq "legacy minisign signature: verify fails (exit 3)" "$RC" 3
expect_match "legacy signature is named" "$OUT" "legacy"

# --- the known-answer vector (reference/lua-and-libs.md) --------------------------
printf 'print("hello")\n' > kat.lua
printf 'untrusted comment: minisign public key 9112CA6A284A421A\nRWQaQkooasoSkfEGvHICib7/UsrAsQTNt8eN6Fk075YwuL9vSmImZvz4\n' > kat.pub
cat > kat.lua.minisig <<'SIG'
untrusted comment: signature from minisign secret key
RUQaQkooasoSkeDzEg87lB29Iqj/fe78IxZjBYWpBvw0kf+ocawUwajCu2pSWuKNpWJLG+SV+t+wwrNAknDqi9zsFKuc3x0v/wk=
trusted comment: handler=member-join version=7
aQGkNYkxhxm+rL1qxENRG8QQkte2Lj6dPw714qi7ndSio04U5zCcMQJ8aAGSb1cdL2yIUw7HVECv5Ex0DuupDQ==
SIG
check "minisign -V -H verifies the known-answer vector" q minisign -V -H -p kat.pub -m kat.lua
# serfhand's side of the vector is in tests/unit/test_minisign.c (test_kat)
printf 'print("hellO")\n' > kat.lua
check "minisign rejects the tampered vector" test "$(minisign -V -p kat.pub -m kat.lua -x kat.lua.minisig > /dev/null 2>&1; echo $?)" = 1

finish
