#!/usr/bin/env python3
"""Attacks on a running ringproxy, each bounded in count and time, loopback only, with a probe
of well-behaved MQTT clients running alongside: their success rate and latency during the
attack are compared with a quiet run before it.

  attack.py partial-reset  --target 127.0.0.1:1883 [--connections N] [--seconds S]
      connect, send the first 7 bytes of a CONNECT, reset (SO_LINGER 0); as fast as possible
  attack.py slow-connect   --target ... [--connections N] [--seconds S]
      hold N connections that each announce a 60 KB CONNECT and then send one byte a second
  attack.py stalled-server --target ... [--connections N] [--seconds S]
      N clients pushing bytes to a backend that accepts and never reads (point --target at a
      frontend whose backend is such a server; see run-attacks.sh)

Every attack prints one JSON line: what it did, and the probe's figures (quiet and during).
The probe (--probe HOST:PORT, default: the target) does MQTT CONNECT -> CONNACK -> DISCONNECT
sessions one after another with a 2 s timeout each.
"""
import argparse
import json
import multiprocessing
import socket
import struct
import threading
import time


def connect_packet(client_id: bytes, announced_id_length: int = None) -> bytes:
    """A CONNECT; with announced_id_length, the header of one whose client id is that long
    (only the bytes of client_id follow: the rest is for the caller to dribble)."""
    variable = b"\x00\x04MQTT\x04\x02\x00\x3c"
    id_length = len(client_id) if announced_id_length is None else announced_id_length
    payload = struct.pack(">H", id_length) + client_id
    remaining = len(variable) + 2 + id_length
    out = bytearray([0x10])
    while True:
        byte = remaining % 128
        remaining //= 128
        out.append(byte | (0x80 if remaining else 0))
        if not remaining:
            break
    return bytes(out) + variable + payload


def parse(target: str):
    host, port = target.rsplit(":", 1)
    return host, int(port)


class Probe(threading.Thread):
    """Well-behaved clients: sequential MQTT sessions, each timed."""

    def __init__(self, target, stop_event):
        super().__init__(daemon=True)
        self.target = target
        self.stop_event = stop_event
        self.latencies_ms = []
        self.failures = 0
        self.n = 0

    def session(self) -> bool:
        self.n += 1
        try:
            with socket.create_connection(self.target, timeout=2) as s:
                s.settimeout(2)
                s.sendall(connect_packet(b"probe-%d" % self.n))
                ack = b""
                while len(ack) < 4:
                    chunk = s.recv(4 - len(ack))
                    if not chunk:
                        return False
                    ack += chunk
                if ack != b"\x20\x02\x00\x00":
                    return False
                s.sendall(b"\xe0\x00")
                return True
        except OSError:
            return False

    def run(self):
        while not self.stop_event.is_set():
            t0 = time.monotonic()
            ok = self.session()
            if ok:
                self.latencies_ms.append((time.monotonic() - t0) * 1000)
            else:
                self.failures += 1
            time.sleep(0.02)

    def figures(self):
        done = len(self.latencies_ms) + self.failures
        lat = sorted(self.latencies_ms)
        pct = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 2) if lat else None
        return {"sessions": done, "ok": len(lat), "success": round(len(lat) / done, 4) if done else None,
                "p50_ms": pct(0.5), "p99_ms": pct(0.99)}


def probe_for(seconds, target):
    stop = threading.Event()
    p = Probe(target, stop)
    p.start()
    time.sleep(seconds)
    stop.set()
    p.join(5)
    return p.figures()


def partial_reset(target, deadline, limit):
    done = 0
    head = connect_packet(b"x" * 20)[:7]
    linger = struct.pack("ii", 1, 0)
    while time.monotonic() < deadline and done < limit:
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            s.connect(target)
            s.send(head)
            s.close()
            done += 1
        except OSError:
            time.sleep(0.001)
    return done


def hold(target, deadline, limit, first: bytes, every: bytes, interval: float):
    """Opens up to `limit` connections (sending `first` on each), then sends `every` on each
    every `interval` seconds until the deadline, then closes them all; returns how many."""
    socks = []
    for _ in range(limit):
        if time.monotonic() > deadline:
            break
        try:
            s = socket.create_connection(target, timeout=2)
            s.setblocking(False)
            if first:
                s.send(first)
            socks.append(s)
        except OSError:
            break
    while time.monotonic() < deadline:
        for s in socks:
            try:
                s.send(every)
            except OSError:
                pass
        time.sleep(interval)
    for s in socks:
        s.close()
    return len(socks)


def slow_connect(target, deadline, limit):
    return hold(target, deadline, limit, connect_packet(b"slow", announced_id_length=60_000), b"x", 1.0)


def stalled_server(target, deadline, limit):
    return hold(target, deadline, limit, b"", b"y" * 65536, 0.05)


ATTACKS = {"partial-reset": partial_reset, "slow-connect": slow_connect, "stalled-server": stalled_server}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("attack", choices=sorted(ATTACKS))
    ap.add_argument("--target", required=True)
    ap.add_argument("--probe")
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--quiet-seconds", type=float, default=3)
    args = ap.parse_args()
    target = parse(args.target)
    probe_target = parse(args.probe or args.target)

    quiet = probe_for(args.quiet_seconds, probe_target)
    stop = threading.Event()
    probe = Probe(probe_target, stop)
    deadline = time.monotonic() + args.seconds
    # Attackers in processes of their own, so that they never starve the probe of the GIL.
    results = multiprocessing.Queue()
    per_process = max(1, args.connections // args.processes)
    run = lambda: results.put(ATTACKS[args.attack](target, deadline, per_process))
    workers = [multiprocessing.Process(target=run) for _ in range(args.processes)]
    for w in workers:
        w.start()
    time.sleep(0.2)   # the attackers are under way
    probe.start()
    for w in workers:
        w.join(args.seconds + 30)
    stop.set()
    probe.join(5)
    opened = sum(results.get(timeout=5) for _ in workers)
    print(json.dumps({"attack": args.attack, "attacker_connections": opened,
                      "quiet": quiet, "during": probe.figures()}))


if __name__ == "__main__":
    main()
