#!/usr/bin/env bash
# MQTT connection set-up through ringproxy: plain TCP mode vs --mqtt --sticky (CONNECT held,
# validated, client id looked up in the stick table), with and without the connection log
# (stderr to a file), against three mosquitto brokers, and a
# direct connection to one broker as the floor. ringproxy: one worker on CPU 0; load and
# brokers on CPU 1. Prints connections/s and ringproxy CPU-µs per connection.
# Usage: Benchmarks/scripts/connrate.sh [seconds] [threads]
set -euo pipefail
seconds=${1:-4}
threads=${2:-8}
source "$(dirname "$0")/lib.sh"
bench_tools connbench
sysctl -qw net.ipv4.tcp_tw_reuse=1 || true
for i in 1 2 3; do
  printf 'listener %s 127.0.0.1\nallow_anonymous true\nmax_connections -1\nlog_type none\n' $((28830 + i)) > "$run/m$i.conf"
  taskset -c 1 mosquitto -c "$run/m$i.conf" >/dev/null 2>&1 & pids+=($!)
done
sleep 0.5
measure() {  # name port [proxy pid]
  local before after json
  [ -n "${3:-}" ] && before=$(cpu_ticks "$3")
  json=$(taskset -c 1 /tmp/rp-connbench 127.0.0.1 "$2" "$threads" "$seconds" 10000)
  [ -n "${3:-}" ] && after=$(cpu_ticks "$3")
  python3 - "$1" "$json" "${before:-0}" "${after:-0}" "$hz" <<'PY'
import json, sys
name, j, before, after, hz = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
cpu_us = (after - before) / hz * 1e6 / max(1, j["connections"])
print(f"{name:28s} {j['per_second']:>10.0f} conn/s  failed {j['failed']:>5d}  proxy CPU {cpu_us:6.1f} µs/conn" if after else
      f"{name:28s} {j['per_second']:>10.0f} conn/s  failed {j['failed']:>5d}")
PY
}
measure "direct (one broker)" 28831
for mode in plain sticky sticky+log; do
  extra=(--log none)
  [ "$mode" = sticky ] && extra=(--mqtt --sticky --log none)
  # The connection log costs a formatted line per connection and one write(2) per loop turn.
  [ "$mode" = sticky+log ] && extra=(--mqtt --sticky --log stderr)
  taskset -c 0 "$bin" --listen 127.0.0.1:28840 --backend 127.0.0.1:28831 --backend 127.0.0.1:28832 --backend 127.0.0.1:28833 \
    --cores 1 "${extra[@]}" 2>"$run/rp-$mode.log" &
  proxy=$!
  sleep 0.5
  measure "ringproxy $mode" 28840 $proxy
  kill -USR1 $proxy; sleep 0.2
  kill $proxy; wait $proxy 2>/dev/null || true
  grep -E "mqtt:" "$run/rp-$mode.log" | sed 's/^/    /' || true
done

# HAProxy 2.6 in the same run, same CPU, one thread: plain TCP and the seed's MQTT config
# (mqtt_is_valid + stick table on the client id), with the inspect-delay it needs to work.
if command -v haproxy >/dev/null; then
  for mode in plain sticky; do
    {
      printf 'global\n  nbthread 1\n  maxconn 4000\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n'
      printf 'backend b\n'
      if [ "$mode" = sticky ]; then
        printf '  stick-table type string len 32 size 100k expire 30m\n  stick on req.payload(0,0),mqtt_field_value(connect,client_identifier)\n'
      fi
      printf '  server s1 127.0.0.1:28831\n  server s2 127.0.0.1:28832\n  server s3 127.0.0.1:28833\n'
      printf 'frontend f\n  bind 127.0.0.1:28850\n  default_backend b\n'
      if [ "$mode" = sticky ]; then
        printf '  tcp-request inspect-delay 5s\n  tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }\n'
      fi
    } > "$run/haproxy-$mode.cfg"
    taskset -c 0 haproxy -f "$run/haproxy-$mode.cfg" -db 2>/dev/null &
    hap=$!
    sleep 0.5
    measure "haproxy 2.6 $mode" 28850 $hap
    kill $hap; wait $hap 2>/dev/null || true
  done
fi
