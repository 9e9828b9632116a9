# Sourced by the API scripts: starts redis-server and an iotc-api binary on free loopback ports
# in a temp dir, stops both on exit. Sets work, redis_port, api_port, base (the API origin).
#   start_api_stack BINARY USER PASSWORD
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stack_pids=()
stop_api_stack() {
  for pid in "${stack_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}

start_api_stack() {
  local bin=$1 user=$2 pass=$3
  work=$(mktemp -d)
  trap stop_api_stack EXIT
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
    >"$work/redis.log" 2>&1 &
  stack_pids+=($!)
  api_port=$(free_port)
  BASIC_AUTH_USERNAME=$user BASIC_AUTH_PASSWORD=$pass IOTC_API_BIND=127.0.0.1 \
    IOTC_API_PORT=$api_port REDIS_URL=127.0.0.1:$redis_port LOG_LEVEL=warn \
    "$bin" >"$work/api.log" 2>&1 &
  stack_pids+=($!)
  base=http://127.0.0.1:$api_port
  for _ in $(seq 100); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "iotc-api did not become ready:" && cat "$work/api.log"
  return 1
}
