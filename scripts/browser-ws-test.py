#!/usr/bin/env python3
"""MQTT over WebSocket from a real browser (issue 14): two mosquitto brokers with `protocol
websockets` listeners behind a ringproxy frontend with `option mqtt-websocket path /mqtt` (the
ringproxy extension that answers the upgrade itself, reads the CONNECT, routes it by the
backend's stick table on the client id, then replays the upgrade to a broker), and a page
loaded in headless Chromium through Selenium whose inline script speaks MQTT 3.1.1 over
`new WebSocket(url, ["mqtt"])`, with no library:

  1. CONNECT (client id from the page's query string, clean session, keepalive 30), CONNACK 0;
     SUBSCRIBE to a topic at QoS 0, SUBACK; PUBLISH a message to it; the PUBLISH that comes
     back is parsed (remaining-length varint, topic) and its payload and the WebSocket's
     `protocol` written into the DOM (`#result`, `#protocol`), or an error into `#error`;
  2. the page is loaded three times with one client id and twice with another: each load must
     see its own message come back with protocol "mqtt", and every load of a client id must
     have landed on the same broker (the brokers' connection messages, "New client connected
     ... as <id>"), so a browser sticks to its broker through ringproxy.

Results are read from the DOM, never by matching the HTML source. Loopback only; every wait is
bounded and the whole run stops itself after --deadline seconds (default 45). Prints one line
`browser-ws: PASS ...` or `browser-ws: FAIL: <why>` and exits 0 or 1; the processes it started
are always ended.

  python3 scripts/browser-ws-test.py [--binary PATH] [--deadline S]
"""
import argparse
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from browser_support import Failure, default_binary, free_port, guarded_run, headless_chromium, wait_listening  # noqa: E402
import urllib.parse


SERVERS = ("b1", "b2")
# Client id -> page loads. Each load is a new WebSocket, a new TCP connection, a new CONNECT.
LOADS = (("browser-ws-alpha", 3), ("browser-ws-beta", 2))

# The page: MQTT 3.1.1 (OASIS, §2.2 fixed header, §3.1 CONNECT, §3.2 CONNACK, §3.3 PUBLISH,
# §3.8 SUBSCRIBE, §3.9 SUBACK, §3.14 DISCONNECT) over a browser WebSocket, nothing more.
PAGE = r"""<!doctype html>
<html><head><meta charset="utf-8"><title>ringproxy: MQTT over WebSocket</title></head>
<body>
<div id="step">loading</div>
<div id="result"></div>
<div id="protocol"></div>
<div id="error"></div>
<script>
"use strict";
const query = new URLSearchParams(location.search);
const url = query.get("url"), clientId = query.get("id"), topic = query.get("topic"), message = query.get("message");
const encoder = new TextEncoder(), decoder = new TextDecoder();
let done = false;

function show(id, text) { document.getElementById(id).textContent = text; }
function step(text) { show("step", text); }
function fail(why) { if (!done) { done = true; show("error", why); } }

function utf8(s) { const b = encoder.encode(s); return [b.length >> 8, b.length & 255, ...b]; }
function packet(first, body) {
  const length = [];
  let n = body.length;
  do { let digit = n % 128; n = Math.floor(n / 128); if (n > 0) digit |= 128; length.push(digit); } while (n > 0);
  return new Uint8Array([first, ...length, ...body]);
}

const ws = new WebSocket(url, ["mqtt"]);
ws.binaryType = "arraybuffer";
let held = new Uint8Array(0);
const timer = setTimeout(() => fail("no message back within 10 s (last step: " + document.getElementById("step").textContent + ")"), 10000);

ws.onopen = () => {
  step("connect");
  // protocol name, level 4, flags: clean session, keepalive 30 s; payload: the client id.
  ws.send(packet(0x10, [...utf8("MQTT"), 4, 0x02, 0, 30, ...utf8(clientId)]));
};
ws.onerror = () => fail("websocket error (step " + document.getElementById("step").textContent + ")");
ws.onclose = (e) => fail("websocket closed, code " + e.code + " (step " + document.getElementById("step").textContent + ")");
ws.onmessage = (event) => {
  if (!(event.data instanceof ArrayBuffer)) { fail("a text message"); return; }
  const more = new Uint8Array(event.data), joined = new Uint8Array(held.length + more.length);
  joined.set(held); joined.set(more, held.length); held = joined;
  for (;;) {   // every complete packet held (a frame may carry part of one, or several)
    if (held.length < 2) return;
    let length = 0, multiplier = 1, i = 1;
    for (;;) {
      if (i >= held.length) return;
      if (i > 4) { fail("a remaining length over 4 bytes"); return; }
      const digit = held[i++];
      length += (digit & 127) * multiplier;
      multiplier *= 128;
      if ((digit & 128) === 0) break;
    }
    if (held.length < i + length) return;
    const first = held[0], body = held.subarray(i, i + length);
    held = held.slice(i + length);
    handle(first, body);
    if (done) return;
  }
};

function handle(first, body) {
  switch (first >> 4) {
  case 2:   // CONNACK
    if (body.length !== 2 || body[1] !== 0) { fail("CONNACK return code " + body[1]); return; }
    step("subscribe");
    // packet id 1, one topic filter at QoS 0
    ws.send(packet(0x82, [0, 1, ...utf8(topic), 0]));
    return;
  case 9:   // SUBACK
    if (body.length !== 3 || body[0] !== 0 || body[1] !== 1 || body[2] === 0x80) { fail("SUBACK " + Array.from(body)); return; }
    step("publish");
    ws.send(packet(0x30, [...utf8(topic), ...encoder.encode(message)]));
    return;
  case 3: { // PUBLISH
    const topicLength = (body[0] << 8) | body[1];
    const got = decoder.decode(body.subarray(2, 2 + topicLength));
    const start = 2 + topicLength + (((first >> 1) & 3) > 0 ? 2 : 0);
    if (got !== topic) { fail("a PUBLISH on topic " + got); return; }
    done = true;
    clearTimeout(timer);
    show("protocol", ws.protocol);
    show("result", decoder.decode(body.subarray(start)));
    step("done");
    ws.send(new Uint8Array([0xe0, 0x00]));   // DISCONNECT
    ws.close(1000);
    return;
  }
  default:
    fail("unexpected packet type " + (first >> 4));
  }
}
</script>
</body></html>
"""


def connections(log_path, client_id):
    """How many times the broker logged a new connection for this client id."""
    with open(log_path, errors="replace") as f:
        text = f.read()
    return len(re.findall(r"New client connected from \S+ as %s \(" % re.escape(client_id), text))


class Browser:
    """Headless Chromium (Debian's chromium and chromium-driver) driven by Selenium."""

    def __init__(self):
        self.driver = headless_chromium(window="800,600", console_log=True)

    def console(self):
        """The page's console messages (Chromium logs why it failed a WebSocket there)."""
        try:
            return "; ".join(e.get("message", "") for e in self.driver.get_log("browser"))
        except Exception:
            return ""

    def load(self, url, seconds):
        """Opens the page and polls its DOM until it shows a result or an error; returns
        (result, protocol, seconds taken)."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.common.by import By
        t0 = time.monotonic()
        self.driver.get(url)
        step = None
        while time.monotonic() - t0 < seconds:
            try:
                text = {i: self.driver.find_element(By.ID, i).text.strip()
                        for i in ("step", "result", "protocol", "error")}
            except WebDriverException:
                time.sleep(0.05)
                continue
            step = text["step"]
            if text["error"]:
                console = self.console()
                raise Failure("the page says: %s%s" % (text["error"], "; console: " + console if console else ""))
            if text["result"]:
                return text["result"], text["protocol"], time.monotonic() - t0
            time.sleep(0.05)
        raise Failure("the page showed nothing within %.0f s (last step: %s)" % (seconds, step))

    def quit(self):
        try:
            self.driver.quit()
        except Exception:
            pass


def free_ports(count):
    """Distinct free ports below 32768 (outside Linux's ephemeral range), on every IPv4 address (a mosquitto websockets listener binds them all)."""
    ports = []
    for _ in range(count):
        ports.append(free_port("0.0.0.0", taken=ports))
    return ports


def run(args, run_dir, children, browsers):
    binary = args.binary or default_binary()
    ports = free_ports(5)
    plain_ports, ws_ports, frontend_port = ports[0:2], ports[2:4], ports[4]
    logs = {}
    for name, plain, ws in zip(SERVERS, plain_ports, ws_ports):
        # Debian's mosquitto 2.0.11 will not start with websockets listeners only: a plain one
        # too. libwebsockets binds every IPv4 address (it cannot bind one here). Logs go to
        # stderr, captured in a file: run as root, mosquitto drops to its own user and could
        # not write a log file in this (root's, 0700) directory.
        conf = os.path.join(run_dir, "%s.conf" % name)
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nlistener %d\nprotocol websockets\nsocket_domain ipv4\n"
                    "allow_anonymous true\nconnection_messages true\nlog_dest stderr\n" % (plain, ws))
        logs[name] = os.path.join(run_dir, "%s.log" % name)
        broker = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                                  stderr=open(logs[name], "w"))
        children.append(broker)
        wait_listening(plain, 5, "mosquitto " + name, broker)
        wait_listening(ws, 5, "mosquitto %s's websockets listener" % name, broker)

    config = os.path.join(run_dir, "ringproxy.cfg")
    with open(config, "w") as f:
        f.write("""global
  maxconn 1000
defaults
  mode tcp
  timeout connect 2s
  timeout client 30s
  timeout server 30s
backend brokers
  balance roundrobin
  stick-table type string len 64 size 1k expire 30m
  stick on req.payload(0,0),mqtt_field_value(connect,client_identifier)
  tcp-request inspect-delay 5s
%(servers)s
frontend mqtt_ws
  bind 127.0.0.1:%(frontend)d
  option mqtt-websocket path /mqtt
  tcp-request inspect-delay 5s
  default_backend brokers
""" % {"frontend": frontend_port,
       "servers": "\n".join("  server %s 127.0.0.1:%d" % (n, p) for n, p in zip(SERVERS, ws_ports))})
    proxy_log = open(os.path.join(run_dir, "ringproxy.log"), "w")
    proxy = subprocess.Popen([binary, "-f", config, "--cores", "1"], stdout=proxy_log, stderr=subprocess.STDOUT)
    children.append(proxy)
    wait_listening(frontend_port, 10, "ringproxy", proxy)

    page = os.path.join(run_dir, "mqtt-ws.html")
    with open(page, "w") as f:
        f.write(PAGE)
    browser = Browser()
    browsers.append(browser)
    seconds, placed = [], {}
    for client_id, loads in LOADS:
        for n in range(loads):
            message = "hello from %s, load %d" % (client_id, n + 1)
            url = "file://%s?%s" % (page, urllib.parse.urlencode({
                "url": "ws://127.0.0.1:%d/mqtt" % frontend_port, "id": client_id,
                "topic": "ringproxy/browser/%s" % client_id, "message": message}))
            result, protocol, took = browser.load(url, 12)
            if result != message:
                raise Failure("%s load %d got %r back, sent %r" % (client_id, n + 1, result, message))
            if protocol != "mqtt":
                raise Failure("%s load %d: the WebSocket's protocol is %r, not 'mqtt'" % (client_id, n + 1, protocol))
            seconds.append(took)
        counts = {name: connections(logs[name], client_id) for name in SERVERS}
        if sorted(counts.values()) != [0, loads]:
            raise Failure("%s's %d loads did not all land on one broker: %s" % (client_id, loads, counts))
        placed[client_id] = max(counts, key=counts.get)
    return seconds, placed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", help="the ringproxy executable (default: the newest of .build/debug and .build/release)")
    ap.add_argument("--deadline", type=float, default=45, help="seconds before the run gives up (default 45)")
    args = ap.parse_args()

    result, failure, elapsed = guarded_run('browser-ws', args.deadline, 
                                           lambda run_dir, children, browsers: run(args, run_dir, children, browsers),
                                           logs=("ringproxy",) + SERVERS)
    seconds, placed = result or ([], {})
    if failure:
        print("browser-ws: FAIL: %s (%.1f s)" % (failure, elapsed))
        return 1
    print("browser-ws: PASS: %d page loads each got their message back over WebSocket protocol 'mqtt' "
          "(%.2f-%.2f s a load); stuck by client id: %s (%.1f s in all)" % (
              len(seconds), min(seconds), max(seconds),
              ", ".join("%s x%d -> %s" % (cid, loads, placed[cid]) for cid, loads in LOADS), elapsed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
