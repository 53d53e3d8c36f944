#!/usr/bin/env bash
# Fuzzes HTTPRequestParser.parse (the stats page's request parser) with libFuzzer +
# AddressSanitizer for N seconds (default 10). Usage: scripts/fuzz-httprequest.sh [seconds]
# Builds only the parser file (no engine). See fuzz-target.sh: a copy of the seed corpus, a kept
# reproducer and non-zero exit on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/fuzz-target.sh HTTPRequestFuzz "${1:-10}" Tests/Fuzz/HTTPRequestFuzz/corpus \
    Sources/RingProxy/Admin/HTTPRequestParser.swift Tests/Fuzz/HTTPRequestFuzz/main.swift
