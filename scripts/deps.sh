#!/bin/sh
# Install the Debian packages that serfhand's build, tests, demo, bench, fuzz,
# lint and format-check need, and only those that are missing. Safe to run
# again; needs root to install. `scripts/deps.sh --list` prints the list.
set -eu
# build: build-essential pkg-config *-dev (lua-cjson-dev: the static archive)
# tests, demo, bench: lua5.4 lua-cjson serf minisign python3 (simulators)
#   curl (bundle server checks) openssl (an independent Ed25519 check)
# fuzz: clang libclang-rt-14-dev (libFuzzer)   lint: lua-check cppcheck clang-tidy
# format-check: clang-format   the restart protocol's model: spin
# cluster fault tests: faketime (libfaketime: clock skew per node), iproute2
#   (ip: a network namespace per node)
# the shipped systemd units: systemd (systemd-analyze verify; not in minbase)
pkgs="build-essential pkg-config liblua5.4-dev lua5.4 libsodium-dev libcurl4-openssl-dev \
libsqlite3-dev lua-cjson-dev lua-cjson serf minisign python3 curl openssl \
clang libclang-rt-14-dev lua-check cppcheck clang-tidy clang-format spin faketime iproute2 \
systemd"
if [ "${1:-}" = --list ]; then
    echo "$pkgs"
    exit 0
fi
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2> /dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: need root to install:$missing" >&2
    exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt_install() {
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=120 $missing
}
apt_update() {
    apt-get update -qq || { echo "deps: apt-get update failed" >&2; exit 2; }
}
# A fresh machine has no package lists yet: read them first.
ls /var/lib/apt/lists/*_Packages* > /dev/null 2>&1 || apt_update
# Stale lists (a package was updated since and its old file is gone) make the
# install fail: one update, one more try.
if ! apt_install; then
    echo "deps: install failed; updating the package lists and trying once more"
    apt_update
    apt_install || { echo "deps: could not install:$missing" >&2; exit 2; }
fi
