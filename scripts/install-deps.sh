#!/usr/bin/env bash
# Installs the Debian packages ringproxy builds and tests with (idempotent; needs root).
# Stops the services some of them start on install: the quick start and the tests bring up
# their own brokers and peers, and a system mosquitto would hold port 1883.
set -euo pipefail
# chromium + chromium-driver: the stats page in a real browser (scripts/browser-stats-test.py).
# nginx + libnginx-mod-stream: the PROXY protocol interop tests' second peer (ProxyProtocolNginxTests).
packages=(liburing-dev libssl-dev libjemalloc-dev mosquitto mosquitto-clients iproute2 procps netcat-openbsd openssl socat curl
          chromium chromium-driver nginx libnginx-mod-stream)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
for service in mosquitto nginx; do
  if command -v systemctl >/dev/null 2>&1; then
    systemctl stop "$service" >/dev/null 2>&1 || true
    systemctl disable "$service" >/dev/null 2>&1 || true
  fi
  command -v service >/dev/null 2>&1 && service "$service" stop >/dev/null 2>&1 || true
done
# A broker or nginx started by the package's postinst without an init system (containers) goes
# too; only the system ones (config file, master's title), never those of the quick start or tests.
pkill -f 'mosquitto -c /etc/mosquitto/mosquitto.conf' 2>/dev/null || true
pkill -f 'nginx: master process /usr/sbin/nginx' 2>/dev/null || true
for _ in $(seq 1 50); do
  ss -Hltn 'sport = :1883' 2>/dev/null | grep -q . || break
  sleep 0.1
done
# paho-mqtt: the MQTT over WebSocket tests' reference client (transport="websockets").
if ! python3 -c 'import paho.mqtt.client' 2>/dev/null; then
  python3 -m pip install -q paho-mqtt 2>/dev/null \
    || python3 -m pip install -q --break-system-packages paho-mqtt
fi
# The Prometheus reference parser the metrics tests read /metrics with (PyPI's prometheus-client).
if ! python3 -c 'import prometheus_client' 2>/dev/null; then
  python3 -m pip install -q prometheus-client 2>/dev/null \
    || python3 -m pip install -q --break-system-packages prometheus-client
fi
# Selenium (PyPI) drives Debian's chromium through chromium-driver's /usr/bin/chromedriver; the
# browser test names both paths, so Selenium Manager never downloads a driver or a browser.
if ! python3 -c 'import selenium' 2>/dev/null; then
  export PIP_ROOT_USER_ACTION=ignore
  python3 -m pip install -q selenium 2>/dev/null \
    || python3 -m pip install -q --break-system-packages selenium
fi
