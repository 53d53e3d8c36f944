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

Against a stats page (--target is the page's address; see run-attacks.sh):
  attack.py stats-slowloris    N connections each dribbling header bytes of one GET, one line a
      second; one the page closes (at its bound, or 408) is opened again
  attack.py stats-huge-headers as fast as possible: a GET whose headers never end (1 MiB)
  attack.py stats-malformed    as fast as possible: malformed requests of many kinds, each
      connection read to its answer and closed, one in four reset instead
  attack.py stats-bad-auth     as fast as possible: GET with wrong Basic credentials
  attack.py stats-unread       a GET every 2 ms whose answer is never read, the connection kept

Every attack prints one JSON line: what it did, and the probe's figures (quiet and during).
The probe (--probe HOST:PORT, default: the target) does MQTT CONNECT -> CONNACK -> DISCONNECT
sessions one after another with a 2 s timeout each. With --page-probe URL (and --page-auth
USER:PASSWORD) a second probe fetches the stats page the same way, alongside: a fetch counts
as served when it is a 200 whose body ends the page; its figures go under "page". The stats
attacks also report the answers they got, by status ("answers").
"""
import argparse
import base64
import collections
import http.client
import json
import multiprocessing
import random
import socket
import struct
import threading
import time
import urllib.parse


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


class PageProbe(Probe):
    """Well-behaved page fetches: sequential GETs of the stats page, each timed."""

    def __init__(self, url, auth, stop_event):
        parts = urllib.parse.urlsplit(url)
        super().__init__((parts.hostname, parts.port or 80), stop_event)
        self.path = parts.path or "/"
        self.headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}

    def session(self) -> bool:
        self.n += 1
        try:
            connection = http.client.HTTPConnection(*self.target, timeout=2)
            try:
                connection.request("GET", self.path, headers=self.headers)
                response = connection.getresponse()
                body = response.read()
                return response.status == 200 and body.rstrip().endswith(b"</html>")
            finally:
                connection.close()
        except (OSError, http.client.HTTPException):
            return False


def probes_for(seconds, target, page_url=None, page_auth=None):
    stop = threading.Event()
    probes = [Probe(target, stop)] + ([PageProbe(page_url, page_auth, stop)] if page_url else [])
    for p in probes:
        p.start()
    time.sleep(seconds)
    stop.set()
    for p in probes:
        p.join(5)
    return [p.figures() for p in probes]


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


def answer_of(s, seconds=2.0) -> str:
    """The status code of the HTTP answer on s ("none" if it closed first, "timeout")."""
    s.settimeout(seconds)
    head = b""
    try:
        while b"\r\n" not in head and len(head) < 4096:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
    except socket.timeout:
        return "timeout"
    except OSError:
        return "reset"
    words = head.split(b" ", 2)
    return words[1].decode(errors="replace") if len(words) > 1 and head.startswith(b"HTTP/") else "none"


def fire(target, deadline, limit, request_for, answers):
    """As fast as possible until the deadline or `limit` connections: connect, send
    request_for(i) (a reset instead of reading when it returns (bytes, True)), read the
    answer's status, close. Returns how many connections were made."""
    done = 0
    linger = struct.pack("ii", 1, 0)
    while time.monotonic() < deadline and done < limit:
        request, reset = request_for(done)
        try:
            s = socket.create_connection(target, timeout=2)
        except OSError:
            answers["connect-failed"] += 1
            time.sleep(0.001)
            continue
        done += 1
        try:
            if reset:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                s.send(request)
                answers["reset-by-us"] += 1
            else:
                s.sendall(request)
                answers[answer_of(s, 0.5)] += 1   # "timeout": no answer yet (a 408 comes later)
        except OSError:
            answers[answer_of(s, 0.2)] += 1   # the page answered and closed while we still sent
        finally:
            s.close()
    return done


def stats_slowloris(target, deadline, limit, answers):
    """Up to `limit` connections each sending the head of a GET one header line a second; a
    connection the page closes is opened again (`limit` reopenings at most)."""
    first = b"GET /stats HTTP/1.1\r\nHost: x\r\n"
    socks, opened = [], 0

    def open_one():
        nonlocal opened
        try:
            s = socket.create_connection(target, timeout=2)
            s.setblocking(False)
            s.send(first)
            opened += 1
            return s
        except OSError:
            answers["connect-failed"] += 1
            return None

    for _ in range(limit):
        if time.monotonic() > deadline:
            break
        s = open_one()
        if s:
            socks.append(s)
    line = 0
    while time.monotonic() < deadline:
        line += 1
        for i, s in enumerate(socks):
            try:
                # Anything to read is the end: an answer (408) or the page closing (at its bound).
                answers["answered" if s.recv(4096, socket.MSG_PEEK) else "closed-by-page"] += 1
                gone = True
            except BlockingIOError:
                gone = False
            except OSError:
                answers["closed-by-page"] += 1
                gone = True
            if gone:
                s.close()
                socks[i] = None
                if opened < 2 * limit and time.monotonic() < deadline:
                    socks[i] = open_one()
                continue
            try:
                s.send(b"X-Slow-%d: %d\r\n" % (line, i))
            except OSError:
                pass
        socks = [s for s in socks if s is not None]
        time.sleep(1.0)
    for s in socks:
        s.close()
    return opened


def stats_huge_headers(target, deadline, limit, answers):
    head = b"GET /stats HTTP/1.1\r\nHost: x\r\nX-Huge: " + b"h" * (1 << 20)
    return fire(target, deadline, limit, lambda i: (head, False), answers)


MALFORMED = [   # with a Host header where the rest is what is wrong (RFC 9112 §3.2: none is a 400)
    b"\x00\xff\xfe garbage\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET /stats\r\n\r\n",
    b"GET /stats HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET /stats HTTP/1.1\r\n\r\n",
    b"GET /stats HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
    b"GET /stats HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"GET /stats HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"POST /stats HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
    b"POST /stats HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"BREW /stats HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET " + b"/" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /stats HTTP/1.1\r\nHost: x\r\n \tfolded: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",   # a TLS ClientHello's start
    b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x3c\x00\x00",  # an MQTT CONNECT
]


def stats_malformed(target, deadline, limit, answers):
    rng = random.Random(13)

    def request(i):
        reset = (i // len(MALFORMED)) % 4 == 3   # every kind, one round in four
        if i % 7 == 6:
            return bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 600))) + b"\r\n\r\n", reset
        return MALFORMED[i % len(MALFORMED)], reset
    return fire(target, deadline, limit, request, answers)


def stats_bad_auth(target, deadline, limit, answers):
    def request(i):
        credentials = base64.b64encode(b"ops:wrong-%d" % i) if i % 5 else b"!!not-base64!!"
        return b"GET /stats HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + credentials + b"\r\n\r\n", False
    return fire(target, deadline, limit, request, answers)


def stats_unread(target, deadline, limit, answers):
    """Complete requests whose answers are never read, their connections left open: one every
    2 ms until the deadline, `limit` at most. (Not in run-attacks.sh's default list: the page
    refuses well-behaved fetches under it; see the README.)"""
    socks = []
    while time.monotonic() < deadline and len(socks) < limit:
        try:
            s = socket.create_connection(target, timeout=2)
            s.send(b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n")
            socks.append(s)
        except OSError:
            answers["connect-failed"] += 1
        time.sleep(0.002)
    while time.monotonic() < deadline:
        time.sleep(0.05)
    for s in socks:
        s.close()
    answers["held"] += len(socks)
    return len(socks)


ATTACKS = {"partial-reset": partial_reset, "slow-connect": slow_connect, "stalled-server": stalled_server,
           "stats-slowloris": stats_slowloris, "stats-huge-headers": stats_huge_headers,
           "stats-malformed": stats_malformed, "stats-bad-auth": stats_bad_auth, "stats-unread": stats_unread}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("attack", choices=sorted(ATTACKS))
    ap.add_argument("--target", required=True)
    ap.add_argument("--probe")
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--quiet-seconds", type=float, default=3)
    ap.add_argument("--page-probe", metavar="URL", help="also fetch this stats page alongside (http://HOST:PORT/URI)")
    ap.add_argument("--page-auth", metavar="USER:PASSWORD", help="the page probe's credentials")
    args = ap.parse_args()
    target = parse(args.target)
    probe_target = parse(args.probe or args.target)

    quiet = probes_for(args.quiet_seconds, probe_target, args.page_probe, args.page_auth)
    stop = threading.Event()
    probes = [Probe(probe_target, stop)] + ([PageProbe(args.page_probe, args.page_auth, stop)] if args.page_probe else [])
    deadline = time.monotonic() + args.seconds
    # Attackers in processes of their own, so that they never starve the probe of the GIL.
    results = multiprocessing.Queue()
    per_process = max(1, args.connections // args.processes)
    stats_attack = args.attack.startswith("stats-")

    def run():
        if stats_attack:
            answers = collections.Counter()
            results.put((ATTACKS[args.attack](target, deadline, per_process, answers), dict(answers)))
        else:
            results.put((ATTACKS[args.attack](target, deadline, per_process), {}))
    workers = [multiprocessing.Process(target=run) for _ in range(args.processes)]
    for w in workers:
        w.start()
    time.sleep(0.2)   # the attackers are under way
    for p in probes:
        p.start()
    outcomes = [results.get(timeout=args.seconds + 30) for _ in workers]
    for w in workers:
        w.join(5)
    stop.set()
    for p in probes:
        p.join(5)
    answers = collections.Counter()
    for _, a in outcomes:
        answers.update(a)
    report = {"attack": args.attack, "attacker_connections": sum(n for n, _ in outcomes),
              "quiet": quiet[0], "during": probes[0].figures()}
    if stats_attack:
        report["answers"] = dict(sorted(answers.items()))
    if args.page_probe:
        report["page"] = {"quiet": quiet[1], "during": probes[1].figures()}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
