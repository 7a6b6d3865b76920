#!/bin/sh
# Install the Debian packages that serfhand's build, tests and demo need,
# and only those that are missing. Safe to run again; needs root to install.
set -eu
pkgs="build-essential pkg-config liblua5.4-dev lua5.4 libsodium-dev libcurl4-openssl-dev \
libsqlite3-dev lua-cjson-dev lua-cjson serf minisign python3 lua-check clang libclang-rt-14-dev openssl"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing"
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: need root to install:$missing" >&2
    exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
