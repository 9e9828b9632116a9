#!/usr/bin/env bash
# Checks that the OpenAPI document iotc-api serves makes working clients, as IoTC's docs tell
# users to generate them. A real redis-server and the api binary on free ports, then:
#   - openapi-spec-validator: the 3.1 document and its 3.0 copy are valid;
#   - openapi-python-client: a Python client generated from each, the one from the 3.1 document
#     used against the API (scripts/clients/check_python_client.py);
#   - openapi-typescript: TypeScript types from each, type-checked with tsc against
#     scripts/clients/check_types.ts.
#   IOTC_CLIENTS_DIR  where the tools are installed (default target/clients)
set -euo pipefail
cd "$(dirname "$0")/.."

tools=${IOTC_CLIENTS_DIR:-target/clients}
venv=$tools/venv
npm_dir=$tools/npm
python_tools=(openapi-python-client==0.29.1 openapi-spec-validator==0.9.0)
user=clients
pass=clients-$RANDOM$RANDOM

install_python_tools() {
  if "$venv/bin/openapi-python-client" --version 2>/dev/null | grep -q 0.29.1; then return; fi
  echo "installing ${python_tools[*]} into $venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check "${python_tools[@]}"
}

install_npm_tools() {
  command -v npm >/dev/null || scripts/install-deps.sh
  mkdir -p "$npm_dir"
  if cmp -s scripts/clients/package-lock.json "$npm_dir/package-lock.json" &&
    [ -x "$npm_dir/node_modules/.bin/tsc" ]; then
    return
  fi
  echo "installing openapi-typescript and typescript into $npm_dir"
  cp scripts/clients/package.json scripts/clients/package-lock.json "$npm_dir/"
  (cd "$npm_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

install_python_tools
install_npm_tools
command -v redis-server >/dev/null || scripts/install-deps.sh
command -v curl >/dev/null || apt-get install -y -qq curl >/dev/null

cargo build -p iotc-api --locked -q
. scripts/api-stack.sh
start_api_stack target/debug/iotc-api "$user" "$pass"

echo "== documents served"
for doc in openapi.json openapi-3.0.json; do
  curl -fsS -u "$user:$pass" "$base/api.beta/v1/$doc" -o "$work/$doc"
  "$venv/bin/openapi-spec-validator" "$work/$doc"
done

echo "== openapi-python-client"
for doc in openapi.json openapi-3.0.json; do
  out=$work/py-${doc%.json}/iotc_client
  mkdir -p "$(dirname "$out")"
  # Warnings about ruff (the formatter it would run afterwards) are not errors.
  "$venv/bin/openapi-python-client" generate --path "$work/$doc" --output-path "$out" \
    --meta none >"$work/generate.log" 2>&1 || { cat "$work/generate.log"; exit 1; }
  [ -f "$out/api/devices/device_get.py" ] || { cat "$work/generate.log"; exit 1; }
done
PYTHONPATH=$work/py-openapi "$venv/bin/python" scripts/clients/check_python_client.py \
  "$base" "$user" "$pass"

echo "== openapi-typescript"
for doc in openapi.json openapi-3.0.json; do
  ts=$work/ts-${doc%.json}
  mkdir -p "$ts"
  "$npm_dir/node_modules/.bin/openapi-typescript" "$work/$doc" -o "$ts/api.d.ts" >/dev/null
  cp scripts/clients/check_types.ts "$ts/"
  "$npm_dir/node_modules/.bin/tsc" --noEmit --strict --target es2020 --module es2020 \
    --moduleResolution node "$ts/check_types.ts"
  echo "ok  types from $doc compile"
done

if grep -q panicked "$work/api.log"; then
  echo "the api panicked:" && cat "$work/api.log"
  exit 1
fi
echo "api-clients: passed"
