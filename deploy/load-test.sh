#!/usr/bin/env bash
# Measures what the proxy costs: the same load once straight to the services and once through
# nginx with this repository's configuration (TLS, Basic auth, WebSocket proxying).
#
#   deploy/load-test.sh            # release build; figures in docs/deploy.md ("Measured")
#
# Starts redis-server, mosquitto, the three services (release build) and the proxy on free
# loopback ports in a temporary folder, then:
#   - API: `ab` GET /api.beta/v1/gateways with Basic auth, keep-alive, 8 clients;
#   - APs: `iotc simulate` (20 APs, 4,000 devices, 20 % heard twice) with the MQTT check.
# Stops everything at the end. Settings: API_REQUESTS (20000), SIM_RATE (1000 telegrams/s),
# SIM_SECONDS (20).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

api_requests="${API_REQUESTS:-20000}"
sim_rate="${SIM_RATE:-1000}"
sim_seconds="${SIM_SECONDS:-20}"

for tool in redis-server mosquitto nginx ab openssl python3; do
    command -v "$tool" >/dev/null || { echo "load-test: $tool is not installed" >&2; exit 1; }
done
cargo build --release --quiet -p iotc-ingress -p iotc-engine -p iotc-api -p iotc-cli
bin="${CARGO_TARGET_DIR:-$root/target}/release"

work="$(mktemp -d)"
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
wait_port() {
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "load-test: nothing listens on $1; logs in $work" >&2
    exit 1
}
start() {
    local name="$1"
    shift
    "$@" >"$work/$name.log" 2>&1 &
    pids+=($!)
}

redis=$(free_port) mqtt=$(free_port) ingress=$(free_port) api=$(free_port) engine=$(free_port)
http=$(free_port) https=$(free_port) wss=$(free_port) health=$(free_port)

start redis redis-server --port "$redis" --bind 127.0.0.1 --save "" --appendonly no
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$mqtt" >"$work/mosquitto.conf"
start mosquitto mosquitto -c "$work/mosquitto.conf"
wait_port "$redis"
wait_port "$mqtt"

export REDIS_URL="127.0.0.1:$redis"
start ingress env IOTC_INGRESS_PORT="$ingress" IOTC_INGRESS_BIND=127.0.0.1 \
    IOT_GATEWAY_USERNAME=ap IOT_GATEWAY_PASSWORD=ap-password "$bin/iotc-ingress"
start api env IOTC_API_PORT="$api" IOTC_API_BIND=127.0.0.1 \
    BASIC_AUTH_USERNAME=admin BASIC_AUTH_PASSWORD=admin-password "$bin/iotc-api"
start engine env IOTC_ENGINE_HTTP_PORT="$engine" IOTC_ENGINE_CONSUMER=load-test \
    IOT_ENABLE_MQTT=1 MQTT_CONNSTRING="127.0.0.1:$mqtt" "$bin/iotc-engine"
scripts/dev-cert.sh localhost "$work/certs" >/dev/null
start proxy env IOTC_PROXY_RUN_DIR="$work/proxy" IOTC_PROXY_CERT="$work/certs/cert.crt" \
    IOTC_PROXY_KEY="$work/certs/cert.key" IOTC_PROXY_WORKER_USER="$(id -un)" \
    IOTC_PROXY_BIND=127.0.0.1 IOTC_PROXY_HTTP_PORT="$http" IOTC_PROXY_HTTPS_PORT="$https" \
    IOTC_PROXY_INGRESS_PORT="$wss" IOTC_PROXY_HEALTH_PORT="$health" \
    IOTC_PROXY_API_UPSTREAM="127.0.0.1:$api" IOTC_PROXY_INGRESS_UPSTREAM="127.0.0.1:$ingress" \
    BASIC_AUTH_USERNAME=admin BASIC_AUTH_PASSWORD=admin-password deploy/nginx/entrypoint.sh
for port in "$ingress" "$api" "$engine" "$https" "$wss"; do wait_port "$port"; done

echo "== machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
api_load() {
    ab -q -k -n "$api_requests" -c 8 -A admin:admin-password "$1" 2>&1 |
        grep -E 'Requests per second|Time per request.*\(mean\)$|Failed requests'
}
echo "== API direct (http://127.0.0.1:$api)"
api_load "http://127.0.0.1:$api/api.beta/v1/gateways"
echo "== API through the proxy (https, Basic auth)"
api_load "https://127.0.0.1:$https/api.beta/v1/gateways"

simulate() {
    IOT_ENDPOINT_USERNAME=ap IOT_ENDPOINT_PASSWORD=ap-password \
        IOT_API_USERNAME=admin IOT_API_PASSWORD=admin-password \
        "$bin/iotc" simulate --gateways 20 --devices 4000 --shared 0.2 \
        --rate "$sim_rate" --duration "$sim_seconds" \
        --expect-mqtt "127.0.0.1:$mqtt" "$@" 2>&1 | grep -E -A1 '^sent|^end to end'
}
echo "== APs direct (ws)"
simulate --url "ws://127.0.0.1:$ingress/aruba" --auth-url "http://127.0.0.1:$ingress/auth/aruba" \
    --onboard "http://127.0.0.1:$api/api.beta/v1" --id-base 05100000
echo "== APs through the proxy (wss)"
simulate --url "wss://127.0.0.1:$wss/aruba" --auth-url "https://127.0.0.1:$wss/auth/aruba" \
    --ca-file "$work/certs/ca.crt" --onboard "https://127.0.0.1:$https/api.beta/v1" \
    --id-base 05200000
