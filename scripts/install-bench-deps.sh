#!/usr/bin/env bash
# What the side-by-side benchmark needs beyond the build and test packages: HAProxy 2.6 and
# nginx 1.22 with its stream module (Debian), iperf3, matplotlib (PyPI); keepalived for the HA
# pair (Benchmarks/ha/ha-pair.py). Their services are stopped: the benchmarks run their own
# instances with private configurations.
set -euo pipefail
packages=(haproxy nginx libnginx-mod-stream iperf3 keepalived)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
for service in haproxy nginx keepalived; do
  command -v systemctl >/dev/null 2>&1 && { systemctl stop "$service"; systemctl disable "$service"; } >/dev/null 2>&1 || true
  command -v service >/dev/null 2>&1 && service "$service" stop >/dev/null 2>&1 || true
done
pkill -f 'nginx: master process /usr/sbin/nginx' 2>/dev/null || true
pkill -f '/usr/sbin/haproxy -Ws -f /etc/haproxy/haproxy.cfg' 2>/dev/null || true
python3 -c 'import matplotlib' 2>/dev/null || pip install -q matplotlib
