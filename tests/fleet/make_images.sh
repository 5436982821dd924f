#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the batch tests' folder of small images in DIR (made fresh each time, with real tools):
#   gain-*        dynamic VHD/VHDX, 2 MiB of data and 10 MiB of zeros: compacted
#   lowgain-*     10 MiB of data and 2 MiB of zeros: below --min-gain 40
#   small-*       2 MiB of data: below --min-size 11M
#   fixed-*       fixed VHD/VHDX: refused by the mode (skipped)
#   base-*/child-* a parent and its differencing child: the parent skipped (32775), the child compacted
#   held/held.vhd (the caller holds it with qemu-io)   damaged/bad.vhd  a VHD whose dynamic header is damaged
#   noext         a compactable VHD found by content alone; notes.txt, not an image: ignored
#   link.vhd      a symbolic link to an image outside DIR
#   usage: make_images.sh VHDKIT DIR OUTSIDE_DIR
set -euo pipefail
vhdkit=$1 dir=$2 outside=$3
mkdir -p "$dir/users/a" "$dir/users/b" "$dir/wsl" "$dir/fixed" "$dir/held" "$dir/damaged" "$outside"
raws=$(mktemp -d)
trap 'rm -rf "$raws"' EXIT

# A raw disk of DATA MiB of 0x5a then ZERO MiB of zeros (made once per shape), converted without sparse
# detection (-S 0), so the zeros are allocated blocks the zero scan gives back. VHDX blocks are 1 MiB.
image() {  # FORMAT PATH DATA_MIB ZERO_MIB
  local fmt=$1 path=$2 data=$3 zero=$4 raw="$raws/$3-$4"
  if [ ! -f "$raw" ]; then
    python3 -c "import sys; f=open(sys.argv[1],'wb'); f.write(b'\x5a'*($data<<20)); f.write(b'\0'*($zero<<20))" "$raw"
  fi
  local opts=()
  [ "$fmt" = vhdx ] && opts=(-o block_size=1M)
  qemu-img convert -q -S 0 -f raw -O "$fmt" "${opts[@]}" "$raw" "$path"
}

for n in 1 2 3 4 5 6; do
  image vpc "$dir/users/a/gain-$n.vhd" 2 10
  image vhdx "$dir/users/b/gain-$n.vhdx" 2 10
done
for n in 1 2 3 4 5 6; do
  image vpc "$dir/wsl/gain-deep-$n.vhd" 1 11
  image vhdx "$dir/wsl/gain-deep-$n.vhdx" 1 11
done
for n in 1 2; do
  image vpc "$dir/users/a/lowgain-$n.vhd" 10 2
  image vhdx "$dir/users/b/lowgain-$n.vhdx" 10 2
  image vpc "$dir/users/a/small-$n.vhd" 2 0
  # vhdkit's own writer leaves no slack behind the last block (qemu's VHDX files keep some)
  "$vhdkit" create --format vhdx --size 4M --block-size 1M "$dir/users/b/small-$n.vhdx" >/dev/null
  "$vhdkit" write -p 0x5a -l 2M "$dir/users/b/small-$n.vhdx" 0 >/dev/null
done
"$vhdkit" create --format vhd --type fixed --size 12M "$dir/fixed/fixed-1.vhd" >/dev/null
qemu-img create -q -f vhdx -o subformat=fixed,block_size=1M "$dir/fixed/fixed-2.vhdx" 12M
qemu-img create -q -f vpc -o subformat=fixed "$dir/fixed/fixed-3.vhd" 12M
for fmt in vhd vhdx; do
  for n in 1 2; do
    q=$([ $fmt = vhd ] && echo vpc || echo vhdx)
    image $q "$dir/wsl/base-$n.$fmt" 2 10
    bs=$([ $fmt = vhd ] && echo 2M || echo 1M)
    "$vhdkit" create --format $fmt --block-size $bs --parent "$dir/wsl/base-$n.$fmt" "$dir/wsl/child-$n.$fmt" >/dev/null
    "$vhdkit" write -p 0x33 -l 2M "$dir/wsl/child-$n.$fmt" 0 >/dev/null
    "$vhdkit" write -p 0 -l 10M "$dir/wsl/child-$n.$fmt" 2M >/dev/null
  done
done
image vpc "$dir/held/held.vhd" 2 10
image vpc "$dir/damaged/bad.vhd" 2 10
# The dynamic header (at the footer's Data Offset, 512 in qemu's files) loses its checksum.
printf '\xde\xad\xbe\xef' | dd of="$dir/damaged/bad.vhd" bs=1 seek=$((512 + 36)) conv=notrunc status=none
image vpc "$dir/users/noext" 2 10
echo "not an image" > "$dir/users/notes.txt"
image vpc "$outside/elsewhere.vhd" 2 10
ln -s "$outside/elsewhere.vhd" "$dir/link.vhd"
