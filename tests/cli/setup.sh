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

finish
