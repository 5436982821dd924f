#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make test-sanitize: the whole ctest suite built with AddressSanitizer and UBSan (in build-asan/), then the
# service and job tests (ctest label "service") built with ThreadSanitizer (in build-tsan/). A sanitizer
# report ends the program that made it with status 86, so the test that ran it fails; tests that run the
# real binaries run the sanitized ones. Only the targets the TSan run needs are built there.
#   scripts/test-sanitize.sh [address|thread]...     (default: both)     JOBS=n to build and test with n
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${JOBS:-$(nproc)}
kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || kinds=(address thread)

# The reports say where: symbols from the debug info, and a failing test keeps its full report.
export ASAN_OPTIONS=${ASAN_OPTIONS:-exitcode=86:detect_leaks=1:strict_string_checks=1:check_initialization_order=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# The crash matrices run sampled here (every 8th power-cut point, plus the first and last few): the full
# matrices run in make test; what the sanitizers add is memory and thread checking of the same code paths.
export VHDKIT_CRASH_STRIDE=${VHDKIT_CRASH_STRIDE:-8}
export TSAN_OPTIONS=${TSAN_OPTIONS:-exitcode=86:halt_on_error=1:second_deadlock_stack=1}

for kind in "${kinds[@]}"; do
  case $kind in
    address) build=build-asan targets=(all) select=() ;;
    thread)
      build=build-tsan
      targets=(tests_service)
      select=(-L service) ;;
    *) echo "test-sanitize: unknown sanitizer $kind (address or thread)" >&2; exit 2 ;;
  esac
  echo "== $kind sanitizer: building in $build"
  start=$SECONDS
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVHDKIT_SANITIZE="$kind" > /dev/null
  cmake --build "$build" -j "$jobs" --target "${targets[@]}"
  built=$SECONDS
  echo "== $kind sanitizer: testing"
  ./scripts/run-ctest.sh "$build" --output-on-failure -j "$jobs" --timeout 2400 "${select[@]}"
  echo "== $kind sanitizer: built in $((built - start)) s, tested in $((SECONDS - built)) s"
done
