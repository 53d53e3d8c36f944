#!/usr/bin/env bash
# The test suite under a sanitizer (issue 15): AddressSanitizer (default) or ThreadSanitizer.
# Usage: scripts/sanitize.sh [address|thread] [swift test arguments, e.g. --filter Relay]
# Builds into .build-<kind> with RINGPROXY_SANITIZE=1 (Package.swift then leaves jemalloc out:
# the sanitizer's allocator must be the only one; the tests that read jemalloc's counters skip),
# runs the suite, and fails when the sanitizer reported anything in any process (the test
# process, or the ringproxy/ringbench binaries the tests start, which are built the same way).
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-address}"
shift || true
case "$kind" in address|thread) ;; *) echo "usage: $0 [address|thread] [swift test args]" >&2; exit 2 ;; esac
export RINGPROXY_SANITIZE=1
path=".build-$kind"
flock /tmp/ringproxy-build.lock swift build --build-tests --build-path "$path" -Xswiftc "-sanitize=$kind"
work=$(mktemp -d /tmp/ringproxy-sanitize.XXXXXX)
# Leak checking is off: XCTest's own objects outlive the run (every test case and its name are
# reported as leaked), and LeakSanitizer suppressions match any frame of a stack, so a rule for
# XCTest would hide everything the tests call. Memory errors (use after free, overflows, bad
# frees) are what this run checks; leaks are checked by the suite itself (buffers, slots and
# connections back to 0 after every test with traffic, RSS flat over reloads in a normal build).
export ASAN_OPTIONS="detect_leaks=0"
export TSAN_OPTIONS="halt_on_error=0 second_deadlock_stack=1"
status=0
swift test --skip-build --build-path "$path" -Xswiftc "-sanitize=$kind" "$@" > "$work/log" 2>&1 || status=$?
reports=$(grep -cE "ERROR: (AddressSanitizer|LeakSanitizer)|WARNING: ThreadSanitizer" "$work/log" || true)
# XCTest's whole-run line: the one with the most tests.
grep -E "Executed [0-9]+ tests?, with" "$work/log" | awk '{ n = $2 + 0; if (n > best) { best = n; line = $0 } } END { print line }' || true
if [ "$reports" -gt 0 ] || [ "$status" -ne 0 ]; then
    grep -E -A30 "ERROR: (AddressSanitizer|LeakSanitizer)|WARNING: ThreadSanitizer" "$work/log" | head -200 >&2 || true
    grep -E "error:" "$work/log" | head -20 >&2 || true
    echo "sanitize ($kind): $reports report(s), swift test exit $status; full log kept in $work/log" >&2
    exit 1
fi
rm -rf "$work"
echo "sanitize ($kind): clean"
