#!/bin/bash
# Compaction benchmark (run by hand: `make bench`; not part of `make test`).
#
#   bench/run.sh BUILD_DIR            the standard run: an 8 GiB dynamic VHD and a 1 TiB one with 1 GiB allocated
#   BENCH_GIB=2 bench/run.sh build    a smaller main image when the disk is slow
#   BENCH_DROP_CACHES=1 ...           drop the page cache before each timed run (root; default: warm cache,
#                                     both tools read the same freshly written, cached input)
#
# Each case compacts the same input twice in the same run: `vhdkit compact` in place, and
# `qemu-img convert -O vpc -o subformat=dynamic` to a new file (what Linux users do today). Printed: wall
# time of each and their ratio (target: vhdkit <= 0.5x qemu-img), resulting file sizes (vhdkit's no larger
# than qemu-img's), peak RSS from /usr/bin/time -v (target < 64 MiB).
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

drop_caches() {
  if [ "${BENCH_DROP_CACHES:-0}" = 1 ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi
}

# timed LABEL CMD...: runs CMD under /usr/bin/time -v; sets SECS and RSS_KIB.
timed() {
  local label=$1; shift
  drop_caches
  /usr/bin/time -v -o "$work/time.txt" "$@" > "$work/$label.out" 2>&1 || {
    echo "bench: $label failed:" >&2; cat "$work/$label.out" >&2; exit 1; }
  local wall
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")
  SECS=$(awk -v t="$wall" 'BEGIN { n = split(t, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; print s }')
  RSS_KIB=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
}

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

# compare_tools NAME INPUT.vhd: vhdkit in place on one copy, qemu-img convert from another.
compare_tools() {
  local name=$1 input=$2
  local ours="$work/ours.vhd" theirs="$work/theirs.vhd" src="$work/src.vhd"
  cp --sparse=always "$input" "$ours"
  cp --sparse=always "$input" "$src"
  local before; before=$(stat -c %s "$input")

  timed vhdkit "$vhdkit" compact --mode prezeroed "$ours"
  local v_secs=$SECS v_rss=$RSS_KIB
  timed qemu qemu-img convert -f vpc -O vpc -o subformat=dynamic "$src" "$theirs"
  local q_secs=$SECS q_rss=$RSS_KIB

  qemu-img compare -q -f vpc -F vpc "$input" "$ours" || { echo "bench: $name: content differs!" >&2; exit 1; }
  local v_size q_size
  v_size=$(stat -c %s "$ours"); q_size=$(stat -c %s "$theirs")
  echo "== $name"
  echo "   input file            $(mib "$before")"
  echo "   vhdkit compact        ${v_secs}s  peak RSS $((v_rss / 1024)) MiB  result $(mib "$v_size")"
  echo "   qemu-img convert      ${q_secs}s  peak RSS $((q_rss / 1024)) MiB  result $(mib "$q_size")"
  awk -v v="$v_secs" -v q="$q_secs" 'BEGIN { if (q > 0) printf "   time ratio vhdkit/qemu-img: %.2fx (target <= 0.5x)\n", v / q }'
  [ "$v_size" -le "$q_size" ] && echo "   size: vhdkit's result is no larger than qemu-img's" \
                              || echo "   size: vhdkit's result is LARGER than qemu-img's"
  [ "$v_rss" -lt $((64 * 1024)) ] && echo "   memory: under 64 MiB" || echo "   memory: OVER 64 MiB"
  rm -f "$ours" "$theirs" "$src"
}

echo "vhdkit compaction benchmark ($(date -u +%FT%TZ), $(nproc) cores, cache: $([ "${BENCH_DROP_CACHES:-0}" = 1 ] && echo cold || echo warm))"

# 1. A ${gib} GiB dynamic VHD, every block allocated, two thirds of them zero-filled (make-image.sh zero-pattern).
"$make_image" zero-pattern "$work/zero.raw" $((gib * 1024))
qemu-img convert -f raw -S 0 -O vpc -o subformat=dynamic,force_size=on "$work/zero.raw" "$work/zero.vhd"
rm -f "$work/zero.raw"
compare_tools "${gib} GiB dynamic VHD, all blocks allocated, 2/3 zero-filled" "$work/zero.vhd"
rm -f "$work/zero.vhd"

# 2. A 1 TiB virtual disk with 1 GiB allocated (512 blocks spread over the disk, half of them zero-filled):
#    the time must follow the allocated bytes, not the virtual size.
big="$work/big.vhd"
qemu-img create -q -f vpc -o subformat=dynamic,force_size=on "$big" 1T
cmds=()
for ((i = 0; i < 512; i++)); do
  off=$((i * 2047 * 1024 * 1024 / 2 * 2))  # every ~2 GiB, block aligned
  off=$((off / 2097152 * 2097152))
  if ((i % 2)); then cmds+=(-c "write -P 0 $off 2M"); else cmds+=(-c "write -P $((i % 250 + 1)) $off 2M"); fi
done
qemu-io -f vpc "${cmds[@]}" "$big" > /dev/null
compare_tools "1 TiB virtual, 1 GiB allocated (half zero-filled)" "$big"
