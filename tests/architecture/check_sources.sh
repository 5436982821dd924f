#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every C++ source carries its SPDX licence line. With --format (as make test runs it) it is also held to
# .clang-format, with clang-format 14 as Debian 12 ships it; `clang-format -i FILE` fixes one.
set -euo pipefail
root=${1:?source folder}
check_format=${2:-}
cd "$root"
format=$(command -v clang-format-14 || command -v clang-format || true)
if [ "$check_format" = --format ] && [ -z "$format" ]; then
  echo "clang-format is not installed (scripts/install-deps.sh installs it)"; exit 1
fi
missing=0 unformatted=0 count=0
while IFS= read -r f; do
  count=$((count + 1))
  if ! head -n 3 "$f" | grep -q 'SPDX-License-Identifier: Apache-2.0'; then
    echo "$f: no SPDX-License-Identifier line"; missing=$((missing + 1))
  fi
  if [ "$check_format" = --format ] && ! "$format" --dry-run --Werror "$f" >/dev/null 2>&1; then
    echo "$f: not formatted as .clang-format says (clang-format -i $f)"; unformatted=$((unformatted + 1))
  fi
done < <(git ls-files 'src/*.h' 'src/*.cpp' 'src/*.h.in' 'tests/*.h' 'tests/*.cpp' 'fuzz/*.h' 'fuzz/*.cpp' 'bench/*.cpp' 2>/dev/null || find src tests fuzz -name '*.h' -o -name '*.cpp')
echo "$count sources: $missing without an SPDX line, $unformatted not formatted"
[ "$missing" -eq 0 ] && [ "$unformatted" -eq 0 ]
