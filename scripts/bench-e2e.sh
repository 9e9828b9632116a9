#!/usr/bin/env bash
# End-to-end benchmark on this machine: simulated APs → iotc-ingress → Redis → iotc-engine →
# mosquitto, release builds, counted by the simulator's own MQTT subscriber (QoS 1). Prints
# the end-to-end rate, latency percentiles, loss, duplicates, what is left in the stream and
# the peak resident memory (VmHWM) of each process. See docs/performance.md.
#   IOTC_BENCH_RATE       telegrams/s offered, all APs together (default 20000)
#   IOTC_BENCH_SECONDS    sending time (default 10)
#   IOTC_BENCH_DEVICES    devices (default 3 × rate: a device sends at most every 3 s, well
#                         outside the engine's 500 ms de-duplication window)
#   IOTC_BENCH_GATEWAYS   APs (default 10)
#   IOTC_BENCH_SHARED     share of telegrams heard by two APs (default 0.2)
#   IOTC_BENCH_QOS        the engine's MQTT QoS (default 1)
#   IOTC_BENCH_BATCH      IOTC_ENGINE_BATCH (default: the engine's)
#   IOTC_BENCH_API        iotc-api binary used to onboard the devices (default: release build)
#   IOTC_BENCH_NO_BUILD=1 use the binaries in target/release as they are
#   IOTC_BENCH_BINS       folder of the iotc-engine and iotc-ingress to measure (default
#                         target/release; e.g. older builds for a before/after comparison)
#   IOTC_BENCH_SIMULATOR  the load generator's binary (default target/release/iotc), to
#                         compare load generators with the same services
#   IOTC_BENCH_PERF=SECS  record a CPU profile of the engine and ingress (perf) for SECS s
#   IOTC_BENCH_UNIX=1     the services reach Redis and mosquitto through Unix sockets instead
#                         of loopback TCP (as on one machine they can); the simulator's
#                         subscriber too. The APs still connect over TCP
#   IOTC_BENCH_SUB_QOS=0  the counting subscriber subscribes with QoS 0 (default 1); the
#                         engine still publishes with QoS 1
#   IOTC_BENCH_WORKERS=N  worker threads of the ingress's and the engine's runtimes
#                         (TOKIO_WORKER_THREADS; default one per core)
#   IOTC_BENCH_WARM=1     first let every device send once (at most 10,000/s, not measured),
#                         so the run measures a system that knows its devices (no first-time
#                         events, counters in the engine's memory); CPU figures then cover the
#                         measured run only
set -euo pipefail
cd "$(dirname "$0")/.."

rate=${IOTC_BENCH_RATE:-20000}
seconds=${IOTC_BENCH_SECONDS:-10}
devices=${IOTC_BENCH_DEVICES:-$((rate * 3 > 1000 ? rate * 3 : 1000))}
gateways=${IOTC_BENCH_GATEWAYS:-10}
shared=${IOTC_BENCH_SHARED:-0.2}
qos=${IOTC_BENCH_QOS:-1}
rel=${CARGO_TARGET_DIR:-target}/release
api_bin=${IOTC_BENCH_API:-$rel/iotc-api}
bins=${IOTC_BENCH_BINS:-$rel}
command -v redis-server >/dev/null && command -v mosquitto >/dev/null || scripts/install-deps.sh
if [ -z "${IOTC_BENCH_NO_BUILD:-}" ]; then
  pkgs=(-p iotc-engine -p iotc-ingress -p iotc-cli)
  [ -z "${IOTC_BENCH_API:-}" ] && pkgs+=(-p iotc-api)
  cargo build --release --locked -q "${pkgs[@]}"
fi

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
work=$(mktemp -d)
declare -A pids
stop() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap stop EXIT
wait_http() {
  for _ in $(seq 200); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "not ready: $1" >&2
  return 1
}

redis_port=$(free_port) mqtt_port=$(free_port) ingress_port=$(free_port)
api_port=$(free_port) engine_port=$(free_port)
# Unix sockets in a folder mosquitto may write to (it drops root for its own user).
sockets=$work/sockets
mkdir -m 777 "$sockets"
chmod 755 "$work"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
  --unixsocket "$sockets/redis.sock" --unixsocketperm 777 >"$work/redis.log" 2>&1 &
pids[redis]=$!
# No limit on messages queued for the subscriber (mosquitto drops QoS 1 messages over it),
# and a window to it larger than the default 20, so the counting subscriber keeps up.
printf 'listener %s 127.0.0.1\nlistener 0 %s\nallow_anonymous true\nmax_queued_messages 0\nmax_inflight_messages 1000\n' \
  "$mqtt_port" "$sockets/mqtt.sock" >"$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
pids[mosquitto]=$!
until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do sleep 0.1; done

redis_url=127.0.0.1:$redis_port mqtt_url=mqtt://127.0.0.1:$mqtt_port
if [ -n "${IOTC_BENCH_UNIX:-}" ]; then
  redis_url=unix://$sockets/redis.sock mqtt_url=unix://$sockets/mqtt.sock
  until [ -S "$sockets/mqtt.sock" ]; do sleep 0.1; done
fi
export REDIS_URL=$redis_url LOG_LEVEL=warn
IOTC_API_PORT=$api_port IOTC_API_BIND=127.0.0.1 \
  BASIC_AUTH_USERNAME=bench BASIC_AUTH_PASSWORD=bench-secret "$api_bin" >"$work/api.log" 2>&1 &
pids[api]=$!
IOTC_INGRESS_PORT=$ingress_port IOTC_INGRESS_BIND=127.0.0.1 \
  IOT_GATEWAY_TOKEN=bench-token env ${IOTC_BENCH_WORKERS:+TOKIO_WORKER_THREADS=$IOTC_BENCH_WORKERS} \
  "$bins/iotc-ingress" >"$work/ingress.log" 2>&1 &
pids[ingress]=$!
MQTT_CONNSTRING=$mqtt_url IOT_ENABLE_MQTT=1 MQTT_QOS=$qos \
  IOTC_ENGINE_HTTP_PORT=$engine_port IOTC_ENGINE_CONSUMER=bench \
  env ${IOTC_BENCH_BATCH:+IOTC_ENGINE_BATCH=$IOTC_BENCH_BATCH} \
  ${IOTC_BENCH_WORKERS:+TOKIO_WORKER_THREADS=$IOTC_BENCH_WORKERS} "$bins/iotc-engine" >"$work/engine.log" 2>&1 &
pids[engine]=$!
wait_http "http://127.0.0.1:$api_port/readyz"
wait_http "http://127.0.0.1:$engine_port/readyz"

echo "== $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== offered $rate telegrams/s for ${seconds}s, $devices devices, $gateways APs, $shared heard by two, QoS $qos"
echo "== Redis at $redis_url, MQTT at $mqtt_url"
if [ -n "${IOTC_BENCH_PERF:-}" ]; then
  # The whole machine (other users' processes included), by process and by symbol.
  (sleep 4; perf record -a -F 499 -o "$work/perf.data" -- sleep "$IOTC_BENCH_PERF" >/dev/null 2>&1) &
  perf_pid=$!
fi
# Every second: entries appended and not yet read by the engine (its backlog).
(while sleep 1; do
   redis-cli -p "$redis_port" xinfo groups iotc:telegrams 2>/dev/null | sed -n '/^lag$/{n;p}'
 done >"$work/lag.log") &
lag_pid=$!
TIMEFORMAT='%U %S'
simulate=("${IOTC_BENCH_SIMULATOR:-$rel/iotc}" simulate --url "ws://127.0.0.1:$ingress_port/aruba" --token bench-token
  --expect-mqtt "${mqtt_url#mqtt://}" --gateways "$gateways" --devices "$devices"
  --shared "$shared" --drain-timeout 120 --mqtt-qos "${IOTC_BENCH_SUB_QOS:-1}")
onboard=(--onboard "http://127.0.0.1:$api_port/api.beta/v1" --api-username bench --api-password bench-secret)
# What each service has used so far: the figures below are what the measured run adds.
declare -A cpu0 sys0 reads0 writes0
added_now() {
  redis-cli -p "$redis_port" xinfo stream iotc:telegrams 2>/dev/null | sed -n '/^entries-added$/{n;p}' | grep . || echo 0
}
snapshot() {
  for name in ingress engine redis mosquitto; do
    cpu0[$name]=$(awk '{print $14 + $15}' /proc/"${pids[$name]}"/stat)
    sys0[$name]=$(awk '{print $15}' /proc/"${pids[$name]}"/stat)
    reads0[$name]=$(awk '/^syscr/ {print $2}' /proc/"${pids[$name]}"/io)
    writes0[$name]=$(awk '/^syscw/ {print $2}' /proc/"${pids[$name]}"/io)
  done
  added0=$(added_now)
}
for name in ingress engine redis mosquitto; do cpu0[$name]=0 sys0[$name]=0 reads0[$name]=0 writes0[$name]=0; done
added0=0
if [ -n "${IOTC_BENCH_WARM:-}" ]; then
  warm_rate=$((rate < 10000 ? rate : 10000))
  echo "== warm-up: each device once at $warm_rate/s (not measured)"
  "${simulate[@]}" "${onboard[@]}" --rate "$warm_rate" --count "$devices" >"$work/warm.log" 2>&1 \
    || { cat "$work/warm.log"; exit 1; }
  grep -E "end to end" "$work/warm.log" | sed 's/^/   /'
  redis-cli -p "$redis_port" config resetstat >/dev/null
  snapshot
  onboard=()
fi
{ time "${simulate[@]}" "${onboard[@]}" --rate "$rate" --duration "$seconds" 2>&4 >"$work/sim.log"; } \
  4>&2 2>"$work/sim.time"
cat "$work/sim.log"
sim_cpu=$(awk '{printf "%.2f", $1 + $2}' "$work/sim.time")
kill "$lag_pid" 2>/dev/null || true
echo "== engine backlog (entries not yet read), per second: $(tr '\n' ' ' <"$work/lag.log" | cut -c1-300)"
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
sleep 1 # the last batch's acknowledgement follows its publication
echo "== left in the stream: $(redis-cli -p "$redis_port" xpending iotc:telegrams engine | head -1) pending," \
  "$(redis-cli -p "$redis_port" xinfo groups iotc:telegrams | sed -n '/^lag$/{n;p}') not read"
echo "== peak resident memory (VmHWM)"
for name in ingress engine redis mosquitto api; do
  printf '  %-10s %s\n' "$name" "$(awk '/VmHWM/ {printf "%.1f MiB", $2 / 1024}' /proc/"${pids[$name]}"/status)"
done
# CPU time per process over the whole run (onboarding included for the API): less sensitive
# to what else runs on the machine than the rate.
tick=$(getconf CLK_TCK)
echo "== CPU seconds (user + system, the system part in brackets)"
cpu_all=$sim_cpu
for name in ingress engine redis mosquitto; do
  cpu=$(awk -v t="$tick" -v z="${cpu0[$name]}" '{printf "%.2f", ($14 + $15 - z) / t}' /proc/"${pids[$name]}"/stat)
  sys=$(awk -v t="$tick" -v z="${sys0[$name]}" '{printf "%.2f", ($15 - z) / t}' /proc/"${pids[$name]}"/stat)
  printf '  %-10s %s (%s)\n' "$name" "$cpu" "$sys"
  cpu_all=$(awk -v a="$cpu_all" -v b="$cpu" 'BEGIN {printf "%.2f", a + b}')
done
printf '  %-10s %s (%s)\n' simulator "$sim_cpu" "$(awk '{printf "%.2f", $2}' "$work/sim.time")"
# Per telegram sent (a transmission, however many APs heard it); the stream also holds the
# copies the engine drops.
added=$(($(added_now) - added0))
sent=$(sed -n 's/^sent \([0-9]*\) telegrams.*/\1/p' "$work/sim.log")
printf '  %-10s %s, %s µs per telegram (%s telegrams)\n' all "$cpu_all" \
  "$(awk -v c="$cpu_all" -v n="$sent" 'BEGIN {printf "%.0f", (n > 0 ? c * 1e6 / n : 0)}')" "$sent, $added stream entries with the copies"
# Reads and writes on sockets and files per telegram: shows how well each hop batches.
echo "== read and write system calls per telegram"
for name in ingress engine redis mosquitto; do
  awk -v n="$sent" -v r0="${reads0[$name]}" -v w0="${writes0[$name]}" \
    '/^syscr/ {r = $2 - r0} /^syscw/ {w = $2 - w0}
    END {printf "  %-10s", name; printf " %.2f reads, %.2f writes\n", (n > 0 ? r / n : 0), (n > 0 ? w / n : 0)}' \
    name="$name" /proc/"${pids[$name]}"/io
done
echo "== Redis commands by time spent (calls, µs in total; scripts' commands included)"
redis-cli -p "$redis_port" info commandstats | tr -d '\r' | grep '^cmdstat_' \
  | sed -E 's/^cmdstat_([^:]+):calls=([0-9]+),usec=([0-9]+),.*/\3 \2 \1/' | sort -rn | head -20 \
  | awk '{printf "  %-14s %9d calls %10d µs\n", $3, $2, $1}'
if [ -n "${IOTC_BENCH_PERF:-}" ]; then
  wait "$perf_pid" || true
  out=${IOTC_BENCH_PERF_OUT:-perf-report.txt}
  cp "$work/perf.data" "${out%.txt}.data"
  {
    echo "# share of samples by executable"
    perf report -i "$work/perf.data" --no-children --sort dso --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | sed 's/ *$//' | head -25
    echo "# top symbols"
    perf report -i "$work/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null \
      | grep -v '^#' | grep -v '^$' | sed 's/ *- *- *$//; s/ *$//' | head -80
  } >"$out"
  echo "== profile: $out"
fi
