#!/usr/bin/env bash
# Userspace memory per idle proxied MQTT connection: RSS of ringproxy and HAProxy 2.6 before and
# after N connections (each did a CONNECT round trip, then idles). Usage: idle-rss.sh [N]
# N is bounded by this host's open-files limit for HAProxy (two fds per connection).
set -euo pipefail
n=${1:-9000}
source "$(dirname "$0")/lib.sh"
bench_tools echoserver idleconns
taskset -c 1 /tmp/rp-echoserver 29101 & pids+=($!)
sleep 0.3
measure() {  # name port pid
  # RSS at start, after a first third of the connections, and after all of them: the first
  # step includes one-off costs (first touch of buffer pages), the second is the per-connection
  # slope.
  local start mid end first=$((n / 3)) second=$((n - n / 3))
  start=$(rss_kb "$3")
  taskset -c 1 /tmp/rp-idleconns 127.0.0.1 "$2" "$first" 8 > "$run/idle1.json" &
  local idle1=$!
  for _ in $(seq 1 200); do [ -s "$run/idle1.json" ] && break; sleep 0.05; done
  sleep 0.5
  mid=$(rss_kb "$3")
  taskset -c 1 /tmp/rp-idleconns 127.0.0.1 "$2" "$second" 4 > "$run/idle2.json" &
  local idle2=$!
  for _ in $(seq 1 200); do [ -s "$run/idle2.json" ] && break; sleep 0.05; done
  sleep 0.5
  end=$(rss_kb "$3")
  wait $idle1 $idle2 || true
  python3 -c "print(f'{\"$1\":14s} RSS {$start/1024:6.1f} -> {$mid/1024:6.1f} ($first conns) -> {$end/1024:6.1f} MiB ($n conns): '
                   f'{($end-$start)*1024/$n:6.0f} B/conn overall, {($end-$mid)*1024/$second:6.0f} B/conn marginal')"
}
taskset -c 0 "$bin" --listen 127.0.0.1:29102 --backend 127.0.0.1:29101 --cores 1 --log none --mqtt --sticky --maxconn $((n + 100)) 2>"$run/rp.log" &
rp=$!; sleep 0.5
measure "ringproxy" 29102 $rp
kill $rp; wait $rp 2>/dev/null || true
if command -v haproxy >/dev/null; then
  printf 'global\n  nbthread 1\n  maxconn %d\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\nfrontend f\n  bind 127.0.0.1:29103\n  tcp-request inspect-delay 5s\n  tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }\n  default_backend b\nbackend b\n  stick-table type string len 32 size 100k expire 30m\n  stick on req.payload(0,0),mqtt_field_value(connect,client_identifier)\n  server s1 127.0.0.1:29101\n' $((n + 100)) > "$run/h.cfg"
  taskset -c 0 haproxy -f "$run/h.cfg" -db 2>/dev/null &
  hap=$!; sleep 0.5
  measure "haproxy 2.6" 29103 $hap
  kill $hap; wait $hap 2>/dev/null || true
fi
