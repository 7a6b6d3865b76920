# identity: serfhand.identity against real factomd.conf files: good keys (seed
# and 64-byte forms), every refusal (default key, missing file or private
# key, bad hex), what factomd accepts and so must we (no, a stale or a broken
# LocalServerPublicKey line: a warning; a BOM), the permission warning in the
# log, and signatures checked with serfhand.crypto and independently with
# openssl.
. "$(dirname "$0")/../lib.sh"

SEED=9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60
PUB=d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a
CHAIN=888888e238e3c1bcb9ce1ab1d5a17d4eaa32cbb1e4e8d1b9deae2a7f6f2a7b3c
DEF_PRIV=4c38c72fc5cdad68f13b74674d3ffb1f3d63a112710868c9b08946553448d26d
DEF_PUB=cc1985cdfae4e32b5a454dfda8ce5e1361558482684f3367649c3ad852c8e31a
FC=$T_TMP/factomd.conf
LOG=$T_TMP/log
cat > "$T_TMP/conf" <<CONF
factomd = { conf = "$FC" }
log = { target = "$LOG", level = "debug" }
CONF

# factomd_conf CHAIN PRIV PUB MODE: write $FC like a real one (other sections too).
factomd_conf() {
    cat > "$FC" <<EOF
; factomd.conf written by tests/cli/identity.sh
[app]
PortNumber                            = 8088
Network                               = LOCAL
NodeMode                              = SERVER
IdentityChainID                       = $1
LocalServerPrivKey                    = "$2"   ; the block-signing key
localserverpublickey                  = $3
ControlPanelSetting                   = readonly
[Walletd]
WalletRpcUser                         = ""
[LOG]
logLevel                              = error
EOF
    chmod "$4" "$FC"
}

# run_lua NAME: run the Lua test on stdin through `serfhand test`; all its
# tests must pass. OUT holds the output.
run_lua() {
    cat > "$T_TMP/t.lua"
    : > "$LOG"
    OUT=$("$SERFHAND" -c "$T_TMP/conf" test "$T_TMP/t.lua" 2>&1)
    local rc=$?
    if [ $rc -eq 0 ] && printf '%s\n' "$OUT" | grep -qE '^[1-9][0-9]* passed, 0 failed$'; then
        ok "$1"
    else
        fail "$1" "exit $rc: $OUT"
    fi
}

# --- a good seed key ---------------------------------------------------------
factomd_conf "$CHAIN" "$SEED" "$PUB" 600
run_lua "seed key loads, signs, verifies" <<LUA
local identity = require "serfhand.identity"
local crypto = require "serfhand.crypto"
local log = require "serfhand.log"
T.test("load", function()
    local id, err = identity.load()
    T.ok(id, err)
    T.eq(id:chain_id(), "$CHAIN")
    T.eq(id:public_key(), "$PUB")
    local body = "{\"net\":\"LOCAL\"}"
    local msg = "serfhand/1\nfactomd-restart-vote\n" .. body
    local sig = id:sign_framed("factomd-restart-vote", body)
    T.eq(#sig, 64)
    T.ok(crypto.ed25519_verify(sig, msg, crypto.unhex(id:public_key())), "verifies over the frame")
    T.ok(not crypto.ed25519_verify(sig, body, crypto.unhex(id:public_key())), "never over the bare bytes")
    T.ok(not crypto.ed25519_verify(sig, msg .. " ", crypto.unhex(id:public_key())), "not tampered")
    log.info("sigcheck msg=" .. crypto.hex(msg) .. " sig=" .. crypto.hex(sig))
end)
T.test("conveniences load once and agree", function()
    T.eq(identity.chain_id(), "$CHAIN")
    T.eq(identity.public_key(), "$PUB")
    T.eq(identity.sign_framed("c", "abc"), identity.load():sign_framed("c", "abc"))
    T.ok(crypto.ed25519_verify(identity.sign_framed("c", "abc"), "serfhand/1\nc\nabc", crypto.unhex("$PUB")))
end)
T.test("close wipes the key; public parts stay", function()
    local id = assert(identity.load())
    do local k <close> = id end
    T.raises(function() id:sign_framed("c", "x") end, "identity: key is closed")
    do local k <close> = id end -- idempotent
    T.eq(id:chain_id(), "$CHAIN")
    T.eq(id:public_key(), "$PUB")
    T.ok(tostring(id):find("closed"))
    T.eq(#identity.sign_framed("c", "x"), 64, "the cached identity is a different object")
end)
T.test("no secret reachable from Lua", function()
    local id = assert(identity.load())
    T.eq(getmetatable(id), "serfhand.identity")
    T.ok(not tostring(id):find("9d61b19d"), "tostring")
    for k in pairs({chain_id = 1, public_key = 1, sign_framed = 1}) do T.ok(id[k], k) end
    T.eq(id.secret, nil)
    T.eq(id.private_key, nil)
end)
T.test("misuse raises", function()
    local id = assert(identity.load())
    T.raises(function() id:sign_framed() end, "bad argument #1")
    T.raises(function() id:sign_framed("c", 12) end, "string expected")
    T.raises(function() id.sign_framed({}, "c", "x") end, "bad argument #1")
    T.raises(function() id.chain_id("x") end, "bad argument #1")
    T.raises(function() identity.sign_framed() end, "bad argument #1")
    T.raises(function() identity.sign_framed("c", {}) end, "bad argument #2")
end)
T.test("no signing oracle: raw signing is gone, contexts are validated", function()
    local id = assert(identity.load())
    T.eq(identity.sign, nil, "identity.sign")
    T.eq(id.sign, nil, "id:sign")
    for _, bad in ipairs({"", "Vote", "-x", ".x", "a b", "a\nb", "a/b", string.rep("a", 65), "a\0"}) do
        T.raises(function() id:sign_framed(bad, "x") end, "context must match")
        T.raises(function() identity.sign_framed(bad, "x") end, "context must match")
    end
    T.eq(#id:sign_framed(string.rep("a", 64), "x"), 64, "64 characters")
    T.eq(#id:sign_framed("0a._-", ""), 64)
    -- The frame a hostile handler chooses still starts with the host's domain:
    -- no context/bytes pair yields a signature over bytes of its choosing.
    local raw = crypto.unhex("00010203deadbeef")
    local pk = crypto.unhex(id:public_key())
    for _, ctx in ipairs({"a", "serfhand", "x"}) do
        local s = id:sign_framed(ctx, raw)
        T.ok(not crypto.ed25519_verify(s, raw, pk), "raw bytes never verify")
        T.ok(crypto.ed25519_verify(s, "serfhand/1\n" .. ctx .. "\n" .. raw, pk))
    end
end)
LUA
expect_eq "no permission warning at 0600" "$(grep -c 'readable by group' "$LOG")" 0

# The same signature checked by openssl (an independent Ed25519), if present.
line=$(grep -o 'sigcheck msg=[0-9a-f]* sig=[0-9a-f]*' "$LOG" | head -n 1)
if [ -z "$line" ]; then
    fail "signature logged" "no sigcheck line in $LOG"
elif command -v openssl >/dev/null 2>&1; then
    msg=${line#sigcheck msg=}; msg=${msg%% *}; sig=${line##*sig=}
    python3 -c 'import sys; open(sys.argv[2], "wb").write(bytes.fromhex(sys.argv[1]))' \
        "302a300506032b6570032100$PUB" "$T_TMP/pub.der"
    python3 -c 'import sys; open(sys.argv[2], "wb").write(bytes.fromhex(sys.argv[1]))' "$msg" "$T_TMP/msg"
    python3 -c 'import sys; open(sys.argv[2], "wb").write(bytes.fromhex(sys.argv[1]))' "$sig" "$T_TMP/sig"
    if openssl pkeyutl -verify -pubin -keyform DER -inkey "$T_TMP/pub.der" -rawin \
        -in "$T_TMP/msg" -sigfile "$T_TMP/sig" >/dev/null 2>&1; then
        ok "openssl verifies id:sign"
    else
        fail "openssl verifies id:sign"
    fi
    printf 'x' >> "$T_TMP/msg"
    if openssl pkeyutl -verify -pubin -keyform DER -inkey "$T_TMP/pub.der" -rawin \
        -in "$T_TMP/msg" -sigfile "$T_TMP/sig" >/dev/null 2>&1; then
        fail "openssl rejects a changed message"
    else
        ok "openssl rejects a changed message"
    fi
else
    ok "openssl not installed: independent check skipped"
fi

# --- the 64-byte form (seed || public key), world-readable ---------------------
factomd_conf "$CHAIN" "$SEED$PUB" "$PUB" 644
run_lua "64-byte key loads" <<LUA
local identity = require "serfhand.identity"
local crypto = require "serfhand.crypto"
T.test("load", function()
    local id = assert(identity.load())
    T.eq(id:public_key(), "$PUB")
    T.ok(crypto.ed25519_verify(id:sign_framed("x", "m"), "serfhand/1\nx\nm", crypto.unhex("$PUB")))
end)
LUA
expect_match "world-readable file warned about" "$(cat "$LOG")" \
    "warn: identity: $FC holds a secret key but is readable by group or others \\(mode 0644\\)"
run_lua "conveniences read the file once" <<'LUA'
local identity = require "serfhand.identity"
T.test("three calls", function()
    assert(identity.chain_id()); assert(identity.public_key()); assert(identity.sign_framed("c", "x"))
    assert(identity.sign_framed("c", "y"))
end)
LUA
expect_eq "one read, one warning" "$(grep -c 'readable by group' "$LOG")" 1
chmod 640 "$FC"
run_lua "group-readable loads" <<'LUA'
T.test("load", function() assert(require("serfhand.identity").load()) end)
LUA
expect_match "group-readable file warned about" "$(cat "$LOG")" "mode 0640"

# --- refusals: nil, err from load and from the conveniences ------------------
# refused NAME PATTERN: load() and every convenience give nil and an error
# matching the Lua PATTERN.
refused() {
    run_lua "$1" <<LUA
local identity = require "serfhand.identity"
T.test("load", function()
    local id, err = identity.load()
    T.eq(id, nil)
    T.ok(type(err) == "string" and err:find("^identity: "), err)
    T.ok(err:find([==[$2]==]), err)
end)
T.test("conveniences", function()
    for _, f in ipairs({identity.chain_id, identity.public_key}) do
        local v, err = f()
        T.eq(v, nil)
        T.ok(err:find([==[$2]==]), err)
    end
    local v, err = identity.sign_framed("c", "x")
    T.eq(v, nil)
    T.ok(err:find([==[$2]==]), err)
end)
LUA
}

# factomd derives the public key from LocalServerPrivKey and never reads
# LocalServerPublicKey: a file it runs with loads here too, with the derived
# key, and a disagreeing line is a warning in the log.
# loads_derived NAME LOG-REGEX: the identity loads with $PUB; the log matches
# LOG-REGEX ("" = no warning at all).
loads_derived() {
    run_lua "$1" <<LUA
T.test("load", function()
    local id = assert(require("serfhand.identity").load())
    T.eq(id:public_key(), "$PUB")
    T.eq(id:chain_id(), "$CHAIN")
end)
LUA
    if [ -n "$2" ]; then
        expect_match "$1: warning" "$(cat "$LOG")" "$2"
    else
        expect_eq "$1: no warning" "$(grep -c 'LocalServerPublicKey' "$LOG")" 0
    fi
}
factomd_conf "$CHAIN" "$SEED" "${PUB%?}b" 600
loads_derived "stale public key line" \
    'warn.*LocalServerPublicKey does not match LocalServerPrivKey; factomd ignores that line.*d75a980182b10ab7'
factomd_conf "$CHAIN" "$SEED" "$DEF_PUB" 600
loads_derived "sample public key line with a real private key" 'does not match LocalServerPrivKey'
factomd_conf "$CHAIN" "$SEED" "xyz" 600
loads_derived "bad hex public key line" 'LocalServerPublicKey is not 64 hex digits; factomd ignores'
factomd_conf "$CHAIN" "$SEED" "$PUB" 600
grep -v -i '^localserverpublickey' "$FC" > "$FC.new" && mv "$FC.new" "$FC"
loads_derived "no public key line" ""
# gcfg skips a UTF-8 byte order mark (an editor on Windows writes one)
factomd_conf "$CHAIN" "$SEED" "$PUB" 600
{ printf '\357\273\277'; cat "$FC"; } > "$FC.new" && mv "$FC.new" "$FC"
loads_derived "a file that starts with a BOM" ""

factomd_conf "$CHAIN" "$SEED$DEF_PUB" "$PUB" 600
refused "64-byte key with a foreign second half" "second half is not the public key"

factomd_conf "$CHAIN" "$DEF_PRIV" "$DEF_PUB" 600
refused "factomd default key refused" "refusing the public default key of factomd's sample config"

factomd_conf "$CHAIN" "$DEF_PRIV$DEF_PUB" "$DEF_PUB" 600
refused "factomd default key refused (64-byte form)" "public default key"

factomd_conf "$CHAIN" "${SEED%??}zz" "$PUB" 600
refused "bad hex private key" "LocalServerPrivKey is not hex"

factomd_conf "$CHAIN" "${SEED}00" "$PUB" 600
refused "private key of a wrong length" "LocalServerPrivKey is not hex"


factomd_conf "777777${CHAIN#888888}" "$SEED" "$PUB" 600
refused "chain id without 888888" "does not start with 888888"

factomd_conf "" "$SEED" "$PUB" 600
refused "empty chain id" "IdentityChainID is not 64 hex"

factomd_conf "$CHAIN" "$SEED" "$PUB" 600
grep -v -i '^localserverprivkey' "$FC" > "$FC.new" && mv "$FC.new" "$FC"
refused "missing private key" "LocalServerPrivKey missing in %[app%] %(factomd would run with its public sample key%)"

printf '[app]\nIdentityChainID = "%s\n' "$CHAIN" > "$FC"
refused "syntax error names the line" "factomd.conf: line 2: unterminated quote"

rm -f "$FC"
refused "missing file" "factomd.conf: No such file or directory"

mkdir "$FC"
refused "a directory" "not a regular file"
rmdir "$FC"

if [ "$(id -u)" -ne 0 ]; then
    factomd_conf "$CHAIN" "$SEED" "$PUB" 000
    refused "unreadable file" "Permission denied"
fi

# --- the committed test identities follow their documented rule --------------
check "tests/fixtures/identities.txt matches its rule" \
    env SERFHAND="$SERFHAND" python3 "$TOP/tests/fixtures/gen_identities.py" --check
# and the first of them loads as a node identity
read -r _ FCHAIN FSEED FPUB < <(grep -v '^#' "$TOP/tests/fixtures/identities.txt" | head -n 1)
factomd_conf "$FCHAIN" "$FSEED" "$FPUB" 600
run_lua "fixture identity 1 loads" <<LUA
T.test("load", function()
    local id = assert(require("serfhand.identity").load())
    T.eq(id:chain_id(), "$FCHAIN")
    T.eq(id:public_key(), "$FPUB")
end)
LUA

finish
