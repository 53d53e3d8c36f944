#!/usr/bin/env bash
# Micro-benchmark of MQTTPeek.parseConnect: ns per CONNECT for a short 3.1.1 CONNECT, a 5.0
# CONNECT with properties and will, and a split 5.0 CONNECT that needs more bytes.
# Usage: scripts/bench-mqttpeek.sh [iterations [case]]   (default 10000000 per case, all cases)
# Prints one JSON line and one human line. The run holds the build lock too, so that no build
# competes for the CPU while it is timed. It also checks in the optimised binary that the parse
# makes no runtime call (allocation, retain/release, exclusivity check): only its own functions.
set -euo pipefail
cd "$(dirname "$0")/.."

iterations="${1:-10000000}"
work="$(mktemp -d /tmp/mqttpeek-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT

flock /tmp/ringproxy-build.lock swiftc -O -wmo -module-name MQTTPeekBench \
    Sources/MQTTPeek/*.swift Benchmarks/MQTTPeekBench/main.swift -o "$work/mqttpeek-bench"

if command -v objdump >/dev/null; then
    # Calls from the parser's functions (value and protocol witnesses aside) to the runtime or libc.
    foreign="$(objdump -d --no-show-raw-insn "$work/mqttpeek-bench" | awk '
        /^[0-9a-f]+ <.*>:$/ {
            fn = $2
            hot = fn ~ /ConnectCursor|MQTTString|VariableByteInteger|PropertySet|parseConnect_|parseVariableHeaderAndPayload/ \
                && fn !~ /(Vw[A-Za-z][A-Za-z]|TW|Wl|MV|Ma)>:$/
        }
        hot && /[[:space:]]call[[:space:]]/ && ($NF ~ /@plt|swift_/) { print fn, "->", $NF }' | sort -u)"
    if [ -n "$foreign" ]; then
        echo "the parse calls into the runtime or libc:" >&2
        printf '%s\n' "$foreign" >&2
        exit 1
    fi
    echo "hot path: no runtime calls (no allocation, retain/release or exclusivity check)"
fi

cpu="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//' || true)"
swift_version="$(swiftc --version 2>&1 | head -1)"
export BENCH_MACHINE="${cpu:-unknown cpu}, $(nproc) cores, $(uname -sr), ${swift_version}"
flock /tmp/ringproxy-build.lock "$work/mqttpeek-bench" "$iterations" ${2:+"$2"}
