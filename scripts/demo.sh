#!/usr/bin/env bash
# make demo: builds a sample image and shows what vhdkit sees. Grows with each capability.
set -euo pipefail
vhdkit=${1:?path to the vhdkit binary}
"$vhdkit" --help
