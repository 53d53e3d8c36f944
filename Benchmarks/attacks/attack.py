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

Against the preambles of the other listener kinds (each probed with --probe-kind of its kind):
  attack.py tls-hang --probe-kind tls         N TLS handshakes left hanging, three kinds in
      turn: connect and send nothing; half a ClientHello; a whole ClientHello, never the Finished
  attack.py ws-half-upgrade --probe-kind ws   N WebSocket upgrades never done: the head one line
      a second; one byte a second; the upgrade answered 101 and then no CONNECT frame
  attack.py proxy-dribble --probe-kind proxy  N PROXY v1/v2 headers one byte a second, never
      completed (on an accept-proxy frontend)
  Each connection the proxy closes is counted (closed-by-proxy, reset-by-proxy), with how long
  it was held ("closed_after_s"), and opened again (N reopenings at most).

Every attack prints one JSON line: what it did, and the probe's figures (quiet and during).
The probe (--probe HOST:PORT, default: the target) does MQTT CONNECT -> CONNACK -> DISCONNECT
sessions one after another with a 2 s timeout each; --probe-kind tls, ws or proxy does them over
TLS, over WebSocket (RFC 6455 by hand, subprotocol mqtt) or behind a PROXY header (v1 and v2
in turn), with a PINGREQ -> PINGRESP before the DISCONNECT. A failed session is counted by what
failed and when ("failures"). With --page-probe URL (and --page-auth USER:PASSWORD) a second
probe fetches the stats page the same way, alongside: a fetch counts as served when it is a 200
whose body ends the page; its figures go under "page". The stats and preamble attacks also
report what came back ("answers").
"""
import argparse
import base64
import collections
import http.client
import json
import multiprocessing
import random
import socket
import ssl
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


def recv_exactly(s, n: int) -> bytes:
    """n bytes from s, or fewer if the peer closed first."""
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            break
        out += chunk
    return out


def mqtt_session(s, client_id: bytes, ping=False, before=b"") -> bool:
    """CONNECT -> CONNACK (accepted), PINGREQ -> PINGRESP when `ping`, DISCONNECT over s (a
    socket, an SSL socket or a WebSocketStream); `before` goes in the same send as the CONNECT."""
    s.sendall(before + connect_packet(client_id))
    if recv_exactly(s, 4) != b"\x20\x02\x00\x00":
        return False
    if ping:
        s.sendall(b"\xc0\x00")
        if recv_exactly(s, 2) != b"\xd0\x00":
            return False
    s.sendall(b"\xe0\x00")
    return True


def proxy_header(n: int, version: int) -> bytes:
    """A PROXY header (HAProxy's proxy-protocol.txt) for a client 10.7.x.y:port -> 10.0.0.1:1883."""
    source = (10, 7, (n >> 8) & 0xFF, n & 0xFF)
    port = 1024 + n % 60000
    if version == 1:
        return b"PROXY TCP4 %d.%d.%d.%d 10.0.0.1 %d 1883\r\n" % (*source, port)
    return (b"\r\n\r\n\x00\r\nQUIT\n" + b"\x21\x11" + struct.pack(">H", 12)
            + bytes(source) + bytes((10, 0, 0, 1)) + struct.pack(">HH", port, 1883))


def websocket_upgrade(n: int, path=b"/mqtt") -> bytes:
    key = base64.b64encode(struct.pack(">QQ", n, 0x5EED))
    return (b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n")


def websocket_frame(payload: bytes) -> bytes:
    """One masked binary frame (RFC 6455 §5.2; a client's frames are masked)."""
    mask = struct.pack(">I", random.getrandbits(32))
    size = len(payload)
    head = b"\x82" + (bytes([0x80 | size]) if size < 126 else b"\xfe" + struct.pack(">H", size))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class WebSocketStream:
    """sendall/recv of MQTT bytes over a WebSocket: each send one binary frame; recv takes the
    payload of the server's (unmasked) binary frames."""

    def __init__(self, s, pending: bytes):
        self.s, self.pending, self.payload = s, pending, b""

    def sendall(self, data: bytes):
        self.s.sendall(websocket_frame(data))

    def _need(self, n: int) -> bool:
        while len(self.pending) < n:
            chunk = self.s.recv(4096)
            if not chunk:
                return False
            self.pending += chunk
        return True

    def recv(self, n: int) -> bytes:
        while not self.payload:
            if not self._need(2):
                return b""
            size, at = self.pending[1] & 0x7F, 2
            if size == 126:
                if not self._need(4):
                    return b""
                size, at = struct.unpack(">H", self.pending[2:4])[0], 4
            if not self._need(at + size):
                return b""
            opcode = self.pending[0] & 0x0F
            if opcode in (0x0, 0x2):
                self.payload += self.pending[at:at + size]
            elif opcode == 0x8:
                return b""
            self.pending = self.pending[at + size:]
        out, self.payload = self.payload[:n], self.payload[n:]
        return out


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
        self.why = collections.Counter()   # failures by kind
        self.n = 0

    def session(self) -> bool:
        """One session: True when served; False, or an exception, when not."""
        self.n += 1
        with socket.create_connection(self.target, timeout=2) as s:
            s.settimeout(2)
            return mqtt_session(s, b"probe-%d" % self.n)

    def run(self):
        while not self.stop_event.is_set():
            t0 = time.monotonic()
            try:
                ok, why = self.session(), "wrong-answer"
            except (OSError, http.client.HTTPException) as error:
                ok, why = False, type(error).__name__
            elapsed_ms = (time.monotonic() - t0) * 1000
            if ok:
                self.latencies_ms.append(elapsed_ms)
            else:
                self.failures += 1
                self.why["%s after %d ms" % (why, elapsed_ms)] += 1   # what failed, and when
            time.sleep(0.02)

    def figures(self):
        done = len(self.latencies_ms) + self.failures
        lat = sorted(self.latencies_ms)
        pct = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 2) if lat else None
        out = {"sessions": done, "ok": len(lat), "success": round(len(lat) / done, 4) if done else None,
               "p50_ms": pct(0.5), "p99_ms": pct(0.99)}
        if self.why:
            out["failures"] = dict(self.why)
        return out


class TLSProbe(Probe):
    """Well-behaved MQTT clients over TLS: handshake, CONNECT -> CONNACK, PINGREQ -> PINGRESP,
    DISCONNECT (the certificate is not checked: the run's own, self-signed)."""

    def __init__(self, target, stop_event):
        super().__init__(target, stop_event)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE

    def session(self) -> bool:
        self.n += 1
        with socket.create_connection(self.target, timeout=2) as raw:
            with self.context.wrap_socket(raw, server_hostname="localhost") as s:
                return mqtt_session(s, b"tls-probe-%d" % self.n, ping=True)


class WebSocketProbe(Probe):
    """Well-behaved MQTT clients over WebSocket (RFC 6455, by hand): the upgrade with the `mqtt`
    subprotocol, then CONNECT -> CONNACK, PINGREQ -> PINGRESP, DISCONNECT in masked binary frames."""

    def session(self) -> bool:
        self.n += 1
        with socket.create_connection(self.target, timeout=2) as s:
            s.settimeout(2)
            s.sendall(websocket_upgrade(self.n))
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                if not chunk:
                    return False
                head += chunk
            if not head.startswith(b"HTTP/1.1 101"):
                return False
            rest = head.split(b"\r\n\r\n", 1)[1]
            return mqtt_session(WebSocketStream(s, rest), b"ws-probe-%d" % self.n, ping=True)


class ProxyHeaderProbe(Probe):
    """Well-behaved clients behind a trusted balancer: a PROXY header (v1 and v2 in turn) in the
    same segment as the CONNECT, then CONNACK, PINGREQ -> PINGRESP, DISCONNECT."""

    def session(self) -> bool:
        self.n += 1
        with socket.create_connection(self.target, timeout=2) as s:
            s.settimeout(2)
            return mqtt_session(s, b"proxied-probe-%d" % self.n, ping=True, before=proxy_header(self.n, self.n % 2 + 1))


class PageProbe(Probe):
    """Well-behaved page fetches: sequential GETs of the stats page, each timed."""

    def __init__(self, url, auth, stop_event):
        parts = urllib.parse.urlsplit(url)
        super().__init__((parts.hostname, parts.port or 80), stop_event)
        self.path = parts.path or "/"
        self.headers = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()} if auth else {}

    def session(self) -> bool:
        self.n += 1
        connection = http.client.HTTPConnection(*self.target, timeout=2)
        try:
            connection.request("GET", self.path, headers=self.headers)
            response = connection.getresponse()
            body = response.read()
            return response.status == 200 and body.rstrip().endswith(b"</html>")
        finally:
            connection.close()


def probes_for(seconds, kind, target, page_url=None, page_auth=None):
    stop = threading.Event()
    probes = [PROBES[kind](target, stop)] + ([PageProbe(page_url, page_auth, stop)] if page_url else [])
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


def stall(target, deadline, limit, answers, opening, dribble):
    """Up to `limit` connections, the i-th begun by opening(i) (which returns the socket, or None
    when the proxy refused it at once), then fed dribble(i, tick) (bytes, maybe empty) once a
    second. Whatever the proxy sends is read and dropped; a connection the proxy closes is
    counted ("closed-by-proxy" / "reset-by-proxy", and how long it was held, in
    answers["held_s"]) and opened again (`limit` reopenings at most)."""
    conns, opened = [], 0

    def open_one(i):
        nonlocal opened
        opened += 1
        try:
            s = opening(i)
        except OSError:
            s = None
        if s is None:
            answers["refused-at-open"] += 1
            return None
        s.setblocking(False)
        return [s, i, time.monotonic()]

    for i in range(limit):
        if time.monotonic() > deadline:
            break
        c = open_one(i)
        if c:
            conns.append(c)
    tick = 0
    while time.monotonic() < deadline:
        tick += 1
        for k, (s, i, since) in enumerate(conns):
            gone = None
            try:
                while True:   # drain what the proxy sent (a TLS server flight, a 101)
                    if not s.recv(65536):
                        gone = "closed-by-proxy"
                        break
            except BlockingIOError:
                pass
            except OSError:
                gone = "reset-by-proxy"
            if gone:
                answers[gone] += 1
                answers.setdefault("held_s", []).append(round(time.monotonic() - since, 1))
                s.close()
                conns[k] = open_one(limit + opened) if opened < 2 * limit and time.monotonic() < deadline else None
                continue
            data = dribble(i, tick)
            if data:
                try:
                    s.send(data)
                except OSError:
                    pass
        conns = [c for c in conns if c is not None]
        time.sleep(1.0)
    answers["still-held-at-end"] += len(conns)
    for s, _, _ in conns:
        s.close()
    return opened


def client_hello() -> bytes:
    """The bytes of a real TLS ClientHello (Python's defaults), made without a socket."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    client = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        client.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def tls_hang(target, deadline, limit, answers):
    """TLS handshakes left hanging, three kinds in turn: connect and send nothing; half a
    ClientHello, then nothing; a whole ClientHello (the server's flight read and dropped), then
    never the Finished."""
    hello = client_hello()

    def opening(i):
        s = socket.create_connection(target, timeout=2)
        kind = i % 3
        if kind:
            s.sendall(hello[:len(hello) // 2] if kind == 1 else hello)
        return s
    return stall(target, deadline, limit, answers, opening, lambda i, tick: b"")


def ws_half_upgrade(target, deadline, limit, answers):
    """WebSocket upgrades never completed, three kinds in turn: the upgrade head one line a
    second (and header lines after it, never the empty line); one byte a second; the whole
    upgrade (the 101 read and dropped) and then no MQTT CONNECT frame, ever."""
    def lines(i):
        return websocket_upgrade(i).split(b"\r\n")[:-2]   # never the empty line that ends it

    def opening(i):
        s = socket.create_connection(target, timeout=2)
        kind = i % 3
        s.sendall(websocket_upgrade(i) if kind == 2 else (lines(i)[0] + b"\r\n" if kind == 0 else b"G"))
        return s

    def dribble(i, tick):
        kind = i % 3
        if kind == 0:
            head = lines(i)
            return head[tick] + b"\r\n" if tick < len(head) else b"X-Slow-%d: %d\r\n" % (tick, i)
        if kind == 1:
            head = websocket_upgrade(i)[:-4]
            return head[tick:tick + 1] if tick < len(head) else b"x"
        return b""
    return stall(target, deadline, limit, answers, opening, dribble)


def proxy_dribble(target, deadline, limit, answers):
    """PROXY headers dribbled a byte a second and never completed: v1 and v2 in turn (the v1
    line's last byte, the v2 header's last address byte, never sent)."""
    def header(i):
        return proxy_header(i, i % 2 + 1)[:-1]

    def opening(i):
        s = socket.create_connection(target, timeout=2)
        s.sendall(header(i)[:1])
        return s

    def dribble(i, tick):
        return header(i)[tick:tick + 1]
    return stall(target, deadline, limit, answers, opening, dribble)


ATTACKS = {"partial-reset": partial_reset, "slow-connect": slow_connect, "stalled-server": stalled_server,
           "stats-slowloris": stats_slowloris, "stats-huge-headers": stats_huge_headers,
           "stats-malformed": stats_malformed, "stats-bad-auth": stats_bad_auth, "stats-unread": stats_unread,
           "tls-hang": tls_hang, "ws-half-upgrade": ws_half_upgrade, "proxy-dribble": proxy_dribble}
# The attacks that count what came back (the others return only how many connections they made).
ANSWERED = {"stats-slowloris", "stats-huge-headers", "stats-malformed", "stats-bad-auth", "stats-unread",
            "tls-hang", "ws-half-upgrade", "proxy-dribble"}
PROBES = {"mqtt": Probe, "tls": TLSProbe, "ws": WebSocketProbe, "proxy": ProxyHeaderProbe}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("attack", choices=sorted(ATTACKS))
    ap.add_argument("--target", required=True)
    ap.add_argument("--probe")
    ap.add_argument("--probe-kind", choices=sorted(PROBES), default="mqtt",
                    help="how the probe's clients speak MQTT: plain, over TLS, over WebSocket, behind a PROXY header")
    ap.add_argument("--connections", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--quiet-seconds", type=float, default=3)
    ap.add_argument("--page-probe", metavar="URL", help="also fetch this stats page alongside (http://HOST:PORT/URI)")
    ap.add_argument("--page-auth", metavar="USER:PASSWORD", help="the page probe's credentials")
    args = ap.parse_args()
    target = parse(args.target)
    probe_target = parse(args.probe or args.target)

    quiet = probes_for(args.quiet_seconds, args.probe_kind, probe_target, args.page_probe, args.page_auth)
    stop = threading.Event()
    probes = [PROBES[args.probe_kind](probe_target, stop)] + ([PageProbe(args.page_probe, args.page_auth, stop)] if args.page_probe else [])
    deadline = time.monotonic() + args.seconds
    # Attackers in processes of their own, so that they never starve the probe of the GIL.
    results = multiprocessing.Queue()
    per_process = max(1, args.connections // args.processes)
    answered = args.attack in ANSWERED

    def run():
        if answered:
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
    answers, held_s = collections.Counter(), []
    for _, a in outcomes:
        held_s += a.pop("held_s", [])
        answers.update(a)
    report = {"attack": args.attack, "attacker_connections": sum(n for n, _ in outcomes),
              "quiet": quiet[0], "during": probes[0].figures()}
    if answered:
        report["answers"] = dict(sorted(answers.items()))
    if held_s:   # how long the proxy let the attacker's connections stay before it closed them
        held_s.sort()
        report["closed_after_s"] = {"min": held_s[0], "median": held_s[len(held_s) // 2], "max": held_s[-1]}
    if args.page_probe:
        report["page"] = {"quiet": quiet[1], "during": probes[1].figures()}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
