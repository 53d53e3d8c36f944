#!/usr/bin/env bash
# RSS of a ringproxy process after its first reload and after N more (SIGHUP, no connections),
# read after jemalloc's decay period: reloads must give their memory back.
#   Benchmarks/scripts/reload-rss.sh [N=500] [BINARY=.build/release/ringproxy]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-500}
bin=${2:-.build/release/ringproxy}
[ -x "$bin" ] || swift build -c release --product ringproxy >/dev/null
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
printf 'defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\nbackend b\n  server s1 127.0.0.1:21901\nfrontend f\n  bind 127.0.0.1:21900\n  default_backend b\n' > "$dir/rl.cfg"
"$bin" -f "$dir/rl.cfg" --cores 2 > "$dir/rl.log" 2>&1 &
pid=$!
sleep 1
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
first=0
for i in $(seq 1 "$n"); do
  kill -HUP "$pid"
  for _ in $(seq 1 400); do
    [ "$(grep -c 'reloaded:' "$dir/rl.log")" -ge "$i" ] && break
    sleep 0.005
  done
  [ "$i" = 1 ] && first=$(rss)
done
sleep 12
echo "RSS after the first reload: $first KiB; after $n: $(rss) KiB"
