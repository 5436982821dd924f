#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The Debian package: CPack builds vhdkit_VERSION_ARCH.deb from BUILD, lintian finds no error (warnings are
# printed), and the unpacked package (dpkg-deb -x) holds what the README promises; its binaries run --help
# and compact an image (refereed by qemu-img), its man pages render, its unit starts the packaged vhdkitd.
#   usage: deb_test.sh BUILD_DIR
set -euo pipefail
build=$(realpath "$1")
work=$(mktemp -d /tmp/vhdkit-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

(cd "$build" && cpack -G DEB -B "$work/out" > "$work/cpack.log" 2>&1) || fail "cpack: $(tail -5 "$work/cpack.log")"
deb=$(ls "$work"/out/vhdkit_*_*.deb)
[[ "$(basename "$deb")" =~ ^vhdkit_[0-9]+\.[0-9]+\.[0-9]+_[a-z0-9]+\.deb$ ]] || fail "package name $(basename "$deb")"
lintian --fail-on error "$deb" > "$work/lintian.txt" 2>&1 || fail "lintian: $(cat "$work/lintian.txt")"
echo "lintian: $(grep -c '^E:' "$work/lintian.txt" || true) errors; warnings:"
grep '^[WI]:' "$work/lintian.txt" || echo "  none"

dpkg-deb -x "$deb" "$work/root"
dpkg-deb -e "$deb" "$work/control"
for f in usr/bin/vhdkit usr/sbin/vhdkitd usr/lib/libvhdkit.a usr/include/vhdkit/vhdkit.h usr/lib/pkgconfig/vhdkit.pc \
  usr/lib/cmake/vhdkit/vhdkit-config.cmake usr/share/man/man1/vhdkit.1.gz usr/share/man/man8/vhdkitd.8.gz \
  lib/systemd/system/vhdkitd.service etc/vhdkit/vhdkitd.conf usr/share/doc/vhdkit/copyright; do
  [ -e "$work/root/$f" ] || fail "the package has no $f"
done
grep -qx "/etc/vhdkit/vhdkitd.conf" "$work/control/conffiles" || fail "the config is not a conffile"
grep -q "mkdir -p /var/lib/vhdkit" "$work/control/postinst" && sh -n "$work/control/postinst" || fail "postinst"
grep -q "^ExecStart=/usr/sbin/vhdkitd " "$work/root/lib/systemd/system/vhdkitd.service" || fail "the unit's ExecStart"
zcat "$work/root/usr/share/man/man1/vhdkit.1.gz" | grep -q -- "--recursive" || fail "vhdkit.1 lacks compact --recursive"
man -l "$work/root/usr/share/man/man8/vhdkitd.8.gz" > /dev/null 2>&1 || fail "vhdkitd.8 does not render"

"$work/root/usr/bin/vhdkit" --help > /dev/null || fail "vhdkit --help"
"$work/root/usr/bin/vhdkit" compact --help > /dev/null || fail "vhdkit compact --help"
"$work/root/usr/sbin/vhdkitd" --help > /dev/null || fail "vhdkitd --help"
qemu-img create -q -f vhdx -o block_size=1M "$work/a.vhdx" 64M
qemu-io -c "write -P 9 0 2M" -c "write -P 0 2M 8M" "$work/a.vhdx" > /dev/null
cp "$work/a.vhdx" "$work/a0.vhdx"
before=$(stat -c %s "$work/a.vhdx")
"$work/root/usr/bin/vhdkit" compact --mode prezeroed "$work/a.vhdx" || fail "the packaged vhdkit did not compact"
after=$(stat -c %s "$work/a.vhdx")
[ "$after" -lt "$before" ] || fail "no gain: $before -> $after"
qemu-img check -q "$work/a.vhdx" && qemu-img compare -q "$work/a0.vhdx" "$work/a.vhdx" || fail "referee"
echo "$(basename "$deb"): $(stat -c %s "$deb") bytes; unpacked vhdkit compacted $before -> $after"
echo PASS
