#!/usr/bin/env bash
# Fuzzes the WebSocket front stage (WebSocketUpgrade.parse, WebSocketFrames.read,
# WebSocketUpgradeResponse.parse, and ConnackResponse: a server's answer) with libFuzzer + AddressSanitizer for N seconds (default 10).
# Usage: scripts/fuzz-websocket.sh [seconds]
# Builds only the stage files the parsers need (no engine). See fuzz-target.sh: a copy of the
# seed corpus, a kept reproducer and non-zero exit on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
stages=Sources/RingProxy/Stages
exec bash scripts/fuzz-target.sh WebSocketFuzz "${1:-10}" Tests/Fuzz/WebSocketFuzz/corpus \
    $stages/FrontStages.swift $stages/StageVerdict.swift $stages/HTTPHead.swift $stages/Base64.swift \
    $stages/SHA1.swift $stages/WebSocketUpgrade.swift $stages/WebSocketUpgradeResponse.swift \
    $stages/WebSocketFrames.swift $stages/ConnackResponse.swift Tests/Fuzz/WebSocketFuzz/main.swift
