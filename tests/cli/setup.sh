#!/usr/bin/env bash
# tests/cli/setup.sh: the README's commands work in one invocation on a machine
# without the build's packages, and scripts/deps.sh installs what is missing.
# Nothing real is installed or removed: a copy of the tree gets a stub
# scripts/deps.sh that "installs" by creating a marker, and a pkg-config in
# front of PATH that fails until that marker exists, as on a fresh machine
# (without -I/usr/include/lua5.4, lua.h is not found). The demo, test, bench
# and fuzz runners of the copy are stubs that only check the build.
. "$(dirname "$0")/../lib.sh"
# a `make test` above us must not lend this make its jobserver or flags
unset MAKEFLAGS MFLAGS MAKELEVEL

# scripts/deps.sh against stand-ins for dpkg-query, id and apt-get (never the
# real ones: deps.sh is not run unless apt-get resolves to the stand-in).
# MISSING: the packages dpkg-query reports absent; UID_IS: what id -u says;
# STALE=1: install fails until update ran; BROKEN=1: install always fails.
S=$T_TMP/shim
mkdir -p "$S"
cat > "$S/dpkg-query" <<'SH'
#!/bin/sh
for p in $MISSING; do [ "$p" = "$3" ] && exit 1; done
printf 'install ok installed'
SH
cat > "$S/id" <<'SH'
#!/bin/sh
echo "$UID_IS"
SH
cat > "$S/apt-get" <<'SH'
#!/bin/sh
echo "$1" >> "$APT_LOG"
case $1 in
update) touch "$APT_LOG.updated" ;;
install)
    [ -z "${BROKEN:-}" ] || exit 100
    [ -z "${STALE:-}" ] || [ -e "$APT_LOG.updated" ] || exit 100
    echo "install args: $*" >> "$APT_LOG" ;;
esac
SH
chmod +x "$S/dpkg-query" "$S/id" "$S/apt-get"
deps() { # MISSING UID [VAR=VALUE...]: runs deps.sh, apt-get's calls in $T_TMP/apt.log
    local missing=$1 uid=$2
    shift 2
    rm -f "$T_TMP/apt.log" "$T_TMP/apt.log.updated"
    if [ "$(PATH=$S:$PATH command -v apt-get)" != "$S/apt-get" ]; then
        echo "apt-get stand-in not first in PATH" > "$T_TMP/deps.out"
        return 99
    fi
    env PATH="$S:$PATH" MISSING="$missing" UID_IS="$uid" APT_LOG="$T_TMP/apt.log" "$@" \
        sh "$TOP/scripts/deps.sh" > "$T_TMP/deps.out" 2>&1
}
apt_calls() { grep -v '^install args' "$T_TMP/apt.log" 2> /dev/null | tr '\n' ' '; }
deps "" 0
expect_eq "deps: all installed: exit 0" "$?" 0
expect_eq "deps: all installed: no apt-get" "$(apt_calls)" ""
deps "serf minisign" 1000
expect_eq "deps: not root: exit 2" "$?" 2
expect_match "deps: not root: names the missing packages" "$(cat "$T_TMP/deps.out")" "need root.*serf minisign"
expect_eq "deps: not root: no apt-get" "$(apt_calls)" ""
deps "liblua5.4-dev spin" 0
expect_eq "deps: installs the missing ones" "$?" 0
expect_eq "deps: lists present: no update" "$(apt_calls)" "install "
expect_match "deps: installs only the missing ones" "$(cat "$T_TMP/apt.log")" "install args: .* liblua5\.4-dev spin$"
deps "spin" 0 STALE=1
expect_eq "deps: stale lists: exit 0" "$?" 0
expect_eq "deps: stale lists: update, then install again" "$(apt_calls)" "install update install "
deps "spin" 0 BROKEN=1
expect_eq "deps: install keeps failing: exit 2" "$?" 2
expect_eq "deps: install keeps failing: one retry only" "$(apt_calls)" "install update install "
expect_match "deps: install keeps failing: says so" "$(cat "$T_TMP/deps.out")" "could not install: spin"
# every package .ci/run removes to imitate a fresh machine is one deps.sh installs again
list=" $(env PATH="$S:$PATH" MISSING="" UID_IS=1000 APT_LOG=/dev/null sh "$TOP/scripts/deps.sh" --list |
    tr '\n' ' ') "
removed=$(sed -n 's/^FRESH_REMOVE="\(.*\)"$/\1/p' "$TOP/.ci/run")
check ".ci/run names the packages it removes" test -n "$removed"
for p in $removed; do
    case $list in *" $p "*) ok "deps.sh installs $p" ;; *) fail "deps.sh installs $p" "not in:$list" ;; esac
done

REAL_PKG_CONFIG=$(command -v pkg-config) || { fail "pkg-config is installed"; finish; exit; }
C=$T_TMP/tree
MARK=$T_TMP/deps-installed
mkdir -p "$C" "$T_TMP/bin"
if git -C "$TOP" rev-parse --git-dir > /dev/null 2>&1; then # tracked and new files, no build
    (cd "$TOP" && git ls-files -co --exclude-standard -z | tar --null -cf - -T - 2>/dev/null) |
        tar -C "$C" -xf -
else
    tar -C "$TOP" --exclude=./.git --exclude='./build*' --exclude=./serfhand -cf - . | tar -C "$C" -xf -
fi

cat > "$T_TMP/bin/pkg-config" <<EOF
#!/bin/sh
[ -e "$MARK" ] || exit 1
exec "$REAL_PKG_CONFIG" "\$@"
EOF
# slow on purpose: a compile that does not wait for deps starts meanwhile
cat > "$C/scripts/deps.sh" <<EOF
#!/bin/sh
sleep 1
echo "stub deps: installed"
touch "$MARK"
EOF
# each runner stub: the binary it is given was built, runs, and pkg-config works now
for r in examples/demo.sh tests/run bench/run tests/fuzz/run; do
    cat > "$C/$r" <<EOF
#!/bin/sh
set -e
"$REAL_PKG_CONFIG" --exists lua5.4
pkg-config --cflags lua5.4 | grep -q -- -I
"\$BUILD/serfhand" --help > /dev/null
echo "stub $r ran"
EOF
done
chmod +x "$T_TMP/bin/pkg-config" "$C/scripts/deps.sh" "$C"/examples/demo.sh "$C"/tests/run \
    "$C"/bench/run "$C"/tests/fuzz/run
PATH=$T_TMP/bin:$PATH
export PATH
check "the fake pkg-config fails before deps" sh -c "! pkg-config --exists lua5.4"

fresh() { rm -rf "$C/build" "$C/serfhand" "$MARK"; } # as after a clone, packages missing
mk() { make -C "$C" --no-print-directory CFLAGS=-O0 "$@" > "$T_TMP/make.out" 2>&1; }
out() { tail -n 20 "$T_TMP/make.out"; }
# in_order NAME FIRST THEN: both lines are in make's output, FIRST before THEN
in_order() {
    local a b
    a=$(grep -n -m1 -- "$2" "$T_TMP/make.out" | cut -d: -f1)
    b=$(grep -n -m1 -- "$3" "$T_TMP/make.out" | cut -d: -f1)
    if [ -n "$a" ] && [ -n "$b" ] && [ "$a" -lt "$b" ]; then ok "$1"; else fail "$1" "$(out)"; fi
}

# 1. plain `make` without the packages: a clear message naming `make deps`,
#    before any compiler runs
fresh
mk -j2
expect_eq "make without packages fails" "$?" 2
expect_match "make without packages names make deps" "$(out)" "make deps"
expect_match "make without packages names the missing libraries" "$(out)" "lua5\.4.*libsodium"
if grep -q 'lua.h' "$T_TMP/make.out"; then fail "no compiler error before the message" "$(out)"; else
    ok "no compiler error before the message"; fi
check "nothing was compiled" sh -c "! ls '$C'/build/*.o > /dev/null 2>&1"
check "deps did not run" test ! -e "$MARK"

# 2. the README's first command, once, after a clone
fresh
mk demo
expect_eq "make demo in one invocation" "$?" 0
in_order "make demo ran deps, then the demo" "stub deps: installed" "stub examples/demo.sh ran"

# 3. the second command, once, from scratch, in parallel
fresh
mk -j2 test
expect_eq "make -j2 test in one invocation" "$?" 0
in_order "make -j2 test ran deps, then the tests" "stub deps: installed" "stub tests/run ran"
check "make -j2 test built the unit tests" test -x "$C/build/test_store"

# 4. bench, fuzz and `make deps all` in one invocation, with the packages
#    gone again (a changed source must be compiled with the flags read after deps)
rm -f "$MARK"; touch "$C/src/main.c"
mk -j2 bench
expect_eq "make -j2 bench in one invocation" "$?" 0
expect_match "make bench ran the bench" "$(out)" "stub bench/run ran"
rm -f "$MARK"
mk fuzz
expect_eq "make fuzz in one invocation" "$?" 0
expect_match "make fuzz ran the fuzzers" "$(out)" "stub tests/fuzz/run ran"
rm -f "$MARK"; touch "$C/src/main.c"
mk -j2 deps all
expect_eq "make -j2 deps all in one invocation" "$?" 0
check "make -j2 deps all built the binary" sh -c "\"$C/build/serfhand\" --help > /dev/null"

# 5. .ci/run of the copy, with make, apt-get and tests/run as stand-ins that
#    log their calls (nothing is removed or built): it removes the build's
#    packages only as root with CI=true or --fresh, reads apt's plan first and
#    refuses one that takes more, then runs the README's commands, no deps first.
#    EXTRA: packages apt's plan adds (as if something depended on ours).
CS=$T_TMP/cishim
CI_LOG=$T_TMP/ci.log
mkdir -p "$CS"
cp "$S/dpkg-query" "$S/id" "$CS/"
cat > "$CS/apt-get" <<'SH'
#!/bin/sh
if [ "$1" = -s ]; then
    shift 2
    for p in "$@" $EXTRA; do echo "Remv $p:amd64 [1.0]"; done
    exit 0
fi
echo "apt-get $*" >> "$CI_LOG"
SH
cat > "$CS/make" <<'SH'
#!/bin/sh
echo "make $*" >> "$CI_LOG"
SH
cat > "$CS/pkg-config" <<'SH'
#!/bin/sh
exit 1
SH
cat > "$C/tests/run" <<'SH'
#!/bin/sh
echo "tests/run $*" >> "$CI_LOG"
SH
chmod +x "$CS"/* "$C/tests/run"
ci() { # CI UID [ARG]: .ci/run of the copy, all installed; its calls in $CI_LOG
    rm -f "$CI_LOG"
    for t in apt-get make; do
        if [ "$(PATH=$CS:$PATH command -v $t)" != "$CS/$t" ]; then
            echo "$t stand-in not first in PATH" > "$T_TMP/ci.out"
            return 99
        fi
    done
    env PATH="$CS:$PATH" CI="$1" UID_IS="$2" MISSING="" CI_LOG="$CI_LOG" EXTRA="${EXTRA:-}" \
        bash "$C/.ci/run" ${3:+"$3"} > "$T_TMP/ci.out" 2>&1
}
ci_calls() { cat "$CI_LOG" 2> /dev/null; }
rest="make demo
make test
make format-check
make lint
make SANITIZE=1 all unit
tests/run unit lua cli tests/cluster/runtime.sh tests/cluster/serf_rpc.sh tests/cluster/update.sh tests/cluster/proc_spawn.sh tests/cluster/evil.sh tests/cluster/faults.sh tests/cluster/factom_restart.sh tests/cluster/cluster_view.sh"
removed=$(sed -n 's/^FRESH_REMOVE="\(.*\)"$/\1/p' "$C/.ci/run")
ci true 0
expect_eq "ci as root with CI=true: exit 0" "$?" 0
expect_eq "ci as root with CI=true: remove, then the README's commands" "$(ci_calls)" \
    "apt-get remove -y -qq $removed
$rest"
expect_match "ci prints apt's plan" "$(cat "$T_TMP/ci.out")" "would remove: liblua5\.4-dev .*libsqlite3-dev"
ci "" 0
expect_eq "ci as root without CI=true: nothing removed" "$(ci_calls)" "$rest"
ci "" 0 --fresh
expect_eq "ci --fresh: removes" "$(ci_calls | head -n 1)" "apt-get remove -y -qq $removed"
ci true 1000
expect_eq "ci not root: nothing removed" "$(ci_calls)" "$rest"
EXTRA="base-thing" ci true 0
expect_eq "ci refuses a removal that takes more: exit 2" "$?" 2
expect_eq "ci refuses a removal that takes more: nothing run" "$(ci_calls)" ""
expect_match "ci refuses a removal that takes more: names it" "$(cat "$T_TMP/ci.out")" "also remove: base-thing"

finish
