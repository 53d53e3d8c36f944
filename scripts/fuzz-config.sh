#!/usr/bin/env bash
# Fuzzes the config parser (ConfigParser.parse: lexer, sections, keywords, samples, conditions,
# the effective view) with libFuzzer + AddressSanitizer for N seconds (default 20), from the
# seed's configuration files. Usage: scripts/fuzz-config.sh [seconds]
# Builds only the Config files and the plain types they name (no engine). See fuzz-target.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
exec bash scripts/fuzz-target.sh ConfigFuzz "${1:-20}" Tests/Fuzz/ConfigFuzz/corpus \
    $(ls Sources/RingProxy/Config/*.swift | grep -v '/EngineConfig+') \
    Sources/RingProxy/TLS/TLSBindConfig.swift Sources/RingProxy/TLS/ServerTLSConfig.swift \
    Sources/RingProxy/Health/HealthCheckConfig.swift Sources/RingProxy/SocketAddress.swift \
    Tests/Fuzz/ConfigFuzz/main.swift
