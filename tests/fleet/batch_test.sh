#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The batch on a folder of ~45 small images (make_images.sh): one run with --jobs 2 and FSLogix-like
# thresholds, checked against stat and the referees; a second run that gains nothing and says so; the same
# through vhdkitd (--service); and the time budget, which stops a long image at a safe point that a rerun
# finishes.   usage: batch_test.sh VHDKIT VHDKITD [local|service|budget]
set -euo pipefail
vhdkit=$(realpath "$1") vhdkitd=$(realpath "$2") part=${3:-local}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/vhdkit-batch.XXXXXX)
pids=()
cleanup() {
  exec 3>&- 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; exit 1; }

stat_sizes() { find "$work/d" -type f -printf '%p %s\n' | sort; }
sums() { sha256sum "$work/d/damaged/bad.vhd" "$work/d/held/held.vhd"; }

# Every compacted image still checks clean and reads what it read before.
referee() {
  while read -r fmt p; do
    local was="$work/copy${p#"$work/d"}"
    if [ "$fmt" = vhdx ] && [[ "$p" == */child-* ]]; then
      # qemu reads no differencing VHDX: vhdkit's own check and compare are the referees there.
      "$vhdkit" check "$p" > /dev/null || fail "vhdkit check $p"
      "$vhdkit" compare "$was" "$p" > /dev/null || fail "vhdkit compare $p"
      continue
    elif [ "$fmt" = vhdx ]; then
      qemu-img check -q "$p" || fail "qemu-img check $p"
    else
      vhdiinfo "$p" > /dev/null || fail "vhdiinfo $p"
    fi
    qemu-img compare -q "$was" "$p" || fail "qemu-img compare $p"
  done < <(python3 -c "
import json,sys
for i in json.load(open(sys.argv[1]))['Images']:
    if i['Outcome']=='compacted': print(i['Format'], i['Path'])" "$1")
}

batch() {  # REPORT [extra args]
  local report=$1
  shift
  set +e
  "$vhdkit" compact --recursive "$work/d" --jobs 2 --min-gain 40 --report "$report" "$@" > "$report.out" 2>&1
  local rc=$?
  set -e
  tail -3 "$report.out"
  # The damaged image failed, so the run says so in its exit status.
  [ "$rc" -ne 0 ] || fail "exit status 0 although an image failed"
  grep -q "^Summary:" "$report.out" || fail "no summary table"
  grep -q "In progress... " "$report.out" || fail "no progress lines"
}

folder() {
  "$here/make_images.sh" "$vhdkit" "$work/d" "$work/outside"
  cp -a "$work/d" "$work/copy"
  mkfifo "$work/hold"
  qemu-io -f vpc "$work/d/held/held.vhd" < "$work/hold" > "$work/qemu-io.log" 2>&1 &
  pids+=($!)
  exec 3> "$work/hold"
  # Held once qemu-io has the file open (watched in /proc: a probe of ours would race it for the lock).
  for _ in $(seq 100); do
    ls -l "/proc/${pids[0]}/fd" 2>/dev/null | grep -q "held.vhd" && break
    sleep 0.05
  done
  ls -l "/proc/${pids[0]}/fd" | grep -q "held.vhd" || fail "qemu-io did not open held.vhd: $(cat "$work/qemu-io.log")"
}

two_runs() {  # SUFFIX [extra args]
  local s=$1
  shift
  stat_sizes > "$work/before1"
  sums > "$work/sums"
  batch "$work/r1-$s.json" --min-size 11M "$@"
  stat_sizes > "$work/after1"
  python3 "$here/check_report.py" "$work/r1-$s.json" "$work/before1" "$work/after1" first
  sha256sum -c --quiet "$work/sums" || fail "the damaged or the held image changed"
  referee "$work/r1-$s.json"
  kill -0 "${pids[0]}" || fail "qemu-io, which holds held.vhd, has exited"
  # Without --min-size, so that each image is judged by its dry run.
  batch "$work/r2-$s.csv" "$@"
  stat_sizes > "$work/after2"
  python3 "$here/check_report.py" "$work/r2-$s.csv" "$work/after1" "$work/after2" second
  cmp -s "$work/after1" "$work/after2" || fail "the second run changed a size"
  sha256sum -c --quiet "$work/sums" || fail "the damaged or the held image changed"
}

case $part in
  local)
    folder
    two_runs local
    ;;
  service)
    folder
    mkdir -p "$work/state"
    "$vhdkitd" --config /dev/null --socket "$work/sock" --state-dir "$work/state" > "$work/daemon.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do [ -S "$work/sock" ] && break; sleep 0.05; done
    two_runs service "--service=$work/sock"
    # The batch call itself: one request naming a folder, answered with a job per image (and a refusal for
    # the file that is not one); then one naming paths.
    mkdir "$work/api"
    cp "$work/copy/users/a/gain-1.vhd" "$work/copy/users/b/gain-1.vhdx" "$work/copy/users/notes.txt" "$work/api/"
    api() { curl -s --unix-socket "$work/sock" -X POST -H 'Content-Type: application/json' -d "$2" "http://localhost$1"; }
    sizes=$(cd "$work/api" && stat -c '%n=%s' gain-1.vhd gain-1.vhdx | paste -sd,)
    reply=$(api /v2/ImageManagementService/CompactVirtualHardDisks "{\"Folder\": \"$work/api\", \"Mode\": 4}")
    python3 - "$reply" "$work/sock" "$work/api" "$sizes" <<'PY' || fail "batch call: $reply"
import json, subprocess, sys, time, os
reply, sock, folder = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
sizes = {kv.split("=")[0]: int(kv.split("=")[1]) for kv in sys.argv[4].split(",")}
assert reply["ReturnValue"] == 4096 and reply["Started"] == 2, reply
by = {os.path.basename(j["Path"]): j for j in reply["Jobs"]}
assert by["notes.txt"]["ReturnValue"] == 32770 and "Job" not in by["notes.txt"], by["notes.txt"]
for name in ("gain-1.vhd", "gain-1.vhdx"):
    before = sizes[name]
    for _ in range(200):
        s = json.loads(subprocess.check_output(["curl", "-s", "--unix-socket", sock, "http://localhost" + by[name]["Job"]]))
        if s["JobState"] in (7, 8, 9, 10):
            break
        time.sleep(0.05)
    assert s["JobState"] == 7, s
    assert os.stat(os.path.join(folder, name)).st_size < before, name
print("batch call: 2 jobs for a folder of 3 files, both compacted; notes.txt refused with 32770")
PY
    reply=$(api /v2/ImageManagementService/CompactVirtualHardDisks "{\"Paths\": [\"$work/api/gain-1.vhd\", \"relative.vhd\"], \"DryRun\": true}")
    python3 -c "
import json,sys; r=json.loads(sys.argv[1]); j=r['Jobs']
assert r['Started']==1 and j[0]['ReturnValue']==4096 and j[1]['ReturnValue']!=4096, r" "$reply" || fail "batch call with Paths: $reply"
    ;;
  budget)
    python3 -c "
import sys
with open(sys.argv[1],'wb') as f:
    for i in range(256): f.write((b'\x07' if i%2==0 else b'\0')*(1<<20))" "$work/raw"
    qemu-img convert -q -S 0 -f raw -O vhdx -o block_size=1M "$work/raw" "$work/long.vhdx"
    cp "$work/long.vhdx" "$work/long0.vhdx"
    before=$(stat -c %s "$work/long.vhdx")
    "$vhdkit" compact --mode prezeroed --max-time 0.1s --report "$work/b1.json" "$work/long.vhdx"
    python3 -c "import json,sys; i=json.load(open(sys.argv[1]))['Images'][0]; sys.exit(i['Outcome']!='stopped' or 'max-time' not in i['Reason'])" "$work/b1.json" ||
      fail "the time budget did not stop the job: $(cat "$work/b1.json")"
    qemu-img check -q "$work/long.vhdx" || fail "stopped image does not check clean"
    qemu-img compare -q "$work/long0.vhdx" "$work/long.vhdx" || fail "stopped image reads differently"
    "$vhdkit" compact --mode prezeroed --max-time 60s --report "$work/b2.csv" "$work/long.vhdx"
    grep -q ",compacted," "$work/b2.csv" || fail "the rerun did not finish: $(cat "$work/b2.csv")"
    after=$(stat -c %s "$work/long.vhdx")
    [ "$after" -lt "$before" ] || fail "the rerun left $after bytes of $before"
    qemu-img check -q "$work/long.vhdx" && qemu-img compare -q "$work/long0.vhdx" "$work/long.vhdx" || fail "rerun referee"
    # A deadline already passed: no image starts, and each says why.
    "$vhdkit" compact --deadline 0s --report "$work/b3.csv" "$work/long0.vhdx" > /dev/null
    grep -q "deadline" "$work/b3.csv" || fail "--deadline 0s started an image"
    # Paths named on the command line are judged whatever their name: a missing one fails with 32779 and
    # the exit status says so; a folder without --recursive is refused.
    set +e
    "$vhdkit" compact --report "$work/b4.csv" "$work/missing.vhd" "$work/long0.vhdx" > /dev/null 2>&1
    rc=$?
    "$vhdkit" compact --jobs 2 "$work" > /dev/null 2> "$work/folder.err"
    rc_folder=$?
    set -e
    [ "$rc" -ne 0 ] && grep -q "missing.vhd,unknown,full,0,0,0,.*,failed,.*,32779" "$work/b4.csv" ||
      fail "a missing image: exit $rc, $(cat "$work/b4.csv")"
    [ "$rc_folder" -ne 0 ] && grep -q "add --recursive" "$work/folder.err" || fail "a folder without --recursive"
    echo "budget: stopped at a safe point, rerun finished ($before -> $after bytes)"
    ;;
  *) fail "unknown part $part" ;;
esac
echo PASS
