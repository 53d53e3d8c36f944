#!/usr/bin/env python3
"""Chaos on the network path (issue 15): ringproxy between clients and echo servers across links
that lose, delay, reorder and go away, in network namespaces made and deleted by this script.

Usage (root): python3 Benchmarks/chaos/chaos.py [--short] [--bin .build/debug/ringproxy]

  rpc-client  10.99.1.2 ==link c== 10.99.1.1  rpc-proxy (ringproxy)  10.99.2.1 ==link b== 10.99.2.2  rpc-backend
                                                                     10.99.3.1 ==link d== 10.99.3.2  (echo :7000)

Each link is a pair of TUN devices joined by this script's own link emulator (`link` below):
loss, delay with jitter (which reorders, as netem's does) and explicit reordering, per
direction. Not `tc netem`: kernels without sch_netem (this project's machines: Firecracker,
no modules) refuse the qdisc, and the emulator behaves the same on every kernel. A link "goes
away" with `ip link set DEV down` on the backend's end, as a pulled cable would.

Scenarios (each bounded; --short shrinks counts and sizes):
  1 impaired: 5 % loss, 20 ms +- 10 ms, 10 % reordered on both links; N streams of random bytes
    echoed through the proxy come back byte-identical (SHA-256), counters back to 0.
  2 link-down: the backend link goes down mid-stream: `timeout server 2s` closes the clients
    (time measured), a new connection fails at `timeout connect 2s` (retries 0), nothing is
    left held; the link comes back and new streams are intact.
  3 blackhole: one of two servers loses every packet: connections to it time out at
    `timeout connect 1s` and are redispatched (`retries 1`, `option redispatch`) to the other.
Prints one line per check (PASS/FAIL with the measured figures), exits 1 if any failed.
The namespaces, their devices and every process started here are removed on exit.
"""
import argparse
import ctypes
import fcntl
import hashlib
import heapq
import json
import os
import random
import select
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
NAMESPACES = ["rpc-client", "rpc-proxy", "rpc-backend"]
# name: (namespace, device, address) for each end; the first end is the proxy's side for b and d.
LINKS = {
    "c": (("rpc-proxy", "rpc-c1", "10.99.1.1"), ("rpc-client", "rpc-c0", "10.99.1.2")),
    "b": (("rpc-proxy", "rpc-b1", "10.99.2.1"), ("rpc-backend", "rpc-b0", "10.99.2.2")),
    "d": (("rpc-proxy", "rpc-d1", "10.99.3.1"), ("rpc-backend", "rpc-d0", "10.99.3.2")),
}
ECHO_PORT = 7000
PORT_IMPAIRED, PORT_CUT, PORT_PAIR = 7001, 7002, 7003
CUT_TIMEOUT_S, PAIR_CONNECT_TIMEOUT_S = 2, 1
# The scan that enforces `timeout server` runs every 250 ms; a timer and a few RTTs on top.
TIMEOUT_SLACK_S = 0.6

CONFIG = f"""global
  maxconn 2000
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  retries 3
backend impaired
  server e1 10.99.2.2:{ECHO_PORT}
frontend impaired
  bind 10.99.1.1:{PORT_IMPAIRED}
  default_backend impaired
backend cut
  # Scenario 2: what a vanished link must trigger, and no second try.
  timeout connect {CUT_TIMEOUT_S}s
  timeout server {CUT_TIMEOUT_S}s
  retries 0
  server e1 10.99.2.2:{ECHO_PORT}
frontend cut
  bind 10.99.1.1:{PORT_CUT}
  default_backend cut
backend pair
  # Scenario 3: 'dark' is blackholed; its connects time out and go to 'lit'.
  balance roundrobin
  timeout connect {PAIR_CONNECT_TIMEOUT_S}s
  retries 1
  option redispatch
  server dark 10.99.2.2:{ECHO_PORT}
  server lit 10.99.3.2:{ECHO_PORT}
frontend pair
  bind 10.99.1.1:{PORT_PAIR}
  default_backend pair
"""


def log(msg):
    print(f"[chaos] {msg}", file=sys.stderr, flush=True)


def run(*cmd, check=True):
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r


# ---------------------------------------------------------------- link emulator

CLONE_NEWNET = 0x40000000
TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000


def open_tun(namespace, device):
    """The TUN device `device` of `namespace`, attached from inside it (TUNSETIFF looks the
    name up in the caller's network namespace). Python 3.11 has no os.setns: libc's."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open(f"/var/run/netns/{namespace}") as ns:
        if libc.setns(ns.fileno(), CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {namespace}")
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", device.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def link_main(args):
    """Forwards IP packets between two TUN devices, each direction through the impairment in
    the JSON file args.params ({"loss": p, "delay_ms": d, "jitter_ms": j, "reorder": p}),
    re-read on SIGHUP. A packet is delivered at now + delay + uniform(-jitter, +jitter), not
    before the one ahead of it; a `reorder` fraction goes at once, ahead of the delayed ones."""
    fa = open_tun(args.a_ns, args.a_dev)
    fb = open_tun(args.b_ns, args.b_dev)
    params = {}
    reload = [True]
    signal.signal(signal.SIGHUP, lambda *_: reload.__setitem__(0, True))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    rng = random.Random(args.seed)
    due = []  # (time, sequence, fd, packet)
    seq = 0
    peer = {fa: fb, fb: fa}
    # Since the last reload: packets read, dropped, sent ahead of packets still queued.
    counts = {"packets": 0, "dropped": 0, "reordered": 0}
    last = {fa: 0.0, fb: 0.0}  # the latest delivery time queued towards each fd
    while True:
        if reload[0]:
            reload[0] = False
            # What the previous impairment did, for the report (written before the new one
            # applies; the runner waits for this file to change).
            with open(args.params + ".counts.tmp", "w") as f:
                json.dump(counts, f)
            os.replace(args.params + ".counts.tmp", args.params + ".counts")
            counts = dict.fromkeys(counts, 0)
            with open(args.params) as f:
                params = json.load(f)
        timeout = max(0.0, due[0][0] - time.monotonic()) if due else 0.5
        try:
            readable, _, _ = select.select([fa, fb], [], [], timeout)
        except InterruptedError:
            continue
        now = time.monotonic()
        for fd in readable:
            for _ in range(64):
                try:
                    packet = os.read(fd, 65535)
                except (BlockingIOError, OSError):
                    break
                counts["packets"] += 1
                if rng.random() < params.get("loss", 0.0):
                    counts["dropped"] += 1
                    continue
                delay = params.get("delay_ms", 0.0) / 1000.0
                jitter = params.get("jitter_ms", 0.0) / 1000.0
                if rng.random() < params.get("reorder", 0.0):
                    at = now
                    if last[peer[fd]] > now:  # it overtakes packets still queued
                        counts["reordered"] += 1
                else:
                    # Jitter varies the delay but keeps the order (a queue, as a real path
                    # mostly is): only the `reorder` fraction overtakes.
                    at = max(last[peer[fd]], now + max(0.0, delay + rng.uniform(-jitter, jitter)))
                    last[peer[fd]] = at
                seq += 1
                heapq.heappush(due, (at, seq, peer[fd], packet))
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, _, fd, packet = heapq.heappop(due)
            try:
                os.write(fd, packet)
            except OSError:
                pass  # the device is down: the packet is lost, as on a cut cable


# ---------------------------------------------------------------- echo server and clients

def echo_main(args):
    """Echoes every byte back on each connection; holds at most 1 MiB unsent per connection
    (then stops reading it) so a client that does not read cannot grow the server."""
    sel = selectors.DefaultSelector()
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("0.0.0.0", args.port))
    lsock.listen(1024)
    lsock.setblocking(False)
    sel.register(lsock, selectors.EVENT_READ, None)
    pending = {}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        for key, mask in sel.select():
            s = key.fileobj
            if s is lsock:
                try:
                    c, _ = lsock.accept()
                except OSError:
                    continue
                c.setblocking(False)
                pending[c] = bytearray()
                sel.register(c, selectors.EVENT_READ, None)
                continue
            buf = pending[s]
            closed = False
            if mask & selectors.EVENT_READ:
                try:
                    data = s.recv(262144)
                    if not data:
                        closed = True
                    buf += data
                except BlockingIOError:
                    pass
                except OSError:
                    closed = True
            if buf and not closed:
                try:
                    n = s.send(buf)
                    del buf[:n]
                except BlockingIOError:
                    pass
                except OSError:
                    closed = True
            if closed:
                sel.unregister(s)
                s.close()
                del pending[s]
                continue
            events = (selectors.EVENT_READ if len(buf) < 1 << 20 else 0) | (selectors.EVENT_WRITE if buf else 0)
            sel.modify(s, events)


class Stream:
    """One connection sending `size` bytes of its own random block (repeated) and hashing what
    it sends and what comes back."""

    def __init__(self, block, size):
        self.block, self.size = block, size
        self.sent = self.received = 0
        self.sent_hash, self.received_hash = hashlib.sha256(), hashlib.sha256()
        self.start = time.time()
        self.first_echo = None
        self.end, self.how = None, None

    def chunk(self):
        off = self.sent % len(self.block)
        return memoryview(self.block)[off:off + min(65536, self.size - self.sent, len(self.block) - off)]

    def result(self):
        intact = self.how == "complete" and self.sent_hash.digest() == self.received_hash.digest()
        return {"how": self.how, "intact": intact, "sent": self.sent, "received": self.received,
                "start": self.start, "end": self.end,
                "first_echo_s": None if self.first_echo is None else self.first_echo - self.start}


def streams_main(args):
    """Runs args.count streams at once against args.target; prints `flowing <time>` once every
    stream has had args.flowing_after bytes back (if set), then one JSON line of results."""
    host, port = args.target.rsplit(":", 1)
    sel = selectors.DefaultSelector()
    streams = []
    for i in range(args.count):
        st = Stream(os.urandom(min(args.bytes, 1 << 20)), args.bytes)
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((host, int(port)))
        streams.append(st)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, st)
    deadline = time.time() + args.deadline
    open_count, flowing = len(streams), args.flowing_after is None
    while open_count and time.time() < deadline:
        for key, mask in sel.select(timeout=0.2):
            s, st = key.fileobj, key.data
            how = None
            try:
                if mask & selectors.EVENT_WRITE and st.sent < st.size:
                    n = s.send(st.chunk())
                    st.sent_hash.update(st.chunk()[:n])
                    st.sent += n
                if mask & selectors.EVENT_READ:
                    data = s.recv(262144)
                    if not data:
                        how = "eof"
                    else:
                        if st.first_echo is None:
                            st.first_echo = time.time()
                        st.received_hash.update(data)
                        st.received += len(data)
                        if st.received >= st.size:
                            how = "complete"
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as e:
                how = "reset" if e.errno in (104, 32) else f"error {e.errno}"
            if how:
                st.end, st.how = time.time(), how
                sel.unregister(s)
                s.close()
                open_count -= 1
            elif st.sent >= st.size:
                sel.modify(s, selectors.EVENT_READ, st)
        if not flowing and all(st.received >= args.flowing_after for st in streams):
            flowing = True
            print(f"flowing {time.time():.6f}", flush=True)
    for st in streams:
        if st.how is None:
            st.end, st.how = time.time(), "deadline"
    print(json.dumps([st.result() for st in streams]), flush=True)


# ---------------------------------------------------------------- the run

class Chaos:
    def __init__(self, args):
        self.args = args
        self.scratch = tempfile.mkdtemp(prefix="ringproxy-chaos.")
        self.procs = []
        self.links = {}
        self.results = []

    # -- set-up and tear-down
    def teardown(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        for ns in NAMESPACES:
            run("ip", "netns", "del", ns, check=False)

    def setup(self):
        for ns in NAMESPACES:  # left by a run that was killed
            run("ip", "netns", "del", ns, check=False)
        for ns in NAMESPACES:
            run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        for name, ends in LINKS.items():
            for i, (ns, dev, addr) in enumerate(ends):
                peer = ends[1 - i][2]
                run("ip", "-n", ns, "tuntap", "add", "mode", "tun", "name", dev)
                run("ip", "-n", ns, "addr", "add", addr, "peer", peer, "dev", dev)
                run("ip", "-n", ns, "link", "set", dev, "up")
            self.impair(name, {})
            (a_ns, a_dev, _), (b_ns, b_dev, _) = ends
            self.links[name] = self.spawn(None, "link", "--a-ns", a_ns, "--a-dev", a_dev, "--b-ns", b_ns,
                                          "--b-dev", b_dev, "--params", self.params_path(name),
                                          "--seed", str(ord(name)))
        self.spawn("rpc-backend", "echo", "--port", str(ECHO_PORT))
        self.proxy = None
        self.wait_listening("rpc-backend", ECHO_PORT)
        cfg = os.path.join(self.scratch, "ringproxy.cfg")
        with open(cfg, "w") as f:
            f.write(CONFIG)
        self.proxy_log = os.path.join(self.scratch, "ringproxy.log")
        with open(self.proxy_log, "w") as out:
            self.proxy = subprocess.Popen(["ip", "netns", "exec", "rpc-proxy", self.args.bin, "-f", cfg,
                                           "--cores", "1"], stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(self.proxy)
        for port in (PORT_IMPAIRED, PORT_CUT, PORT_PAIR):
            self.wait_listening("rpc-proxy", port)

    def spawn(self, namespace, *argv, **kw):
        cmd = [sys.executable, os.path.abspath(__file__), *argv]
        if namespace:
            cmd = ["ip", "netns", "exec", namespace, *cmd]
        p = subprocess.Popen(cmd, **kw)
        self.procs.append(p)
        return p

    def wait_listening(self, namespace, port, timeout_s=15):
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            r = run("ip", "netns", "exec", namespace, "ss", "-Hltn", f"sport = :{port}", check=False)
            if r.stdout.strip():
                return
            if self.proxy is not None and self.proxy.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"nothing listening on :{port} in {namespace} (see {self.proxy_log})")

    # -- impairments
    def params_path(self, name):
        return os.path.join(self.scratch, f"link-{name}.json")

    def impair(self, name, params):
        """Sets link `name`'s impairment; returns what the previous one did to its packets."""
        with open(self.params_path(name), "w") as f:
            json.dump(params, f)
        if name not in self.links:
            return None
        counts = self.params_path(name) + ".counts"
        before = os.stat(counts).st_mtime_ns if os.path.exists(counts) else 0
        self.links[name].send_signal(signal.SIGHUP)
        deadline = time.time() + 5
        while time.time() < deadline:
            if os.path.exists(counts) and os.stat(counts).st_mtime_ns != before:
                with open(counts) as f:
                    return json.load(f)
            time.sleep(0.01)
        return None

    def link_state(self, name, up):
        ns, dev, _ = LINKS[name][1]
        run("ip", "-n", ns, "link", "set", dev, "up" if up else "down")

    # -- measurements
    def counters(self):
        """The proxy's SIGUSR1 report: {name: value} of its `stats:` line, once a new one came."""
        before = self.report_count()
        self.proxy.send_signal(signal.SIGUSR1)
        deadline = time.time() + 5
        while time.time() < deadline and self.report_count() == before:
            time.sleep(0.02)
        lines = [l[l.index("stats: "):] for l in open(self.proxy_log, errors="replace") if "stats: " in l]
        return dict(kv.split("=", 1) for kv in lines[-1].split()[1:] if "=" in kv) if lines else {}

    def report_count(self):
        return sum(1 for l in open(self.proxy_log, errors="replace") if "stats: " in l)

    def drained(self, timeout_s=10):
        """Polls the counters until nothing is held (bounded): (ok, active, buffers_in_use)."""
        deadline = time.time() + timeout_s
        while True:
            c = self.counters()
            active, buffers = int(c.get("active", -1)), int(c.get("buffers_in_use", -1))
            if (active == 0 and buffers == 0) or time.time() > deadline:
                return active == 0 and buffers == 0, active, buffers
            time.sleep(0.2)

    def streams(self, port, count, size, deadline_s, flowing_after=None, on_flowing=None):
        argv = ["streams", "--target", f"10.99.1.1:{port}", "--count", str(count), "--bytes", str(size),
                "--deadline", str(deadline_s)]
        if flowing_after is not None:
            argv += ["--flowing-after", str(flowing_after)]
        p = self.spawn("rpc-client", *argv, stdout=subprocess.PIPE, text=True)
        result = None
        for line in p.stdout:
            if line.startswith("flowing ") and on_flowing:
                on_flowing(float(line.split()[1]))
            elif line.startswith("["):
                result = json.loads(line)
        p.wait(timeout=10)
        if result is None:
            raise RuntimeError("the stream client printed no result")
        return result

    def check(self, scenario, what, ok, figures):
        self.results.append((scenario, what, ok, figures))
        log(f"{'PASS' if ok else 'FAIL'} {scenario}: {what}: {figures}")

    def check_drained(self, scenario):
        ok, active, buffers = self.drained()
        self.check(scenario, "nothing held afterwards", ok, f"active={active} buffers_in_use={buffers}")

    # -- scenarios
    def impaired(self):
        count, size = (6, 256 << 10) if self.args.short else (20, 2 << 20)
        bad = {"loss": 0.05, "delay_ms": 20, "jitter_ms": 10, "reorder": 0.10}
        self.impair("c", bad)
        self.impair("b", bad)
        t = time.time()
        r = self.streams(PORT_IMPAIRED, count, size, deadline_s=18 if self.args.short else 20)
        elapsed = time.time() - t
        done = [self.impair("c", {}), self.impair("b", {})]
        intact = sum(1 for s in r if s["intact"])
        mib = sum(s["received"] for s in r) / (1 << 20)
        packets = sum(d["packets"] for d in done if d)
        dropped = sum(d["dropped"] for d in done if d)
        reordered = sum(d["reordered"] for d in done if d)
        # The impairment must have happened for the check to mean anything.
        hit = packets > 0 and dropped > 0.02 * packets and reordered > 0
        self.check("1 impaired", f"{count} x {size >> 10} KiB echoed, SHA-256 equal", intact == count and hit,
                   f"{intact}/{count} intact in {elapsed:.1f} s ({mib:.1f} MiB back; 20+-10 ms; "
                   f"{packets} packets on both links, {100 * dropped / max(packets, 1):.1f} % dropped, "
                   f"{100 * reordered / max(packets, 1):.1f} % reordered)")
        self.check_drained("1 impaired")

    def link_down(self):
        count = 4 if self.args.short else 10
        cut = {}

        def cut_link(_flowing_at):
            self.link_state("b", False)
            cut["at"] = time.time()

        r = self.streams(PORT_CUT, count, 1 << 30, deadline_s=10, flowing_after=64 << 10, on_flowing=cut_link)
        if "at" not in cut:
            self.check("2 link-down", "streams flowing before the cut", False, [s["how"] for s in r])
            self.link_state("b", True)
            return
        delays = sorted(s["end"] - cut["at"] for s in r)
        closed = sum(1 for s in r if s["how"] in ("eof", "reset"))
        ok = closed == count and CUT_TIMEOUT_S - 0.05 <= delays[0] and delays[-1] <= CUT_TIMEOUT_S + TIMEOUT_SLACK_S
        self.check("2 link-down", f"clients closed by timeout server {CUT_TIMEOUT_S}s", ok,
                   f"{closed}/{count} closed {delays[0]:.2f}-{delays[-1]:.2f} s after the cut")
        self.check_drained("2 link-down")
        # A new connection while the link is gone: its connect times out, no retry.
        t = time.time()
        r = self.streams(PORT_CUT, 1, 16, deadline_s=CUT_TIMEOUT_S + 5)
        took = r[0]["end"] - r[0]["start"]
        ok = r[0]["how"] in ("eof", "reset") and CUT_TIMEOUT_S - 0.05 <= took <= CUT_TIMEOUT_S + TIMEOUT_SLACK_S
        self.check("2 link-down", f"new client closed at timeout connect {CUT_TIMEOUT_S}s", ok,
                   f"{r[0]['how']} after {took:.2f} s")
        self.check_drained("2 link-down")
        self.link_state("b", True)
        r = self.streams(PORT_CUT, count, 256 << 10, deadline_s=10)
        intact = sum(1 for s in r if s["intact"])
        self.check("2 link-down", "link back: new streams intact", intact == count, f"{intact}/{count} intact")
        self.check_drained("2 link-down")

    def blackhole(self):
        count = 6 if self.args.short else 20
        before = self.counters()
        self.impair("b", {"loss": 1.0})
        r = self.streams(PORT_PAIR, count, 64 << 10, deadline_s=10)
        self.impair("b", {})
        after = self.counters()
        intact = sum(1 for s in r if s["intact"])
        firsts = sorted(s["first_echo_s"] for s in r if s["first_echo_s"] is not None)
        slow = [f for f in firsts if f >= PAIR_CONNECT_TIMEOUT_S - 0.05]
        timeouts = int(after.get("connect_timeouts", 0)) - int(before.get("connect_timeouts", 0))
        ok = intact == count and len(slow) == timeouts > 0 and \
            all(f <= PAIR_CONNECT_TIMEOUT_S + TIMEOUT_SLACK_S for f in slow)
        self.check("3 blackhole", f"timeout connect {PAIR_CONNECT_TIMEOUT_S}s then redispatch", ok,
                   f"{intact}/{count} intact; {timeouts} connect timeouts; {len(slow)} redispatched, "
                   f"first echo {slow[0] if slow else 0:.2f}-{slow[-1] if slow else 0:.2f} s; "
                   f"the rest {firsts[0]:.3f}-{max([f for f in firsts if f not in slow] or [0]):.3f} s")
        self.check_drained("3 blackhole")

    def report(self):
        width = max(len(f"{s}: {w}") for s, w, _, _ in self.results)
        print(f"{'check':<{width}}  result  figures")
        for s, w, ok, figures in self.results:
            print(f"{s + ': ' + w:<{width}}  {'PASS' if ok else 'FAIL':<6}  {figures}")
        return all(ok for _, _, ok, _ in self.results)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode")
    lk = sub.add_parser("link")
    for k in ("--a-ns", "--a-dev", "--b-ns", "--b-dev", "--params"):
        lk.add_argument(k, required=True)
    lk.add_argument("--seed", type=int, default=1)
    ec = sub.add_parser("echo")
    ec.add_argument("--port", type=int, required=True)
    st = sub.add_parser("streams")
    st.add_argument("--target", required=True)
    st.add_argument("--count", type=int, required=True)
    st.add_argument("--bytes", type=int, required=True)
    st.add_argument("--deadline", type=float, required=True)
    st.add_argument("--flowing-after", type=int)
    ap.add_argument("--short", action="store_true", help="a few seconds per scenario (CI)")
    ap.add_argument("--bin", default=os.path.join(REPO, ".build", "debug", "ringproxy"))
    ap.add_argument("--scenarios", default="1,2,3")
    args = ap.parse_args()
    if args.mode == "link":
        return link_main(args)
    if args.mode == "echo":
        return echo_main(args)
    if args.mode == "streams":
        return streams_main(args)
    if os.geteuid() != 0:
        sys.exit("chaos.py: run as root (network namespaces)")
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"chaos.py: no ringproxy at {args.bin} (swift build --product ringproxy)")
    chaos = Chaos(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(1))
    started = time.time()
    try:
        chaos.setup()
        wanted = args.scenarios.split(",")
        for key, scenario in (("1", chaos.impaired), ("2", chaos.link_down), ("3", chaos.blackhole)):
            if key in wanted:
                scenario()
    except Exception as e:  # a set-up or scenario error is a failure with its reason in the table
        chaos.check("run", "no error", False, repr(e))
    finally:
        chaos.teardown()
    ok = chaos.report()
    print(f"{'PASS' if ok else 'FAIL'} in {time.time() - started:.1f} s")
    if ok:
        shutil.rmtree(chaos.scratch, ignore_errors=True)
    else:  # kept: the proxy's log and the link parameters explain the failure
        print(f"logs: {chaos.scratch}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
