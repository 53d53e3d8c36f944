#!/usr/bin/env python3
"""What a relay must keep, checked through any TCP proxy (issue 17: before measuring the sockmap
relay, check that it relays): one backend on 127.0.0.1 whose behaviour the client's first byte
chooses, and a proxy started from a command template.

  S  stream: the server sends --server-bytes of its own random bytes and FIN, while it reads the
     client's until FIN (SHA-256 and length both ways: integrity, half-close in order)
  E  echo until FIN, then FIN (data sent in the connect's first segment: before a splice is set up)
  K  sink: reads until FIN or reset and says which (a client reset must reach the server as one)
  R  the server resets after reading the client's 1,000 bytes (a server reset must reach the client as one)
  T  stall: never reads for --stall-s (backpressure: how much a client can push, kernel memory)
  I  idle: nothing (the proxy's idle timeout, when it has one)

Usage: python3 Benchmarks/tools/splicecheck.py --proxy 'sockmapproxy --listen {listen} --backend {backend}'
       [--report-signal USR1] [--idle-timeout-s N] [--out FILE]
--report-signal: the proxy prints a JSON line of totals on stdout at that signal; its byte
counters (bytes_c2s, bytes_s2c) are checked against what the stream test sent. Prints one JSON
line per check and exits 1 if any failed. Every socket has a timeout; every process started is
stopped."""
import argparse, hashlib, json, os, signal, socket, struct, subprocess, sys, threading, time

BACKEND_PORT, LISTEN_PORT = 29501, 29502
results = []


def rand(n, seed):
    out, block, i = bytearray(), hashlib.sha256(seed.encode()).digest(), 0
    while len(out) < n:
        out += hashlib.sha256(block + i.to_bytes(8, "little")).digest() * 64
        i += 1
    return bytes(out[:n])


def recv_all(s, limit=1 << 31):
    h, n = hashlib.sha256(), 0
    while n < limit:
        b = s.recv(1 << 16)
        if not b:
            break
        h.update(b)
        n += len(b)
    return n, h.hexdigest()


class Backend(threading.Thread):
    def __init__(self, cfg):
        super().__init__(daemon=True)
        self.cfg = cfg
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", BACKEND_PORT))
        self.ls.listen(512)
        self.seen = {}       # conn id -> what the server observed
        self.lock = threading.Lock()

    def run(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def record(self, key, value):
        with self.lock:
            self.seen[key] = value

    def serve(self, c):
        c.settimeout(30)
        head = b""
        try:
            head = c.recv(9)     # mode byte + 8-byte connection id
            while 0 < len(head) < 9:
                more = c.recv(9 - len(head))
                if not more:
                    break
                head += more
            if len(head) < 9:
                return
            mode, cid = chr(head[0]), struct.unpack("<Q", head[1:9])[0]
            if mode == "S":
                data = rand(self.cfg.server_bytes, f"s{cid}")
                t = threading.Thread(target=lambda: (c.sendall(data), c.shutdown(socket.SHUT_WR)), daemon=True)
                t.start()
                n, h = recv_all(c)
                t.join(30)
                self.record(cid, dict(n=n, sha=h))
            elif mode == "E":
                c.sendall(head)
                while True:
                    b = c.recv(1 << 16)
                    if not b:
                        break
                    c.sendall(b)
                c.shutdown(socket.SHUT_WR)
            elif mode == "K":
                try:
                    n, _ = recv_all(c)
                    self.record(cid, dict(end="fin", n=n))
                except ConnectionResetError:
                    self.record(cid, dict(end="reset"))
            elif mode == "R":
                got = 9   # the client sends 1,000 bytes in all, the head included
                while got < 1000:
                    b = c.recv(1000 - got)
                    if not b:
                        break
                    got += len(b)
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif mode == "T":
                time.sleep(self.cfg.stall_s)
            elif mode == "I":
                try:
                    c.settimeout(self.cfg.idle_timeout_s + 10)
                    b = c.recv(1)
                    self.record(cid, dict(end="fin" if not b else "data"))
                except ConnectionResetError:
                    self.record(cid, dict(end="reset"))
                except socket.timeout:
                    self.record(cid, dict(end="timeout"))
        except Exception as e:
            self.record(("error", id(c)), f"mode {head[:1]!r}: {e!r}")
        finally:
            c.close()


def connect(mode, cid, port=LISTEN_PORT):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(mode.encode() + struct.pack("<Q", cid))
    return s


def check(name, ok, **detail):
    results.append(dict(check=name, ok=bool(ok), **detail))
    print(json.dumps(results[-1]), flush=True)


def t_stream(cfg, backend, conns, cid0):
    """conns connections in parallel, both directions at once, each half-closed after its data."""
    out = {}
    def client(cid):
        try:
            data = rand(cfg.client_bytes, f"c{cid}")
            s = connect("S", cid)
            t = threading.Thread(target=lambda: (s.sendall(data), s.shutdown(socket.SHUT_WR)), daemon=True)
            t.start()
            n, h = recv_all(s)
            t.join(30)
            s.close()
            out[cid] = dict(n=n, sha=h, want_sha=hashlib.sha256(data).hexdigest())   # want_sha: what the server must get
        except Exception as e:
            out[cid] = dict(error=repr(e))
    ts = [threading.Thread(target=client, args=(cid0 + i,)) for i in range(conns)]
    [t.start() for t in ts]
    [t.join(120) for t in ts]
    time.sleep(0.5)
    bad = []
    for i in range(conns):
        cid = cid0 + i
        c, s = out.get(cid, {}), backend.seen.get(cid, {})
        srv = rand(cfg.server_bytes, f"s{cid}")
        ok = (c.get("n") == len(srv) and c.get("sha") == hashlib.sha256(srv).hexdigest()
              and s.get("n") == cfg.client_bytes and s.get("sha") == c.get("want_sha"))
        if not ok:
            bad.append(dict(cid=cid, client=c, server=s))
    check(f"stream x{conns}: SHA-256 both ways, each side's FIN after its data", not bad,
          client_bytes=cfg.client_bytes, server_bytes=cfg.server_bytes, bad=bad[:3])
    return conns * (9 + cfg.client_bytes), conns * cfg.server_bytes


def t_early(cfg, n, cid0):
    """Data in the first segment, answered only if relayed: a client that sends and waits."""
    fails = []
    for i in range(n):
        try:
            payload = rand(200, f"e{i}")
            s = socket.create_connection(("127.0.0.1", LISTEN_PORT), timeout=3)
            s.sendall(b"E" + struct.pack("<Q", cid0 + i) + payload)
            got = b""
            while len(got) < 209:
                b = s.recv(4096)
                if not b:
                    break
                got += b
            s.shutdown(socket.SHUT_WR)
            rest, _ = recv_all(s)
            s.close()
            if got[9:] != payload or rest != 0:
                fails.append(dict(i=i, got=len(got), rest=rest))
        except Exception as e:
            fails.append(dict(i=i, error=repr(e)))
        if len(fails) >= 3:
            break
    check(f"early data x{n}: bytes sent before the splice is set up are relayed, echo then FIN", not fails, fails=fails[:3])


def t_half_close_one_way(cfg, cid):
    """The client half-closes at once; the server's 8 MB keep flowing to it afterwards."""
    s = connect("S", cid)
    s.shutdown(socket.SHUT_WR)
    n, h = recv_all(s)
    s.close()
    srv = rand(cfg.server_bytes, f"s{cid}")
    time.sleep(0.3)
    return n == len(srv) and h == hashlib.sha256(srv).hexdigest()


def t_resets(backend, cid0):
    # client reset -> server sees a reset
    s = connect("K", cid0)
    s.sendall(b"x" * 5000)
    time.sleep(0.2)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    deadline = time.time() + 5
    while cid0 not in backend.seen and time.time() < deadline:
        time.sleep(0.05)
    check("client reset reaches the server as a reset", backend.seen.get(cid0, {}).get("end") == "reset",
          server_saw=backend.seen.get(cid0))
    # server reset -> client sees a reset
    s = connect("R", cid0 + 1)
    s.sendall(b"y" * 991)
    end = "?"
    try:
        s.settimeout(5)
        b = s.recv(10)
        end = "fin" if not b else "data"
    except ConnectionResetError:
        end = "reset"
    except socket.timeout:
        end = "timeout"
    s.close()
    check("server reset reaches the client as a reset", end == "reset", client_saw=end)


def sockstat_tcp_mem_kb():
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                w = line.split()
                return int(w[w.index("mem") + 1]) * 4
    return None


def t_backpressure(cfg):
    """A server that does not read: how much the client gets to write before it blocks."""
    mem0 = sockstat_tcp_mem_kb()
    s = connect("T", 0)
    s.setblocking(False)
    sent, chunk, t0, last_progress = 0, b"z" * 65536, time.time(), time.time()
    while time.time() - t0 < cfg.stall_s - 1 and sent < cfg.push_max_mb << 20:   # bounded: kernel memory
        try:
            sent += s.send(chunk)
            last_progress = time.time()
        except BlockingIOError:
            if time.time() - last_progress > 1.0:
                break
            time.sleep(0.01)
    mem1 = sockstat_tcp_mem_kb()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    bounded = sent < cfg.push_max_mb << 20 and time.time() - last_progress > 0.9
    check("backpressure: a client pushing into a server that never reads is stopped", bounded,
          client_wrote_mb=round(sent / 1e6, 2), tcp_mem_grew_kb=(mem1 - mem0) if mem0 is not None else None)


def t_idle(cfg, backend, cid):
    s = connect("I", cid)
    t0 = time.time()
    s.settimeout(cfg.idle_timeout_s + 10)
    try:
        b = s.recv(1)
        end = "fin" if not b else "data"
    except ConnectionResetError:
        end = "reset"
    except socket.timeout:
        end = "timeout"
    took = time.time() - t0
    s.close()
    check(f"idle timeout {cfg.idle_timeout_s:g} s closes an idle connection", end in ("fin", "reset") and took < cfg.idle_timeout_s + 3,
          client_saw=end, after_s=round(took, 2))


def report(p, sig):
    os.kill(p.pid, getattr(signal, "SIG" + sig))
    deadline = time.time() + 3
    while time.time() < deadline:
        line = p.stdout.readline()
        if line.startswith("{"):
            return json.loads(line)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proxy", required=True, help="command template: {listen} and {backend} are host:port")
    ap.add_argument("--report-signal", default="")
    ap.add_argument("--client-bytes", type=int, default=4 << 20)
    ap.add_argument("--server-bytes", type=int, default=8 << 20)
    ap.add_argument("--stall-s", type=float, default=6)
    ap.add_argument("--idle-timeout-s", type=float, default=0)
    ap.add_argument("--push-max-mb", type=int, default=256, help="backpressure: stop pushing after this much (not stopped = failed)")
    ap.add_argument("--out", default="")
    cfg = ap.parse_args()
    backend = Backend(cfg)
    backend.start()
    cmd = cfg.proxy.format(listen=f"127.0.0.1:{LISTEN_PORT}", backend=f"127.0.0.1:{BACKEND_PORT}").split()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        deadline = time.time() + 5
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", LISTEN_PORT), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(0.3)
        r0 = report(p, cfg.report_signal) if cfg.report_signal else None
        c2s, s2c = 0, 0
        for conns, cid0 in ((1, 1000), (20, 2000)):
            a, b = t_stream(cfg, backend, conns, cid0)
            c2s, s2c = c2s + a, s2c + b
        ok = all(t_half_close_one_way(cfg, 3000 + i) for i in range(5))
        s2c += 5 * cfg.server_bytes
        c2s += 5 * 9
        check("client half-closes first, server's 8 MB still arrive whole (x5)", ok)
        if r0 is not None:
            time.sleep(1.0)
            r1 = report(p, cfg.report_signal)
            got = (r1["bytes_c2s"] - r0["bytes_c2s"], r1["bytes_s2c"] - r0["bytes_s2c"])
            fallback = r1.get("fallback_bytes", 0) - r0.get("fallback_bytes", 0)   # relayed in userspace, both ways
            check("the proxy's per-direction byte counters match what was sent (spliced + relayed in userspace)",
                  got[0] + got[1] + fallback == c2s + s2c and r1.get("count_mismatches", 0) == 0,
                  counted=got, sent=(c2s, s2c), proxy=r1)
        t_early(cfg, 300, 4000)
        t_resets(backend, 5000)
        t_backpressure(cfg)
        if cfg.idle_timeout_s > 0:
            t_idle(cfg, backend, 6000)
        if cfg.report_signal:
            check("proxy totals at the end", True, proxy=report(p, cfg.report_signal))
        errs = [v for k, v in backend.seen.items() if isinstance(k, tuple)]
        if errs:
            check("backend saw no errors", False, errors=errs[:3])
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
        backend.ls.close()
    if cfg.out:
        with open(cfg.out, "w") as f:
            for r in results:
                f.write(json.dumps(dict(r, proxy_cmd=cfg.proxy)) + "\n")
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
