#!/usr/bin/env bash
# Bulk throughput through ringproxy vs a direct connection, with iperf3 (Debian) on loopback.
# ringproxy gets CPU 0 (one worker), iperf3 client and server share CPU 1. Prints one line per
# run: streams, Gbit/s direct, Gbit/s through ringproxy, ringproxy CPU seconds per GB.
# Usage: Benchmarks/scripts/bulk-iperf.sh [seconds] [streams...]
set -euo pipefail
seconds=${1:-5}; shift || true
streams=("${@:-1 100}")
command -v iperf3 >/dev/null || { apt-get update -qq && apt-get install -y -qq iperf3 >/dev/null; }
source "$(dirname "$0")/lib.sh"

taskset -c 1 iperf3 -s -p 15201 -D --logfile /tmp/rp-iperf-server.log
taskset -c 0 "$bin" --listen 127.0.0.1:15202 --backend 127.0.0.1:15201 --cores 1 --log none ${RP_ARGS:-} 2>"$run/proxy.log" &
proxy=$!
pids+=($proxy)
trap 'bench_cleanup; pkill -f "iperf3 -s -p 15201" || true' EXIT
sleep 0.5
gbps() { python3 -c 'import json,sys; d=json.load(sys.stdin); e=d["end"]; print("%.2f %d" % (e["sum_received"]["bits_per_second"]/1e9, e["sum_received"]["bytes"] + e["sum_sent"]["bytes"]))'; }
printf '%-8s %14s %18s %22s\n' streams direct_Gbit/s ringproxy_Gbit/s proxy_cpu_s_per_GB
for p in ${streams[@]}; do
  read -r direct _ < <(taskset -c 1 iperf3 -c 127.0.0.1 -p 15201 -P "$p" -t "$seconds" -J | gbps)
  before=$(cpu_ticks $proxy)
  read -r proxied bytes < <(taskset -c 1 iperf3 -c 127.0.0.1 -p 15202 -P "$p" -t "$seconds" -J | gbps)
  after=$(cpu_ticks $proxy)
  # bytes = sent + received by the client: the proxy forwarded about half of that each way;
  # count the bytes that crossed the proxy once (what the client sent).
  python3 -c "import sys; t=($after-$before)/$hz; b=$bytes/2; print('%-8s %14s %18s %22.3f' % ('$p', '$direct', '$proxied', t/(b/1e9)))"
done
