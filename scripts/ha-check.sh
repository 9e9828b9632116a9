#!/usr/bin/env bash
# A real Home Assistant core against iotc: installs Home Assistant into a cache folder when it
# is missing (about 8 minutes once), starts redis-server, mosquitto, the three services with
# Home Assistant discovery on, onboards a D2-14-41 multisensor and an F6-02-01 rocker, sends
# their telegrams with the simulator, starts Home Assistant with its MQTT integration and
# checks through its REST API that the entities exist with iotc's states, and that switching a
# channel and setting a thermostat send iotc the right commands (docs/home-assistant.md).
set -euo pipefail
cd "$(dirname "$0")/.."

HA_VERSION=2025.4.4
cache="${IOTC_HA_CACHE:-$HOME/.cache/iotc-ha}"
venv="$cache/venv"

# Home Assistant 2025.4 needs Python 3.13.
find_python() {
  for c in python3.13 "$(pyenv root 2>/dev/null || echo /nonexistent)/versions/3.13.0/bin/python3"; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
      echo "$c"
      return
    fi
  done
  echo "ha-check: Python 3.13 not found (pyenv versions 3.13.0 or python3.13)" >&2
  exit 1
}

if ! "$venv/bin/python" -c "import homeassistant.const as c; assert c.__version__ == '$HA_VERSION'" 2>/dev/null; then
  echo "ha-check: installing Home Assistant $HA_VERSION into $venv (minutes, once)"
  mkdir -p "$cache"
  "$(find_python)" -m venv "$venv"
  "$venv/bin/pip" install -q "homeassistant==$HA_VERSION"
fi

cargo build -q -p iotc-ingress -p iotc-engine -p iotc-api -p iotc-cli
bin="${CARGO_TARGET_DIR:-target}/debug"

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${keep:-0}" = 1 ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT INT TERM
keep=1

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { for _ in $(seq 100); do port_open "$1" && return; sleep 0.2; done; echo "port $1 not open" >&2; exit 1; }
start() { local name=$1; shift; "$@" >"$work/$name.log" 2>&1 & pids+=($!); }

redis_port=$(free_port); mqtt_port=$(free_port); ingress_port=$(free_port)
api_port=$(free_port); engine_port=$(free_port); ha_port=$(free_port)

start redis redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work"
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$mqtt_port" >"$work/mosquitto.conf"
start mosquitto mosquitto -c "$work/mosquitto.conf"
wait_port "$redis_port"; wait_port "$mqtt_port"

export REDIS_URL="127.0.0.1:$redis_port"
IOTC_INGRESS_PORT=$ingress_port IOTC_INGRESS_BIND=127.0.0.1 IOT_GATEWAY_USERNAME=ap \
  IOT_GATEWAY_PASSWORD=ap-secret start ingress "$bin/iotc-ingress"
IOTC_API_PORT=$api_port IOTC_API_BIND=127.0.0.1 BASIC_AUTH_USERNAME=admin \
  BASIC_AUTH_PASSWORD=admin-secret start api "$bin/iotc-api"
IOT_ENABLE_MQTT=1 MQTT_CONNSTRING="127.0.0.1:$mqtt_port" IOTC_ENGINE_HTTP_PORT=$engine_port \
  IOTC_HA_DISCOVERY=true start engine "$bin/iotc-engine"
wait_port "$ingress_port"; wait_port "$api_port"; wait_port "$engine_port"

api="http://127.0.0.1:$api_port/api.beta/v1"
onboard() {
  curl -fsS -u admin:admin-secret -H 'Content-Type: application/json' -d "$1" "$api/devices" >/dev/null
}
onboard '{"sourceEurid":"05a00000","friendlyID":"Multisensor","location":"Office 265","eep":"D2-14-41"}'
onboard '{"sourceEurid":"05a00001","friendlyID":"Hall switch","eep":"F6-02-01"}'
# Actuators: command entities on the control topic.
onboard '{"sourceEurid":"05b00001","friendlyID":"Plug","eep":"D2-01-12"}'
onboard '{"sourceEurid":"05b00002","friendlyID":"Dimmer","eep":"D2-01-02"}'
onboard '{"sourceEurid":"05b00003","friendlyID":"Blind","eep":"D2-05-00"}'
onboard '{"sourceEurid":"05b00004","friendlyID":"Radiator","eep":"A5-20-01"}'

"$bin/iotc" simulate --url "ws://127.0.0.1:$ingress_port/aruba" \
  --auth-url "http://127.0.0.1:$ingress_port/auth/aruba" --username ap --password ap-secret \
  --gateways 2 --devices 2 --eep D2-14-41,F6-02-01 --id-base 05a00000 --rate 4 --count 12 \
  >"$work/simulate.log" 2>&1
# The actuators report too (Home Assistant calls no service on an entity that is unavailable).
"$bin/iotc" simulate --url "ws://127.0.0.1:$ingress_port/aruba" \
  --auth-url "http://127.0.0.1:$ingress_port/auth/aruba" --username ap --password ap-secret \
  --gateways 2 --devices 4 --eep D2-01-12,D2-01-02,D2-05-00,A5-20-01 --id-base 05b00001 \
  --rate 4 --count 8 >"$work/simulate-actuators.log" 2>&1

"$venv/bin/python" scripts/ha_check.py run --dir "$work/ha" --hass "$venv/bin/hass" \
  --mqtt-port "$mqtt_port" --http-port "$ha_port" \
  --device "05a00000:Multisensor" --event "Hall switch" \
  --entity "Plug Output 1" --entity "Plug Output 2" --entity "Dimmer Output" \
  --entity "Blind Output" --entity "Radiator Output" --entity "Radiator Thermostat" \
  --onoff 'Dimmer Output=05b00002:outputValue' --onoff 'Plug Output 1=05b00001:outputValue_ch0' \
  --onoff 'Plug Output 2=05b00001:outputValue_ch1' \
  --command 'Plug Output 2|switch.turn_off|{}|sensor/05b00001/set|outputValue=0,channel=1' \
  --command 'Radiator Thermostat|climate.set_temperature|{"temperature": 21.5}|sensor/05b00004/set|valvePositionOrTemperatureSetpoint=21.5,setPointSelection=1,temperatureFromRcu=state:temperature' \
  ${IOTC_HA_SCREENSHOTS:+--screenshots "$IOTC_HA_SCREENSHOTS" \
    --screenshot-device sensor.multisensor_temperature=ha-multisensor.png \
    --screenshot-device climate.radiator_thermostat=ha-radiator.png}
keep=${IOTC_HA_KEEP:-0}
