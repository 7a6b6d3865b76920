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

finish
