#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# deploy/ansible/compact-fleet.yml run by ansible-playbook against two "hosts" that are this machine
# (connection: local), each with its own folder of images: each host's batch runs with a report, the reports
# come back to the controller, and fleet.csv holds every row of both with its host.
#   usage: ansible_test.sh SOURCE_DIR VHDKIT
set -euo pipefail
src=$(realpath "$1") vhdkit=$(realpath "$2")
work=$(mktemp -d /tmp/vhdkit-ansible.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

for h in host1 host2; do
  mkdir -p "$work/$h/images"
  for n in 1 2; do
    qemu-img create -q -f vhdx -o block_size=1M "$work/$h/images/disk-$n.vhdx" 32M
    qemu-io -c "write -P 5 0 1M" -c "write -P 0 1M 6M" "$work/$h/images/disk-$n.vhdx" > /dev/null
  done
  echo "not an image" > "$work/$h/images/readme.txt"
done
qemu-img create -q -f vpc -o subformat=fixed "$work/host2/images/fixed.vhd" 4M
cat > "$work/inventory.ini" <<INI
[vhdkit_storage]
host1 ansible_connection=local vhdkit_dirs='["$work/host1/images"]' vhdkit_report=$work/host1/report.csv
host2 ansible_connection=local vhdkit_dirs='["$work/host2/images"]' vhdkit_report=$work/host2/report.csv
INI
export ANSIBLE_LOCAL_TEMP="$work/ansible-tmp" ANSIBLE_HOME="$work/ansible-home" ANSIBLE_NOCOLOR=1
ansible-playbook -i "$work/inventory.ini" "$src/deploy/ansible/compact-fleet.yml" \
  -e "vhdkit_bin=$vhdkit vhdkit_reports_dir=$work/reports vhdkit_min_size=0 vhdkit_min_gain=10 vhdkit_max_time=60s" \
  -e "ansible_python_interpreter=/usr/bin/python3" > "$work/ansible.log" 2>&1 || fail "ansible-playbook: $(cat "$work/ansible.log")"
grep -E "^(host1|host2|localhost) +:" "$work/ansible.log"
python3 - "$work/reports" <<'PY' || fail "fleet.csv: $(cat "$work/reports/fleet.csv")"
import csv, sys
d = sys.argv[1]
rows = list(csv.DictReader(open(f"{d}/fleet.csv", newline="")))
per_host = {h: list(csv.DictReader(open(f"{d}/{h}.csv", newline=""))) for h in ("host1", "host2")}
assert len(rows) == sum(len(v) for v in per_host.values()) == 5, rows
for r in rows:
    assert r["host"] in per_host and r["path"].startswith(d.rsplit("/", 1)[0] + "/" + r["host"] + "/"), r
compacted = [r for r in rows if r["outcome"] == "compacted"]
assert len(compacted) == 4 and all(int(r["size_after"]) < int(r["size_before"]) for r in compacted), rows
assert [r["outcome"] for r in rows if r["path"].endswith("fixed.vhd")] == ["skipped"], rows
print(f"fleet.csv: {len(rows)} rows from 2 hosts, {len(compacted)} compacted")
PY
echo PASS
