#!/usr/bin/env bash
# The test command of the README: builds (the executable is tested as a process too) and runs
# every test target. Integration tests start real mosquitto brokers and clients on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build --build-tests
swift test --skip-build
