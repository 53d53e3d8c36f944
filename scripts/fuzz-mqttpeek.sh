#!/usr/bin/env bash
# Fuzzes MQTTPeek.parseConnect with libFuzzer + AddressSanitizer for N seconds (default 60).
# Usage: scripts/fuzz-mqttpeek.sh [seconds]
# The seed corpus is copied to a temporary directory first, so the repository is not modified.
# Exits non-zero on a crash, an out-of-bounds read or a broken invariant; the failing input is
# then kept and its path printed.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
work="$(mktemp -d /tmp/mqttpeek-fuzz.XXXXXX)"
cp -R Tests/Fuzz/MQTTPeekFuzz/corpus "$work/corpus"

echo "building the fuzz target in $work"
flock /tmp/ringproxy-build.lock swiftc -sanitize=fuzzer,address -parse-as-library -O \
    -module-name MQTTPeekFuzz \
    Sources/MQTTPeek/*.swift Tests/Fuzz/MQTTPeekFuzz/main.swift -o "$work/mqttpeek-fuzz"

echo "fuzzing for ${seconds}s"
status=0
"$work/mqttpeek-fuzz" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/" "$work/corpus" || status=$?

if [ "$status" -ne 0 ]; then
    echo "FUZZ FAILURE (exit $status): reproducer(s) kept in $work:" >&2
    ls "$work" | grep -E '^(crash|leak|timeout|oom)-' >&2 || true
    exit "$status"
fi
rm -rf "$work"
echo "fuzz run clean"
