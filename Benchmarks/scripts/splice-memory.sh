#!/bin/bash
# Kernel memory a relay holds during bulk echo (issue 17): MemAvailable and TCP's own accounting
# (/proc/net/sockstat mem) before and 3 s into a 4 s ringbench bulk run, per relay, pinned
# (proxy CPU 0, load CPU 1) or not ("0,1" for both). Root. Usage: splice-memory.sh RINGBENCH PIN(0|1) CONNS...
set -u
RB=$1; PIN=$2; shift 2
D=$(mktemp -d); trap 'kill $(jobs -p) 2>/dev/null; rm -rf $D' EXIT
REPO=$(cd "$(dirname "$0")/../.." && pwd)
gcc -O2 -pthread $REPO/Benchmarks/tools/echoserver.c -o $D/echo -lcrypto && gcc -O2 -pthread $REPO/Benchmarks/tools/sockmapproxy.c -o $D/smp || exit 1
if [ "$PIN" = 1 ]; then P0=0; P1=1; else P0=0,1; P1=0,1; fi
taskset -c $P1 $D/echo 29621 & sleep 0.5
mem() { awk '/MemAvailable/{a=$2} END{printf "%d", a/1024}' /proc/meminfo; }
tcpm() { awk '/^TCP:/{for(i=1;i<NF;i++) if($i=="mem") printf "%d", $(i+1)*4/1024}' /proc/net/sockstat; }
for n in "$@"; do for relay in direct sockmap strp; do
  port=29621
  if [ $relay != direct ]; then
    mode=verdict; [ $relay = strp ] && mode=strp
    taskset -c $P0 $D/smp --listen 127.0.0.1:29622 --backend 127.0.0.1:29621 --mode $mode > $D/smp.json & S=$!; port=29622; sleep 0.3
  fi
  m0=$(mem); t0=$(tcpm)
  taskset -c $P1 $RB bulk --target 127.0.0.1:$port --seconds 4 --connections $n > $D/rb.json & R=$!
  sleep 3; m1=$(mem); t1=$(tcpm)
  wait $R
  [ $relay != direct ] && { kill $S; wait $S; }
  echo "{\"pinned\": $PIN, \"connections\": $n, \"relay\": \"$relay\", \"memavailable_drop_mb\": $((m0-m1)), \"tcp_mem_mb\": [$t0, $t1], \"ringbench\": $(tail -1 $D/rb.json)}"
  sleep 1
done; done
