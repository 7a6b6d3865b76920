# config_trust: trust.keys and trust.threshold are checked when the
# configuration loads (issue 13, item 7). A bad entry or an unreachable
# threshold is a configuration error (exit 2) naming the entry, its line and
# what it was taken for, in `serfhand config` and at run time alike, not a
# refusal of every event.
. "$(dirname "$0")/../lib.sh"

W=$T_TMP
cd "$W" || exit 1
"$SERFHAND" keygen -W -p k1.pub -s k1.sec > /dev/null
"$SERFHAND" keygen -W -p k2.pub -s k2.sec > /dev/null
K1=$(sed -n 2p k1.pub)
K2=$(sed -n 2p k2.pub)

# cfg TEXT: write $W/c.conf (printf format) and run `serfhand config`; sets OUT, RC.
cfg() {
    printf "$1" > "$W/c.conf"
    OUT=$("$SERFHAND" -c "$W/c.conf" config 2>&1); RC=$?
}
# bad NAME TEXT REGEX: `serfhand config` exits 2 and says REGEX.
bad() {
    cfg "$2"
    expect_eq "$1: exit 2" "$RC" 2
    expect_match "$1: message" "$OUT" "$3"
}

# --- what the issue lists ----------------------------------------------------
bad "not a key" 'log = { target = "stderr" }\ntrust = {\n  keys = {\n    "RWnotakey",\n  },\n}\n' \
    'c\.conf:4: trust\.keys\[1\] "RWnotakey": taken for an inline key \(it starts with RW\): .*9 base64 characters, want 56'
bad "bad base64" "trust = { keys = { \"$K1\",\n \"RW!!${K1:4}\" } }\n" \
    'c\.conf:2: trust\.keys\[2\] "RW!!.{16}\.\.\.": taken for an inline key.*invalid base64'
# a valid base64 key whose algorithm bytes are "Ee", not "Ed" (still starts with RW)
WA=$(python3 -c "import base64;print(base64.b64encode(b'Ee' + bytes(range(40))).decode())")
bad "wrong algorithm (inline)" "trust = { keys = { \"$WA\" } }\n" \
    'trust\.keys\[1\] "RW.*taken for an inline key.*algorithm is not Ed25519'
printf 'untrusted comment: other algorithm\n%s\n' "$WA" > wa.pub
bad "wrong algorithm (file)" "trust = { keys = { \"$W/wa.pub\" } }\n" \
    "trust\.keys\[1\] \"$W/wa\.pub\": taken for a path \(it does not start with RW\): .*algorithm is not Ed25519"
printf 'untrusted comment: x\n%s\nmore\n' "$K1" > three.pub
bad "3-line file" "trust = { keys = { \"$W/three.pub\" } }\n" \
    'taken for a path \(it does not start with RW\): 3 lines, want 2'
bad "a .sec file" "trust = { keys = { \"$K2\", \"$W/k1.sec\" } }\n" \
    "c\.conf:1: trust\.keys\[2\] \"$W/k1\.sec\": taken for a path.*a secret key file, not a public key"
bad "a secret key pasted inline" "trust = { keys = { \"$(sed -n 2p k1.sec)\" } }\n" \
    'taken for an inline key \(it starts with RW\): a secret key, not a public key'
check "the pasted secret key is not echoed whole" sh -c "! printf '%s' \"\$1\" | grep -qF \"\$(sed -n 2p k1.sec | cut -c 1-40)\"" _ "$OUT"
bad "threshold above the number of keys" "trust = { keys = { \"$K1\" },\n  threshold = 2 }\n" \
    'c\.conf:2: trust\.threshold is 2, but trust\.keys \(line 1\) holds 1 distinct key: no bundle could ever verify'
bad "threshold 0" "trust = { keys = { \"$K1\" }, threshold = 0 }\n" \
    'c\.conf:1: trust\.threshold must be between 1 and 64, not 0'

# --- more of the same mistakes ---------------------------------------------------
bad "a missing file" "trust = { keys = { \"$W/nope.pub\" } }\n" \
    "taken for a path \(it does not start with RW\): $W/nope\.pub: No such file"
bad "a relative path" 'trust = { keys = { "k1.pub" } }\n' \
    'trust\.keys\[1\] "k1\.pub": taken for a path \(it does not start with RW\): not absolute'
bad "a directory" "trust = { keys = { \"$W\" } }\n" "trust\.keys\[1\] \".*taken for a path"
bad "an empty entry" 'trust = { keys = { "" } }\n' 'trust\.keys\[1\] "": taken for a path'
bad "a key listed twice counts once" "trust = { keys = { \"$K1\", \"$K1\" }, threshold = 2 }\n" \
    'holds 1 distinct key \(entries 1 and 2 are the same key\)'
bad "the same key as a file and inline counts once" \
    "trust = { keys = { \"$W/k1.pub\", \"$K1\", \"$K2\" }, threshold = 3 }\n" \
    'holds 2 distinct keys \(entries 1 and 2 are the same key\)'
bad "the default threshold with a bad key list" "trust = { keys = { \"RW\" } }\n" 'trust\.keys\[1\] "RW"'
bad "a control byte in a value is not echoed" "trust = { keys = { \"RW\\\\027[31m\" } }\n" \
    'trust\.keys\[1\] "RW\?\[31m": taken for an inline key'

# --- what still loads -------------------------------------------------------------
cfg "trust = { keys = { \"$K1\", \"$W/k2.pub\" }, threshold = 2 }\n"
expect_eq "two distinct keys, threshold 2: exit 0" "$RC" 0
cfg "trust = { keys = { \"$K1\", \"$K1\" } }\n"
expect_eq "a key listed twice with threshold 1: exit 0" "$RC" 0
cfg 'trust = { keys = { }, threshold = 1 }\n'
expect_eq "no keys (no trust root, as in the sample): exit 0" "$RC" 0
cfg 'state_dir = "/tmp/x"\n'
expect_eq "no trust section: exit 0" "$RC" 0

# --- at run time: a configuration error, not a refusal -------------------------------
mkdir -p b/handlers/user b/handlers/query
printf 'return function(ev) return "RAN" end\n' > b/handlers/query/ping.lua
printf 'return function(ev) end\n' > b/handlers/user/ping.lua
"$SERFHAND" sign -s k1.sec --name demo --version 1 b > /dev/null || fail "signing"
printf 'bundle = "%s/b"\nstate_dir = "%s/state"\nlog = { target = "%s/log" }\ntrust = { keys = { "RWnotakey" } }\n' \
    "$W" "$W" "$W" > bad.conf
OUT=$(env -i PATH="$PATH" "${SAN_ENV[@]}" SERF_EVENT=user SERF_USER_EVENT=ping SERF_USER_LTIME=1 SERF_SELF_NAME=n1 \
    "$SERFHAND" -c bad.conf handle < /dev/null 2>&1); RC=$?
expect_eq "an event under a bad trust.keys: exit 2 (configuration), not 3" "$RC" 2
expect_match "and it says which entry" "$OUT" 'config: .*bad\.conf:4: trust\.keys\[1\] "RWnotakey"'
OUT=$(env -i PATH="$PATH" "${SAN_ENV[@]}" SERF_EVENT=query SERF_QUERY_NAME=ping SERF_QUERY_LTIME=1 SERF_SELF_NAME=n1 \
    "$SERFHAND" -c bad.conf handle < /dev/null 2>&1); RC=$?
expect_eq "a query under a bad trust.keys: exit 2 and no response" "$OUT|$RC" "|2"
for c in "verify b" "check" "install b" "tick"; do
    OUT=$("$SERFHAND" -c bad.conf $c 2>&1); RC=$?
    expect_eq "serfhand $c under a bad trust.keys: exit 2" "$RC" 2
done
printf 'bundle = "%s/b"\nstate_dir = "%s/state"\nlog = { target = "%s/log" }\ntrust = { keys = { "%s" } }\n' \
    "$W" "$W" "$W" "$K1" > good.conf
OUT=$(env -i PATH="$PATH" "${SAN_ENV[@]}" SERF_EVENT=query SERF_QUERY_NAME=ping SERF_QUERY_LTIME=1 SERF_SELF_NAME=n1 \
    "$SERFHAND" -c good.conf handle < /dev/null 2>&1); RC=$?
expect_eq "the same bundle under a good trust.keys runs" "$OUT|$RC" "RAN|0"

finish
