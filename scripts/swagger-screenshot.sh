#!/usr/bin/env bash
# Renders the Swagger UI that iotc-api serves in headless Chromium, with no network but the
# loopback: takes a screenshot and checks from the rendered DOM that all 28 operations are listed.
# The browser reaches the API through a small local proxy that adds the Basic auth header, like
# a browser after its login prompt (a URL with user:password@ would make the page's own fetch
# of the document fail).
#   IOTC_SCREENSHOT  where to write the PNG (default target/swagger-ui.png)
set -euo pipefail
cd "$(dirname "$0")/.."

out=${IOTC_SCREENSHOT:-target/swagger-ui.png}
user=ui
pass=ui-$RANDOM$RANDOM
for tool in chromium redis-server python3; do
  command -v "$tool" >/dev/null || { scripts/install-deps.sh; break; }
done
command -v curl >/dev/null || apt-get install -y -qq curl >/dev/null
cargo build -p iotc-api --locked -q
bin=target/debug/iotc-api

. scripts/api-stack.sh
start_api_stack "$bin" "$user" "$pass"

proxy_port=$(free_port)
cat >"$work/proxy.py" <<'PY'
# Forwards GETs to the API with an Authorization header (what a logged-in browser sends).
import base64, http.server, sys, urllib.error, urllib.request
port, upstream, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args):
        return None
opener = urllib.request.build_opener(NoRedirect)
class Proxy(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        req = urllib.request.Request(upstream + self.path, headers={"Authorization": auth})
        try:
            resp = opener.open(req, timeout=10)
        except urllib.error.HTTPError as e:
            resp = e
        body = resp.read()
        self.send_response(resp.status if hasattr(resp, "status") else resp.code)
        for name in ("Content-Type", "Location"):
            if resp.headers.get(name):
                self.send_header(name, resp.headers[name])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), Proxy).serve_forever()
PY
python3 "$work/proxy.py" "$proxy_port" "$base" "$user" "$pass" &
stack_pids+=($!)
for _ in $(seq 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$proxy_port/api.beta/v1/ui/" 2>/dev/null && break
  sleep 0.1
done
location=$(curl -sS -o /dev/null -w '%{redirect_url}' "http://127.0.0.1:$proxy_port/")
case "$location" in
  */api.beta/v1/ui/) ;;
  *) echo "swagger-screenshot: / does not redirect to the UI (got '$location')"; exit 1 ;;
esac
unauthenticated=$(curl -sS -o /dev/null -w '%{http_code}' "$base/api.beta/v1/ui/")
[ "$unauthenticated" = 401 ] || { echo "swagger-screenshot: the UI answers $unauthenticated without credentials"; exit 1; }

chrome() {
  chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --disable-dev-shm-usage \
    --user-data-dir="$work/profile-$1" --virtual-time-budget=20000 "${@:2}" \
    "http://127.0.0.1:$proxy_port/api.beta/v1/ui/" 2>>"$work/chrome.log"
}
mkdir -p "$(dirname "$out")"
chrome dom --dump-dom >"$work/dom.html"
chrome shot --hide-scrollbars --window-size=1280,2200 --screenshot="$out" >/dev/null

missing=0
for op in backup_get backup_post backup_patch device_get device_put device_post device_delete \
  device_get_metadata_statitics_telegram device_most_recent_telemetry_get \
  device_most_recent_signals_get gateway_get gateway_get_metadata_statitics_telegram \
  gateway_get_metadata_health system_health_get learn_get learn_open learn_close \
  availability_get availability_put availability_delete device_command devices_unknown_get \
  device_teach_in device_queue_get device_queue_delete aps_get aps_post aps_delete; do
  grep -q ">$op<" "$work/dom.html" || { echo "not listed: operation $op"; missing=1; }
done
for path in /backup /devices /devices/metadata/statistics/telegrams /devices/telemetry/most-recent \
  /devices/signals/most-recent /gateways /gateways/metadata/statistics/telegrams \
  /gateways/metadata/health /system/health /devices/learn /devices/availability /devices/command \
  /devices/unknown /devices/teach-in /devices/queue /aps; do
  grep -q "data-path=\"$path\"" "$work/dom.html" || { echo "not listed: path $path"; missing=1; }
done
if grep -q 'Fetch error\|Failed to load API definition' "$work/dom.html"; then
  echo "the UI could not load the document"; missing=1
fi
[ -s "$out" ] || { echo "no screenshot written"; missing=1; }
if [ "$missing" -ne 0 ]; then
  echo "swagger-screenshot: FAILED (DOM kept in target/swagger-ui-dom.html)"
  cp "$work/dom.html" target/swagger-ui-dom.html
  exit 1
fi
echo "swagger-screenshot: 28 operations rendered; screenshot $out"
