#!/usr/bin/env bash
# The fault tests of docs/reliability.md: the whole connector under load from simulated APs
# while Redis, the ingress, the engine or the broker fails. Prints one FAULT line per test
# (sent, accepted, arrived, duplicates, lost after accept, recovery time, peak memory).
# IOTC_E2E_RELEASE=1 runs optimised binaries.
set -euo pipefail
cd "$(dirname "$0")/.."

IOTC_WITH_BROWSER=0 scripts/install-deps.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test -p iotc-e2e --test faults --test broker_outage -- --nocapture --test-threads=1 \
  >"$log" 2>&1 || status=$?
# With --nocapture a FAULT line can follow the test's name on the same line.
grep -oE 'FAULT .*|test result: .*' "$log" || true
if [ "$status" -ne 0 ]; then
  tail -n 60 "$log"
  exit "$status"
fi
