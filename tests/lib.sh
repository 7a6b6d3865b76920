# tests/lib.sh: helpers for shell tests that drive the real binary.
# Source it, call `check NAME CMD...` or `ok`/`fail`, and `finish` last.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-build}
SERFHAND="$TOP/$BUILD/serfhand"
# The binary under test carries the ASan runtime (make SANITIZE=1): its
# resident set then holds shadow memory and freed blocks in quarantine.
T_SANITIZED=false
ldd "$SERFHAND" 2> /dev/null | grep -q libasan && T_SANITIZED=true
# What `env -i` must pass on to the binary under test so that a sanitizer
# report goes where tests/run collects it: "${SAN_ENV[@]}" after env -i.
SAN_ENV=()
if $T_SANITIZED; then
    for v in ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS; do
        [ -n "${!v:-}" ] && SAN_ENV+=("$v=${!v}")
    done
fi
T_PASS=0
T_FAIL=0
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/serfhand-test.XXXXXX")
T_PIDS=""
t_cleanup() { # SIGTERM to every tracked pid, 3 s for all of them, then SIGKILL
    local p left i
    # a suite's own clean-up first (detached processes it cannot track)
    if declare -F t_cleanup_hook > /dev/null; then t_cleanup_hook; fi
    for p in $T_PIDS; do kill "$p" 2>/dev/null; done
    for i in $(seq 30); do
        left=""
        for p in $T_PIDS; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
        [ -z "$left" ] && break
        sleep 0.1
    done
    for p in $left; do kill -9 "$p" 2>/dev/null; done
    # T_KEEP=1: keep the logs and state for a look after a failure
    if [ -n "${T_KEEP:-}" ]; then echo "kept $T_TMP" >&2; else rm -rf "$T_TMP"; fi
}
trap t_cleanup EXIT

ok()   { T_PASS=$((T_PASS + 1)); [ -n "${VERBOSE:-}" ] && echo "ok   $1"; return 0; }
fail() { T_FAIL=$((T_FAIL + 1)); echo "FAIL $1${2:+: $2}"; return 0; }
# check NAME CMD...: passes when CMD exits 0.
check() { local n=$1; shift; if "$@"; then ok "$n"; else fail "$n"; fi; }
# expect_eq NAME GOT WANT
expect_eq() {
    if [ "$2" = "$3" ]; then ok "$1"; else fail "$1" "got [$2], want [$3]"; fi
}
# expect_match NAME TEXT REGEX (grep -E)
expect_match() {
    if printf '%s' "$2" | grep -qE -- "$3"; then ok "$1"; else fail "$1" "[$2] does not match /$3/"; fi
}
# track PID: stopped and reaped by PID at exit.
track() { T_PIDS="$T_PIDS $1"; }
# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds or SECONDS
# of wall time have passed, however long each CMD takes.
wait_for() {
    local end=$((SECONDS + $1)); shift
    while :; do
        "$@" && return 0
        [ "$SECONDS" -gt "$end" ] && return 1
        sleep 0.1
    done
}
finish() {
    echo "$T_PASS passed, $T_FAIL failed"
    [ "$T_FAIL" -eq 0 ]
}
