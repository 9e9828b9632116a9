#!/usr/bin/env bash
# The test command: installs what is missing, then checks formatting and lints, runs every
# test (unit, protocol vectors, property tests, services against real redis-server and
# mosquitto, end to end through nginx, the live console in headless Chromium), the API fuzz
# run, the generated API clients and the deployment checks.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

# A clean checkout gains nothing from incremental data, which would double the build's disk use.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

echo "== format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== tests"
cargo build --workspace --locked --bins
cargo test --workspace --locked -- --test-threads="${IOTC_TEST_THREADS:-2}"

for extra in scripts/deploy-checks.sh scripts/container-check.sh scripts/api-fuzz.sh \
    scripts/api-clients.sh scripts/swagger-screenshot.sh scripts/ha-check.sh; do
  if [ -x "$extra" ]; then
    echo "== $extra"
    "$extra"
  fi
done
echo "all checks passed"
