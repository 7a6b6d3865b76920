# trust_letter: issue 13, items 3, 5, 6 and 8 through the real binary.
# 3: a differential test of the manifest reader against python3's json: for
#    every tricky manifest serfhand either refuses it or reads exactly what
#    python reads (bundle, version, created, expires, every path and size).
# 5: a FIFO, directory, socket, device or dangling symlink named as a
#    configured file gives a clear error and never hangs.
# 6: two trusted keys sharing one key id: verify, check, install and a run
#    count the same signatures.
# 8: messages name the file and the real limit.
. "$(dirname "$0")/../lib.sh"

W=$T_TMP
STATE=$W/state
mkdir -p "$STATE"

# --- 3. numbers and strings: read exactly what python3 reads, or refuse ------
cat > "$W/empty.conf" <<CONF
state_dir = "$STATE"
trust = { keys = { }, threshold = 1 }
log = { target = "$W/log", level = "debug" }
CONF
# One case per line: NAME<TAB>EXPECT<TAB>MANIFEST (a Python string literal;
# EXPECT is accept or refuse). Every listed file holds 1 byte, so the size
# serfhand read shows in "PATH: 1 bytes, the manifest says N".
H=0000000000000000000000000000000000000000000000000000000000000000
HEAD='{"format":1,"bundle":"b","created":1,"expires":9,'
cat > "$W/cases" <<CASES
plain	accept	'${HEAD}"version":3,"files":{"lua/a.lua":{"size":7,"blake2b":"$H"}}}'
version 2^64+5 wraps to 5	refuse	'${HEAD}"version":18446744073709551621,"files":{}}'
size 2^64+7 wraps to 7	refuse	'${HEAD}"version":3,"files":{"lua/a.lua":{"size":18446744073709551623,"blake2b":"$H"}}}'
version 2^63	refuse	'${HEAD}"version":9223372036854775808,"files":{}}'
version 2^53 (doubles round it)	refuse	'${HEAD}"version":9007199254740993,"files":{}}'
version 2^53-1	accept	'${HEAD}"version":9007199254740991,"files":{"lua/a.lua":{"size":9007199254740991,"blake2b":"$H"}}}'
minus zero	refuse	'{"format":1,"bundle":"b","created":-0,"expires":9,"version":1,"files":{}}'
fraction	refuse	'${HEAD}"version":3.0,"files":{}}'
exponent	refuse	'${HEAD}"version":3e0,"files":{}}'
plus sign	refuse	'${HEAD}"version":+3,"files":{}}'
leading zero	refuse	'${HEAD}"version":03,"files":{}}'
hex	refuse	'${HEAD}"version":0x3,"files":{}}'
NaN	refuse	'${HEAD}"version":NaN,"files":{}}'
Infinity	refuse	'${HEAD}"version":Infinity,"files":{}}'
big negative	refuse	'{"format":1,"bundle":"b","created":-99999999999999999999,"expires":9,"version":1,"files":{}}'
duplicate key (python keeps the last)	refuse	'${HEAD}"version":3,"version":4,"files":{}}'
duplicate key by escape	refuse	'${HEAD}"version":3,"versio\\\\u006e":4,"files":{}}'
duplicate path by escape	refuse	'${HEAD}"version":3,"files":{"lua/a.lua":{"size":1,"blake2b":"$H"},"lua\\\\/a.lua":{"size":2,"blake2b":"$H"}}}'
escaped key	accept	'{"format":1,"\\\\u0062undle":"b","created":1,"expires":9,"version":3,"files":{}}'
escaped slash in a path	accept	'${HEAD}"version":3,"files":{"lua\\\\/a.lua":{"size":5,"blake2b":"$H"}}}'
escaped letter in a path	accept	'${HEAD}"version":3,"files":{"lua/\\\\u0061.lua":{"size":5,"blake2b":"$H"}}}'
lone surrogate	refuse	'{"format":1,"bundle":"b\\\\ud800","created":1,"expires":9,"version":1,"files":{}}'
surrogate pair	refuse	'{"format":1,"bundle":"b\\\\ud83d\\\\ude00","created":1,"expires":9,"version":1,"files":{}}'
escaped NUL	refuse	'{"format":1,"bundle":"b\\\\u0000","created":1,"expires":9,"version":1,"files":{}}'
escaped NUL in a path	refuse	'${HEAD}"version":3,"files":{"lua/a\\\\u0000.lua":{"size":1,"blake2b":"$H"}}}'
raw UTF-8	refuse	'{"format":1,"bundle":"b\\xc3\\xa9","created":1,"expires":9,"version":1,"files":{}}'
invalid UTF-8	refuse	'{"format":1,"bundle":"b\\xff","created":1,"expires":9,"version":1,"files":{}}'
overlong UTF-8 slash	refuse	'${HEAD}"version":3,"files":{"lua\\xc0\\xafa.lua":{"size":1,"blake2b":"$H"}}}'
byte order mark	refuse	'\\xef\\xbb\\xbf${HEAD}"version":3,"files":{}}'
UTF-16	refuse	'${HEAD}"version":3,"files":{}}'.encode("utf-16-le").decode("latin-1")
NUL after the object	refuse	'${HEAD}"version":3,"files":{}}\\x00'
trailing garbage	refuse	'${HEAD}"version":3,"files":{}} {}'
JSON whitespace	accept	' \\t\\r\\n${HEAD}\\t"version" :\\r3 ,"files":{}}\\n\\n'
form feed is no JSON whitespace	refuse	'${HEAD}"version":3,\\x0c"files":{}}'
upper-case hash	refuse	'${HEAD}"version":3,"files":{"lua/a.lua":{"size":1,"blake2b":"${H//0/A}"}}}'
CASES

python3 - "$SERFHAND" "$W" > "$W/diff.out" 2>&1 <<'PY'
import json, os, re, shutil, subprocess, sys
serfhand, w = sys.argv[1], sys.argv[2]
for line in open(os.path.join(w, "cases"), encoding="utf-8"):
    name, expect, lit = line.rstrip("\n").split("\t")
    data = eval(lit).encode("latin-1")  # the exact bytes of MANIFEST.json
    d = os.path.join(w, "diff")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    open(os.path.join(d, "MANIFEST.json"), "wb").write(data)
    try:
        py = json.loads(data)  # what a standard JSON reader sees
        for p in py["files"]:
            if re.fullmatch(r"(handlers|lua)/[A-Za-z0-9_.+@-]+", p):
                os.makedirs(os.path.dirname(os.path.join(d, p)), exist_ok=True)
                open(os.path.join(d, p), "w").write("x")
    except Exception:
        py = None
    r = subprocess.run([serfhand, "-c", os.path.join(w, "empty.conf"), "verify", "--json", d],
                       capture_output=True, timeout=10)
    try:
        sh = json.loads(r.stdout)
    except Exception:
        print("FAIL %s: verify printed no JSON: %r %r" % (name, r.stdout, r.stderr))
        continue
    accepted = sh["bundle"] is not None
    if accepted != (expect == "accept"):
        print("FAIL %s: serfhand %s it (version %s), want %s" %
              (name, "accepted" if accepted else "refused", sh["version"], expect))
        continue
    if not accepted:
        print("ok %s" % name)
        continue
    sizes = {}
    for p in sh["problems"]:
        m = re.fullmatch(r"(\S+): 1 bytes, the manifest says (\d+)", p)
        if m:
            sizes[m.group(1)] = int(m.group(2))
    mine = {"bundle": sh["bundle"], "version": sh["version"], "created": sh["created"],
            "expires": sh["expires"], "files": sh["files"], "sizes": sizes}
    want = None
    if py is not None:
        want = {"bundle": py["bundle"], "version": py["version"], "created": py["created"],
                "expires": py["expires"], "files": len(py["files"]),
                "sizes": {p: f["size"] for p, f in py["files"].items() if f["size"] != 1}}
    if mine == want:
        print("ok %s" % name)
    else:
        print("FAIL %s: serfhand read %s, python3 reads %s" % (name, mine, want))
PY
while IFS= read -r l; do
    case $l in
    "ok "*) ok "3: ${l#ok }" ;;
    "FAIL "*) fail "3: ${l#FAIL }" ;;
    *) fail "3: differential test" "$l" ;;
    esac
done < "$W/diff.out"
expect_eq "3: every case ran" "$(grep -c '' "$W/diff.out")" "$(grep -c '' "$W/cases")"

# --- 5. no configured path can hang serfhand ----------------------------------
# nb NAME WANT_RC REGEX CMD...: CMD ends within 5 s (never the 124 of
# timeout), with exit WANT_RC and output matching REGEX (if not empty).
nb() {
    local name=$1 want=$2 re=$3 out rc; shift 3
    out=$(timeout 5 "$@" < /dev/null 2>&1); rc=$?
    if [ "$rc" -eq "$want" ] && { [ -z "$re" ] || printf '%s' "$out" | grep -qE -- "$re"; }; then
        ok "$name"
    else
        fail "$name" "rc=$rc (124 = hung): $out"
    fi
}
K=$W/kinds
mkdir -p "$K"
mkfifo "$K/fifo"
mkdir "$K/dir"
ln -s /dev/zero "$K/chardev"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$K/socket"
ln -s "$K/nowhere" "$K/dangling"
declare -A WHAT=([fifo]="is a FIFO \(named pipe\), not a regular file"
    [dir]="is a directory, not a regular file" [chardev]="is a character device, not a regular file"
    [socket]="is a socket, not a regular file"
    [dangling]="dangling symlink \(its target does not exist\)")
# a bundle whose manifest parses (unsigned): check gets as far as the version record
B=$W/kb
mkdir -p "$B/handlers"
printf '{"format":1,"bundle":"b","version":1,"created":1,"expires":%s,"files":{}}' \
    "$(($(date +%s) + 86400))" > "$B/MANIFEST.json"
for k in fifo dir chardev socket dangling; do
    P=$K/$k
    nb "5: config -c $k" 2 "config: $P: ${WHAT[$k]}" "$SERFHAND" -c "$P" verify "$B"
    cat > "$W/k.conf" <<CONF
bundle = "$B"
state_dir = "$STATE"
trust = { keys = { "$P" }, threshold = 1 }
log = { target = "$W/log" }
CONF
    nb "5: trust.keys $k (verify)" 2 "trust.keys\[1\] \"$P\": .*: $P: ${WHAT[$k]}" \
        "$SERFHAND" -c "$W/k.conf" verify "$B"
    : > "$W/log"
    nb "5: trust.keys $k (a run, a configuration error)" 2 "" env -i PATH="$PATH" "${SAN_ENV[@]}" SERF_EVENT=user SERF_USER_EVENT=x \
        SERF_USER_LTIME=1 SERF_SELF_NAME=n1 "$SERFHAND" -c "$W/k.conf" handle
    expect_match "5: trust.keys $k (the run's log)" "$(cat "$W/log")" "$P: ${WHAT[$k]}"
    cat > "$W/f.conf" <<CONF
state_dir = "$STATE"
factomd = { conf = "$P" }
log = { target = "$W/log" }
CONF
    cat > "$W/id.lua" <<LUA
T.test("identity.load", function()
    local id, err = require("serfhand.identity").load()
    T.ok(not id, "loaded")
    T.ok(err:find("$P: ${WHAT[$k]//\\/}", 1, true), err)
end)
LUA
    nb "5: factomd.conf $k" 0 "^1 passed, 0 failed" "$SERFHAND" -c "$W/f.conf" test "$W/id.lua"
done
# the version record in state_dir (opened O_NOFOLLOW: a symlink is refused)
S2=$W/s2
mkdir -p "$S2"
cat > "$W/v.conf" <<CONF
bundle = "$B"
state_dir = "$S2"
trust = { keys = { }, threshold = 1 }
log = { target = "$W/log" }
CONF
for k in fifo dir socket; do
    rm -rf "$S2/bundle-version"
    case $k in
    fifo) mkfifo "$S2/bundle-version" ;;
    dir) mkdir "$S2/bundle-version" ;;
    socket) python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
        "$S2/bundle-version" ;;
    esac
    nb "5: bundle-version $k" 3 "recorded version unknown: $S2/bundle-version: ${WHAT[$k]}" \
        "$SERFHAND" -c "$W/v.conf" check
done
rm -rf "$S2/bundle-version"
ln -s /dev/zero "$S2/bundle-version"
nb "5: bundle-version symlink" 3 "$S2/bundle-version: is a symlink, not a regular file" \
    "$SERFHAND" -c "$W/v.conf" check
rm -f "$S2/bundle-version"
# a bundle file that is a FIFO, listed or not
mkfifo "$B/handlers/f.lua"
nb "5: bundle file FIFO (unlisted)" 3 "handlers/f.lua: is a FIFO \(named pipe\), not a regular file or directory" \
    "$SERFHAND" -c "$W/v.conf" verify "$B"
printf '{"format":1,"bundle":"b","version":1,"created":1,"expires":%s,"files":{"handlers/f.lua":{"size":1,"blake2b":"%s"}}}' \
    "$(($(date +%s) + 86400))" "$H" > "$B/MANIFEST.json"
nb "5: bundle file FIFO (listed)" 3 "handlers/f.lua: is a FIFO \(named pipe\), not a regular file" \
    "$SERFHAND" -c "$W/v.conf" verify "$B"
rm -f "$B/handlers/f.lua"
# log.target: a FIFO nobody reads must not hang the open (syslog instead)
printf 'state_dir = "%s"\nlog = { target = "%s" }\n' "$STATE" "$K/fifo" > "$W/l.conf"
nb "5: log.target FIFO" 0 "state_dir" "$SERFHAND" -c "$W/l.conf" config

# --- 6. one rule for key ids ---------------------------------------------------
# Two Ed25519 keys given one key id (0x07...: minisign's short name differs):
# "$SERFHAND" keygen, then the id patched into .sec (checksum redone) and .pub.
cd "$W" || exit 1
q() { "$@" > /dev/null 2>&1; }
q "$SERFHAND" keygen -W -p s1.pub -s s1.sec
q "$SERFHAND" keygen -W -p s2.pub -s s2.sec
python3 - s1 s2 <<'PY'
import sys, base64, hashlib
newid = bytes([0x92, 0x78, 0x9A, 0x47, 0x34, 0x87, 0x98, 0x07])  # 07988734479A7892
for k in sys.argv[1:]:
    raw = bytearray(base64.b64decode(open(k + '.sec').read().split('\n')[1]))
    raw[54:62] = newid
    raw[126:158] = hashlib.blake2b(b'Ed' + bytes(raw[54:126]), digest_size=32).digest()
    open(k + '.sec', 'w').write('untrusted comment: shared id\n' + base64.b64encode(bytes(raw)).decode() + '\n')
    p = bytearray(base64.b64decode(open(k + '.pub').read().split('\n')[1]))
    p[2:10] = newid
    open(k + '.pub', 'w').write('untrusted comment: minisign public key 07988734479A7892\n' +
                                base64.b64encode(bytes(p)).decode() + '\n')
PY
mkdir -p sb/handlers/query
printf 'return function(ev) return "RAN pong" end\n' > sb/handlers/query/ping.lua
q "$SERFHAND" sign -s s1.sec --name shared --version 1 sb
OUT=$("$SERFHAND" sign -s s2.sec sb 2>&1)
KN=$(ls sb | grep -E '^MANIFEST\.json\.07988734479A7892-[0-9A-F]{16}\.minisig$')
expect_match "6: the second key with the id signs under its key name" "$OUT" "with key 07988734479A7892: $KN"
check "6: the first key's file is kept" test -s sb/MANIFEST.json.07988734479A7892.minisig
check "6: sign again with the first key: its own file" q "$SERFHAND" sign -s s1.sec sb
expect_eq "6: still two signature files" "$(ls sb | grep -c minisig)" 2
check "6: minisign verifies the key-named file" q minisign -V -p s2.pub -m sb/MANIFEST.json -x "sb/$KN"
# six ways to count; all must agree: a run, verify, check, install, check of
# the installed copy, a run of the installed copy
S6=$W/s6
sixconf() { # CONF BUNDLE THRESHOLD
    cat > "$1" <<CONF
bundle = "$2"
state_dir = "$S6"
trust = { keys = { "$W/s1.pub", "$W/s2.pub" }, threshold = $3 }
log = { target = "$W/log6" }
CONF
}
run6() { # CONF: query ping like Serf
    env -i PATH="$PATH" "${SAN_ENV[@]}" SERF_EVENT=query SERF_QUERY_NAME=ping SERF_QUERY_LTIME=3 \
        SERF_SELF_NAME=n1 "$SERFHAND" -c "$1" handle < /dev/null 2>&1
}
all_agree() { # LABEL THRESHOLD WANT(ok|refused) COUNT
    local label=$1 thr=$2 want=$3 n=$4 out rc
    rm -rf "$S6"
    sixconf "$W/c6" "$W/sb" "$thr"
    out=$(run6 "$W/c6"); rc=$?
    if [ "$want" = ok ]; then
        expect_eq "6: $label: a run" "$out|$rc" "RAN pong|0"
    else
        expect_eq "6: $label: a run is refused" "$rc" 3
        expect_match "6: $label: the run counts $n" "$(cat "$W/log6")" "signatures: $n of $thr required"
    fi
    out=$("$SERFHAND" -c "$W/c6" verify sb 2>&1)
    expect_match "6: $label: verify counts $n" "$out" "threshold   $n of $thr distinct"
    out=$("$SERFHAND" -c "$W/c6" check 2>&1); rc=$?
    expect_match "6: $label: check counts $n" "$out" "threshold   $n of $thr distinct"
    expect_eq "6: $label: check's verdict" "$rc" "$([ "$want" = ok ] && echo 0 || echo 3)"
    out=$("$SERFHAND" -c "$W/c6" install sb 2>&1); rc=$?
    if [ "$want" = ok ]; then
        expect_eq "6: $label: install" "$rc" 0
        sixconf "$W/c6i" "$S6/current" "$thr"
        out=$("$SERFHAND" -c "$W/c6i" check 2>&1); rc=$?
        expect_match "6: $label: check of the installed copy counts $n" "$out" "threshold   $n of $thr distinct"
        out=$(run6 "$W/c6i"); rc=$?
        expect_eq "6: $label: a run of the installed copy" "$out|$rc" "RAN pong|0"
    else
        expect_eq "6: $label: install is refused" "$rc" 3
        expect_match "6: $label: install counts $n" "$out" "signatures: $n of $thr required"
    fi
}
all_agree "16-digit and key name" 2 ok 2
# the issue's case: the second file under minisign's short name
mv "sb/$KN" sb/MANIFEST.json.7988734479A7892.minisig
all_agree "16-digit and short name" 2 ok 2
# a bad file under the 16-digit name does not hide a good one under the short
printf 'garbage\n' > sb/MANIFEST.json.07988734479A7892.minisig
all_agree "a bad 16-digit file" 2 refused 1
# threshold 1: the run counts 1 and runs; verify and check count 1 too, and
# fail only for the bad file, which they list as a problem
rm -rf "$S6"
sixconf "$W/c6" "$W/sb" 1
expect_eq "6: a bad 16-digit file, threshold 1: a run" "$(run6 "$W/c6"); $?" "RAN pong; 0"
OUT=$("$SERFHAND" -c "$W/c6" check 2>&1)
expect_match "6: threshold 1: check counts 1" "$OUT" "threshold   1 of 1 distinct"
expect_match "6: threshold 1: check names the bad file" "$OUT" \
    "PROBLEM     MANIFEST.json.07988734479A7892.minisig: signature: "
expect_eq "6: threshold 1: and that is its only problem" "$(printf '%s\n' "$OUT" | grep -c PROBLEM)" 1
rm -f sb/MANIFEST.json.*.minisig
# a name no run reads (another key's key name) never counts anywhere
q "$SERFHAND" sign -s s1.sec sb
mv sb/MANIFEST.json.07988734479A7892.minisig sb/MANIFEST.json.07988734479A7892-0000000000000000.minisig
all_agree "a name no run reads" 1 refused 0
OUT=$("$SERFHAND" -c "$W/c6" verify sb 2>&1)
expect_match "6: verify says which name to use" "$OUT" "no run reads this name: not counted"

# --- 8. messages name the file and the real limit ----------------------------
rm -rf b8 "$S6"
mkdir -p b8/handlers/query
printf 'return function(ev) return "RAN pong" end\n' > b8/handlers/query/ping.lua
q "$SERFHAND" sign -s s1.sec --name eight --version 1 b8
cat > "$W/c8" <<CONF
bundle = "$W/b8"
state_dir = "$S6"
trust = { keys = { "$W/s1.pub" }, threshold = 1 }
limits = { file_bytes = 1024 }
log = { target = "$W/log8" }
CONF
cp b8/MANIFEST.json m8.keep
head -c $((10 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >> b8/MANIFEST.json
OUT=$("$SERFHAND" -c "$W/c8" verify b8 2>&1)
expect_match "8: a 10 MB manifest: the fixed limit" "$OUT" \
    "MANIFEST.json: [0-9]+ bytes, over the limit of 4194304 bytes \(a fixed limit: no setting changes it\)"
expect_eq "8: ... and not limits.file_bytes" "$(printf '%s' "$OUT" | grep -c file_bytes)" 0
: > "$W/log8"
run6 "$W/c8" > /dev/null
expect_match "8: a run says the same" "$(cat "$W/log8")" "over the limit of 4194304 bytes \(a fixed limit"
cp m8.keep b8/MANIFEST.json
head -c 20000 /dev/zero | tr '\0' 'x' >> b8/MANIFEST.json.07988734479A7892.minisig
OUT=$("$SERFHAND" -c "$W/c8" verify b8 2>&1)
expect_match "8: a big signature file: its name and the fixed limit" "$OUT" \
    "MANIFEST.json.07988734479A7892.minisig: [0-9]+ bytes, over the limit of [0-9]+ bytes \(a fixed limit"
q "$SERFHAND" sign -s s1.sec b8
head -c 2000 /dev/zero | tr '\0' '-' >> b8/handlers/query/ping.lua
OUT=$("$SERFHAND" -c "$W/c8" verify b8 2>&1)
expect_match "8: a big bundle file names limits.file_bytes" "$OUT" \
    "handlers/query/ping.lua: [0-9]+ bytes, over the limit of 1024 bytes \(limits.file_bytes\)"
rm -rf b8/handlers/query/ping.lua
ln -s nowhere.lua b8/handlers/query/ping.lua
OUT=$("$SERFHAND" -c "$W/c8" verify b8 2>&1)
expect_match "8: a listed dangling symlink names its path" "$OUT" \
    "PROBLEM     handlers/query/ping.lua: dangling symlink \(its target does not exist\)"
ln -s gone.lua b8/handlers/query/other.lua
OUT=$("$SERFHAND" -c "$W/c8" verify b8 2>&1)
expect_match "8: an unlisted dangling symlink names its path" "$OUT" \
    "PROBLEM     handlers/query/other.lua: dangling symlink \(its target does not exist\)"
: > "$W/log8"
run6 "$W/c8" > /dev/null
expect_match "8: a run names the dangling symlink" "$(cat "$W/log8")" \
    "handlers/query/ping.lua: dangling symlink"

# a mistyped inline key is reported as a key, not as a missing file
printf 'state_dir = "%s"\ntrust = { keys = { "%s" } }\n' "$S6" "$(sed -n 2p s1.pub | cut -c1-55)" > "$W/c8k"
OUT=$("$SERFHAND" -c "$W/c8k" verify b8 2>&1)
expect_match "8: a mistyped inline key: what is wrong with it" "$OUT" \
    "trust.keys\[1\] \"RW.{18}\.\.\.\": taken for an inline key .*public key: 55 base64 characters, want 56"

finish
