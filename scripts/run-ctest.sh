#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs ctest in BUILD with the given arguments, then counts the tests that skipped and says why (ctest lists
# them under "did not run" without counting them): "12 tests skipped: 12 fixtures not found in ...".
# Exit status: ctest's.
#   scripts/run-ctest.sh BUILD [CTEST ARGS...]
set -uo pipefail
build=${1:?usage: scripts/run-ctest.sh BUILD [CTEST ARGS...]}
shift
out=$(mktemp)
trap 'rm -f "$out"' EXIT
(cd "$build" && ctest "$@") 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
skipped=$(grep -c '(Skipped)$' "$out")
if [ "$skipped" -gt 0 ]; then
  echo "$skipped tests skipped:"
  # Each skipped test printed "FILE:LINE: Skipped" and its reason on the next line (ctest keeps every test's
  # output in LastTest.log).
  grep -h -A1 ': Skipped$' "$build"/Testing/Temporary/LastTest*.log 2>/dev/null | grep -v -e ': Skipped$' -e '^--$' |
    sort | uniq -c | sed 's/^ */  /'
else
  echo "no test skipped"
fi
exit "$status"
