#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Compaction benchmark (run by hand: `make bench`; not part of `make test`).
#
#   bench/run.sh BUILD_DIR            the standard run (below)
#   BENCH_GIB=2 bench/run.sh build    smaller main images when the disk is slow
#   BENCH_ONLY=vhdx bench/run.sh ...  only the VHD, only the VHDX, only the ext4 or only the ntfs (Full mode) cases
#   BENCH_EXT4="8 1600 2560"          the dirty-ext4 input: GiB, MiB of live files, MiB of deleted data
#   BENCH_NTFS="16 2048 4096"         the FSLogix-like NTFS input (GPT, VHDX): GiB, MiB live, MiB deleted
#   BENCH_ONLY=speed ...              only the issue-12 speed cases (speed_cases below: the disk's own rates by
#                                     fio, cold and warm, BENCH_REPS repetitions, medians, ratios)
#   BENCH_CACHE=warm ...              read each input into the page cache before its timed run (default: cold,
#                                     the page cache dropped before each timed run, as for a big image that
#                                     nobody read lately; dropping needs root)
#
# Cases: an 8 GiB dynamic VHD, every block allocated, two thirds zero-filled (make-image.sh zero-pattern); a
# 1 TiB VHD with 1 GiB allocated; an 8 GiB dynamic VHDX of 32 MiB blocks (WSL's size), every block allocated,
# half of them zero-filled; 1 TiB and 64 TiB VHDX with 1 GiB allocated. In Full mode: the dirty-ext4 input (an ext4
# in a GPT partition with live files and deleted random data, make-image.sh dirty-ext4; needs root and a loop
# device) as a dynamic VHD and as a VHDX of 32 MiB blocks, and on the bare disk as WSL2 lays it out.
#
# Each case compacts the same input twice in the same run: `vhdkit compact` in place, and `qemu-img convert`
# to a new file of the same format (what Linux users do today). Inputs are copied without holes: zero blocks
# are zeros on disk, as a guest that zero-filled its free space leaves them. Printed: wall time of each and
# their ratio (target: vhdkit <= 0.5x qemu-img), resulting file sizes (vhdkit's no larger than qemu-img's),
# peak RSS from /usr/bin/time -v (target < 64 MiB).
set -euo pipefail

build=${1:?usage: bench/run.sh BUILD_DIR}
vhdkit=$(realpath "$build/src/cli/vhdkit")
here=$(cd "$(dirname "$0")" && pwd)
make_image=${MAKE_IMAGE:-$here/../../shared/bench/make-image.sh}
gib=${BENCH_GIB:-8}
work=$(mktemp -d "${TMPDIR:-/tmp}/vhdkit-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT

for tool in qemu-img qemu-io /usr/bin/time "$vhdkit"; do
  command -v "$tool" >/dev/null || { echo "bench: missing $tool" >&2; exit 1; }
done

# prepare_cache FILE: the cache state the run measures, the same for both tools.
prepare_cache() {
  sync
  if [ "${BENCH_CACHE:-cold}" = warm ]; then cat "$1" > /dev/null; else echo 3 > /proc/sys/vm/drop_caches; fi
}

# timed LABEL INPUT CMD...: prepares the cache for INPUT, runs CMD under /usr/bin/time -v; sets SECS, RSS_KIB
# and IO (what the file systems read and wrote for it, in MiB: "File system inputs/outputs", 512-byte units).
timed() {
  local label=$1 input=$2; shift 2
  prepare_cache "$input"
  /usr/bin/time -v -o "$work/time.txt" "$@" > "$work/$label.out" 2>&1 || {
    echo "bench: $label failed:" >&2; cat "$work/$label.out" >&2; exit 1; }
  local wall
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")
  SECS=$(awk -v t="$wall" 'BEGIN { n = split(t, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }')
  RSS_KIB=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
  IO=$(awk -F': ' '/File system inputs/ {i = $2} /File system outputs/ {o = $2}
                   END { printf "read %d MiB, wrote %d MiB", i / 2048, o / 2048 }' "$work/time.txt")
}

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

# compare_tools NAME INPUT FORMAT [QEMU_OPTIONS]: vhdkit in place on one copy, qemu-img convert from another.
# qemu-img convert writes its output with cache=unsafe: when it exits, much of the new image is still in the
# page cache. vhdkit's result is on disk when it exits (it must be: it edits the only copy), so the fair
# comparison is with `qemu-img convert ... && sync OUTPUT`; both ratios are printed.
compare_tools() {
  local name=$1 input=$2 format=$3 options=${4:-} mode=${5:-prezeroed}
  local ext=${input##*.}
  local ours="$work/ours.$ext" theirs="$work/theirs.$ext" src="$work/src.$ext"
  cp --sparse=never "$input" "$ours"
  cp --sparse=never "$input" "$src"
  local before; before=$(stat -c %s "$input")
  local convert=(qemu-img convert -f "$format" -O "$format" ${options:+-o "$options"} "$src" "$theirs")

  timed vhdkit "$ours" "$vhdkit" compact --mode "$mode" "$ours"
  local v_secs=$SECS v_rss=$RSS_KIB v_io=$IO
  timed qemu "$src" "${convert[@]}"
  local q_secs=$SECS q_rss=$RSS_KIB q_io=$IO
  rm -f "$theirs"
  timed qemu-synced "$src" sh -c '"$@" && sync "$0"' "$theirs" "${convert[@]}"
  local s_secs=$SECS

  if [ "$mode" = prezeroed ]; then
    "$vhdkit" compare "$input" "$ours" > /dev/null || { echo "bench: $name: content differs!" >&2; exit 1; }
  else
    "check_${fs_check:-ext4}" "$name" "$ours" "$format"  # Full changes what free space reads: the file system is the referee
  fi
  local v_size q_size
  v_size=$(stat -c %s "$ours"); q_size=$(stat -c %s "$theirs")
  echo "== $name"
  echo "   input file                   $(mib "$before")"
  echo "   vhdkit compact               ${v_secs}s  peak RSS $((v_rss / 1024)) MiB  $v_io  result $(mib "$v_size")"
  echo "   qemu-img convert             ${q_secs}s  peak RSS $((q_rss / 1024)) MiB  $q_io  result $(mib "$q_size")"
  echo "   qemu-img convert + sync      ${s_secs}s  (the new image on disk, as vhdkit's is when it exits)"
  awk -v v="$v_secs" -v q="$q_secs" -v s="$s_secs" 'BEGIN {
    if (q > 0) printf "   time ratio vhdkit/qemu-img: %.2fx against convert + sync, %.2fx against convert alone (target <= 0.5x)\n", v / s, v / q }'
  [ "$v_size" -le "$q_size" ] && echo "   size: vhdkit's result is no larger than qemu-img's" \
                              || echo "   size: vhdkit's result is LARGER than qemu-img's"
  [ "$v_rss" -lt $((64 * 1024)) ] && echo "   memory: under 64 MiB" || echo "   memory: OVER 64 MiB"
  rm -f "$ours" "$theirs" "$src"
}

# check_ext4 NAME IMAGE FORMAT: qemu-img check, and e2fsck -fn on the ext4 the image holds (GPT partition 1, or
# the bare disk).
check_ext4() {
  local name=$1 image=$2 format=$3 raw="$work/check.raw"
  [ "$format" = vhdx ] && { qemu-img check -q -f vhdx "$image" || { echo "bench: $name: qemu-img check failed" >&2; exit 1; }; }
  qemu-img convert -f "$format" -O raw "$image" "$raw"
  local start
  start=$(sfdisk -d "$raw" 2>/dev/null | awk -F'[=,]' '/start=/{print $2; exit}' || true)  # none: bare
  if [ -n "$start" ]; then
    local size; size=$(sfdisk -d "$raw" | awk -F'[=,]' '/start=/{print $4; exit}')
    dd if="$raw" of="$raw.part" bs=1M iflag=skip_bytes,count_bytes skip=$((start * 512)) count=$((size * 512)) status=none
    mv "$raw.part" "$raw"
  fi
  e2fsck -fn "$raw" > "$work/e2fsck.out" 2>&1 || { echo "bench: $name: e2fsck failed:" >&2; cat "$work/e2fsck.out" >&2; exit 1; }
  rm -f "$raw"
}

# check_ntfs NAME IMAGE FORMAT: qemu-img check, and ntfsfix -n on the NTFS in GPT partition 1.
check_ntfs() {
  local name=$1 image=$2 format=$3 raw="$work/check.raw"
  [ "$format" = vhdx ] && { qemu-img check -q -f vhdx "$image" || { echo "bench: $name: qemu-img check failed" >&2; exit 1; }; }
  qemu-img convert -f "$format" -O raw "$image" "$raw"
  local start size
  start=$(sfdisk -d "$raw" | awk -F'[=,]' '/start=/{print $2; exit}')
  size=$(sfdisk -d "$raw" | awk -F'[=,]' '/start=/{print $4; exit}')
  dd if="$raw" of="$raw.part" bs=1M iflag=skip_bytes,count_bytes skip=$((start * 512)) count=$((size * 512)) conv=sparse status=none
  rm -f "$raw"
  ntfsfix -n "$raw.part" > "$work/ntfsfix.out" 2>&1 || { echo "bench: $name: ntfsfix -n failed:" >&2; cat "$work/ntfsfix.out" >&2; exit 1; }
  rm -f "$raw.part"
}

# alone NAME INPUT: vhdkit only (qemu-img would read every virtual byte of a huge VHDX: it has no block status
# for the format). Prints time, peak RSS and sizes.
alone() {
  local name=$1 input=$2
  local ours="$work/ours.${input##*.}"
  cp --sparse=always "$input" "$ours"
  local before; before=$(stat -c %s "$ours")
  timed vhdkit "$ours" "$vhdkit" compact --mode prezeroed "$ours"
  "$vhdkit" compare "$input" "$ours" > /dev/null || { echo "bench: $name: content differs!" >&2; exit 1; }
  echo "== $name"
  echo "   vhdkit compact               ${SECS}s  peak RSS $((RSS_KIB / 1024)) MiB  $IO  $(mib "$before") -> $(mib "$(stat -c %s "$ours")")"
  rm -f "$ours"
}

# scattered FORMAT SIZE BLOCK OUT: a huge dynamic image with 1 GiB allocated in 32 blocks of 32 MiB (VHD: 512
# of 2 MiB) spread over the disk, every other one zero-filled.
scattered() {
  local format=$1 size=$2 block=$3 out=$4 count=$(( 1024 / $3 ))
  if [ "$format" = vpc ]; then qemu-img create -q -f vpc -o subformat=dynamic,force_size=on "$out" "$size"
  else qemu-img create -q -f vhdx -o block_size=${block}M "$out" "$size"; fi
  local virtual; virtual=$(qemu-img info --output=json -f "$format" "$out" | awk -F'[:,]' '/"virtual-size"/ {print $2}')
  local stride=$(( virtual / count / (block << 20) * (block << 20) ))
  local cmds=() i off
  for ((i = 0; i < count; i++)); do
    off=$(( i * stride ))
    if ((i % 2)); then cmds+=(-c "write -P 0 $off ${block}M"); else cmds+=(-c "write -P $((i % 250 + 1)) $off ${block}M"); fi
  done
  qemu-io -f "$format" "${cmds[@]}" "$out" > /dev/null
}

# ---- Issue 12: a scan at the speed of the disk ----
# disk_rates: the disk itself, in the same run: sequential O_DIRECT 4 MiB reads and writes with fio, one
# stream and queue depths 4 and 16, on a BENCH_FIO_MIB file of the bench's folder. Sets BEST_READ (MB/s).
disk_rates() {
  command -v fio >/dev/null || { echo "bench: missing fio (scripts/install-deps.sh installs it)" >&2; exit 1; }
  local file="$work/fio.dat" mibs=${BENCH_FIO_MIB:-1024} rw depth bw
  BEST_READ=0
  echo "== the disk (fio, O_DIRECT, 4 MiB sequential, ${mibs} MiB file in $work)"
  for rw in write read; do
    for depth in 1 4 16; do
      bw=$(fio --name=disk --filename="$file" --size="${mibs}M" --rw="$rw" --bs=4M --direct=1 --ioengine=libaio \
             --iodepth="$depth" --numjobs=1 --output-format=json 2>/dev/null |
           python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; print(int((j["read"]["bw_bytes"]+j["write"]["bw_bytes"])/1e6))')
      printf '   %-5s queue depth %-2s  %5s MB/s\n' "$rw" "$depth" "$bw"
      if [ "$rw" = read ] && [ "$bw" -gt "$BEST_READ" ]; then BEST_READ=$bw; fi
    done
  done
  rm -f "$file"
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# speed_case NAME INPUT FORMAT QEMU_OPTIONS SPARSE: INPUT copied with cp --sparse=SPARSE (never: zeros on disk;
# always: zero runs as holes), then per cache state (cold, warm) BENCH_REPS runs of vhdkit (Prezeroed, in place,
# a fresh copy each time) and of qemu-img convert + sync; medians, their ratio, and vhdkit's cold read rate
# (what the file systems read for it / its time) as a fraction of the disk's best read rate.
speed_case() {
  local name=$1 input=$2 format=$3 options=$4 sparse=$5 reps=${BENCH_REPS:-2}
  local ext=${input##*.} cache i
  local ours="$work/speed-ours.$ext" src="$work/speed-src.$ext" theirs="$work/speed-theirs.$ext"
  cp --sparse="$sparse" "$input" "$src"
  echo "== $name, copied with cp --sparse=$sparse ($(mib "$(stat -c %s "$src")") file, $(mib "$(( $(stat -c %b "$src") * 512 ))") allocated)"
  for cache in cold warm; do
    local v_times=() q_times=() v_reads=() v_rss=0
    for ((i = 0; i < reps; i++)); do
      cp --sparse="$sparse" "$src" "$ours"
      BENCH_CACHE=$cache timed vhdkit "$ours" "$vhdkit" compact --mode prezeroed "$ours"
      v_times+=("$SECS"); v_rss=$(( RSS_KIB > v_rss ? RSS_KIB : v_rss ))
      v_reads+=("$(awk -F': ' '/File system inputs/ {print $2 * 512}' "$work/time.txt")")
      "$vhdkit" compare "$src" "$ours" > /dev/null || { echo "bench: $name: content differs!" >&2; exit 1; }
      rm -f "$theirs"
      BENCH_CACHE=$cache timed qemu "$src" sh -c '"$@" && sync "$0"' "$theirs" \
        qemu-img convert -f "$format" -O "$format" ${options:+-o "$options"} "$src" "$theirs"
      q_times+=("$SECS")
    done
    local v q r
    v=$(printf '%s\n' "${v_times[@]}" | median); q=$(printf '%s\n' "${q_times[@]}" | median)
    r=$(printf '%s\n' "${v_reads[@]}" | median)
    awk -v c="$cache" -v v="$v" -v q="$q" -v r="$r" -v best="$BEST_READ" -v rss="$v_rss" -v n="$reps" 'BEGIN {
      rate = v > 0 ? r / v / 1e6 : 0
      printf "   %-4s vhdkit %6.2fs  qemu-img convert + sync %6.2fs  ratio %.2fx  (medians of %d)  peak RSS %d MiB\n",
             c, v, q, (q > 0 ? v / q : 0), n, rss / 1024
      if (c == "cold") printf "        vhdkit read %.0f MiB from the disk: %.0f MB/s, %.0f%% of the disk'"'"'s best read (%d MB/s)\n",
             r / 1048576, rate, (best > 0 ? 100 * rate / best : 0), best }'
  done
  rm -f "$ours" "$src" "$theirs"
}

speed_cases() {
  disk_rates
  "$make_image" zero-pattern "$work/zero.raw" $((gib * 1024))
  qemu-img convert -f raw -S 0 -O vpc -o subformat=dynamic,force_size=on "$work/zero.raw" "$work/zero.vhd"
  qemu-img convert -f raw -S 0 -O vhdx -o block_size=2M "$work/zero.raw" "$work/zero.vhdx"
  rm -f "$work/zero.raw"
  for sparse in never always; do
    speed_case "${gib} GiB zero-pattern VHD" "$work/zero.vhd" vpc subformat=dynamic "$sparse"
    speed_case "${gib} GiB zero-pattern VHDX (2 MiB blocks)" "$work/zero.vhdx" vhdx block_size=2M "$sparse"
  done
  rm -f "$work/zero.vhd" "$work/zero.vhdx"
  scattered vpc 1T 2 "$work/big.vhd"
  speed_case "1 TiB virtual VHD, 1 GiB allocated (half zero-filled)" "$work/big.vhd" vpc subformat=dynamic never
  rm -f "$work/big.vhd"
}

echo "vhdkit compaction benchmark ($(date -u +%FT%TZ), $(nproc) cores, cache: ${BENCH_CACHE:-cold})"

if [ "${BENCH_ONLY:-speed}" = speed ]; then speed_cases; fi

if [ "${BENCH_ONLY:-vhd}" = vhd ]; then
  # 1. A ${gib} GiB dynamic VHD, every block allocated, two thirds of them zero-filled (make-image.sh zero-pattern).
  "$make_image" zero-pattern "$work/zero.raw" $((gib * 1024))
  qemu-img convert -f raw -S 0 -O vpc -o subformat=dynamic,force_size=on "$work/zero.raw" "$work/zero.vhd"
  rm -f "$work/zero.raw"
  compare_tools "${gib} GiB dynamic VHD, all blocks allocated, 2/3 zero-filled" "$work/zero.vhd" vpc subformat=dynamic
  rm -f "$work/zero.vhd"

  # 2. A 1 TiB virtual disk with 1 GiB allocated: the time must follow the allocated bytes, not the virtual size.
  scattered vpc 1T 2 "$work/big.vhd"
  compare_tools "1 TiB virtual VHD, 1 GiB allocated (half zero-filled)" "$work/big.vhd" vpc subformat=dynamic
  rm -f "$work/big.vhd"
fi

if [ "${BENCH_ONLY:-vhdx}" = vhdx ]; then
  # 3. A ${gib} GiB dynamic VHDX of 32 MiB blocks, every block allocated, every other block zero-filled.
  raw="$work/half.raw"
  rm -f "$raw"; truncate -s "${gib}G" "$raw"
  for ((i = 0; i < gib * 32; i += 2)); do
    dd if=/dev/urandom of="$raw" bs=1M seek=$((i * 32)) count=32 conv=notrunc status=none
  done
  qemu-img convert -f raw -S 0 -O vhdx -o block_size=32M "$raw" "$work/half.vhdx"
  rm -f "$raw"
  compare_tools "${gib} GiB dynamic VHDX, 32 MiB blocks, all allocated, half zero-filled" "$work/half.vhdx" vhdx block_size=32M
  rm -f "$work/half.vhdx"

  # 4. 1 TiB and 64 TiB virtual, 1 GiB allocated in 32 MiB blocks: time follows the allocated bytes.
  scattered vhdx 1T 32 "$work/big.vhdx"
  compare_tools "1 TiB virtual VHDX, 1 GiB allocated (half zero-filled)" "$work/big.vhdx" vhdx block_size=32M
  alone "1 TiB virtual VHDX, 1 GiB allocated, vhdkit alone" "$work/big.vhdx"
  rm -f "$work/big.vhdx"
  scattered vhdx 64T 32 "$work/huge.vhdx"
  alone "64 TiB virtual VHDX, 1 GiB allocated (qemu-img would read all 64 TiB: not run)" "$work/huge.vhdx"
  rm -f "$work/huge.vhdx"
fi

if [ "${BENCH_ONLY:-ext4}" = ext4 ]; then
  # 5. Full mode on the dirty-ext4 input: what a file-system-aware compaction gains where the zero scan gains
  # nothing (the deleted data is not zero). As VHD, as VHDX with 32 MiB blocks (GPT), and bare as WSL2 has it.
  read -r e_gib e_live e_deleted <<< "${BENCH_EXT4:-8 1600 2560}"
  for layout in gpt bare; do
    "$make_image" dirty-ext4 "$work/dirty.raw" "$e_gib" "$e_live" "$e_deleted" "$layout"
    if [ "$layout" = gpt ]; then
      qemu-img convert -f raw -O vpc -o subformat=dynamic "$work/dirty.raw" "$work/dirty.vhd"
      compare_tools "dirty ext4 ${e_gib} GiB (GPT, ${e_live} MiB live, ${e_deleted} MiB deleted), dynamic VHD, Full" \
        "$work/dirty.vhd" vpc subformat=dynamic full
      rm -f "$work/dirty.vhd"
    fi
    qemu-img convert -f raw -O vhdx -o block_size=32M "$work/dirty.raw" "$work/dirty.vhdx"
    rm -f "$work/dirty.raw"
    compare_tools "dirty ext4 ${e_gib} GiB ($layout, ${e_live} MiB live, ${e_deleted} MiB deleted), VHDX 32 MiB blocks, Full" \
      "$work/dirty.vhdx" vhdx block_size=32M full
    rm -f "$work/dirty.vhdx"
  done
fi

if [ "${BENCH_ONLY:-ntfs}" = ntfs ]; then
  # 6. Full mode on an NTFS VHDX as FSLogix leaves a profile container: GPT, one NTFS partition (mkntfs on a
  # loop device), live files and deleted random data written through an ntfs-3g mount. Needs root.
  read -r n_gib n_live n_deleted <<< "${BENCH_NTFS:-16 2048 4096}"
  raw="$work/ntfs.raw" mnt="$work/ntfs.mnt"
  rm -f "$raw"; truncate -s "${n_gib}G" "$raw"
  printf 'label: gpt\nstart=2048, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n' | sfdisk -q "$raw"
  part_start=$(sfdisk -d "$raw" | awk -F'[=,]' '/start=/{print $2; exit}')
  part_size=$(sfdisk -d "$raw" | awk -F'[=,]' '/start=/{print $4; exit}')
  loop=$(losetup --find --show -o $((part_start * 512)) --sizelimit $((part_size * 512)) "$raw")
  trap 'umount "$mnt" 2>/dev/null || true; losetup -d "$loop" 2>/dev/null || true; rm -rf "$work"' EXIT
  mkntfs -q -f "$loop" > /dev/null 2>&1
  mkdir -p "$mnt"
  ntfs-3g "$loop" "$mnt"
  mkdir -p "$mnt/live" "$mnt/deleted"
  for ((i = 0; i < n_live / 64; i++)); do head -c 64M /dev/urandom > "$mnt/live/f$i"; done
  for ((i = 0; i < n_deleted / 64; i++)); do head -c 64M /dev/urandom > "$mnt/deleted/f$i"; done
  sync
  rm -rf "$mnt/deleted"
  umount "$mnt"
  losetup -d "$loop"
  trap 'rm -rf "$work"' EXIT
  qemu-img convert -f raw -O vhdx "$raw" "$work/ntfs.vhdx"
  rm -f "$raw"
  "$vhdkit" compact --dry-run --mode full "$work/ntfs.vhdx" | sed -n 's/^  gpt at/   dry run: gpt at/p'
  fs_check=ntfs compare_tools "NTFS ${n_gib} GiB (GPT, ${n_live} MiB live, ${n_deleted} MiB deleted), VHDX, Full" \
    "$work/ntfs.vhdx" vhdx "" full
  rm -f "$work/ntfs.vhdx"
fi
