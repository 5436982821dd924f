#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The man pages, made by help2man from the programs' --help texts (the one source of truth for options):
# vhdkit.1 with each subcommand's --help as a section of its own, vhdkitd.8. Compressed as Debian wants.
#   usage: man.sh VHDKIT VHDKITD OUTDIR
set -euo pipefail
vhdkit=$1 vhdkitd=$2 out=$3
mkdir -p "$out"
extra=$(mktemp)
trap 'rm -f "$extra"' EXIT
for sub in compact map info check compare create write jobs; do
  printf '[%s]\n' "vhdkit $sub"
  # help2man's include format: a section name in brackets, then roff text.
  "$vhdkit" "$sub" --help | sed -e 's/\\/\\\\/g' -e 's/^\./\\\&./' -e 's/$/\n.br/'
  echo
done > "$extra"
help2man --no-info --section 1 --name "compact VHD and VHDX images in place" --include "$extra" \
  --output "$out/vhdkit.1" "$vhdkit"
help2man --no-info --section 8 --name "the vhdkit image management service (CompactVirtualHardDisk over HTTP)" \
  --output "$out/vhdkitd.8" "$vhdkitd"
gzip -9nf "$out/vhdkit.1" "$out/vhdkitd.8"
