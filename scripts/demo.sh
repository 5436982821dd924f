#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make demo: compacts a dirty demo disk (ext4 in a VHDX, as WSL2 makes them, and the same in a VHD) and
# shows the gain, with qemu-img, e2fsck and debugfs as referees; then a tour of the other subcommands on an
# image made by vhdkit's own writer.
set -euo pipefail
vhdkit=$(realpath "${1:?path to the vhdkit binary}")
work=$(mktemp -d "${TMPDIR:-/tmp}/vhdkit-demo-XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
say() { printf '%s\n' "$*" | fold -s -w 100; }
# Shows the command, runs it, and keeps going when it exits non-zero (the demo shows failures on purpose).
show() {
  local words=() a
  for a in "$@"; do
    [ "$a" = "$vhdkit" ] && a=vhdkit
    [[ "$a" == *" "* ]] && a="'$a'"
    words+=("$a")
  done
  printf '%s$ %s%s\n' "$bold" "${words[*]}" "$plain"
  local status=0
  "$@" 2>&1 || status=$?
  [ "$status" -eq 0 ] || printf '(exit status %s)\n' "$status"
  return 0
}

say "vhdkit demo, working in $work"

step "1. A dirty disk: ext4 in a 1 GiB VHDX, as WSL2 keeps a Linux distribution"
say "40 MiB of files in an ext4 file system; every block of the VHDX was written once, as a guest that" \
    "zero-filled its free space leaves it (the usual recipe before compacting). The file holds the whole disk."
mkdir files
head -c 24M /dev/urandom > files/photos.bin
seq 1 200000 > files/numbers.txt
cp -r /usr/share/common-licenses files/licenses
truncate -s 1G disk.raw
mkfs.ext4 -q -d files disk.raw
qemu-img convert -f raw -S 0 -O vhdx -o block_size=32M disk.raw ext4.vhdx
cp --sparse=always ext4.vhdx ext4-before.vhdx
show ls -lh ext4.vhdx
show "$vhdkit" info ext4.vhdx

step "2. What compaction would gain: a dry run writes nothing"
show "$vhdkit" compact --dry-run ext4.vhdx

step "3. Compact it in place"
say "Blocks that read as zeros are released, blocks near the end move into the holes, the file shrinks." \
    "A power cut at any moment leaves a valid image with the same content; running again finishes the work."
show "$vhdkit" compact ext4.vhdx
show ls -lh ext4-before.vhdx ext4.vhdx

step "4. The referees: same content, sound structure, the file system intact"
show qemu-img check ext4.vhdx
show qemu-img compare ext4-before.vhdx ext4.vhdx
show vhdiinfo ext4.vhdx
show qemu-img convert -O raw ext4.vhdx after.raw
show e2fsck -fn after.raw
show debugfs -R 'cat /numbers.txt' after.raw 2>/dev/null | tail -n 1
rm -f after.raw

step "5. The same disk as a dynamic VHD (Virtual PC, Azure)"
qemu-img convert -f raw -S 0 -O vpc -o subformat=dynamic disk.raw ext4.vhd
cp --sparse=always ext4.vhd ext4-before.vhd
rm -f disk.raw
show "$vhdkit" compact ext4.vhd
show qemu-img compare -f vpc -F vpc ext4-before.vhd ext4.vhd
show ls -lh ext4-before.vhd ext4.vhd
rm -f ext4-before.vhd ext4-before.vhdx ext4.vhd

say ""
say "The rest of the demo is a tour of the other subcommands."

step "6. Create a 1 GiB dynamic VHD"
say "A dynamic VHD stores only the 2 MiB blocks that were written; a new one is a few KiB whatever its size."
show "$vhdkit" create --size 1G demo.vhd
show ls -ls demo.vhd

step "7. Write into it through vhdkit's own writer"
say "3 MiB of the byte 0xab at offset 0 (two blocks), and a text file at 600 MiB (one more block)."
show "$vhdkit" write demo.vhd 0 --pattern 0xab --length 3M
printf 'Hello from inside a virtual disk.\n' > note.txt
show "$vhdkit" write demo.vhd 600M --from note.txt

step "8. What vhdkit sees: info"
say "Format and type, virtual size, blocks allocated of total, file size, creator, and the VHD's own fields."
show "$vhdkit" info demo.vhd

step "9. Where the data lives: map"
say "Each extent of the virtual disk: 'data' is stored in this file at 'host offset'; 'zero' reads as zeros" \
    "and takes no space. (--json prints the same shape as qemu-img map --output=json.)"
show "$vhdkit" map demo.vhd

step "10. Is it well-formed? vhdkit check, then the referees"
show "$vhdkit" check demo.vhd
say "qemu-img has no structural check for VHD ('vpc'), so we let qemu-img and libvhdi read the image instead:"
show qemu-img info -f vpc demo.vhd
show vhdiinfo demo.vhd
show qemu-io -f vpc -r -c 'read -P 0xab 0 3M' -c 'read -P 0 3M 597M' demo.vhd

step "11. Compare virtual contents: vhdkit compare (any two of raw, VHD, VHDX)"
say "qemu-img converts the VHD to a raw image; both tools then agree the contents are identical."
show qemu-img convert -f vpc -O raw demo.vhd demo.raw
show "$vhdkit" compare demo.vhd demo.raw
show qemu-img compare -f vpc -F raw demo.vhd demo.raw

step "12. A differencing disk on top of it"
say "The child stores only what changes; everything else is read from its parent."
show "$vhdkit" create --parent demo.vhd child.vhd
show "$vhdkit" write child.vhd 1M --pattern 0x11 --length 4K
show "$vhdkit" info child.vhd
show "$vhdkit" compare demo.vhd child.vhd
say "Exit status 1 means 'different'; the offset is that of the first differing 512-byte sector."

step "13. The same with VHDX, which qemu-img can check"
show "$vhdkit" create --format vhdx --size 1G demo.vhdx
show "$vhdkit" write demo.vhdx 0 --pattern 0xab --length 3M
show "$vhdkit" write demo.vhdx 600M --from note.txt
show qemu-img check -f vhdx demo.vhdx
show "$vhdkit" compare demo.vhd demo.vhdx
show "$vhdkit" map demo.vhdx
say "'unallocated' blocks have no data in this file and no parent to read from: they read as zeros."

step "14. A damaged copy"
# The BAT's offset is the dynamic header's Table Offset (8 bytes, big-endian, at 512 + 16).
bat=$(od -An -t u1 -j 528 -N 8 demo.vhd | awk '{ for (i = 1; i <= NF; i++) v = v * 256 + $i } END { print v }')
say "Overwrite the first BAT entry (at offset $bat) so that it points far past the end of the file."
show cp demo.vhd broken.vhd
printf '\x00\xff\xff\x00' | dd of=broken.vhd bs=1 seek="$bat" conv=notrunc status=none
before=$(sha256sum broken.vhd | cut -c1-64)
show "$vhdkit" check broken.vhd
show "$vhdkit" info broken.vhd
after=$(sha256sum broken.vhd | cut -c1-64)
say "The damaged file was not changed by any of this: sha256 before ${before:0:16}..., after ${after:0:16}..."

step "Done"
say "Every subcommand explains itself: vhdkit --help, vhdkit <subcommand> --help."
