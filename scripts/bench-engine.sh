#!/usr/bin/env bash
# The engine's CPU time per telegram, alone (docs/performance.md, "One waiter per batch").
# Release build; each run starts a fresh redis-server and mosquitto on loopback ports, a
# QoS 1 subscriber (mosquitto_sub) and one engine publishing with QoS 1, then
# `examples/drain.rs` appends ENTRIES telegrams of 1,000 onboarded devices to one partition
# while the engine reads them. It prints the drain rate and the engine's CPU seconds (user +
# system, from /proc) per telegram. The CPU figure moves less with what else runs on the
# machine than a rate does; compare builds in alternating runs.
#
#   scripts/bench-engine.sh                       # ENTRIES=150000 RUNS=3
#   IOTC_BENCH_BINS=/some/folder scripts/bench-engine.sh   # another build's iotc-engine
#   IOTC_BENCH_MQTT=0 scripts/bench-engine.sh     # the engine without its MQTT egress
#   MQTT_MAX_INFLIGHT=100 scripts/bench-engine.sh # any engine setting passes through
set -euo pipefail
cd "$(dirname "$0")/.."
ENTRIES=${ENTRIES:-150000}
RUNS=${RUNS:-3}

command -v redis-server >/dev/null && command -v mosquitto_sub >/dev/null || scripts/install-deps.sh
cargo build --release -q -p iotc-engine --bin iotc-engine --example drain
engine_bin=${IOTC_BENCH_BINS:-target/release}/iotc-engine
drain_bin=target/release/examples/drain

source scripts/bench-common.sh
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sys_ticks() { awk '{print $15}' "/proc/$1/stat"; }

echo "bench-engine: $engine_bin, $ENTRIES entries per run, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
tick=$(getconf CLK_TCK)
for run in $(seq 1 "$RUNS"); do
    redis_port=$(port) mqtt_port=$(port) http_port=$(port)
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
        --dir "$work" >/dev/null 2>&1 &
    redis=$!
    pids+=("$redis")
    mosquitto -p "$mqtt_port" >/dev/null 2>&1 &
    pids+=($!)
    until redis-cli -p "$redis_port" ping >/dev/null 2>&1; do sleep 0.1; done
    sleep 0.3
    mosquitto_sub -p "$mqtt_port" -t 'sensor/+/telemetry' -q 1 >/dev/null &
    pids+=($!)
    REDIS_URL=127.0.0.1:$redis_port IOTC_ENGINE_HTTP_PORT=$http_port IOT_ENABLE_MQTT=${IOTC_BENCH_MQTT:-1} \
        MQTT_CONNSTRING=127.0.0.1:$mqtt_port LOG_LEVEL=warn "$engine_bin" >"$work/engine.log" 2>&1 &
    engine=$!
    pids+=("$engine")
    sleep 2
    before=$(cpu_ticks "$engine") sys_before=$(sys_ticks "$engine") redis_before=$(cpu_ticks "$redis")
    rate=$("$drain_bin" "127.0.0.1:$redis_port" 1 "$ENTRIES")
    after=$(cpu_ticks "$engine") sys_after=$(sys_ticks "$engine") redis_after=$(cpu_ticks "$redis")
    awk -v r="$run" -v t="$((after - before))" -v s="$((sys_after - sys_before))" -v hz="$tick" \
        -v rd="$((redis_after - redis_before))" -v n="$ENTRIES" -v rate="$rate" \
        'BEGIN { printf "run %d: engine %.2f s CPU, %.1f µs per telegram (%.1f µs system); Redis %.1f µs (appending included) | %s\n",
        r, t / hz, t / hz * 1e6 / n, s / hz * 1e6 / n, rd / hz * 1e6 / n, rate }'
    stop_all
done
