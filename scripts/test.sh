#!/usr/bin/env bash
# The test command of the README: builds (the executable is tested as a process too), runs
# every test target (integration tests start real mosquitto brokers and clients on loopback),
# then fuzzes the MQTT parser for FUZZ_SECONDS (default 60; 0 skips).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build --build-tests
swift test --skip-build
if [ "${FUZZ_SECONDS:-60}" -gt 0 ]; then
  bash scripts/fuzz-mqttpeek.sh "${FUZZ_SECONDS:-60}"
fi
