# tests/forge.sh: sign a bundle the way `serfhand sign` never would. Source it.
# forge_sign DIR KEY.sec: list every file under DIR/handlers and DIR/lua in
# DIR/MANIFEST.json as it is now (the rest of the manifest kept) and sign it
# with the real minisign (-W keys only), as any signer can who bypasses
# serfhand's checks. Nodes must still refuse what `check` would fail.
forge_sign() {
    local d=$1 key=$2 id
    python3 - "$d" <<'PY' || return 1
import hashlib, os, re, sys
d = sys.argv[1]
path = os.path.join(d, "MANIFEST.json")
files = []
for top in ("handlers", "lua"):
    for root, _, names in os.walk(os.path.join(d, top)):
        for n in names:
            p = os.path.join(root, n)
            b = open(p, "rb").read()
            files.append((os.path.relpath(p, d), len(b), hashlib.blake2b(b, digest_size=32).hexdigest()))
files.sort()
body = ",\n".join('    "%s": {"size": %d, "blake2b": "%s"}' % f for f in files)
man = re.sub(r'"files": \{.*\n  \}', lambda _: '"files": {\n' + body + '\n  }', open(path).read(), flags=re.S)
open(path, "w").write(man)
PY
    id=$(sed -n 1p "${key%.sec}.pub" | awk '{print $NF}')
    rm -f "$d"/MANIFEST.json.*.minisig
    minisign -S -s "$key" -m "$d/MANIFEST.json" -x "$d/MANIFEST.json.$id.minisig" < /dev/null > /dev/null
}
