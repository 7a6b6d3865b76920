# `make install` / `make uninstall`: what lands where (DESTDIR into a
# scratch directory), the systemd units checked by systemd-analyze verify,
# the docs' relative links resolving in the repository and in the installed
# copy, and the units agreeing with what the docs' install steps create.
. "$(dirname "$0")/../lib.sh"

MAKEVARS="BUILD=$BUILD"
[ "$BUILD" = build-san ] && MAKEVARS="$MAKEVARS SANITIZE=1"
ROOT="$T_TMP/root"
# shellcheck disable=SC2086
OUT=$(make -s -C "$TOP" install DESTDIR="$ROOT" PREFIX=/usr/local $MAKEVARS 2>&1); RC=$?
expect_eq "make install DESTDIR=... succeeds" "$RC" 0
[ "$RC" -eq 0 ] || printf '%s\n' "$OUT"

# --- what lands where --------------------------------------------------------
D=/usr/local/share/serfhand
DOC=/usr/local/share/doc/serfhand
U=/usr/local/lib/systemd/system
{
    echo "755 /usr/local/bin/serfhand"
    for f in "$TOP"/types/*.lua; do echo "644 $D/types/${f##*/}"; done
    echo "644 $D/luacheckrc"
    echo "644 $D/luarc.json"
    echo "644 $D/serfhand.conf.sample"
    echo "644 $D/systemd/serf.service.d/serfhand.conf"
    echo "644 $U/serfhand-tick.service"
    echo "644 $U/serfhand-tick.timer"
    echo "644 $DOC/README.md"
    echo "644 $DOC/serfhand.conf.sample"
    for f in "$TOP"/docs/*.md; do echo "644 $DOC/docs/${f##*/}"; done
    (cd "$TOP" && find examples/hello -type f) | sed "s|^|644 $DOC/|"
} | sort > "$T_TMP/want"
(cd "$ROOT" && find . -type f -printf '%m %p\n' | sed 's|^\([0-9]*\) \.|\1 |') | sort > "$T_TMP/got"
expect_eq "every file lands where it should, with its mode (< missing, > unexpected)" \
    "$(diff "$T_TMP/want" "$T_TMP/got")" ""
[ -n "${VERBOSE:-}" ] && sed 's/^/    /' "$T_TMP/got"
expect_eq "no symlink is installed" "$(find "$ROOT" -type l)" ""
expect_eq "no @PLACEHOLDER@ is left in an installed file" \
    "$(grep -rlE '@(BINDIR|DATADIR|DOCDIR)@' "$ROOT" 2>/dev/null)" ""
expect_eq "no installed file names the DESTDIR" "$(grep -rl "$ROOT" "$ROOT" 2>/dev/null)" ""
check "the installed binary runs" sh -c "'$ROOT/usr/local/bin/serfhand' help test > /dev/null"
expect_match "the serf drop-in runs the installed binary as the event handler" \
    "$(cat "$ROOT$D/systemd/serf.service.d/serfhand.conf")" \
    '^ExecStart=/usr/bin/serf agent -config-dir=/etc/serf/ -event-handler "\*=exec /usr/local/bin/serfhand -c /etc/serfhand/serfhand.conf"$'
expect_match "the tick unit runs the installed binary" "$(cat "$ROOT$U/serfhand-tick.service")" \
    '^ExecStart=/usr/local/bin/serfhand -c /etc/serfhand/serfhand.conf tick$'
expect_eq "luarc.json is JSON and points LuaLS at the installed types" \
    "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["workspace.library"][0])' "$ROOT$D/luarc.json")" \
    "$D/types"
if command -v luacheck > /dev/null; then
    OUT=$(cd "$ROOT$DOC/examples/hello" && luacheck --no-color --config "$ROOT$D/luacheckrc" . 2>&1); RC=$?
    expect_eq "the installed luacheckrc passes the installed example" "$RC" 0
else
    fail "luacheck is needed (make deps installs lua-check)"
fi

# --- the docs' relative links, in the repository and installed --------------
cat > "$T_TMP/links.py" <<'PY'
# Every relative Markdown link of README.md and docs/*.md under ROOT must name
# a file or directory that exists; a #fragment must name a heading there.
import glob, os, re, sys
root = sys.argv[1]
def slug(h):
    h = re.sub(r"[`*_]", "", h.strip().lower())
    return re.sub(r"[^a-z0-9 -]", "", h).replace(" ", "-")
def anchors(path):
    with open(path) as f:
        return {slug(m.group(1)) for m in re.finditer(r"^#+ (.*)$", f.read(), re.M)}
bad, n = [], 0
for md in [os.path.join(root, "README.md")] + sorted(glob.glob(os.path.join(root, "docs", "*.md"))):
    text = re.sub(r"```.*?```", "", open(md).read(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        n += 1
        path, _, frag = target.partition("#")
        full = os.path.normpath(os.path.join(os.path.dirname(md), path)) if path else md
        where = os.path.relpath(md, root) + ": " + target
        if not os.path.exists(full):
            bad.append(where + ": no such file")
        elif not os.path.realpath(full).startswith(os.path.realpath(root) + os.sep):
            bad.append(where + ": outside the tree")
        elif frag and full.endswith(".md") and frag not in anchors(full):
            bad.append(where + ": no heading #" + frag)
print("%d links" % n)
for b in bad:
    print(b)
PY
OUT=$(python3 "$T_TMP/links.py" "$TOP"); N=$(printf '%s\n' "$OUT" | head -n 1)
expect_eq "every relative link in README.md and docs/*.md resolves in the repository" \
    "$(printf '%s\n' "$OUT" | tail -n +2)" ""
check "links were found ($N)" sh -c "[ '${N% links}' -ge 8 ]"
OUT=$(python3 "$T_TMP/links.py" "$ROOT$DOC")
expect_eq "every relative link resolves in the installed copy ($DOC)" \
    "$(printf '%s\n' "$OUT" | tail -n +2)" ""
expect_eq "the installed copy has as many links" "$(printf '%s\n' "$OUT" | head -n 1)" "$N"
# Files a reader of the installed docs does not have: the project's design
# notes and reference pages, and anything up the tree.
OUT=$(grep -nE '\.\./shared|shared/reference|reference/[a-z-]+\.md|DESIGN(\.md| section| [0-9])' \
    "$TOP/README.md" "$TOP"/docs/*.md)
expect_eq "README.md and docs/ name no file outside the repository" "$OUT" ""
OUT=$(grep -oE '\]\(\.\./[^)]*\)' "$TOP/README.md" "$TOP"/docs/*.md | grep -vE '\]\(\.\./(README\.md|serfhand\.conf\.sample|examples/hello)')
expect_eq "links up from docs/ stop at what install copies" "$OUT" ""

# --- systemd-analyze verify ------------------------------------------------
# A PREFIX install without DESTDIR, so that ExecStart= names a binary that
# exists (verify checks it); Debian's serf.service with the drop-in beside it.
if ! command -v systemd-analyze > /dev/null; then
    fail "systemd-analyze is needed (make deps installs systemd)"
elif [ ! -f /lib/systemd/system/serf.service ]; then
    fail "Debian's /lib/systemd/system/serf.service is needed (make deps installs serf)"
else
    P="$T_TMP/p"
    # shellcheck disable=SC2086
    make -s -C "$TOP" install PREFIX="$P" $MAKEVARS > /dev/null 2>&1
    UNITS="$T_TMP/units"
    mkdir -p "$UNITS/serf.service.d"
    cp /lib/systemd/system/serf.service "$UNITS/"
    cp "$P/share/serfhand/systemd/serf.service.d/serfhand.conf" "$UNITS/serf.service.d/"
    cp "$P/lib/systemd/system/serfhand-tick.service" "$P/lib/systemd/system/serfhand-tick.timer" "$UNITS/"
    for u in serf.service serfhand-tick.service serfhand-tick.timer; do
        OUT=$(SYSTEMD_UNIT_PATH="$UNITS:" systemd-analyze verify "$UNITS/$u" 2>&1); RC=$?
        expect_eq "systemd-analyze verify $u: exit 0" "$RC" 0
        # unknown keys and bad values are only warnings: none may appear
        expect_eq "systemd-analyze verify $u: says nothing" "$OUT" ""
    done
    # verify reads the drop-in: a broken one is noticed
    sed 's|^ExecStart=/usr/bin/serf |ExecStart=/nonexistent/serf |' \
        "$P/share/serfhand/systemd/serf.service.d/serfhand.conf" > "$UNITS/serf.service.d/serfhand.conf"
    OUT=$(SYSTEMD_UNIT_PATH="$UNITS:" systemd-analyze verify "$UNITS/serf.service" 2>&1)
    expect_match "verify reads the drop-in (a wrong ExecStart there is reported)" "$OUT" "/nonexistent/serf"
fi

# --- the units agree with the docs' install steps ----------------------------
OPS="$TOP/docs/operators.md"
USERS=$(grep -hE '^(User|Group)=' "$TOP"/systemd/serf.service.d/serfhand.conf.in "$TOP"/systemd/*.service.in |
    cut -d= -f2 | sort -u)
expect_eq "every unit runs as one user and group" "$USERS" "serfhand"
check "operators.md creates that system user" grep -qE '^useradd --system .*serfhand$' "$OPS"
expect_match "the sample's state_dir is the units' StateDirectory" \
    "$(grep -E '^state_dir' "$TOP/serfhand.conf.sample")" '^state_dir = "/var/lib/serfhand"$'
check "both units create the state directory 0700 for that user" sh -c \
    "grep -qx 'StateDirectoryMode=0700' '$TOP/systemd/serf.service.d/serfhand.conf.in' &&
     grep -qx 'StateDirectoryMode=0700' '$TOP/systemd/serfhand-tick.service.in'"
expect_eq "operators.md creates the state directory only for that user, 0700" \
    "$(grep -E 'install -d .*/var/lib/serfhand' "$OPS" | grep -vx 'install -d -m 0700 -o serfhand -g serfhand /var/lib/serfhand')" ""
expect_eq "operators.md shows no unit of its own that runs as another user" \
    "$(grep -nE '^User=' "$OPS" | grep -v 'User=serfhand')" ""

# --- uninstall ----------------------------------------------------------------
# A file of the operator's own next to ours, and a DATADIR typed one level
# too high: uninstall removes what install put there, nothing else.
echo mine > "$ROOT/usr/local/share/keep-me"
# shellcheck disable=SC2086
make -s -C "$TOP" uninstall DESTDIR="$ROOT" PREFIX=/usr/local DATADIR=/usr/local/share $MAKEVARS > /dev/null 2>&1
check "uninstall with DATADIR one level too high leaves the neighbours" test -f "$ROOT/usr/local/share/keep-me"
# shellcheck disable=SC2086
make -s -C "$TOP" uninstall DESTDIR="$ROOT" PREFIX=/usr/local $MAKEVARS > /dev/null 2>&1
expect_eq "make uninstall removes every file install put there" \
    "$(find "$ROOT" -type f)" "$ROOT/usr/local/share/keep-me"
expect_eq "and serfhand's own directories" "$(find "$ROOT" -name '*serfhand*')" ""
finish
