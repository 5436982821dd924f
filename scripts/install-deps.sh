#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian packages vhdkit needs to build, test and demo — only the ones missing.
# Idempotent: a machine that has everything runs no apt-get at all.
set -euo pipefail

packages=(
  # build
  cmake g++ make pkg-config ninja-build ccache clang-format
  libcli11-dev libfmt-dev nlohmann-json3-dev libboost-dev libsqlite3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # the fuzz targets (fuzz/run.sh): clang 16 and its libFuzzer and sanitizer runtimes
  clang-16 libclang-rt-16-dev
  # referees used by the tests and the demo
  qemu-utils libvhdi-utils e2fsprogs libext2fs-dev gdisk ntfs-3g ntfs-3g-dev dosfstools mtools fdisk util-linux
  bzip2 gzip unzip coreutils procps curl python3 sudo strace
  # signatures the fs tests write with real tools (named and kept: btrfs, LUKS)
  btrfs-progs cryptsetup-bin
  # XFS and LVM2 guests (src/fs/xfs.cpp, src/fs/lvm.cpp and their tests): the format headers, the tools
  xfsprogs xfslibs-dev lvm2 thin-provisioning-tools
  # make bench measures the disk itself (O_DIRECT sequential rates, one stream and queue depth 4-16)
  fio
  # packaging and fleets (issue 15): man pages, the .deb check, the SVG renderer, the Ansible playbook test
  help2man lintian librsvg2-bin ansible-core
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "vhdkit: installing missing packages: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
