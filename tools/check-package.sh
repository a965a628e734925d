#!/usr/bin/env bash
# check-package.sh - build the Debian package from a clean copy of the tree
# and check what it holds:
#   1. copy the tracked files (git ls-files: no build dirs, no local junk)
#      to a temporary directory and run `dpkg-buildpackage -b -us -uc` there
#      (DEB_BUILD_OPTIONS=nocheck: tools/test.sh runs the tests itself);
#   2. the .deb's contents: the binary, its man pages (one per command), the
#      units, the config files (conffiles), sysusers/tmpfiles, the web
#      panel, the docs; its control data (name, dependencies);
#   3. the binary from the package runs (help, --version) and checks the
#      installed example config (castellan headend --check-config);
#   4. `systemd-analyze verify` on both units, against the unpacked package.
# Output: one line per check; ends with "check-package: N passed, N failed"
# (exit 1 if any failed, 77 if dpkg-buildpackage is not installed).
#
#   tools/check-package.sh [--keep]     (--keep: keep the work directory)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
KEEP=0
[ "${1:-}" = --keep ] && KEEP=1

if ! command -v dpkg-buildpackage >/dev/null || ! command -v dh >/dev/null; then
	echo "check-package: SKIP: dpkg-buildpackage / debhelper not installed (tools/bootstrap.sh installs them)"
	exit 77
fi
passed=0
failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }

work=$(mktemp -d /tmp/castellan-pkg.XXXXXX)
cleanup() { [ "$KEEP" = 1 ] && echo "work dir kept: $work" || rm -rf "$work"; }
trap cleanup EXIT
src="$work/castellan"
mkdir -p "$src"
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$src"

# 1. build
start=$(date +%s)
if (cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=2" dpkg-buildpackage -b -us -uc) >"$work/build.log" 2>&1; then
	ok "dpkg-buildpackage -b -us -uc ($(($(date +%s) - start)) s)"
else
	tail -n 40 "$work/build.log"
	bad "dpkg-buildpackage -b -us -uc (log above)"
	echo "check-package: $passed passed, $failed failed"
	exit 1
fi
deb=$(ls "$work"/castellan_*.deb 2>/dev/null | grep -v dbgsym | head -n 1)
[ -n "$deb" ] && ok "package $(basename "$deb")" || bad "no castellan_*.deb"

# 2. contents
list=$(dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|')
has() {
	if grep -qx -- "$1" <<<"$list"; then ok "contains $1"; else bad "missing $1"; fi
}
has /usr/bin/castellan
has /lib/systemd/system/castellan-headend.service
has "/lib/systemd/system/castellan-scrambler@.service"
has /etc/castellan/headend.conf
has /etc/castellan/scrambler-example.conf
has /usr/lib/sysusers.d/castellan.conf
has /usr/lib/tmpfiles.d/castellan.conf
has /usr/share/castellan/web/index.html
has /usr/share/castellan/web/app.js
has /usr/share/doc/castellan/README.md.gz
has /usr/share/doc/castellan/docs/operations.md.gz
has /usr/share/doc/castellan/docs/configuration.md.gz
has /usr/share/man/man1/castellan.1.gz
# one man page per command of `castellan help`
cmds=$("$ROOT/build/src/cli/castellan" help 2>/dev/null | awk '/^  [a-z]/ && $1 != "help" {print $1}')
[ -n "$cmds" ] || cmds="headend scramble keys"
missing_man=0
for c in $cmds; do
	grep -qx "/usr/share/man/man1/castellan-$c.1.gz" <<<"$list" || { echo "  no man page for $c"; missing_man=1; }
done
[ "$missing_man" = 0 ] && ok "a man page for each of $(echo $cmds | wc -w) commands" || bad "man pages missing"
conff=$(dpkg-deb -f "$deb" Conffiles 2>/dev/null; dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles 2>/dev/null)
for f in /etc/castellan/headend.conf /etc/castellan/scrambler-example.conf; do
	grep -qx "$f" <<<"$conff" && ok "conffile $f" || bad "$f is not a conffile"
done
postinst=$(dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./postinst 2>/dev/null)
grep -q "systemd-sysusers .*castellan.conf" <<<"$postinst" &&
	ok "postinst creates the castellan user (systemd-sysusers)" || bad "postinst does not create the user"
depends=$(dpkg-deb -f "$deb" Depends)
grep -q "libinih" <<<"$depends" && grep -q "systemd" <<<"$depends" && ok "Depends: $(cut -c1-80 <<<"$depends")..." ||
	bad "Depends lacks libinih or systemd: $depends"

# 3. the packaged binary runs
root="$work/root"
dpkg-deb -x "$deb" "$root"
version=$("$root/usr/bin/castellan" --version 2>&1)
hhelp=$("$root/usr/bin/castellan" headend --help 2>&1)
if grep -q "^castellan " <<<"$version" && grep -q -- "--web-root DIR .*default /usr/share/castellan/web" <<<"$hhelp"; then
	ok "the packaged binary runs; its web panel default is /usr/share/castellan/web"
else
	bad "the packaged binary"
fi
out=$("$root/usr/bin/castellan" headend --config "$root/etc/castellan/headend.conf" --check-config 2>&1)
echo "$out" | grep -q "OK (" && ok "installed headend.conf passes --check-config" || bad "headend.conf: $out"
page=$(zcat "$root/usr/share/man/man1/castellan-headend.1.gz")
if grep -q '^castellan-headend \\- ' <<<"$page" && grep -q '\\-\\-check\\-config' <<<"$page"; then
	ok "castellan-headend(1) is its --help"
else
	bad "castellan-headend(1)"
fi

# 4. the units
for u in castellan-headend.service castellan-scrambler@.service; do
	f="$root/lib/systemd/system/$u"
	grep -q '^NoNewPrivileges=yes' "$f" && grep -q '^ProtectSystem=strict' "$f" && grep -q '^PrivateTmp=yes' "$f" &&
		grep -q '^ReadWritePaths=/var/lib/castellan' "$f" && ok "$u hardening" || bad "$u hardening"
done
grep -q '^LoadCredential=passphrase:' "$root/lib/systemd/system/castellan-headend.service" &&
	grep -q '^LoadCredential=db-uri:' "$root/lib/systemd/system/castellan-headend.service" &&
	ok "castellan-headend.service loads the passphrase and db-uri credentials" || bad "credentials"
# verify against the unpacked tree (ExecStart's binary is the package's),
# with the host's targets and kill(1) that the units refer to
mkdir -p "$root/etc/castellan/credentials" "$root/usr/bin"
for f in /lib/systemd/system/*.target /lib/systemd/system/*.slice /lib/systemd/system/*.socket; do
	[ -e "$root/lib/systemd/system/$(basename "$f")" ] || cp -P "$f" "$root/lib/systemd/system/" 2>/dev/null
done
cp /bin/kill "$root/usr/bin/kill"
[ -e "$root/bin" ] || ln -s usr/bin "$root/bin"
cp "$root/etc/castellan/scrambler-example.conf" "$root/etc/castellan/scrambler-test.conf"
cp "$root/lib/systemd/system/castellan-scrambler@.service" "$root/lib/systemd/system/castellan-scrambler@test.service" 2>/dev/null
vout=$(SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --root="$root" --man=no \
	"$root/lib/systemd/system/castellan-headend.service" \
	"$root/lib/systemd/system/castellan-scrambler@test.service" 2>&1)
vrc=$?
vout=$(grep -v -e '^$' <<<"$vout" || true)
if [ $vrc -eq 0 ] && [ -z "$vout" ]; then
	ok "systemd-analyze verify: both units clean"
else
	printf '%s\n' "$vout"
	bad "systemd-analyze verify (rc $vrc)"
fi

echo "check-package: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
