#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Seeds for fuzz_http: one HTTP request per file, as clients send them to vhdkitd (the API of
# docs/openapi.json, on the images fuzz_http keeps in memory: /fuzz/a.vhd, /fuzz/b.vhdx, /fuzz/plain.txt).
#   fuzz/http_seeds.sh DIR
set -euo pipefail
dir=${1:?usage: fuzz/http_seeds.sh DIR}
mkdir -p "$dir"
n=0
post() {  # post TARGET BODY [EXTRA HEADER]
  local extra=${3:+$3$'\r\n'}
  printf 'POST %s HTTP/1.1\r\nHost: localhost\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
    "$1" "$extra" "${#2}" "$2" > "$dir/seed-$((n += 1))"
}
get() {
  printf 'GET %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n' "$1" "${2:+$2$'\r\n'}" > "$dir/seed-$((n += 1))"
}
compact=/v2/ImageManagementService/CompactVirtualHardDisk
post "$compact" '{"Path":"/fuzz/a.vhd","Mode":4}'
post "$compact" '{"Path":"/fuzz/b.vhdx","Mode":0,"DryRun":true}'
post "$compact" '{"Path":"/fuzz/a.vhd","Mode":1,"IsParent":true,"Force":false}'
post "$compact" '{"Path":"/fuzz/plain.txt"}'
post /v1/ImageManagementService/CompactVirtualHardDisk '{"Path":"/fuzz/b.vhdx"}'
post /v2/ImageManagementService/GetVirtualHardDiskState '{"Path":"/fuzz/b.vhdx"}'
post /v2/ImageManagementService/ValidateVirtualHardDisk '{"Path":"/fuzz/a.vhd"}'
post /v2/jobs/00000000-0000-0000-0000-000000000000/RequestStateChange '{"RequestedState":4}'
post "$compact" '{"Path":"/fuzz/\u00e9\ud800.vhd","Mode":"full"}' 'Authorization: Bearer s3cret-token'
get /v2/jobs
get /v2/jobs/00000000-0000-0000-0000-000000000000 'Authorization: bearer wrong'
get /openapi.json
printf 'POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"Pat\r\n0\r\n\r\n' "$compact" > "$dir/seed-$((n += 1))"
