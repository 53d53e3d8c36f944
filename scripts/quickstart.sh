#!/usr/bin/env bash
# The seed's quick start without docker: three local mosquitto brokers on 127.0.0.1:18831-18833,
# ringproxy on 127.0.0.1:1883 in front of them, 10 MQTT clients connected through it, and how
# they spread over the brokers. Everything keeps running; `scripts/quickstart.sh stop` ends it.
set -euo pipefail
cd "$(dirname "$0")/.."
run=/tmp/ringproxy-quickstart
stop() {
  if [ -d "$run" ]; then
    for pidfile in "$run"/*.pid; do
      [ -e "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    sleep 0.5
    rm -rf "$run"
  fi
}
if [ "${1:-}" = "stop" ]; then stop; echo "quick start stopped"; exit 0; fi
stop

echo "== installing Debian packages"
bash scripts/install-deps.sh
echo "== building ringproxy (release)"
swift build -c release --product ringproxy 2>&1 | tail -n 1
bin=$(swift build -c release --show-bin-path)/ringproxy

mkdir -p "$run"
chmod 777 "$run"   # mosquitto drops root to its own user
for i in 1 2 3; do
  port=$((18830 + i))
  printf 'listener %s 127.0.0.1\nallow_anonymous true\nlog_dest stdout\nconnection_messages true\n' "$port" > "$run/emqx$i.conf"
  mosquitto -c "$run/emqx$i.conf" > "$run/emqx$i.log" 2>&1 &
  echo $! > "$run/emqx$i.pid"
done
"$bin" --listen 127.0.0.1:1883 --backend 127.0.0.1:18831 --backend 127.0.0.1:18832 --backend 127.0.0.1:18833 \
  > "$run/ringproxy.log" 2>&1 &
echo $! > "$run/ringproxy.pid"

wait_port() {
  for _ in $(seq 1 100); do
    ss -Hltn "sport = :$1" | grep -q . && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  cat "$run"/*.log >&2
  return 1
}
for port in 18831 18832 18833 1883; do wait_port "$port"; done
echo "== ringproxy: $(grep -m1 'started' "$run/ringproxy.log" | sed 's/.*ringproxy: //')"

echo "== 10 MQTT connections through 127.0.0.1:1883 (mosquitto_sub, held open)"
for i in $(seq 1 10); do
  mosquitto_sub -h 127.0.0.1 -p 1883 -t quickstart/demo -i "quickstart-client-$i" > /dev/null 2>&1 &
  echo $! > "$run/client$i.pid"
done
total=0
for _ in $(seq 1 50); do
  total=0
  for port in 18831 18832 18833; do
    n=$(ss -Htn state established "( sport = :$port )" | wc -l)
    total=$((total + n))
  done
  [ "$total" -ge 10 ] && break
  sleep 0.1
done
for i in 1 2 3; do
  port=$((18830 + i))
  n=$(ss -Htn state established "( sport = :$port )" | wc -l)
  printf 'emqx%s (127.0.0.1:%s)  connections.count : %s\n' "$i" "$port" "$n"
done
if [ "$total" -ne 10 ]; then
  echo "expected 10 connections on the brokers, found $total" >&2
  exit 1
fi
echo "== all 10 connections reached a broker. Stop everything with: bash scripts/quickstart.sh stop"
