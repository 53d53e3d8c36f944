#!/usr/bin/env python3
"""The stats page in a real browser (issue 13): three mosquitto brokers behind a ringproxy with
`option mqtt-check`, its stats page loaded in headless Chromium through Selenium.

  1. the page shows the three servers UP;
  2. one broker is killed (SIGKILL): after the page's own refresh (`stats refresh 1s`, never
     driver.refresh()) it shows that server DOWN;
  3. `set server brokers/b3 state maint` on the stats socket: after the next refresh, MAINT;
  4. a screenshot of the page is saved (--screenshot; docs/stats-page.png is one).

States are read from the DOM (the status cell of the server's row in the backend's table, its
`data-state` attribute and its text), never by matching the HTML source. Loopback only; every
wait is bounded and the whole run stops itself after --deadline seconds (default 50). Prints
one line `browser-stats: PASS ...` or `browser-stats: FAIL: <why>` and exits 0 or 1; the
processes it started are always ended.

  python3 scripts/browser-stats-test.py [--binary PATH] [--screenshot PATH] [--deadline S]
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from browser_support import Failure, default_binary, free_port, guarded_run, headless_chromium, wait_listening  # noqa: E402


BACKEND = "brokers"
SERVERS = ("b1", "b2", "b3")
KILLED = "b2"
MAINT = "b3"


def mqtt_session(port, client_id):
    """CONNECT -> CONNACK -> DISCONNECT through the proxy (MQTT 3.1.1 §3.1, §3.2)."""
    variable = b"\x00\x04MQTT\x04\x02\x00\x3c"
    payload = len(client_id).to_bytes(2, "big") + client_id
    packet = bytes([0x10, len(variable) + len(payload)]) + variable + payload
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.settimeout(2)
        s.sendall(packet)
        ack = b""
        while len(ack) < 4:
            chunk = s.recv(4 - len(ack))
            if not chunk:
                break
            ack += chunk
        s.sendall(b"\xe0\x00")
    return ack == b"\x20\x02\x00\x00"


def socket_command(path, command):
    """One command on the stats socket; its answer (HAProxy's: text, then an empty line)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(3)
        s.connect(path)
        s.sendall(command.encode() + b"\n")
        answer = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.decode(errors="replace")


class Page:
    """The stats page in headless Chromium (Debian's chromium and chromium-driver)."""

    def __init__(self, url):
        self.driver = headless_chromium(window="1500,1000")
        self.driver.get(url)

    def mark(self):
        """A mark on the loaded document: gone once the page has reloaded itself."""
        self.driver.execute_script("window.__ringproxyMark = true;")

    def reloaded(self):
        return self.driver.execute_script("return window.__ringproxyMark === undefined;")

    def state(self, server):
        """(data-state, cell text) of a server's status cell in the backend's table, or None."""
        from selenium.webdriver.common.by import By
        xpath = ("//table[caption[starts-with(normalize-space(.), 'backend %s ')]]"
                 "//tr[td[contains(concat(' ', @class, ' '), ' name ')][normalize-space(.)='%s']]"
                 "/td[contains(concat(' ', @class, ' '), ' status ')]") % (BACKEND, server)
        cells = self.driver.find_elements(By.XPATH, xpath)
        if len(cells) != 1:
            return None
        return cells[0].get_attribute("data-state"), cells[0].text.strip()

    def states(self):
        return {s: self.state(s) for s in SERVERS}

    def wait_for(self, expected, seconds, after_reload):
        """Polls the DOM until every server in `expected` shows its state (and, with
        after_reload, the page has refreshed itself since mark()); returns the seconds taken."""
        from selenium.common.exceptions import WebDriverException
        t0 = time.monotonic()
        last = None
        while time.monotonic() - t0 < seconds:
            try:
                if not after_reload or self.reloaded():
                    last = self.states()
                    if all(last[s] is not None and last[s][0] == state and last[s][1].startswith(state)
                           for s, state in expected.items()):
                        return time.monotonic() - t0
            except WebDriverException:
                pass   # the document is being replaced by the refresh: read the next one
            time.sleep(0.1)
        raise Failure("expected %s within %.0f s%s; the page shows %s" % (
            expected, seconds, " after a refresh" if after_reload else "", last))

    def screenshot(self, path):
        from selenium.webdriver.common.by import By
        height = self.driver.execute_script("return document.documentElement.scrollHeight;")
        self.driver.set_window_size(1500, min(max(int(height) + 40, 600), 2400))
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        if not self.driver.find_element(By.TAG_NAME, "body").screenshot(path):
            raise Failure("the screenshot could not be written to %s" % path)

    def quit(self):
        try:
            self.driver.quit()
        except Exception:
            pass


def free_ports(count):
    """Distinct free ports below 32768 (outside Linux's ephemeral range)."""
    ports = []
    for _ in range(count):
        ports.append(free_port("127.0.0.1", taken=ports))
    return ports


def run(args, run_dir, children, pages):
    binary = args.binary or default_binary()
    broker_ports = free_ports(5)
    frontend_port, stats_port = broker_ports[3], broker_ports[4]
    broker_ports = broker_ports[:3]
    brokers = {}
    for name, port in zip(SERVERS, broker_ports):
        conf = os.path.join(run_dir, "%s.conf" % name)
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\n" % port)
        brokers[name] = subprocess.Popen(["mosquitto", "-c", conf], stdout=subprocess.DEVNULL,
                                         stderr=open(os.path.join(run_dir, "%s.log" % name), "w"))
        children.append(brokers[name])
    for name, port in zip(SERVERS, broker_ports):
        wait_listening(port, 5, "mosquitto " + name, brokers[name])

    sock_path = os.path.join(run_dir, "admin.sock")
    config = os.path.join(run_dir, "ringproxy.cfg")
    with open(config, "w") as f:
        f.write("""global
  maxconn 1000
  stats socket %(sock)s mode 600 level admin
defaults
  mode tcp
  timeout connect 1s
  timeout client 30s
  timeout server 30s
backend %(backend)s
  option mqtt-check
%(servers)s
frontend mqtt
  bind 127.0.0.1:%(frontend)d
  default_backend %(backend)s
listen stats
  mode http
  bind 127.0.0.1:%(stats)d
  stats enable
  stats uri /stats
  stats refresh 1s
""" % {"sock": sock_path, "backend": BACKEND, "frontend": frontend_port, "stats": stats_port,
       "servers": "\n".join("  server %s 127.0.0.1:%d check inter 200 fall 2 rise 2" % (n, p)
                            for n, p in zip(SERVERS, broker_ports))})
    proxy_log = open(os.path.join(run_dir, "ringproxy.log"), "w")
    proxy = subprocess.Popen([binary, "-f", config, "--cores", "1"], stdout=proxy_log, stderr=subprocess.STDOUT)
    children.append(proxy)
    wait_listening(frontend_port, 10, "ringproxy", proxy)
    wait_listening(stats_port, 10, "the stats page", proxy)
    for i in range(6):   # a few sessions, so the page has counts to show
        if not mqtt_session(frontend_port, b"browser-test-%d" % i):
            raise Failure("an MQTT session through the proxy failed before any broker was killed")

    page = Page("http://127.0.0.1:%d/stats" % stats_port)
    pages.append(page)
    timings = {}
    # 1. Checks need rise 2 (400 ms at inter 200) before a server counts as UP.
    timings["up"] = page.wait_for({s: "UP" for s in SERVERS}, 10, after_reload=False)

    # 2. A broker dies; its checks fail twice (fall 2) and the page's own refresh shows it.
    page.mark()
    brokers[KILLED].send_signal(signal.SIGKILL)
    brokers[KILLED].wait(5)
    timings["down"] = page.wait_for({KILLED: "DOWN", "b1": "UP", MAINT: "UP"}, 10, after_reload=True)

    # 3. Maintenance through the stats socket, seen after the next refresh.
    page.mark()
    answer = socket_command(sock_path, "set server %s/%s state maint" % (BACKEND, MAINT))
    if answer.strip():
        raise Failure("'set server %s/%s state maint' answered %r" % (BACKEND, MAINT, answer))
    timings["maint"] = page.wait_for({MAINT: "MAINT", KILLED: "DOWN", "b1": "UP"}, 10, after_reload=True)
    if not mqtt_session(frontend_port, b"browser-test-after"):
        raise Failure("an MQTT session through the proxy failed with b1 still UP")

    page.screenshot(args.screenshot)
    return timings


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", help="the ringproxy executable (default: the newest of .build/debug and .build/release)")
    ap.add_argument("--screenshot", default=os.path.join(tempfile.gettempdir(), "ringproxy-stats-page.png"))
    ap.add_argument("--deadline", type=float, default=50, help="seconds before the run gives up (default 50)")
    args = ap.parse_args()

    result, failure, elapsed = guarded_run('browser-stats', args.deadline, 
                                           lambda run_dir, children, browsers: run(args, run_dir, children, browsers),
                                           logs=("ringproxy",))
    timings = result or {}
    if failure:
        print("browser-stats: FAIL: %s (%.1f s)" % (failure, elapsed))
        return 1
    print("browser-stats: PASS: 3 UP in %.1f s, %s DOWN %.1f s after SIGKILL, %s MAINT %.1f s after the socket command; "
          "screenshot %s (%.1f s in all)" % (timings["up"], KILLED, timings["down"], MAINT, timings["maint"],
                                            args.screenshot, elapsed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
