#!/usr/bin/env bash
# Memory and onboarding figures (docs/performance.md), release builds, everything on loopback
# ports in a temp dir: redis-server, mosquitto, iotc-ingress, iotc-engine (MQTT), iotc-api.
#   1. POST /backup of 100,000 devices, then the API's resident memory;
#   2. POST /backup of IOTC_BENCH_DEVICES (1,000,000) devices, timed;
#   3. the engine with them loaded, after a second restore replacing them all, then under load from `iotc simulate` with IOTC_BENCH_APS
#      (1,000) APs connected: peak resident memory of the engine and the ingress.
# Resident memory is VmRSS / VmHWM (peak) from /proc. Prints one line per figure.
#   IOTC_BENCH_DEVICES  onboarded devices (default 1000000)
#   IOTC_BENCH_APS      simulated APs (default 1000)
#   IOTC_BENCH_RATE     telegrams/s during the load (default 2000)
#   IOTC_BENCH_SECONDS  load duration (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."

devices=${IOTC_BENCH_DEVICES:-1000000}
aps=${IOTC_BENCH_APS:-1000}
rate=${IOTC_BENCH_RATE:-2000}
seconds=${IOTC_BENCH_SECONDS:-20}
if ! command -v redis-server >/dev/null || ! command -v mosquitto >/dev/null; then
  scripts/install-deps.sh
fi

cargo build --release --locked -q -p iotc-ingress -p iotc-engine -p iotc-api -p iotc-cli
bin=$PWD/target/release

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
start() { # name, command...
  local name=$1
  shift
  "$@" >"$work/$name.log" 2>&1 &
  pids+=($!)
}
wait_ready() { # url
  for _ in $(seq 300); do
    curl -fsS "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "not ready: $1" >&2
  tail -20 "$work"/*.log >&2
  return 1
}
mib() { # pid, field (VmRSS or VmHWM)
  awk -v f="$2:" '$1 == f { printf "%.0f", $2 / 1024 }' "/proc/$1/status"
}

redis_port=$(free_port) mqtt_port=$(free_port) ingress_port=$(free_port)
engine_port=$(free_port) api_port=$(free_port)
start redis redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --dir "$work"
printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n' \
  "$mqtt_port" >"$work/mosquitto.conf"
start mosquitto mosquitto -c "$work/mosquitto.conf"
sleep 0.3
export REDIS_URL=127.0.0.1:$redis_port LOG_LEVEL=warn
start ingress env IOTC_INGRESS_PORT="$ingress_port" IOTC_INGRESS_BIND=127.0.0.1 \
  IOT_GATEWAY_TOKEN=bench-token IOTC_INGRESS_MAX_CONNECTIONS=$((aps + 100)) "$bin/iotc-ingress"
ingress_pid=$!
start engine env IOTC_ENGINE_HTTP_PORT="$engine_port" IOT_ENABLE_MQTT=1 \
  MQTT_CONNSTRING="127.0.0.1:$mqtt_port" "$bin/iotc-engine"
engine_pid=$!
start api env IOTC_API_PORT="$api_port" IOTC_API_BIND=127.0.0.1 BASIC_AUTH_USERNAME=bench \
  BASIC_AUTH_PASSWORD=bench-pass "$bin/iotc-api"
api_pid=$!
api=http://127.0.0.1:$api_port/api.beta/v1
wait_ready "http://127.0.0.1:$api_port/readyz"
wait_ready "http://127.0.0.1:$ingress_port/readyz"
wait_ready "http://127.0.0.1:$engine_port/readyz"

# A backup of N devices whose IDs and EEPs are the simulator's (--id-base 05a00000, its EEPs
# in turn), so the simulated traffic is decoded and published.
backup() { # devices, file
  python3 - "$1" >"$2" <<'PY'
import sys
n = int(sys.argv[1])
eeps = ["A5-02-05", "A5-04-01", "D5-00-01", "F6-02-01", "D2-14-41"]
out = sys.stdout
out.write('{"APIVersion":"1.3.0","ExportDate":"2026-01-01T00:00:00Z","Connections":[')
for i in range(n):
    if i:
        out.write(",")
    out.write('{"sourceEurid":"%08x","eep":"%s","friendlyID":"Sensor %07d",'
              '"location":"Floor %d / Room %d","customTag":"bench"}'
              % (0x05A00000 + i, eeps[i % 5], i, i // 500, i % 500))
out.write("]}")
PY
}
restore() { # file → seconds
  curl -fsS -o /dev/null -w '%{time_total}' -u bench:bench-pass -H 'content-type: application/json' \
    --data-binary @"$1" "$api/backup"
}

backup 100000 "$work/small.json"
secs=$(restore "$work/small.json")
echo "POST /backup 100,000 devices ($(stat -c %s "$work/small.json") bytes): ${secs}s;" \
  "API resident $(mib "$api_pid" VmRSS) MiB after, peak $(mib "$api_pid" VmHWM) MiB"

backup "$devices" "$work/big.json"
secs=$(restore "$work/big.json")
rm -f "$work/small.json"
echo "POST /backup $devices devices ($(stat -c %s "$work/big.json") bytes): ${secs}s;" \
  "API resident $(mib "$api_pid" VmRSS) MiB after, peak $(mib "$api_pid" VmHWM) MiB"
rm -f "$work/big.json"

engine_devices() { # waits until the engine holds $1 devices
  local loaded=0
  for _ in $(seq 600); do
    loaded=$(curl -fsS "http://127.0.0.1:$engine_port/metrics" |
      awk '$1 == "iotc_engine_devices" { print $2 }')
    [ "${loaded:-0}" = "$1" ] && return 0
    sleep 0.2
  done
  echo "engine holds ${loaded:-0} devices, not $1" >&2
  return 1
}
engine_devices "$devices"
echo "engine: $devices devices loaded, resident $(mib "$engine_pid" VmRSS) MiB" \
  "(peak while loading $(mib "$engine_pid" VmHWM) MiB); ingress idle $(mib "$ingress_pid" VmRSS) MiB"

# Replacing the whole registry again: the engine reloads while it holds the old copy.
devices=$((devices + 1))
backup "$devices" "$work/big.json"
secs=$(restore "$work/big.json")
rm -f "$work/big.json"
engine_devices "$devices"
echo "POST /backup again, $devices devices: ${secs}s; engine after reloading: resident" \
  "$(mib "$engine_pid" VmRSS) MiB, peak $(mib "$engine_pid" VmHWM) MiB"

"$bin/iotc" simulate --url "ws://127.0.0.1:$ingress_port/aruba" --token bench-token \
  --gateways "$aps" --devices $((rate * 2)) --rate "$rate" --duration "$seconds" \
  --health-interval 60 --expect-mqtt "127.0.0.1:$mqtt_port" --drain-timeout 30 \
  >"$work/simulate.log" 2>&1 &
sim=$!
ingress_peak=0
while kill -0 "$sim" 2>/dev/null; do
  now=$(mib "$ingress_pid" VmRSS)
  [ "$now" -gt "$ingress_peak" ] && ingress_peak=$now
  sleep 0.5
done
wait "$sim" || { cat "$work/simulate.log"; exit 1; }
grep -E '^(sent|end to end)' "$work/simulate.log"
echo "engine under load with $devices devices: resident $(mib "$engine_pid" VmRSS) MiB," \
  "peak $(mib "$engine_pid" VmHWM) MiB"
echo "ingress with $aps APs connected: peak resident ${ingress_peak} MiB while sending," \
  "process peak $(mib "$ingress_pid" VmHWM) MiB"
