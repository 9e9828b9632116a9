#!/usr/bin/env bash
# Runs the whole system on this machine: redis-server and mosquitto from the machine, then
# iotc-ingress (:7070), iotc-engine and iotc-api (:1887), built in release mode.
# With --demo it also onboards a few devices and starts `iotc simulate` against the ingress.
# Ctrl-C stops everything. State lives in .run/ (Redis data, logs).
set -euo pipefail
cd "$(dirname "$0")/.."

demo=0
[ "${1:-}" = "--demo" ] && demo=1

export REDIS_PORT="${REDIS_PORT:-6379}"
export MQTT_PORT="${MQTT_PORT:-1883}"
export REDIS_URL="${REDIS_URL:-localhost:$REDIS_PORT}"
# Redis refuses writes rather than evicting keys when full (docs/ingress.md, "Stream bound").
export REDIS_MAXMEMORY="${REDIS_MAXMEMORY:-512mb}"
export IOT_ENABLE_MQTT="${IOT_ENABLE_MQTT:-1}"
export MQTT_CONNSTRING="${MQTT_CONNSTRING:-localhost:$MQTT_PORT}"
export IOT_GATEWAY_USERNAME="${IOT_GATEWAY_USERNAME:-gateway}"
export IOT_GATEWAY_PASSWORD="${IOT_GATEWAY_PASSWORD:-gateway-secret}"
export BASIC_AUTH_USERNAME="${BASIC_AUTH_USERNAME:-admin}"
export BASIC_AUTH_PASSWORD="${BASIC_AUTH_PASSWORD:-admin-secret}"
export SENSOR_STATS_INTERVAL="${SENSOR_STATS_INTERVAL:-600}"
export GATEWAY_STATS_INTERVAL="${GATEWAY_STATS_INTERVAL:-600}"

scripts/install-deps.sh
cargo build --release --locked -p iotc-ingress -p iotc-engine -p iotc-api -p iotc-cli
bin=target/release

state=.run
mkdir -p "$state/redis" "$state/logs"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

start() { # name, command...
  local name=$1
  shift
  "$@" >"$state/logs/$name.log" 2>&1 &
  pids+=($!)
  echo "started $name (pid $!, log $state/logs/$name.log)"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if port_open "$REDIS_PORT"; then
  echo "using the Redis already listening on $REDIS_PORT"
else
  start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$state/redis" \
    --appendonly yes --save "" --maxmemory "$REDIS_MAXMEMORY" --maxmemory-policy noeviction
fi
if port_open "$MQTT_PORT"; then
  echo "using the MQTT broker already listening on $MQTT_PORT"
else
  printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$MQTT_PORT" >"$state/mosquitto.conf"
  start mosquitto mosquitto -c "$state/mosquitto.conf"
fi
sleep 0.5

start ingress "$bin/iotc-ingress"
start engine "$bin/iotc-engine"
start api "$bin/iotc-api"

for _ in $(seq 50); do
  port_open 1887 && port_open 7070 && break
  sleep 0.2
done

api="http://127.0.0.1:1887/api.beta/v1"
cat <<TXT

iotc is running.
  APs:      ws://<this host>:7070/aruba   auth: POST http://<this host>:7070/auth/aruba
            (user $IOT_GATEWAY_USERNAME, password $IOT_GATEWAY_PASSWORD)
  API:      $api   (Basic auth $BASIC_AUTH_USERNAME / $BASIC_AUTH_PASSWORD)
  Swagger:  http://127.0.0.1:1887/
  Console:  http://127.0.0.1:1887/console/
  Watch MQTT output:
            mosquitto_sub -h 127.0.0.1 -p $MQTT_PORT -t 'sensor/#' -t 'gateway/#' -t 'system/#' -v
  Onboard a device:
            curl -u $BASIC_AUTH_USERNAME:$BASIC_AUTH_PASSWORD -H 'Content-Type: application/json' \\
              -d '{"sourceEurid":"a1b2c3d4","eep":"A5-02-05","friendlyID":"Room 1"}' $api/devices
TXT

if [ "$demo" = 1 ]; then
  start simulate "$bin/iotc" simulate --url ws://127.0.0.1:7070/aruba \
    --auth-url http://127.0.0.1:7070/auth/aruba \
    --username "$IOT_GATEWAY_USERNAME" --password "$IOT_GATEWAY_PASSWORD" \
    --onboard "$api" --api-username "$BASIC_AUTH_USERNAME" --api-password "$BASIC_AUTH_PASSWORD" \
    --gateways 3 --devices 10 --rate 5 --duration 0
  echo "  Demo:     3 simulated APs, 10 devices, 5 telegrams/s (log $state/logs/simulate.log)"
fi
echo "Ctrl-C stops everything."
wait -n "${pids[@]}" || true
echo "a process ended; stopping (see $state/logs/)"
