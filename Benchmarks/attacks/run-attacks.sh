#!/usr/bin/env bash
# Runs every attack of attack.py against a release ringproxy on loopback: three mosquitto
# brokers behind an MQTT frontend (the seed's sticky configuration), and a plain TCP frontend
# whose backend accepts and never reads (the stalled-server attack), and a stats page with
# `stats auth` (the stats-* attacks: slowloris, huge headers, malformed requests, wrong
# credentials). Well-behaved MQTT clients probe the MQTT frontend before and during each
# attack; during the stats-* ones well-behaved page fetches (with the right credentials) probe
# the page too. The other listener kinds are attacked in their preambles, each probed by
# well-behaved clients of its own kind: a TLS frontend (tls-hang: handshakes left hanging), an
# `option mqtt-websocket` frontend in front of the brokers' websockets listeners
# (ws-half-upgrade), an `accept-proxy` frontend (proxy-dribble: PROXY headers a byte a second);
# their `tcp-request inspect-delay 2s` bounds each preamble, so the proxy's closes are seen
# within the run (counted from the attacker's side). After each attack the proxy must be back
# to zero connections and zero buffers in use.
#   run-attacks.sh            full size (2,000+ attacking connections, 20 s each)
#   run-attacks.sh --short    CI size (a few hundred connections, 5 s each; stats-* 4 s; ~90 s in all)
#   ATTACKS="partial-reset" STORM=1000000 SECONDS_EACH=120 run-attacks.sh   one attack, resized
#   RINGPROXY_BIN=.build/release/ringproxy run-attacks.sh --short   with a binary built already
# Prints one JSON line per attack and exits 1 if a well-behaved client (or page fetch) failed or something was
# left held; a p99 past twice the quiet one (plus 5 ms of loopback noise) fails the full run
# and is only reported by the short one (CI machines are shared and noisy).
set -euo pipefail
cd "$(dirname "$0")/../.."
short=0
[ "${1:-}" = "--short" ] && short=1
run=$(mktemp -d /tmp/ringproxy-attacks.XXXXXX)
chmod 777 "$run"
pids=()
failed=0
# A failed run keeps the proxy's log (its warnings say what it closed and why).
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$failed" = 1 ]; then cp "$run/ringproxy.log" "$run.log"; echo "the proxy's log: $run.log" >&2; fi
  rm -rf "$run"
}
trap cleanup EXIT

# RINGPROXY_BIN=path: a release binary already built (no build step here).
if [ -n "${RINGPROXY_BIN:-}" ]; then
  bin=$RINGPROXY_BIN
else
  swift build -c release --product ringproxy 2>&1 | tail -n 1
  bin=$(swift build -c release --show-bin-path)/ringproxy
fi
for i in 1 2 3; do
  printf 'listener %s 127.0.0.1\nlistener %s 127.0.0.1\nprotocol websockets\nallow_anonymous true\nmax_connections -1\n' \
    $((28830 + i)) $((28850 + i)) > "$run/b$i.conf"
  mosquitto -c "$run/b$i.conf" > "$run/b$i.log" 2>&1 &
  pids+=($!)
done
# A backend that accepts and never reads.
python3 -c '
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 28839)); s.listen(4096)
held = []
while True:
    c, _ = s.accept(); held.append(c)
' &
pids+=($!)
# The TLS frontend's certificate: self-signed, made for this run.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$run/server.key" \
  -out "$run/server.crt" -subj /CN=localhost -days 2 2>/dev/null
cat "$run/server.crt" "$run/server.key" > "$run/server.pem"
cat > "$run/ringproxy.cfg" <<CFG
global
  maxconn 20000
defaults
  mode tcp
  timeout connect 5s
  timeout client 240s
  timeout server 240s
backend brokers
  stick-table type string len 32 size 100k expire 30m
  stick on req.payload(0,0),mqtt_field_value(connect,client_identifier)
  server b1 127.0.0.1:28831
  server b2 127.0.0.1:28832
  server b3 127.0.0.1:28833
frontend mqtt
  bind 127.0.0.1:28883
  tcp-request inspect-delay 5s
  tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }
  default_backend brokers
backend sink
  # A server that does not read is cut after timeout server, as HAProxy would.
  timeout server 10s
  server sink 127.0.0.1:28839
frontend tcp
  bind 127.0.0.1:28884
  default_backend sink
# The other listener kinds, each attacked in its preamble: their front stages (TLS handshake,
# WebSocket upgrade, PROXY header, then the CONNECT) must all be done within the inspect delay.
frontend mqtts
  bind 127.0.0.1:28886 ssl crt $run/server.pem
  tcp-request inspect-delay 2s
  tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }
  default_backend brokers
frontend mqttws
  bind 127.0.0.1:28887
  option mqtt-websocket path /mqtt
  tcp-request inspect-delay 2s
  default_backend brokers_ws
backend brokers_ws
  server w1 127.0.0.1:28851
  server w2 127.0.0.1:28852
  server w3 127.0.0.1:28853
frontend proxied
  bind 127.0.0.1:28888 accept-proxy
  tcp-request inspect-delay 2s
  tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }
  default_backend brokers
listen stats
  mode http
  bind 127.0.0.1:28885
  stats enable
  stats uri /stats
  stats auth ops:attack-test
CFG
"$bin" -f "$run/ringproxy.cfg" --cores 2 > "$run/ringproxy.log" 2>&1 &
proxy=$!
pids+=($proxy)
for port in 28831 28832 28833 28851 28852 28853 28839 28883 28884 28885 28886 28887 28888; do
  for _ in $(seq 1 100); do ss -Hltn "sport = :$port" | grep -q . && break; sleep 0.1; done
done

# The proxy's counters (SIGUSR1 report): the value of one name.
counter() {
  kill -USR1 "$proxy"
  sleep 0.3
  grep 'stats: ' "$run/ringproxy.log" | tail -n 1 | tr ' ' '\n' | grep "^$1=" | cut -d= -f2
}

# Connections per attack (partial-reset: a storm of that many; the others hold them open).
if [ $short = 1 ]; then n=400; storm=50000; secs=5; else n=2500; storm=300000; secs=20; fi
storm=${STORM:-$storm}
secs=${SECONDS_EACH:-$secs}
for attack in ${ATTACKS:-partial-reset slow-connect stalled-server tls-hang ws-half-upgrade proxy-dribble stats-slowloris stats-huge-headers stats-malformed stats-bad-auth stats-unread}; do
  target=127.0.0.1:28883
  count=$n
  seconds=$secs
  quiet=2
  page=()
  kind=mqtt
  probe=127.0.0.1:28883
  [ "$attack" = stalled-server ] && target=127.0.0.1:28884
  # The listeners with front stages of their own are probed by clients of their kind.
  [ "$attack" = tls-hang ] && target=127.0.0.1:28886 && probe=$target && kind=tls
  [ "$attack" = ws-half-upgrade ] && target=127.0.0.1:28887 && probe=$target && kind=ws
  [ "$attack" = proxy-dribble ] && target=127.0.0.1:28888 && probe=$target && kind=proxy
  [ "$attack" = partial-reset ] && count=$storm
  if [[ $attack == stats-* ]]; then
    # The page admits 64 connections (512 while a burst is younger than 100 ms): the slowloris
    # holds n of them; the floods are as fast as two processes go, n connections at most.
    target=127.0.0.1:28885
    page=(--page-probe http://127.0.0.1:28885/stats --page-auth ops:attack-test)
    [ $short = 1 ] && [ -z "${SECONDS_EACH:-}" ] && seconds=4 && quiet=1.5
    [ "$attack" != stats-slowloris ] && count=$storm
  fi
  result=$(python3 Benchmarks/attacks/attack.py "$attack" --target "$target" --probe "$probe" --probe-kind $kind \
             --connections "$count" --seconds "$seconds" --quiet-seconds "$quiet" "${page[@]}")
  # Everything the attack held must be given back once it has gone.
  active=-1; buffers=-1
  for _ in $(seq 1 60); do
    active=$(counter active); buffers=$(counter buffers_in_use)
    [ "$active" = 0 ] && [ "$buffers" = 0 ] && break
    sleep 0.5
  done
  echo "$result" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
r["after"] = {"active": int(sys.argv[1]), "buffers_in_use": int(sys.argv[2])}
q, d = r["quiet"], r["during"]
problems, notes = [], []
probes = [("", q, d)] + ([("page: ", r["page"]["quiet"], r["page"]["during"])] if "page" in r else [])
for what, q, d in probes:
    if d["success"] != 1.0: problems.append(what + "well-behaved clients failed: success %s" % d["success"])
    if d["p99_ms"] is not None and q["p99_ms"] is not None and d["p99_ms"] > 2 * q["p99_ms"] + 5:
        (notes if sys.argv[3] == "1" else problems).append(what + "p99 %.1f ms during vs %.1f ms quiet" % (d["p99_ms"], q["p99_ms"]))
if r["after"]["active"] != 0 or r["after"]["buffers_in_use"] != 0: problems.append("left held: %s" % r["after"])
r["problems"] = problems
r["notes"] = notes
print(json.dumps(r))
sys.exit(1 if problems else 0)
' "$active" "$buffers" "$short" || failed=1
done
# The proxy's own warnings and alerts (not the SIGUSR1 reports, whose counters say 'errors').
grep -E '^\[(WARNING|ALERT|ERROR)\]' "$run/ringproxy.log" | grep -v 'similar message' | tail -n 5 || true
exit $failed
