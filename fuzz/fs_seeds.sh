#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Seeds of fuzz_fs, made at run time by the real tools: small raw disks with ext2/3/4 (some with files,
# some deleted), swap, MBR with logical partitions, GPT with several partitions, XFS, LVM2.   fs_seeds.sh DIR
set -euo pipefail
out=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out" "$tmp/content/d"
echo hello > "$tmp/content/a"
head -c 20000 /dev/urandom > "$tmp/content/d/b"
head -c 3000 /dev/urandom > "$tmp/content/c"

mkfs() {  # name size options...
  local name=$1 size=$2
  shift 2
  truncate -s "$size" "$tmp/$name"
  mke2fs -q -F -N 16 -d "$tmp/content" "$@" "$tmp/$name" > /dev/null 2>&1
  debugfs -w -R "rm /c" "$tmp/$name" > /dev/null 2>&1
}
mkfs ext2 96K -t ext2 -b 1024
mkfs ext4 160K -t ext4 -O ^has_journal -b 1024
mkfs ext4-32bit 160K -t ext4 -O ^has_journal,^64bit -b 1024
mkfs bigalloc 256K -t ext4 -O ^has_journal,bigalloc -C 4096 -b 1024
mkfs meta_bg 160K -t ext4 -O ^has_journal,meta_bg,^resize_inode -b 1024
mkfs ext3 1100K -t ext3 -b 1024 -J size=1
cp "$tmp"/ext2 "$tmp"/ext4 "$tmp"/bigalloc "$tmp"/meta_bg "$tmp"/ext4-32bit "$out"/
truncate -s 64K "$out/swap" && mkswap -q "$out/swap" > /dev/null 2>&1

truncate -s 384K "$out/mbr"
printf 'label: dos\nstart=8, size=192, type=83\nstart=200, type=5\nstart=208, size=192, type=83\nstart=560, size=128, type=82\n' |
  sfdisk -q "$out/mbr" > /dev/null 2>&1
dd if="$tmp/ext2" of="$out/mbr" bs=512 seek=8 conv=notrunc status=none
dd if="$tmp/ext4" of="$out/mbr" bs=512 seek=208 conv=notrunc status=none
dd if="$out/swap" of="$out/mbr" bs=512 seek=560 conv=notrunc status=none

truncate -s 512K "$out/gpt"
printf 'label: gpt\nfirst-lba: 34\nstart=64, size=320, type=linux\nstart=384, size=128, type=swap\nstart=512, size=64, type=lvm\nstart=576, size=320, type=linux\n' |
  sfdisk -q "$out/gpt" > /dev/null 2>&1
dd if="$tmp/ext4" of="$out/gpt" bs=512 seek=64 conv=notrunc status=none
dd if="$tmp/bigalloc" of="$out/gpt" bs=512 seek=576 count=320 conv=notrunc status=none
cp "$tmp/ext3" "$out/ext3"

# NTFS (mkntfs, files added through an ntfs-3g mount, one deleted), FAT12 (mkfs.vfat, mcopy, mdel), bare
# and behind GPT, and signature-only volumes (named and kept whole). FAT16 and FAT32 need 4085 and 65525
# clusters (2 and 32 MiB), more than the fuzzer's max_len: their BPB checks are fuzzed from the FAT12 seeds.
truncate -s 1100K "$tmp/ntfs"
mkntfs -q -F -f -c 512 "$tmp/ntfs" > /dev/null 2>&1
mkdir -p "$tmp/ntfs.mnt"
trap 'umount "$tmp/ntfs.mnt" 2>/dev/null || true; rm -rf "$tmp"' EXIT
ntfs-3g "$tmp/ntfs" "$tmp/ntfs.mnt"
cp -r "$tmp/content/." "$tmp/ntfs.mnt/"
rm "$tmp/ntfs.mnt/c"
umount "$tmp/ntfs.mnt"
cp "$tmp/ntfs" "$out/ntfs"
truncate -s 64K "$out/fat12" && mkfs.vfat -F 12 "$out/fat12" > /dev/null 2>&1
MTOOLS_SKIP_CHECK=1 mcopy -s -i "$out/fat12" "$tmp/content/a" "$tmp/content/c" ::/
MTOOLS_SKIP_CHECK=1 mdel -i "$out/fat12" ::/c

truncate -s 1170K "$out/gpt-ntfs"
printf 'label: gpt\nfirst-lba: 34\nstart=64, size=2200, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n' |
  sfdisk -q "$out/gpt-ntfs" > /dev/null 2>&1
dd if="$tmp/ntfs" of="$out/gpt-ntfs" bs=512 seek=64 conv=notrunc status=none
truncate -s 512K "$out/gpt-fat"
printf 'label: gpt\nfirst-lba: 34\nstart=64, size=128, type=U\nstart=192, size=256, type=linux\n' |
  sfdisk -q "$out/gpt-fat" > /dev/null 2>&1
dd if="$out/fat12" of="$out/gpt-fat" bs=512 seek=64 conv=notrunc status=none
# A LUKS2, a btrfs and an MD 1.2 signature in one GPT partition each.
truncate -s 512K "$out/gpt-named"
printf 'label: gpt\nfirst-lba: 34\nstart=64, size=256, type=linux\nstart=320, size=256, type=linux\nstart=576, size=256, type=linux\n' |
  sfdisk -q "$out/gpt-named" > /dev/null 2>&1
printf 'LUKS\272\276\000\002' | dd of="$out/gpt-named" bs=1 seek=$((64 * 512)) conv=notrunc status=none
printf '_BHRfS_M' | dd of="$out/gpt-named" bs=1 seek=$((320 * 512 + 65536 + 64)) conv=notrunc status=none
printf '\374\116\053\251\001\000\000\000' | dd of="$out/gpt-named" bs=1 seek=$((576 * 512 + 4096)) conv=notrunc status=none

# XFS v5 and v4 (mkfs.xfs makes nothing under 16 MiB, so libFuzzer's -max_len cuts these seeds: they fuzz the
# superblock's checks; the reader's depth is covered by tests/fsmodes/xfslvm_test.cpp), and an LVM2 PV of
# 1 MiB (64 KiB extents) with an ext2 LV and the extents of a removed LV, made on a loop device without
# device-mapper (--driverloaded n, --devices so that only this PV is seen).
export TEST_DEV=1 TEST_DIR=1 QA_CHECK_FS=1  # mkfs.xfs refuses small file systems outside its test suite
truncate -s 16M "$out/xfs5" && mkfs.xfs -q -f -b size=1024 "$out/xfs5" > /dev/null 2>&1
truncate -s 16M "$out/xfs4" && mkfs.xfs -q -f -b size=1024 -m crc=0 "$out/xfs4" > /dev/null 2>&1
truncate -s 1M "$out/lvm"
loop=$(losetup -f --show "$out/lvm")
lvm_seed() { "$@" --driverloaded n --devices "$loop" --config 'devices/pv_min_size=512 backup/backup=0 backup/archive=0' > /dev/null 2>&1; }
vg="fuzzseed$$"
lvm_seed pvcreate -q -y --metadatasize 64k --dataalignment 64k "$loop"
lvm_seed vgcreate -q -s 64k "$vg" "$loop"
lvm_seed lvcreate -q -an -Zn -L 128k -n old "$vg"
lvm_seed lvcreate -q -an -Zn -L 256k -n data "$vg"
lvm_seed lvremove -q -y "$vg/old"
losetup -d "$loop"
# The data LV's extents 2-5 follow pe_start (128 KiB): an ext2 with deleted data there.
truncate -s 256K "$tmp/lvext" && mke2fs -q -F -N 16 -t ext2 -b 1024 -d "$tmp/content" "$tmp/lvext" > /dev/null 2>&1
debugfs -w -R "rm /c" "$tmp/lvext" > /dev/null 2>&1
dd if="$tmp/lvext" of="$out/lvm" bs=64K seek=4 conv=notrunc status=none
