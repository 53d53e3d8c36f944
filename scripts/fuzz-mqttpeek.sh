#!/usr/bin/env bash
# Fuzzes MQTTPeek.parseConnect with libFuzzer + AddressSanitizer for N seconds (default 60).
# Usage: scripts/fuzz-mqttpeek.sh [seconds]
# See fuzz-target.sh: a copy of the seed corpus, a kept reproducer and non-zero exit on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/fuzz-target.sh MQTTPeekFuzz "${1:-60}" Tests/Fuzz/MQTTPeekFuzz/corpus \
    Sources/MQTTPeek/*.swift Tests/Fuzz/MQTTPeekFuzz/main.swift
