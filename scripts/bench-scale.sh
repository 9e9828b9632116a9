#!/usr/bin/env bash
# Engine throughput with 1 and 2 engines, on one Redis and on a Redis Cluster of 3 masters
# and 3 replicas (docs/scaling.md, "Figures"). Release build; every run starts fresh servers
# on loopback ports, runs the engines (QoS 1 to a local mosquitto), then
# `examples/drain.rs` appends ENTRIES telegrams of 1,000 onboarded devices to the PARTITIONS
# partition streams and prints the rate until every entry is acknowledged.
#
#   scripts/bench-scale.sh            # ENTRIES=100000 PARTITIONS=4 by default
set -euo pipefail
cd "$(dirname "$0")/.."
ENTRIES=${ENTRIES:-100000}
PARTITIONS=${PARTITIONS:-4}

cargo build --release -q -p iotc-engine --bin iotc-engine --example drain
engine_bin=target/release/iotc-engine
drain_bin=target/release/examples/drain

source scripts/bench-common.sh

cluster_port() {
    local p
    while :; do p=$(port); [ "$p" -lt 55535 ] && break; done
    echo "$p"
}

redis_node() { # port folder [extra args]
    local p=$1 dir=$2; shift 2
    mkdir -p "$dir"
    redis-server --port "$p" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
        --protected-mode no "$@" >"$dir/log" 2>&1 &
    pids+=($!)
    until redis-cli -p "$p" ping >/dev/null 2>&1; do sleep 0.1; done
}

single() { # prints REDIS_URL
    local p; p=$(port)
    redis_node "$p" "$work/single-$p"
    echo "127.0.0.1:$p"
}

cluster() { # prints REDIS_URL
    local addrs=() p
    for _ in 1 2 3 4 5 6; do
        p=$(cluster_port)
        redis_node "$p" "$work/node-$p" --cluster-enabled yes --cluster-node-timeout 5000
        addrs+=("127.0.0.1:$p")
    done
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >/dev/null
    until redis-cli -p "${p}" cluster info | grep -q cluster_state:ok; do sleep 0.2; done
    sleep 2
    (IFS=,; echo "${addrs[*]}")
}

run() { # kind engines
    local kind=$1 engines=$2 url mqtt
    if [ "$kind" = single ]; then url=$(single); else url=$(cluster); fi
    mqtt=$(port)
    mosquitto -p "$mqtt" >"$work/mosquitto-$mqtt.log" 2>&1 &
    pids+=($!)
    sleep 0.5
    local http=()
    for i in $(seq 1 "$engines"); do
        http+=("$(port)")
        REDIS_URL=$url IOTC_PARTITIONS=$PARTITIONS IOTC_ENGINE_LEASE_MS=3000 \
            IOTC_ENGINE_CONSUMER="bench-$i" IOTC_ENGINE_HTTP_PORT="${http[-1]}" \
            IOT_ENABLE_MQTT=1 MQTT_CONNSTRING="127.0.0.1:$mqtt" LOG_LEVEL=warn \
            "$engine_bin" >"$work/engine-$kind-$engines-$i.log" 2>&1 &
        pids+=($!)
    done
    # Leases shared out (renewed every second with a 3 s lease).
    sleep 5
    printf '%-7s redis, %s engine(s): ' "$kind" "$engines"
    "$drain_bin" "$url" "$PARTITIONS" "$ENTRIES"
    # Each engine's share, by outcome (decoded telegrams are the published ones).
    for h in "${http[@]}"; do
        printf '    engine :%s ' "$h"
        curl -s "http://127.0.0.1:$h/metrics" | grep '^iotc_engine_telegrams_total' | tr '\n' ' '
        echo
    done
    stop_all
}

echo "bench-scale: $ENTRIES entries, $PARTITIONS partitions, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
for kind in single cluster; do
    for engines in 1 2; do
        run "$kind" "$engines"
    done
done
