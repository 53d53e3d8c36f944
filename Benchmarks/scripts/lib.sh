# Shared set-up for the benchmark scripts (sourced, not run): the release binary in $bin, the C
# tools compiled to /tmp/rp-TOOL, a scratch directory in $run, background processes in $pids
# killed on exit, and the /proc readers.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
swift build -c release --product ringproxy >/dev/null
bin=$(swift build -c release --show-bin-path)/ringproxy
# Compile the named tools from Benchmarks/tools/NAME.c to /tmp/rp-NAME.
bench_tools() { for tool in "$@"; do gcc -O2 -pthread "Benchmarks/tools/$tool.c" -o "/tmp/rp-$tool"; done; }
run=$(mktemp -d /tmp/rp-bench.XXXXXX)
chmod 777 "$run"   # mosquitto drops root to its own user
pids=()
bench_cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$run"; }
trap bench_cleanup EXIT
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)
