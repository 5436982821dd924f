#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# `vhdkit map --svg` and `compact --svg-before/--svg-after`: each picture renders with librsvg
# (rsvg-convert to a non-empty PNG) and its cells, counted per state, equal the block states of
# `vhdkit map --json`; an ext4 guest shows unused cells and its volume; a 64 TiB disk stays under 1 MiB.
#   usage: svg_test.sh VHDKIT
set -euo pipefail
vhdkit=$(realpath "$1")
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/vhdkit-svg.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

info() { "$vhdkit" info --json "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"; }

picture() {  # IMAGE SVG [--expect-unused]
  local img=$1 svg=$2
  shift 2
  [ -f "$svg" ] || "$vhdkit" map --svg "$svg" "$img" || fail "map --svg $img"
  rsvg-convert "$svg" -o "$svg.png" || fail "rsvg-convert $svg"
  [ -s "$svg.png" ] && head -c 8 "$svg.png" | grep -q PNG || fail "$svg.png is not a PNG"
  "$vhdkit" map --json "$img" > "$svg.map.json"
  local block
  block=$(info "$img" block-size)
  [ "$block" -gt 0 ] || block=$((2 * 1024 * 1024))
  python3 "$here/count_cells.py" "$svg" "$svg.map.json" "$block" "$(info "$img" virtual-size)" "$@" ||
    fail "cells of $svg"
}

# Data, zeros and never-written space, in a VHDX of 1 MiB blocks and a dynamic VHD.
qemu-img create -q -f vhdx -o block_size=1M "$work/a.vhdx" 64M
qemu-io -c "write -P 1 0 3M" -c "write -z 8M 2M" -c "write -P 2 20M 1536K" "$work/a.vhdx" > /dev/null
picture "$work/a.vhdx" "$work/a.svg"
qemu-img create -q -f vpc "$work/b.vhd" 64M
qemu-io -c "write -P 1 2M 3M" -c "write -P 0 30M 4M" "$work/b.vhd" > /dev/null
picture "$work/b.vhd" "$work/b.svg"

# A differencing child: what it reads from its parent.
"$vhdkit" create --format vhd --parent "$work/b.vhd" "$work/c.vhd" > /dev/null
"$vhdkit" write -p 0x44 -l 1M "$work/c.vhd" 40M > /dev/null
picture "$work/c.vhd" "$work/c.svg"
grep -q 'class="parent"' "$work/c.svg" || fail "no parent cells in c.svg"

# An ext4 guest converted with every block allocated: the free ones are "unused", the volume is drawn.
truncate -s 64M "$work/fs.raw"
mkfs.ext4 -q -F -b 4096 "$work/fs.raw"
qemu-img convert -q -S 0 -f raw -O vhdx -o block_size=1M "$work/fs.raw" "$work/fs.vhdx"
picture "$work/fs.vhdx" "$work/fs.svg" --expect-unused
grep -q 'class="partition"' "$work/fs.svg" || fail "no volume drawn in fs.svg"
grep -q 'ext4' "$work/fs.svg" || fail "the volume is not named ext4"

# The two pictures of one run.
cp "$work/fs.vhdx" "$work/run.vhdx"
"$vhdkit" compact --svg-before "$work/before.svg" --svg-after "$work/after.svg" "$work/run.vhdx" > /dev/null
picture "$work/run.vhdx" "$work/after.svg"
rsvg-convert "$work/before.svg" -o "$work/before.png" && [ -s "$work/before.png" ] || fail "before.svg"
cmp -s "$work/before.svg" "$work/after.svg" && fail "the pictures before and after compaction are the same"

# 64 TiB: a few runs, a small file.
qemu-img create -q -f vhdx "$work/huge.vhdx" 64T
qemu-io -c "write -P 3 1T 64M" -c "write -P 3 40T 1M" -c "write -z 50T 64M" "$work/huge.vhdx" > /dev/null
picture "$work/huge.vhdx" "$work/huge.svg"
size=$(stat -c %s "$work/huge.svg")
[ "$size" -lt 1048576 ] || fail "the 64 TiB picture is $size bytes"
echo "64 TiB picture: $size bytes"
echo PASS
