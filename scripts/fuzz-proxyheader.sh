#!/usr/bin/env bash
# Fuzzes ProxyHeader.parse (the accept-proxy parser) with libFuzzer + AddressSanitizer for N
# seconds (default 20). Usage: scripts/fuzz-proxyheader.sh [seconds]
# Builds only the stage files the parser needs (no engine). See fuzz-target.sh: a copy of the
# seed corpus, a kept reproducer and non-zero exit on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/fuzz-target.sh ProxyHeaderFuzz "${1:-20}" Tests/Fuzz/ProxyHeaderFuzz/corpus \
    Sources/RingProxy/Stages/FrontStages.swift Sources/RingProxy/Stages/StageVerdict.swift \
    Sources/RingProxy/Stages/ProxyHeader.swift Sources/RingProxy/Stages/ProxyHeader+Writer.swift Tests/Fuzz/ProxyHeaderFuzz/main.swift
