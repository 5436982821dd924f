#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the libFuzzer targets with clang 16 (in build-fuzz/, with AddressSanitizer and UBSan) and runs each
# for SECONDS (default 20), starting from seeds vhdkit's writers make at run time. A crash, a sanitizer
# report or a broken promise (fuzz/exercise.h) fails the run; the input that caused it is kept in
# build-fuzz/fuzz-run/findings/ (replay it: build-fuzz/fuzz/fuzz_image FILE).
#   fuzz/run.sh [SECONDS]        FUZZ_BUILD=dir to build elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
build=${FUZZ_BUILD:-build-fuzz}

CC=clang-16 CXX=clang++-16 cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVHDKIT_FUZZ=ON > /dev/null
cmake --build "$build" -j "$(nproc)"

work="$build/fuzz-run"
rm -rf "$work"
mkdir -p "$work/image" "$work/bases" "$work/vhdx" "$work/fs" "$work/http" "$work/findings"
"$build/fuzz/fuzz_seeds" "$work/image" "$work/bases" "$work/vhdx"
./fuzz/fs_seeds.sh "$work/fs"
./fuzz/http_seeds.sh "$work/http"

run() {
  local target=$1 corpus=$2 max_len=$3
  echo "fuzz: $target for ${seconds}s"
  # A small ASan quarantine: freed memory held for use-after-free detection would otherwise count towards the
  # 256 MiB RSS limit, which is there to catch allocations sized from the file.
  ASAN_OPTIONS="quarantine_size_mb=16:${ASAN_OPTIONS:-}" VHDKIT_FUZZ_BASES="$work/bases" "$build/fuzz/$target" "$corpus" -max_total_time="$seconds" \
    -max_len="$max_len" -timeout=10 -rss_limit_mb=256 -print_final_stats=1 \
    -artifact_prefix="$work/findings/$target-" 2> "$work/$target.log" || {
    echo "fuzz: $target found a problem:" >&2
    grep -v '^#' "$work/$target.log" | tail -n 40 >&2
    exit 1
  }
  grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$work/$target.log" | sed 's/^/  /'
  echo "  corpus: $(ls "$corpus" | wc -l) inputs"
}
run fuzz_image "$work/image" 131072
run fuzz_vhdx "$work/vhdx" 1024
run fuzz_fs "$work/fs" 1200000
run fuzz_http "$work/http" 16384
