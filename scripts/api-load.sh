#!/usr/bin/env bash
# Load figure for the API: requests per second of GET /devices (the whole list) with N devices
# onboarded, measured with wrk against the release binary and a real redis-server on loopback.
#   IOTC_LOAD_DEVICES      devices to onboard (default 10000)
#   IOTC_LOAD_SECONDS      wrk duration (default 20)
#   IOTC_LOAD_CONNECTIONS  concurrent connections (default 8)
set -euo pipefail
cd "$(dirname "$0")/.."

devices=${IOTC_LOAD_DEVICES:-10000}
seconds=${IOTC_LOAD_SECONDS:-20}
connections=${IOTC_LOAD_CONNECTIONS:-8}
user=load
pass=load-$RANDOM$RANDOM
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
command -v redis-server >/dev/null || scripts/install-deps.sh

cargo build -p iotc-api --release --locked -q
bin=target/release/iotc-api

. scripts/api-stack.sh
start_api_stack "$bin" "$user" "$pass"

python3 - "$devices" >"$work/backup.json" <<'PY'
import json, sys
n = int(sys.argv[1])
print(json.dumps({"APIVersion": "1.3.0", "ExportDate": "2026-01-01T00:00:00Z", "Connections": [
    {"sourceEurid": f"{0x05000000 + i:08x}", "eep": "A5-02-05", "friendlyID": f"Sensor {i:05d}",
     "location": f"Floor {i // 500} / Room {i % 500}", "customTag": "load"} for i in range(n)]}))
PY
import_s=$(curl -fsS -o /dev/null -w '%{time_total}' -u "$user:$pass" \
  -H 'content-type: application/json' --data-binary @"$work/backup.json" "$base/api.beta/v1/backup")
count=$(curl -fsS -u "$user:$pass" "$base/api.beta/v1/devices" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
size=$(curl -fsS -o /dev/null -w '%{size_download}' -u "$user:$pass" "$base/api.beta/v1/devices")
echo "onboarded $count devices with POST /backup in ${import_s}s; GET /devices body: $size bytes"

auth=$(printf '%s:%s' "$user" "$pass" | base64 -w0)
echo "== GET /devices (all $count devices), $connections connections, ${seconds}s"
wrk -t2 -c"$connections" -d"${seconds}s" --latency -H "Authorization: Basic $auth" "$base/api.beta/v1/devices"
echo "== GET /devices?sourceID=05000001 (one device), $connections connections, ${seconds}s"
wrk -t2 -c"$connections" -d"${seconds}s" --latency -H "Authorization: Basic $auth" \
  "$base/api.beta/v1/devices?sourceID=05000001"
