#!/usr/bin/env bash
# Builds one libFuzzer target (libFuzzer + AddressSanitizer, one module) and runs it for a
# bounded time on a copy of its seed corpus, so the repository is not modified. Used by
# fuzz-mqttpeek.sh and fuzz-proxyheader.sh.
# Usage: scripts/fuzz-target.sh <module name> <seconds> <corpus dir> <swift files...>
# Exits non-zero on a crash, an out-of-bounds read or a broken invariant; the failing input is
# then kept and its path printed.
set -euo pipefail
cd "$(dirname "$0")/.."

name="$1"
seconds="$2"
corpus="$3"
shift 3
work="$(mktemp -d "/tmp/${name}.XXXXXX")"
cp -R "$corpus" "$work/corpus"

echo "building the fuzz target $name in $work"
flock /tmp/ringproxy-build.lock swiftc -sanitize=fuzzer,address -parse-as-library -O -g \
    -module-name "$name" "$@" -o "$work/fuzz"

echo "fuzzing $name for ${seconds}s"
status=0
# Swift's own crash handler would race libFuzzer's on a trap (and its memory reader trips ASan):
# leave the report to libFuzzer, whose stack has file:line with -g.
SWIFT_BACKTRACE=enable=no "$work/fuzz" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/" "$work/corpus" || status=$?

if [ "$status" -ne 0 ]; then
    echo "FUZZ FAILURE (exit $status): reproducer(s) kept in $work:" >&2
    ls "$work" | grep -E '^(crash|leak|timeout|oom)-' >&2 || true
    exit "$status"
fi
rm -rf "$work"
echo "fuzz run clean"
