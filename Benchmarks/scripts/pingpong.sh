#!/usr/bin/env bash
# Small-message round trips through ringproxy and HAProxy 2.6 (same CPU, one worker/thread),
# and direct: CONNECTIONS connections x WINDOW messages of SIZE bytes in flight to an epoll
# echo server. Proxy on CPU 0; client and echo server on CPU 1. Prints round trips/s and the
# proxy's CPU-µs per round trip (each round trip = two messages forwarded).
# Usage: Benchmarks/scripts/pingpong.sh [seconds] [connections] [window] [size]
set -euo pipefail
seconds=${1:-5}; conns=${2:-100}; window=${3:-16}; size=${4:-64}
source "$(dirname "$0")/lib.sh"
bench_tools echoserver pingpong
taskset -c 1 /tmp/rp-echoserver 29001 & pids+=($!)
sleep 0.3
measure() {  # name port [pid]
  local before=0 after=0 json
  [ -n "${3:-}" ] && before=$(cpu_ticks "$3")
  json=$(taskset -c 1 /tmp/rp-pingpong 127.0.0.1 "$2" "$conns" "$window" "$size" "$seconds")
  [ -n "${3:-}" ] && after=$(cpu_ticks "$3")
  python3 -c "
import json
j = json.loads('$json'); t = ($after - $before) / $hz
cpu = f'  proxy CPU {t * 1e6 / max(1, j[\"roundtrips\"]):5.2f} µs/round trip' if $after else ''
print(f'{\"$1\":24s} {j[\"per_second\"]:>10.0f} round trips/s{cpu}')"
}
measure "direct" 29001
taskset -c 0 "$bin" --listen 127.0.0.1:29002 --backend 127.0.0.1:29001 --cores 1 --log none ${RP_ARGS:-} 2>"$run/rp.log" &
rp=$!; sleep 0.5
measure "ringproxy" 29002 $rp
kill $rp; wait $rp 2>/dev/null || true
if command -v haproxy >/dev/null; then
  printf 'global\n  nbthread 1\n  maxconn 4000\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\nfrontend f\n  bind 127.0.0.1:29003\n  default_backend b\nbackend b\n  server s1 127.0.0.1:29001\n' > "$run/h.cfg"
  taskset -c 0 haproxy -f "$run/h.cfg" -db 2>/dev/null &
  hap=$!; sleep 0.5
  measure "haproxy 2.6" 29003 $hap
  kill $hap; wait $hap 2>/dev/null || true
fi
