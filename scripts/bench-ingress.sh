#!/usr/bin/env bash
# The ingress's CPU time per telegram, alone (docs/performance.md, "The ingress alone").
# Release build; each run starts a fresh redis-server and one ingress on loopback ports, then
# `iotc simulate` sends RATE telegrams/s from GATEWAYS APs for DURATION seconds (20 % heard
# by two APs), with no engine reading the stream. It prints the ingress's and Redis's CPU
# seconds (user + system, from /proc) per telegram sent, the receptions per connection's call
# and the connections per Redis call (warm-up included).
# Compare builds in alternating runs.
#
#   scripts/bench-ingress.sh                        # RATE=20000 DURATION=10 GATEWAYS=10 RUNS=3
#   GATEWAYS=100 scripts/bench-ingress.sh           # the same total from 100 APs
#   IOTC_BENCH_BINS=/some/folder scripts/bench-ingress.sh   # another build's iotc-ingress
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-20000}
DURATION=${DURATION:-10}
RUNS=${RUNS:-3}
DEVICES=$((RATE * 3))
GATEWAYS=${GATEWAYS:-10}

command -v redis-server >/dev/null || scripts/install-deps.sh
cargo build --release -q -p iotc-ingress -p iotc-cli
ingress_bin=${IOTC_BENCH_BINS:-target/release}/iotc-ingress
simulate_bin=target/release/iotc

source scripts/bench-common.sh
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
tick=$(getconf CLK_TCK)

echo "bench-ingress: $ingress_bin, $RATE telegrams/s for $DURATION s per run, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
for run in $(seq 1 "$RUNS"); do
    redis_port=$(port) ingress_port=$(port)
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$work" >/dev/null 2>&1 &
    redis=$!
    pids+=("$redis")
    until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do sleep 0.1; done
    REDIS_URL=127.0.0.1:$redis_port IOTC_INGRESS_PORT=$ingress_port IOTC_INGRESS_BIND=127.0.0.1 \
        IOT_GATEWAY_TOKEN=bench-token LOG_LEVEL=warn "$ingress_bin" >"$work/ingress.log" 2>&1 &
    ingress=$!
    pids+=("$ingress")
    until curl -fsS "http://127.0.0.1:$ingress_port/readyz" >/dev/null 2>&1; do sleep 0.1; done
    simulate=("$simulate_bin" simulate --url "ws://127.0.0.1:$ingress_port/aruba" --token bench-token
        --gateways "$GATEWAYS" --devices "$DEVICES" --shared 0.2)
    # Every device once first, so the measured run finds their records, as a running site does.
    "${simulate[@]}" --rate 10000 --count "$DEVICES" >/dev/null
    before=$(cpu_ticks "$ingress") redis_before=$(cpu_ticks "$redis")
    sent=$("${simulate[@]}" --rate "$RATE" --duration "$DURATION" | sed -n 's/^sent \([0-9]*\) telegrams.*/\1/p')
    after=$(cpu_ticks "$ingress") redis_after=$(cpu_ticks "$redis")
    metrics=$(curl -fsS "http://127.0.0.1:$ingress_port/metrics")
    calls=$(awk '/^iotc_ingress_forward_calls_total/ {print $2}' <<<"$metrics")
    grouped=$(awk '/^iotc_ingress_call_connections_sum/ {s = $2} /^iotc_ingress_call_connections_count/ {c = $2}
        END {printf "%.1f", (c > 0 ? s / c : 0)}' <<<"$metrics")
    awk -v r="$run" -v t="$((after - before))" -v rd="$((redis_after - redis_before))" -v hz="$tick" \
        -v n="$sent" -v calls="${calls:-0}" -v d="$DEVICES" -v grouped="$grouped" \
        'BEGIN { printf "run %d: %d telegrams; ingress %.2f s CPU, %.1f µs per telegram; Redis %.1f µs; %.1f receptions per connection call, %s connections per Redis call\n",
        r, n, t / hz, t / hz * 1e6 / n, rd / hz * 1e6 / n, (calls > 0 ? (n + d) * 1.2 / calls : 0), grouped }'
    stop_all
done
