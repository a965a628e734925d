#!/usr/bin/env bash
# bootstrap.sh - install Castellan's build dependencies (Debian 12), build it,
# and optionally run a command with the built binary.
#
#   tools/bootstrap.sh            install + build into build/
#   tools/bootstrap.sh demo [SCENARIO] [options]
#                                 ... then run the end-to-end demo
#                                 (build/tests/e2e/castellan-demo, tests/e2e/)
#   tools/bootstrap.sh CMD ...    ... then run `castellan CMD ...`
#
# Needs root (or sudo) only for apt-get, and only when a package is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential meson ninja-build pkg-config clang libclang-rt-14-dev
      libssl-dev libdvbcsa-dev libevent-dev libjansson-dev libcmocka-dev libsqlite3-dev
      libpq-dev postgresql pcscd libpcsclite-dev vsmartcard-vpcd
      softhsm2 libp11-kit-dev chromium python3
      libinih-dev help2man debhelper dpkg-dev python3-prometheus-client systemd
      libavformat-dev libavcodec-dev libswscale-dev libavutil-dev libfreetype-dev fonts-dejavu-core ffmpeg)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "bootstrap: installing ${missing[*]}"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The web panel's browser test drives Debian's chromium with playwright-core
# (npm). Node comes from Debian when the machine has none.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null ||
		echo "bootstrap: nodejs/npm not installed: the browser test will be skipped"
fi
if [ -f tests/web/package-lock.json ] && [ ! -d tests/web/node_modules ] && command -v npm >/dev/null; then
	(cd tests/web && npm ci --no-audit --no-fund --silent) ||
		echo "bootstrap: npm ci failed: the browser test will be skipped"
fi

if [ ! -f build/build.ninja ]; then
	meson setup build --buildtype=debugoptimized >/dev/null
fi
ninja -C build >/dev/null
echo "bootstrap: built build/src/cli/castellan"

if [ "${1:-}" = demo ]; then
	shift
	exec build/tests/e2e/castellan-demo "$@"
elif [ $# -gt 0 ]; then
	exec build/src/cli/castellan "$@"
fi
