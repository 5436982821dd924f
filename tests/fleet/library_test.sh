#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The library as a user gets it: `cmake --install` into a folder, then examples/ built against that copy
# twice (find_package(vhdkit) with CMAKE_PREFIX_PATH, and pkg-config --cflags --libs vhdkit), and each
# build compacts an image, refereed by qemu-img. The installed headers include nothing of src/.
#   usage: library_test.sh SOURCE_DIR BUILD_DIR [SANITIZER_FLAGS]
set -euo pipefail
src=$(realpath "$1") build=$(realpath "$2") sanitize=${3:-}
work=$(mktemp -d /tmp/vhdkit-lib.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

cmake --install "$build" --prefix "$work/prefix" > /dev/null
for f in bin/vhdkit sbin/vhdkitd lib/libvhdkit.a include/vhdkit/vhdkit.h lib/cmake/vhdkit/vhdkit-config.cmake \
  lib/pkgconfig/vhdkit.pc; do
  [ -e "$work/prefix/$f" ] || fail "cmake --install did not install $f"
done
# Public headers stand alone: only standard headers and each other.
if grep -h '#include' "$work/prefix/include/vhdkit/"*.h | grep -v -e '<[a-z_]*>' -e '<vhdkit/'; then
  fail "an installed header includes something outside the standard library and vhdkit/"
fi

image() {
  qemu-img create -q -f vhdx -o block_size=1M "$1" 64M
  qemu-io -c "write -P 7 0 2M" -c "write -P 0 2M 8M" "$1" > /dev/null
  cp "$1" "$1.orig"
}
check() {  # PROGRAM IMAGE
  local before after
  before=$(stat -c %s "$2")
  "$1" "$2" prezeroed || fail "$1 failed"
  after=$(stat -c %s "$2")
  [ "$after" -lt "$before" ] || fail "$1 left $2 at $after bytes (was $before)"
  qemu-img check -q "$2" && qemu-img compare -q "$2.orig" "$2" || fail "$2 after $1"
}

cmake -S "$src/examples" -B "$work/cmake-build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_CXX_FLAGS="$sanitize" -DCMAKE_EXE_LINKER_FLAGS="$sanitize" > /dev/null
cmake --build "$work/cmake-build" > /dev/null || fail "the example does not build with find_package(vhdkit)"
image "$work/a.vhdx"
check "$work/cmake-build/compact_image" "$work/a.vhdx"

flags=$(PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig" pkg-config --cflags --libs vhdkit)
# shellcheck disable=SC2086
g++ $sanitize -o "$work/compact_image_pc" "$src/examples/compact_image.cpp" $flags || fail "pkg-config build: $flags"
image "$work/b.vhdx"
check "$work/compact_image_pc" "$work/b.vhdx"
echo "example built with find_package and with pkg-config ($flags); both compacted"
echo PASS
