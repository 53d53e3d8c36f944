#!/usr/bin/env python3
"""Soak (issue 15): ringproxy under mixed MQTT load for a long time, reloaded on a schedule,
sampled until the end; its memory, descriptors, connections and buffers must stay flat.

Usage: python3 Benchmarks/reliability/soak.py [--minutes 30 | --short] [--bin PATH]

  load (one Python process, selectors)  ->  ringproxy 127.0.0.1:61850  ->  mqttbackend :61851, :61852

The backends are Benchmarks/tools/mqttbackend.c (built here with gcc): CONNACK to CONNECT,
PUBLISH echoed to its sender, close on DISCONNECT; no sessions, so nothing but the proxy holds
state. The load, all through the proxy and each bounded in rate (it must leave the machine to
others; it is the duration that matters here, not the rate):
  churn     CHURN clients loop: connect, CONNECT, CONNACK, DISCONNECT, the server's close, pause;
            client ids cycle over 1,000 (the stick table on the client id sees them return).
  pingpong  PING connections, each one 64-byte PUBLISH in flight at a time, paced; every echo
            compared with what was sent.
  bulk      BULK connections, each one 60,000-byte PUBLISH in flight at a time (the proxy's
            buffers are 64 KiB: a message spans recvs and buffers), paced; echoes compared.
  Pingpong and bulk connections live 5-20 s (1-3 s with --short), then DISCONNECT and connect
  again: at every reload ~20 of them belong to the configuration being replaced and finish on it.
Every --reload-s the proxy gets SIGHUP (60 s; 20 s with --short), half a sample interval before a
sample; every --sample-s (60 s; 10 s) a sample: VmRSS and Threads (/proc/PID/status), descriptors (/proc/PID/fd), `active` and
`buffers_in_use` (the SIGUSR1 report), and the load's own counts (open connections, operations,
errors by kind). When the time is up the load stops (every connection ends with DISCONNECT) and
the proxy is sampled again once it holds nothing (bounded wait).

Verdict ("flat"), each printed with its figures, exit 1 if one fails:
  - RSS under load: each configuration has its own provided-buffer mappings (1,088 x 64 KiB per
    worker, mmap'd at the reload with MAP_NORESERVE, unmapped when its last connection ends), and
    traffic cycling the buffer ring makes them resident page by page: total RSS rises after each
    reload and falls when the previous configuration drains (a sawtooth of ~30 MiB here, set by
    the traffic, not by a leak). So the sample splits RSS (/proc/PID/smaps) into `pools_kib`, the
    anonymous mappings at least one worker's buffers large, and `rest_kib`, everything else
    (heap, slots, tables, stacks, code), and the check is on the rest: the last sample minus the
    2nd, among samples at the same distance from their reload, below 4 MiB. Between them the same
    things are held (one configuration, the same load): a leak of 64 KiB per reload, or of a
    few bytes per session (a 64-byte leak per churned session is ~10 MiB over 30 minutes), crosses
    it; jemalloc's decay (~10 s of freed pages) and the stick table's fill (1,020 keys) do not.
  - RSS cold: before the load and after it (nothing held), a reload and 12 s (the new pools
    untouched, the old unmapped, jemalloc's decay past): the two within 4 MiB. This one sees
    everything, a leak merged into a buffer mapping by the kernel included.
  - descriptors under load: within 4 of the 2nd sample (the rings' fds: a configuration being
    replaced still has its own while its last connections finish).
  - after the load: active == 0, buffers_in_use == 0, descriptors back to the count before the
    load (+-2), RSS outside the buffers not above its peak under load.
  - the load saw no error at all: a reload keeps established connections, so none is expected.
  - reloads and samples really happened (as many as the schedule asks for; the reload before
    each cold measurement counts too).
Prints the per-sample table, then one JSON line with everything.
"""
import argparse
import json
import os
import random
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import proxyctl

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
# Above the ephemeral range (32768-60999) and the tests' random ports (20000-32000), and used by
# no other script of the repository (nolost.py: 61830-61839).
PROXY_PORT = 61850  # --port-base moves all three (two soaks at once)
BACKEND_PORTS = [61851, 61852]
BULK_SIZE = 60000
PING_SIZE = 64
OP_TIMEOUT_S = 5.0


def log(msg):
    print(f"[soak] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- MQTT bytes (3.1.1)

def remaining_length(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def connect_packet(client_id):
    cid = client_id.encode()
    # MQTT 3.1.1 §3.1.2: protocol name, level 4, clean session, keepalive 60 s.
    var = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(cid).to_bytes(2, "big") + cid
    return b"\x10" + remaining_length(len(var)) + var


def publish_packet(topic, payload):
    t = topic.encode()
    var = len(t).to_bytes(2, "big") + t + payload
    return b"\x30" + remaining_length(len(var)) + var  # QoS 0


CONNACK_OK = b"\x20\x02\x00\x00"
DISCONNECT = b"\xe0\x00"


# ---------------------------------------------------------------- the load

class Client:
    """One connection's state machine. kind: churn | ping | bulk. States: connecting,
    connack, run (a message in flight), pause (between messages or sessions), bye (DISCONNECT
    sent, waiting for the server's close)."""

    def __init__(self, load, kind, index):
        self.load, self.kind, self.index = load, kind, index
        self.sock = None
        self.state = "pause"
        self.due = time.monotonic() + random.uniform(0, 0.5)
        self.out = b""
        self.inbuf = bytearray()
        self.expect = b""
        self.seq = 0
        self.retire_at = None

    # -- helpers
    def interval(self):
        return self.load.intervals[self.kind]

    def start(self):
        self.sock = socket.socket()
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rc = self.sock.connect_ex(("127.0.0.1", self.load.port))
        if rc not in (0, 115):  # EINPROGRESS
            self.sock.close()
            self.sock = None
            return self.fail(f"connect_errno_{rc}")
        self.load.open += 1
        self.state = "connecting"
        cid = f"{self.kind}-{self.index}-{self.seq % 1000}" if self.kind == "churn" else f"{self.kind}-{self.index}"
        self.out = connect_packet(cid)
        self.expect = CONNACK_OK
        self.inbuf.clear()
        self.due = time.monotonic() + OP_TIMEOUT_S
        if self.kind != "churn":
            self.retire_at = time.monotonic() + random.uniform(*self.load.lifetime_s)
        self.load.sel.register(self.sock, selectors.EVENT_WRITE, self)

    def close(self):
        if self.sock is not None:
            self.load.sel.unregister(self.sock)
            self.sock.close()
            self.sock = None
            self.load.open -= 1

    def fail(self, kind):
        self.load.errors[kind] = self.load.errors.get(kind, 0) + 1
        self.load.last_error = f"{self.kind}-{self.index}: {kind} in state {self.state}"
        self.close()
        self.state = "pause"
        self.due = time.monotonic() + 0.5

    def send_next(self):
        """Queues the next message (ping/bulk) and what its echo must be."""
        self.seq += 1
        if self.kind == "ping":
            payload = self.seq.to_bytes(8, "big") + self.load.block[:PING_SIZE - 8]
        else:
            off = (self.seq * 7919) % (len(self.load.block) - BULK_SIZE)
            payload = self.seq.to_bytes(8, "big") + self.load.block[off:off + BULK_SIZE - 8]
        self.out = publish_packet(f"{self.kind}/{self.index}", payload)
        self.expect = self.out
        self.inbuf.clear()
        self.state = "run"
        self.due = time.monotonic() + OP_TIMEOUT_S
        self.load.sel.modify(self.sock, selectors.EVENT_WRITE | selectors.EVENT_READ, self)

    def bye(self):
        self.out = DISCONNECT
        self.expect = b""
        self.inbuf.clear()
        self.state = "bye"
        self.due = time.monotonic() + OP_TIMEOUT_S
        self.load.sel.modify(self.sock, selectors.EVENT_WRITE | selectors.EVENT_READ, self)

    # -- events
    def on_event(self, mask):
        try:
            if mask & selectors.EVENT_WRITE:
                if self.state == "connecting":
                    err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        return self.fail(f"connect_errno_{err}")
                    self.state = "connack"
                if self.out:
                    n = self.sock.send(self.out)
                    self.out = self.out[n:]
                if not self.out:
                    self.load.sel.modify(self.sock, selectors.EVENT_READ, self)
            if mask & selectors.EVENT_READ:
                data = self.sock.recv(262144)
                if not data:
                    if self.state == "bye":
                        return self.session_done()
                    return self.fail("closed_by_proxy")
                if self.state == "bye":
                    return self.fail("bytes_after_disconnect")
                self.inbuf += data
                if len(self.inbuf) > len(self.expect) or self.inbuf != self.expect[:len(self.inbuf)]:
                    return self.fail("wrong_bytes" if self.state == "run" else "bad_connack")
                if len(self.inbuf) == len(self.expect):
                    self.answered()
        except (BlockingIOError, InterruptedError):
            pass
        except ConnectionResetError:
            if self.state == "bye":  # the server closed first; a reset on our close is no error
                return self.session_done()
            self.fail("reset")
        except OSError as e:
            self.fail(f"errno_{e.errno}")

    def answered(self):
        now = time.monotonic()
        if self.state == "connack":
            self.load.counts["sessions"] += 1
            if self.kind == "churn":
                return self.bye()
        else:
            self.load.counts[f"{self.kind}_messages"] += 1
            self.load.counts[f"{self.kind}_bytes"] += len(self.expect)
        stopping = self.load.stopping
        if stopping or (self.retire_at is not None and now >= self.retire_at):
            return self.bye()
        self.state = "pause"
        self.due = now + self.interval()
        self.load.sel.modify(self.sock, selectors.EVENT_READ, self)  # a close while idle is seen

    def session_done(self):
        self.close()
        self.load.counts["disconnects"] += 1
        self.state = "pause"
        self.due = time.monotonic() + (self.interval() if self.kind == "churn" else 0.05)

    def on_timer(self, now):
        if self.state == "pause":
            if self.load.stopping:
                if self.sock is not None:
                    self.bye()
                return
            if self.sock is None:
                self.start()
            else:
                self.send_next()
        elif now >= self.due:
            self.fail(f"timeout_{self.state}")


class Load:
    def __init__(self, args):
        self.port = args.port
        self.sel = selectors.DefaultSelector()
        self.block = os.urandom(1 << 20)
        self.open = 0
        self.stopping = False
        self.errors = {}
        self.last_error = ""
        self.counts = {"sessions": 0, "disconnects": 0, "ping_messages": 0, "ping_bytes": 0,
                       "bulk_messages": 0, "bulk_bytes": 0}
        self.lifetime_s = (args.lifetime_min_s, args.lifetime_max_s)
        # Pause between a client's operations: CHURN clients at churn_rate sessions/s in all,
        # each ping connection ping_rate messages/s, each bulk connection bulk_rate messages/s.
        self.intervals = {"churn": args.churn / args.churn_rate, "ping": 1 / args.ping_rate,
                          "bulk": 1 / args.bulk_rate}
        self.clients = [Client(self, k, i) for k, n in (("churn", args.churn), ("ping", args.ping),
                                                         ("bulk", args.bulk)) for i in range(n)]

    def report(self, final=False):
        print(json.dumps({"final": final, "open": self.open, **self.counts,
                          "errors": dict(self.errors), "last_error": self.last_error}), flush=True)

    def run(self, seconds, report_s):
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stopping", True))
        end = time.monotonic() + seconds
        next_report = time.monotonic() + report_s
        stop_deadline = None
        while True:
            now = time.monotonic()
            if now >= end:
                self.stopping = True
            if self.stopping and stop_deadline is None:
                stop_deadline = now + 2 * OP_TIMEOUT_S
            if stop_deadline is not None and (self.open == 0 or now > stop_deadline):
                break
            for key, mask in self.sel.select(timeout=0.005):
                key.data.on_event(mask)
            now = time.monotonic()
            for c in self.clients:
                if now >= c.due:
                    c.on_timer(now)
            if now >= next_report:
                self.report()
                next_report = now + report_s
        for c in self.clients:  # only after the stop deadline: counted as errors
            if c.sock is not None:
                c.fail(f"not_finished_{c.state}")
        self.report(final=True)


# ---------------------------------------------------------------- the run

CONFIG = """global
  maxconn 4000
defaults
  mode tcp
  timeout connect 2s
  timeout client 60s
  timeout server 60s
  retries 2
  option redispatch
backend brokers
  tcp-request inspect-delay 5s
  balance leastconn
  stick-table type string len 32 size 10k expire 10m
  stick on req.payload(0,0),mqtt_field_value(connect,client_identifier)
{servers}
frontend mqtt
  bind 127.0.0.1:{port}
  tcp-request inspect-delay 5s
  tcp-request content reject unless {{ req.payload(0,0),mqtt_is_valid }}
  default_backend brokers
"""


class Soak:
    def __init__(self, args):
        self.args = args
        self.scratch = tempfile.mkdtemp(prefix="ringproxy-soak.")
        self.procs = []
        self.samples = []
        self.last_reload_t = None
        self.proxy = None

    def write_config(self, generation):
        # Each reload changes something real (a weight), so the new configuration is built.
        servers = "".join(f"  server b{i + 1} 127.0.0.1:{p} weight {100 + (generation + i) % 2}\n"
                          for i, p in enumerate(BACKEND_PORTS))
        with open(self.cfg, "w") as f:
            f.write(CONFIG.format(servers=servers, port=PROXY_PORT))

    def setup(self):
        for port in [PROXY_PORT] + BACKEND_PORTS:
            if not proxyctl.port_free(port):
                raise RuntimeError(f"port {port} is in use (another soak.py running? --port-base)")
        backend = os.path.join(self.scratch, "mqttbackend")
        r = subprocess.run(["gcc", "-O2", "-pthread", os.path.join(REPO, "Benchmarks", "tools", "mqttbackend.c"),
                            "-o", backend, "-lcrypto"], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"gcc mqttbackend.c: {r.stderr}")
        for port in BACKEND_PORTS:
            self.spawn([backend, str(port), "1"])
        self.cfg = os.path.join(self.scratch, "soak.cfg")
        self.write_config(0)
        self.proxy = proxyctl.Proxy(self.args.bin, self.cfg, os.path.join(self.scratch, "ringproxy.log"))
        for port in [PROXY_PORT] + BACKEND_PORTS:
            if not proxyctl.wait_listening(port, alive=self.proxy.alive):
                raise RuntimeError(f"nothing listening on :{port} (see {self.proxy.log_path})")

    def spawn(self, cmd, **kw):
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        p = subprocess.Popen(cmd, **kw)
        self.procs.append(p)
        return p

    def teardown(self):
        if self.proxy is not None:
            self.proxy.stop()
        proxyctl.stop_all(self.procs)

    def cold(self):
        """RSS with nothing held and fresh buffer pools: a reload (the new configuration's
        pools untouched, the previous one's unmapped), then jemalloc's decay (~10 s) waited out."""
        self.reload()
        time.sleep(12)
        f = self.proxy.figures()
        log(f"cold (after a reload and 12 s): {f}")
        return f

    def reload(self):
        self.write_config(self.proxy.reloads + 1)
        self.proxy.reload()

    def sample(self, t, load_report, phase="load"):
        c = self.proxy.counters()
        since = t - self.last_reload_t if self.last_reload_t is not None else None
        s = {"t_s": round(t), "phase": phase, "since_reload_s": None if since is None else round(since), **self.proxy.figures(), "active": c.get("active", -1),
             "buffers_in_use": c.get("buffers_in_use", -1), "reloads": self.proxy.reloads,
             "load_open": load_report.get("open", 0), "sessions": load_report.get("sessions", 0),
             "ping": load_report.get("ping_messages", 0), "bulk_mib": load_report.get("bulk_bytes", 0) >> 20,
             "errors": sum(load_report.get("errors", {}).values())}
        self.samples.append(s)
        log(" ".join(f"{k}={v}" for k, v in s.items()))
        return s

    # -- the run
    def run(self):
        a = self.args
        duration = a.minutes * 60
        self.setup()
        time.sleep(1)
        self.cold_before = self.cold()
        self.base = self.proxy.figures()
        log(f"before the load: {self.base}")
        load = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "load", "--port", str(PROXY_PORT), "--seconds", str(duration + 30),
             "--report-s", "1", "--churn", str(a.churn), "--churn-rate", str(a.churn_rate), "--ping", str(a.ping),
             "--ping-rate", str(a.ping_rate), "--bulk", str(a.bulk), "--bulk-rate", str(a.bulk_rate),
             "--lifetime-min-s", str(a.lifetime_min_s), "--lifetime-max-s", str(a.lifetime_max_s)],
            stdout=subprocess.PIPE, text=True, bufsize=1)
        self.procs.append(load)
        latest = {}

        def read_load():  # a thread: the load's latest report, one JSON line a second
            nonlocal latest
            for line in load.stdout:
                if line.startswith("{"):
                    latest = json.loads(line)

        reader = threading.Thread(target=read_load, daemon=True)
        reader.start()

        start = time.monotonic()
        # Reloads fall between samples (half a sample interval before one), so that a sample
        # never sees a reload's transient, and every sample with the same offset from its reload
        # sees the same state: the previous configuration drained (connections live less than
        # that half interval) and the new one's buffer pool as warm as at the last such sample.
        next_sample, next_reload = start + a.sample_s, start + a.sample_s / 2
        end = start + duration
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if load.poll() is not None:
                raise RuntimeError("the load process ended early")
            if not self.proxy.alive():
                raise RuntimeError(f"ringproxy exited with {self.proxy.process.returncode}")
            if now >= next_reload:
                self.reload()
                self.last_reload_t = now - start
                next_reload += a.reload_s
            if now >= next_sample:
                self.sample(now - start, latest)
                next_sample += a.sample_s
            time.sleep(min(0.2, max(0.0, min(next_sample, next_reload, end) - time.monotonic())))
        self.last_load_sample = self.samples[-1] if self.samples else None
        load.send_signal(signal.SIGTERM)
        load.wait(timeout=60)
        reader.join(timeout=10)
        if not latest.get("final"):
            raise RuntimeError("the load process printed no final report")
        self.load_final = latest
        # Nothing held once the clients are gone (bounded wait: the proxy sees each close).
        self.proxy.drained()
        time.sleep(1)
        self.sample(time.monotonic() - start, latest, phase="after")
        self.cold_after = self.cold()

    def verdict(self):
        a = self.args
        checks = []
        load_samples = [s for s in self.samples if s["phase"] == "load"]
        after = self.samples[-1]
        duration = a.minutes * 60
        expected_reloads = int((duration - a.sample_s / 2) // a.reload_s)
        expected_samples = int(duration // a.sample_s) - 1
        reloads = self.proxy.reloads
        checks.append(("schedule", reloads >= expected_reloads and len(load_samples) >= expected_samples,
                       f"{reloads} reloads, {len(load_samples)} samples under load"))
        # RSS is compared between samples at the same distance from their reload (all of them
        # when reloads and samples share a period; every other one with --short).
        same_phase = [s for s in load_samples if s["since_reload_s"] == load_samples[-1]["since_reload_s"]] \
            if load_samples else []
        if len(same_phase) >= 2:
            second, last = same_phase[1], same_phase[-1]
            growth = last["rest_kib"] - second["rest_kib"]
            checks.append(("rss flat", growth < 4096,
                           f"outside the buffer pools {second['rest_kib']} KiB at t={second['t_s']} s -> "
                           f"{last['rest_kib']} KiB at t={last['t_s']} s ({growth:+d} KiB, bound 4096 KiB; "
                           f"{last['since_reload_s']} s after a reload); total {second['rss_kib']} -> "
                           f"{last['rss_kib']} KiB, peak {max(s['rss_kib'] for s in load_samples)} KiB"))
            fds = [s["fds"] for s in load_samples]
            checks.append(("fds flat", max(fds) - fds[1] <= 4 and last["fds"] - fds[1] <= 2,
                           f"{min(fds)}-{max(fds)} under load, {fds[1]} at sample 2, {last['fds']} last"))
        cb, ca = self.cold_before, self.cold_after
        checks.append(("rss cold", ca["rss_kib"] - cb["rss_kib"] < 4096,
                       f"{cb['rss_kib']} KiB before the load, {ca['rss_kib']} KiB after it "
                       f"({ca['rss_kib'] - cb['rss_kib']:+d} KiB, bound 4096 KiB; each after a reload and 12 s)"))
        checks.append(("nothing held after", after["active"] == 0 and after["buffers_in_use"] == 0,
                       f"active={after['active']} buffers_in_use={after['buffers_in_use']}"))
        checks.append(("fds back", abs(after["fds"] - self.base["fds"]) <= 2,
                       f"{self.base['fds']} before the load, {after['fds']} after"))
        if load_samples:
            # Outside the buffers: the pools go on warming until the load stops, so the total
            # after it may pass every sample under load (it did, by 1.3 MiB, in the first
            # 30-minute run); the cold check judges the total.
            peak = max(s["rest_kib"] for s in load_samples)
            checks.append(("rss after", after["rest_kib"] <= peak,
                           f"outside the buffer pools {after['rest_kib']} KiB after the load, "
                           f"peak under load {peak} KiB"))
        lf = self.load_final
        errors = lf.get("errors", {})
        exercised = lf.get("sessions", 0) > 0 and lf.get("ping_messages", 0) > 0 and lf.get("bulk_messages", 0) > 0
        checks.append(("no client errors", not errors and exercised,
                       f"errors {errors or 0}{' (' + lf.get('last_error', '') + ')' if errors else ''}; "
                       f"{lf.get('sessions', 0)} sessions, {lf.get('ping_messages', 0)} ping round trips, "
                       f"{lf.get('bulk_messages', 0)} bulk messages ({lf.get('bulk_bytes', 0) >> 20} MiB echoed)"))
        return checks


def print_table(samples):
    cols = ["t_s", "phase", "since_reload_s", "rss_kib", "pools_kib", "rest_kib", "fds", "threads", "active", "buffers_in_use", "load_open", "reloads",
            "sessions", "ping", "bulk_mib", "errors"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "|".join("---" for _ in cols) + "|")
    for s in samples:
        print("| " + " | ".join(str(s[c]) for c in cols) + " |")


def main():
    global PROXY_PORT, BACKEND_PORTS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="mode")
    ld = sub.add_parser("load")
    ld.add_argument("--port", type=int, required=True)
    ld.add_argument("--seconds", type=float, required=True)
    ld.add_argument("--report-s", type=float, default=1.0)
    for sp in (ap, ld):
        sp.add_argument("--churn", type=int, default=4, help="churning clients")
        sp.add_argument("--churn-rate", type=float, default=100, help="sessions/s of all churning clients")
        sp.add_argument("--ping", type=int, default=16, help="pingpong connections")
        sp.add_argument("--ping-rate", type=float, default=50, help="round trips/s per pingpong connection")
        sp.add_argument("--bulk", type=int, default=4, help="bulk connections")
        sp.add_argument("--bulk-rate", type=float, default=10, help="60 KB messages/s per bulk connection")
        sp.add_argument("--lifetime-min-s", type=float, default=None)
        sp.add_argument("--lifetime-max-s", type=float, default=None)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--port-base", type=int, default=PROXY_PORT, help="the proxy's port; backends the next two")
    ap.add_argument("--short", action="store_true", help="2 minutes, reload every 20 s, sample every 10 s (CI)")
    ap.add_argument("--reload-s", type=float, default=None)
    ap.add_argument("--sample-s", type=float, default=None)
    ap.add_argument("--bin", default=os.environ.get("RINGPROXY_BIN", os.path.join(REPO, ".build", "debug", "ringproxy")))
    args = ap.parse_args()
    if args.mode == "load":
        return Load(args).run(args.seconds, args.report_s)
    PROXY_PORT, BACKEND_PORTS = args.port_base, [args.port_base + 1, args.port_base + 2]
    if args.short:
        args.minutes = 2
    args.reload_s = args.reload_s or (20 if args.short else 60)
    args.sample_s = args.sample_s or (10 if args.short else 60)
    args.lifetime_min_s = args.lifetime_min_s or (1 if args.short else 5)
    args.lifetime_max_s = args.lifetime_max_s or (3 if args.short else 20)
    soak = Soak(args)
    started = time.time()
    error, _ = proxyctl.guarded(args.bin, soak.run, soak.teardown)
    checks = [("run", False, error)] if error else soak.verdict()
    print_table(soak.samples)
    for name, ok, figures in checks:
        print(f"{'PASS' if ok else 'FAIL'} {name}: {figures}")
    ok = all(ok for _, ok, _ in checks)
    print(json.dumps({"soak": "PASS" if ok else "FAIL", "minutes": args.minutes, "seconds": round(time.time() - started, 1),
                      "binary": args.bin, "reloads": soak.proxy.reloads if soak.proxy else 0,
                      "cold_before": getattr(soak, "cold_before", None), "cold_after": getattr(soak, "cold_after", None), "load": getattr(soak, "load_final", {}),
                      "checks": {n: {"ok": o, "figures": f} for n, o, f in checks}, "samples": soak.samples}))
    if ok:
        shutil.rmtree(soak.scratch, ignore_errors=True)
    else:
        print(f"logs: {soak.scratch}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
