#!/usr/bin/env python3
"""Side-by-side benchmark driver: ringproxy vs HAProxy 2.6 vs nginx 1.22 stream vs direct.

Usage: python3 Benchmarks/driver/sidebyside.py [--smoke] [--repeat 3] [--out Benchmarks/results/latest]

Every proxy is pinned to CPU 0 (one worker/thread/process; more only where the open-files limit
forces it, for the large idle runs), the load generator (ringbench, io_uring) and the backends
(mqttbackend, echoserver: C, epoll) to CPU 1. For every (repeat, workload, proxy) the proxy is
started fresh, the load runs bounded in time, and the proxy's CPU time (utime+stime of all its
processes and threads, /proc/PID/stat) is divided by the work done; the backend's CPU is read too,
to show it is not the bottleneck. Workloads, interleaved per repeat:
  conn       MQTT session set-up and tear-down (CONNECT/CONNACK/DISCONNECT), 32 in flight
  conn-loaded  the same while 8,000 idle MQTT connections are held through the proxy
  reconnect  all clients drop and come back at once with the same client ids (sticky table churn)
  pingpong   100 MQTT connections x 16 PUBLISH of 64 B in flight, echoed by the backend
  bulk-1/100 raw bytes streamed both ways through 1 and 100 connections
  latency    1 connection, 1 message in flight: the latency a hop adds (p50, p99)
  idle       10k, 50k, 100k MQTT connections held with keepalive pings: RSS per connection
Opt-in proxies (only when named in --proxies), issue 12's PROXY protocol cost:
  ringproxy-pp2  ringproxy with `send-proxy-v2` on every server: a generated haproxy.cfg (-f; the
                 command line has no flag for it) mirroring the `ringproxy` variant's command line
  ringproxy-file the same file without send-proxy-v2: the control for "-f vs command line"
  haproxy-pp2    `haproxy` with `send-proxy-v2` on every server
  Their MQTT backends run with --proxy-protocol (read and drop the v2 header); workloads on the
  echo or idle backends skip them. results.md then has a "PROXY protocol v2 cost" section:
  python3 Benchmarks/driver/sidebyside.py --only conn --proxies ringproxy,ringproxy-file,ringproxy-pp2,haproxy,haproxy-pp2
Opt-in proxies of issue 17 (relaying through a BPF sockmap, measured on the whole machine's CPU;
the kernel does the relaying in softirq and kworker context outside the proxy's process, so the
"machine, added over direct" column is the figure; root):
  sockmap        Benchmarks/tools/sockmapproxy.c: a sockhash with an sk_skb verdict program
                 (BPF_SK_SKB_VERDICT, no stream parser) redirecting to the peer's egress
  sockmap-strp   the same through the stream parser (BPF_SK_SKB_STREAM_PARSER + _STREAM_VERDICT)
  haproxy-splice `haproxy` plus `option splice-auto` (kernel splice(2) through pipes)
  python3 Benchmarks/driver/sidebyside.py --no-build --bin /path/ringproxy --only pingpong,bulk-1,bulk-100,latency,conn \
      --proxies direct,ringproxy,haproxy,haproxy-splice,nginx,sockmap,sockmap-strp --repeat 1
Opt-in proxies of issue 18's CONNACK-aware redispatch (the cost of holding the CONNECT until
its CONNACK, when every broker accepts):
  ringproxy-mqttcfg  ringproxy loading haproxy-mqtt's very file (the seed's MQTT rules, the stick
                     table on the client id): the control
  ringproxy-connack  the same file plus `option mqtt-connack-redispatch` in the backend
  python3 Benchmarks/driver/sidebyside.py --only conn --proxies ringproxy-sticky,ringproxy-mqttcfg,ringproxy-connack,haproxy-mqtt
With --tls, the TLS workloads of issue 11 instead (ringproxy and HAProxy load the same
haproxy.cfg, `bind ... ssl crt`; nginx `listen ... ssl`; one throwaway certificate per run, TLS 1.3,
TLS_AES_128_GCM_SHA256, X25519, all three with SSL_MODE_RELEASE_BUFFERS; load from tlsbench, C,
OpenSSL + epoll, on CPU 1 with the echo backend; its own CPU is reported):
  tls-full-ecdsa/-rsa  full handshakes (ECDSA P-256 / RSA-2048 certificate): connect, handshake,
                       one 64-byte message echoed, close_notify, close; 32 in flight, no resumption
  tls-resume           the same offering each slot's last TLS 1.3 ticket (resumed handshakes)
  tls-pingpong         100 connections x 16 MQTT-sized (64 B) messages in flight, a record each
  tls-bulk-1/100       16 KiB writes streamed both ways through 1 and 100 connections
  tls-idle             3,000 TLS connections held: RSS per connection
--smoke adds tls-full-ecdsa (1 s) to the plain smoke run; --tls --smoke runs only it (~20 s).
With --ws, the MQTT-over-WebSocket workloads of issue 14 instead (not part of the default or --smoke
runs). Backends: mqttbackend --websocket (answers the upgrade, unmasks frames, echoes PUBLISH);
load: wsbench (C, epoll, one thread: upgrade with subprotocol mqtt, masked frames, the 101's
Sec-WebSocket-Accept checked). Proxies: direct; ringproxy and HAProxy loading the same file, the
seed's mqtt-ws.cfg (mode tcp passthrough; logging off, ports rewritten); ringproxy-mqttws, the
same file plus `option mqtt-websocket path /mqtt` and a stick table on the MQTT client id (a
ringproxy extension: HAProxy has no equivalent, so it does more work than its peer); nginx stream.
  ws-conn      session: connect, upgrade, CONNECT/CONNACK, DISCONNECT, close; 32 in flight
  ws-pingpong  100 connections x 16 PUBLISH of 64 B in flight, one frame each, echoed
  ws-idle      8,000 WebSocket MQTT connections held (two halves): RSS per connection, and the
               second half's growth alone (one-off costs excluded)
--ws --smoke runs each for 1 s (idle: 300) with one repeat.
Results: results.json, results.md and PNG charts in --out.
"""
import argparse
import atexit
import datetime
import json
import math
import os
import platform
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
HZ = os.sysconf("SC_CLK_TCK")
BUILD_LOCK = "/tmp/ringproxy-build.lock"

ECHO_PORT = 29001                                  # echoserver (bulk)
MQTT_PORTS = [29011, 29012, 29013]                 # mqttbackend x 3 (conn, reconnect, pingpong, latency)
PP2_PORTS = [29021, 29022, 29023]                  # mqttbackend --proxy-protocol x 3, for MQTT_PORTS (pp2 variants)
IDLE_PORTS = list(range(29031, 29039))             # mqttbackend x 8 (idle: <= 12.5k connections each)
MOSQUITTO_PORTS = [29041, 29042, 29043]            # --mosquitto: conn against real brokers too
PROXY_PORT_BASE = 29100
CPU_PROXY, CPU_LOAD = "0", "1"                     # --unpinned: "0,1" for both (issue 17: where the kernel puts a splice's work)
PER_PROCESS_CONNS = 9000                           # proxied connections one process/worker holds (2 fds each)

# Proxies under test. kind: how to start; mqtt: whether the config requires MQTT traffic;
# pp2: send-proxy-v2 on every server (backends in --proxy-protocol mode); optin: run only when
# named in --proxies (the default run and --smoke stay as they were).
PROXIES = [
    ("direct", dict(kind="direct", mqtt=False)),
    ("ringproxy", dict(kind="ringproxy", mqtt=False, args=[])),
    ("ringproxy-sticky", dict(kind="ringproxy", mqtt=True, args=["--mqtt", "--sticky"])),
    ("haproxy", dict(kind="haproxy", mqtt=False)),
    ("haproxy-mqtt", dict(kind="haproxy", mqtt=True)),
    ("nginx", dict(kind="nginx", mqtt=False)),
    ("ringproxy-file", dict(kind="ringproxy-file", mqtt=False, optin=True)),
    ("ringproxy-pp2", dict(kind="ringproxy-file", mqtt=False, pp2=True, optin=True)),
    ("haproxy-pp2", dict(kind="haproxy", mqtt=False, pp2=True, optin=True)),
    ("ringproxy-mqttcfg", dict(kind="ringproxy-cfg", mqtt=True, optin=True)),
    ("ringproxy-connack", dict(kind="ringproxy-cfg", mqtt=True, connack=True, optin=True)),
    ("haproxy-splice", dict(kind="haproxy", mqtt=False, splice=True, optin=True)),
    ("sockmap", dict(kind="sockmap", mqtt=False, mode="verdict", optin=True)),
    ("sockmap-strp", dict(kind="sockmap", mqtt=False, mode="strp", optin=True)),
]
# The pp2 variants and what each adds the header to (issue 12: the cost of send-proxy-v2).
PP2_PAIRS = [("ringproxy-pp2", "ringproxy"), ("haproxy-pp2", "haproxy")]
PROXY_NAMES = [p for p, _ in PROXIES]
# Units for the tables: (rate unit, per-unit label).
UNITS = {
    "conn": ("sessions/s", "CPU-µs/session"),
    "conn-mosquitto": ("sessions/s", "CPU-µs/session"),
    "conn-loaded": ("sessions/s", "CPU-µs/session"),
    "reconnect": ("reconnects/s", "CPU-µs/reconnect"),
    "pingpong": ("round trips/s", "CPU-µs/round trip"),
    "bulk-1": ("MB/s", "CPU-µs/MB"),
    "bulk-100": ("MB/s", "CPU-µs/MB"),
    "latency": ("round trips/s", "p99 µs"),
    "idle": ("conns held", "RSS B/conn"),
    "tls-full-ecdsa": ("handshakes/s", "CPU-µs/handshake"),
    "tls-full-rsa": ("handshakes/s", "CPU-µs/handshake"),
    "tls-resume": ("handshakes/s", "CPU-µs/handshake"),
    "tls-pingpong": ("round trips/s", "CPU-µs/round trip"),
    "tls-bulk-1": ("MB/s", "CPU-µs/MB"),
    "tls-bulk-100": ("MB/s", "CPU-µs/MB"),
    "tls-idle": ("conns held", "RSS B/conn"),
    "ws-conn": ("sessions/s", "CPU-µs/session"),
    "ws-pingpong": ("round trips/s", "CPU-µs/round trip"),
    "ws-idle": ("conns held", "RSS B/conn"),
}
# Reference proxy for the "ratio" column of each workload: the seed's MQTT configuration of
# HAProxy wherever the traffic is MQTT, plain HAProxy for raw bytes.
REFERENCE = {"conn": "haproxy-mqtt", "conn-mosquitto": "haproxy-mqtt", "conn-loaded": "haproxy-mqtt", "reconnect": "haproxy-mqtt",
             "pingpong": "haproxy-mqtt", "latency": "haproxy-mqtt", "idle": "haproxy-mqtt",
             "bulk-1": "haproxy", "bulk-100": "haproxy"}
# TLS: the same three proxies terminating TLS in front of the echo backend (plain TCP mode, no
# MQTT check: the TLS work is what differs). ringproxy and HAProxy load the same haproxy.cfg.
TLS_PROXIES = [
    ("ringproxy-tls", dict(kind="ringproxy-cfg", mqtt=False)),
    ("haproxy-tls", dict(kind="haproxy", mqtt=False)),
    ("nginx-tls", dict(kind="nginx", mqtt=False)),
]
TLS_PROXY_NAMES = [p for p, _ in TLS_PROXIES]
TLS_SUITE, TLS_GROUP = "TLS_AES_128_GCM_SHA256", "X25519"
TLS_IDLE = 3000
for _w in UNITS:
    if _w.startswith("tls-"):
        REFERENCE[_w] = "haproxy-tls"
# WebSocket (issue 14): kind "cfg" loads ws_cfg()'s text (the seed's mqtt-ws.cfg), mqttws adds
# ringproxy's MQTT-aware WebSocket mode and a stick table on the client id.
WS_PORTS = [29051, 29052, 29053]                   # mqttbackend --websocket x 3
WS_PROXIES = [
    ("direct", dict(kind="direct", mqtt=False)),
    ("ringproxy", dict(kind="ringproxy-cfg", mqtt=False, mqttws=False)),
    ("ringproxy-mqttws", dict(kind="ringproxy-cfg", mqtt=False, mqttws=True)),
    ("haproxy", dict(kind="haproxy", mqtt=False, mqttws=False)),
    ("nginx", dict(kind="nginx", mqtt=False)),
]
WS_PROXY_NAMES = [p for p, _ in WS_PROXIES]
WS_PATH = "/mqtt"
WS_IDLE = 8000     # one process/worker holds them (2 fds each, 20,000 open files per process)
for _w in UNITS:
    if _w.startswith("ws-"):
        REFERENCE[_w] = "haproxy"

procs = []  # every Popen we started (each in its own session/process group)
scratch = None


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def die(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def start(cmd, **kw):
    kw.setdefault("stdout", subprocess.DEVNULL)
    kw.setdefault("stderr", subprocess.DEVNULL)
    p = subprocess.Popen(cmd, start_new_session=True, **kw)
    procs.append(p)
    return p


def stop(p, timeout=10):
    if p is None or p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=timeout)
    # Stragglers in the group (nginx workers): kill the group outright.
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def forget(p):
    if p in procs:
        procs.remove(p)


def cleanup():
    for p in reversed(procs):
        try:
            stop(p, timeout=5)
        except Exception:
            pass
    procs.clear()
    if scratch and os.path.isdir(scratch):
        shutil.rmtree(scratch, ignore_errors=True)


def run(cmd, timeout, **kw):
    """Run a load tool to completion with a hard timeout; returns stdout text."""
    p = start(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(p)
        raise RuntimeError(f"timeout after {timeout}s: {' '.join(cmd)}")
    finally:
        forget(p)
    if p.returncode != 0 and not out.strip():
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {err.strip()[-300:]}")
    return out


# ---------------------------------------------------------------- /proc readers

def process_tree(pid):
    """pid and all its descendants (nginx: master + workers)."""
    out, todo = [], [pid]
    while todo:
        q = todo.pop()
        out.append(q)
        try:
            with open(f"/proc/{q}/task/{q}/children") as f:
                todo += [int(x) for x in f.read().split()]
        except OSError:
            r = subprocess.run(["pgrep", "-P", str(q)], capture_output=True, text=True)
            todo += [int(x) for x in r.stdout.split()]
    return out


def cpu_seconds(pid):
    """utime+stime (all threads) summed over the process tree."""
    total = 0
    for q in process_tree(pid):
        try:
            with open(f"/proc/{q}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except (OSError, IndexError):
            pass
    return total / HZ


def rss_kb(pid):
    total = 0
    for q in process_tree(pid):
        try:
            with open(f"/proc/{q}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def wait_port(port, timeout=5.0):
    import socket
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def cpu_all(pids):
    return sum(cpu_seconds(p) for p in pids)


def rss_all(pids):
    return sum(rss_kb(p) for p in pids)


# ---------------------------------------------------------------- set-up

def check_tools(cfg):
    """HAProxy, nginx's stream module and matplotlib come from scripts/install-bench-deps.sh; as
    root the driver runs it itself when something is missing, so one command is enough."""
    need = ["gcc", "taskset", "haproxy", "nginx", "pgrep"] + (["mosquitto"] if cfg.mosquitto else [])
    stream = "/usr/lib/nginx/modules/ngx_stream_module.so"
    def missing():
        import importlib.util
        return ([t for t in need if shutil.which(t) is None] + ([] if os.path.exists(stream) else [stream])
                + ([] if importlib.util.find_spec("matplotlib") else ["matplotlib"]))
    if missing() and os.geteuid() == 0:
        log(f"missing {', '.join(missing())}: running scripts/install-bench-deps.sh")
        subprocess.run(["bash", os.path.join(REPO, "scripts", "install-bench-deps.sh")], timeout=1800)
    fatal = [m for m in missing() if m != "matplotlib"]   # without matplotlib: no charts, tables still
    if fatal:
        die(f"missing: {', '.join(fatal)} (bash scripts/install-bench-deps.sh)")


sockmap_bin = None   # built from Benchmarks/tools/sockmapproxy.c into the scratch directory


def build(skip, ws=False, binpath_given=None):
    global sockmap_bin
    src = os.path.join(REPO, "Benchmarks", "tools", "sockmapproxy.c")
    sockmap_bin = os.path.join(scratch, "rp-sockmapproxy")
    r = subprocess.run(["gcc", "-O2", "-pthread", src, "-o", sockmap_bin], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        die(f"gcc {src} failed: {r.stderr}")
    if binpath_given:
        # A release binary built elsewhere (ringbench beside it): no swift at all.
        skip = True
    if not skip:
        if shutil.which("swift") is None:
            die("swift not found")
        for product in (("ringproxy",) if ws else ("ringproxy", "ringbench")):
            log(f"swift build -c release --product {product} (under flock)")
            r = subprocess.run(["flock", BUILD_LOCK, "swift", "build", "-c", "release", "--product", product],
                               cwd=REPO, capture_output=True, text=True, timeout=3600)
            if r.returncode != 0:
                die("swift build failed:\n" + (r.stdout + r.stderr)[-3000:])
    binpath = os.path.join(REPO, ".build", "release", "ringproxy")
    if binpath_given:
        binpath = binpath_given
    elif shutil.which("swift"):
        r = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=REPO,
                           capture_output=True, text=True, timeout=120)
        if r.returncode == 0 and r.stdout.strip():
            binpath = os.path.join(r.stdout.strip(), "ringproxy")
    if not os.access(binpath, os.X_OK):
        die(f"ringproxy binary not found at {binpath}")
    tools = {}
    for t in ("echoserver", "mqttbackend"):
        src = os.path.join(REPO, "Benchmarks", "tools", f"{t}.c")
        dst = os.path.join(scratch, f"rp-{t}")
        r = subprocess.run(["gcc", "-O2", "-pthread", src, "-o", dst, "-lcrypto"], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            die(f"gcc {src} failed: {r.stderr}")
        tools[t] = dst
    src = os.path.join(REPO, "Benchmarks", "tools", "tlsbench.c")
    dst = os.path.join(scratch, "rp-tlsbench")
    r = subprocess.run(["gcc", "-O2", src, "-o", dst, "-lssl", "-lcrypto"], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        die(f"gcc {src} failed (libssl-dev?): {r.stderr}")
    tools["tlsbench"] = dst
    src = os.path.join(REPO, "Benchmarks", "tools", "wsbench.c")
    dst = os.path.join(scratch, "rp-wsbench")
    r = subprocess.run(["gcc", "-O2", src, "-o", dst, "-lcrypto"], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        die(f"gcc {src} failed (libssl-dev?): {r.stderr}")
    tools["wsbench"] = dst
    ringbench = os.path.join(os.path.dirname(binpath), "ringbench")
    if ws:
        return binpath, tools       # the WebSocket workloads need no ringbench
    if not os.access(ringbench, os.X_OK):
        die(f"ringbench not found at {ringbench}")
    tools["ringbench"] = ringbench
    return binpath, tools


backend_pids = {}   # port -> pid (CPU of the backend during a run)


def proxy_backends(spec, backends):
    """The backend ports a proxy uses in place of a workload's: the --proxy-protocol twins of
    the MQTT backends for the pp2 variants (None: the workload has none, skip it)."""
    if not spec.get("pp2"):
        return backends
    if not all(b in MQTT_PORTS for b in backends):
        return None
    return [PP2_PORTS[MQTT_PORTS.index(b)] for b in backends]


def start_backends(cfg, tools, pp2=False):
    ports = {ECHO_PORT: [tools["echoserver"], str(ECHO_PORT)]}
    for port in MQTT_PORTS + IDLE_PORTS:
        ports[port] = [tools["mqttbackend"], str(port)]
    if cfg.ws:
        ports = {port: [tools["mqttbackend"], str(port), "1", "--websocket"] for port in WS_PORTS}
    if pp2:
        for port in PP2_PORTS:
            ports[port] = [tools["mqttbackend"], str(port), "--proxy-protocol"]
    for port, cmd in ports.items():
        backend_pids[port] = start(["taskset", "-c", CPU_LOAD] + cmd).pid
    if cfg.mosquitto:
        for port in MOSQUITTO_PORTS:
            conf = os.path.join(scratch, f"mosquitto-{port}.conf")
            with open(conf, "w") as f:
                f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_connections -1\nlog_type none\n")
            os.chmod(conf, 0o644)
            backend_pids[port] = start(["taskset", "-c", CPU_LOAD, "mosquitto", "-c", conf]).pid
    for port in backend_pids:
        if not wait_port(port):
            die(f"backend on port {port} did not come up")


def haproxy_cfg(mqtt, port, backends, maxconn, crt=None, send_proxy_v2=False, connack=False, splice=False):
    """The seed's MQTT configuration (mqtt_is_valid + stick table on the client id), or plain
    round robin; one thread. With crt: TLS termination on the bind line (TLS 1.3 only, one
    suite, one group), the file ringproxy loads too. send_proxy_v2: on every server line.
    connack: ringproxy's `option mqtt-connack-redispatch` in the backend (HAProxy refuses it)."""
    lines = ["global", "  nbthread 1", f"  maxconn {maxconn}",
             "defaults", "  mode tcp", "  timeout connect 5s", "  timeout client 60s", "  timeout server 60s"]
    if splice:
        lines += ["  option splice-auto"]
    lines += ["backend b", "  balance roundrobin"]
    if connack:
        lines += ["  option mqtt-connack-redispatch"]
    if mqtt:
        lines += ["  stick-table type string len 32 size 100k expire 30m",
                  "  stick on req.payload(0,0),mqtt_field_value(connect,client_identifier)"]
    lines += [f"  server s{i} 127.0.0.1:{b}{' send-proxy-v2' if send_proxy_v2 else ''}" for i, b in enumerate(backends)]
    ssl = (f" ssl crt {crt} ssl-min-ver TLSv1.3 ciphersuites {TLS_SUITE} curves {TLS_GROUP}" if crt else "")
    lines += ["frontend f", f"  bind 127.0.0.1:{port}{ssl}", "  default_backend b"]
    if mqtt:
        lines += ["  tcp-request inspect-delay 5s",
                  "  tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }"]
    return "\n".join(lines) + "\n"


def ws_cfg(mqttws, port, backends, maxconn):
    """The seed's mqtt-ws.cfg (Tests/.../seed/mqtt-ws.cfg): mode tcp, round robin over three
    WebSocket brokers with `check`, its timeouts; here with one thread, no logging (no proxy
    logs in these runs) and the benchmark's ports. mqttws: plus ringproxy's extension, `option
    mqtt-websocket path /mqtt` and a stick table on the MQTT client id, as on 1883."""
    lines = ["global", "  nbthread 1", f"  maxconn {maxconn}",
             "defaults", "  mode tcp", "  timeout connect 10000", "  timeout client 240s", "  timeout server 240s",
             f"  maxconn {maxconn}",
             "backend mqtt_ws_backend", "  mode tcp", "  balance roundrobin"]
    if mqttws:
        lines += ["  tcp-request inspect-delay 5s", "  stick-table type string len 32 size 100k expire 30m",
                  "  stick on req.payload(0,0),mqtt_field_value(connect,client_identifier)"]
    lines += [f"  server emqx{i + 1} 127.0.0.1:{b} check" for i, b in enumerate(backends)]
    lines += ["frontend mqtt_ws_frontend", f"  bind 127.0.0.1:{port}", "  mode tcp", "  default_backend mqtt_ws_backend"]
    if mqttws:
        lines += ["  tcp-request inspect-delay 5s", f"  option mqtt-websocket path {WS_PATH}"]
    return "\n".join(lines) + "\n"


def ringproxy_quick_cfg(port, backends, cores, maxconn, send_proxy_v2):
    """What `ringproxy --listen 127.0.0.1:PORT --backend ... --cores N --log none --maxconn M`
    configures (the `ringproxy` variant), as a haproxy.cfg, for what only a file can say
    (send-proxy-v2). The command line's defaults written out: balance roundrobin, weight 1,
    timeout connect 5 s, client and server 240 s, retries 3; no log line = no connection log;
    buffers, pinning and the drain grace are not in the file and keep the same engine defaults."""
    pp = " send-proxy-v2" if send_proxy_v2 else ""
    lines = ["global", f"  nbthread {cores}", f"  maxconn {maxconn}",
             "defaults", "  mode tcp", "  timeout connect 5000ms", "  timeout client 240000ms",
             "  timeout server 240000ms", "  retries 3",
             "backend servers", "  balance roundrobin"]
    lines += [f"  server srv{i + 1} 127.0.0.1:{b} weight 1{pp}" for i, b in enumerate(backends)]
    lines += ["frontend quick", f"  bind 127.0.0.1:{port}", "  default_backend servers"]
    return "\n".join(lines) + "\n"


def nginx_cfg(port, backends, workers, per_worker, crt=None):
    servers = "".join(f"    server 127.0.0.1:{b};\n" for b in backends)
    ssl = ""
    if crt:
        ssl = (f" ssl; ssl_certificate {crt}; ssl_certificate_key {crt}; ssl_protocols TLSv1.3;"
               f" ssl_conf_command Ciphersuites {TLS_SUITE}; ssl_ecdh_curve {TLS_GROUP}; ssl_session_tickets on")
    return (f"load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n"
            f"worker_processes {workers};\nworker_rlimit_nofile {min(19_990, per_worker * 2 + 200)};\n"
            f"pid {scratch}/nginx.pid;\nerror_log {scratch}/nginx-error.log;\n"
            f"events {{ worker_connections {min(19_900, per_worker * 2 + 100)}; }}\n"
            f"stream {{\n  upstream b {{\n{servers}  }}\n"
            f"  server {{ listen 127.0.0.1:{port}{' reuseport' if workers > 1 else ''}{' ssl' if crt else ''};"
            f"{ssl.replace(' ssl;', '', 1)}{';' if crt else ''} proxy_pass b; }}\n}}\n")


def start_proxy(name, spec, binpath, port, backends, conns, crt=None):
    """Starts the proxy on CPU 0 sized for `conns` connections. With more than one process's
    worth (the open-files limit is 20,000 per process, and per io_uring fixed-file table),
    ringproxy runs more workers, HAProxy more processes sharing the port (SO_REUSEPORT) and
    nginx more worker processes, all on CPU 0. Returns (list of Popen, listen port)."""
    kind = spec["kind"]
    if kind == "direct":
        return [], backends[0]
    instances = max(1, math.ceil(conns / PER_PROCESS_CONNS))
    per = min(9_950, conns + 500) if instances > 1 else conns + 500
    started = []
    if kind == "ringproxy":
        cmd = ["taskset", "-c", CPU_PROXY, binpath, "--listen", f"127.0.0.1:{port}"]
        for b in backends:
            cmd += ["--backend", f"127.0.0.1:{b}"]
        cmd += ["--cores", str(instances), "--log", "none", "--maxconn", str(conns + 1000)] + spec["args"]
        cmds = [cmd]
    elif kind == "ringproxy-cfg":
        # TLS has no command-line flags: ringproxy reads the very file HAProxy gets.
        cfg = os.path.join(scratch, f"{name}.cfg")
        with open(cfg, "w") as f:
            f.write(ws_cfg(spec["mqttws"], port, backends, conns + 1000) if "mqttws" in spec
                    else haproxy_cfg(spec["mqtt"], port, backends, conns + 1000, crt, connack=spec.get("connack", False)))
        cmds = [["taskset", "-c", CPU_PROXY, binpath, "-f", cfg]]
    elif kind == "ringproxy-file":
        # The `ringproxy` variant's command line as a file (send-proxy-v2 needs one).
        cfg = os.path.join(scratch, f"{name}.cfg")
        with open(cfg, "w") as f:
            f.write(ringproxy_quick_cfg(port, backends, instances, conns + 1000, spec.get("pp2", False)))
        cmds = [["taskset", "-c", CPU_PROXY, binpath, "-f", cfg]]
    elif kind == "haproxy":
        cfg = os.path.join(scratch, f"{name}.cfg")
        with open(cfg, "w") as f:
            f.write(ws_cfg(spec["mqttws"], port, backends, per) if "mqttws" in spec
                    else haproxy_cfg(spec["mqtt"], port, backends, per, crt, spec.get("pp2", False),
                                     splice=spec.get("splice", False)))
        cmds = [["taskset", "-c", CPU_PROXY, "haproxy", "-f", cfg, "-db"] for _ in range(instances)]
    elif kind == "sockmap":
        # One process, one thread: accepts, connects, splices; its CPU is the process's, the
        # relaying (verdict in softirq, the peer's backlog in a kworker) is the machine's.
        cmd = ["taskset", "-c", CPU_PROXY, sockmap_bin, "--listen", f"127.0.0.1:{port}", "--mode", spec["mode"],
               "--maxconn", str(conns + 1000)]
        for b in backends:
            cmd += ["--backend", f"127.0.0.1:{b}"]
        cmds = [cmd]
    elif kind == "nginx":
        cfg = os.path.join(scratch, "nginx.conf")
        with open(cfg, "w") as f:
            f.write(nginx_cfg(port, backends, instances, min(conns + 500, 9_950), crt))
        cmds = [["taskset", "-c", CPU_PROXY, "nginx", "-c", cfg, "-p", scratch, "-g", "daemon off;"]]
    else:
        raise ValueError(kind)
    for cmd in cmds:
        errlog = open(os.path.join(scratch, f"{name}.stderr"), "a")
        started.append(start(cmd, stderr=errlog))
        errlog.close()
    if not wait_port(port):
        for p in started:
            stop(p)
            forget(p)
        raise RuntimeError(f"{name} did not listen on {port}; see {name}.stderr")
    time.sleep(0.3 if instances == 1 else 1.0)
    return started, port


# ---------------------------------------------------------------- workloads

def ringbench(cfg, tools, workload, port, args, seconds=None):
    seconds = cfg.seconds if seconds is None else seconds
    out = run(["taskset", "-c", CPU_LOAD, tools["ringbench"], workload, "--target", f"127.0.0.1:{port}",
               "--seconds", str(seconds)] + args, timeout=seconds + 60)
    return json.loads(out.strip().splitlines()[-1])


def machine_busy():
    """CPU seconds the whole machine spent busy (all CPUs, /proc/stat): catches work a proxy
    would leave to softirqs or kernel threads outside its own processes."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / HZ


last_machine = {}   # the machine CPU of the last measured() run, for per-unit figures


def measured(cfg, pids, backend_ports, body):
    """Runs body(); returns (its JSON, proxy CPU seconds, backend CPU share of the run)."""
    bpids = [backend_pids[p] for p in backend_ports]
    # The load generator is the only child reaped during body(): its CPU is the children's delta.
    children = lambda: (lambda u: u.ru_utime + u.ru_stime)(resource.getrusage(resource.RUSAGE_CHILDREN))
    c0, b0, m0, t0, g0 = cpu_all(pids), cpu_all(bpids), machine_busy(), time.time(), children()
    j = body()
    c1, b1, m1, t1, g1 = cpu_all(pids), cpu_all(bpids), machine_busy(), time.time(), children()
    last_machine["cpu"] = m1 - m0
    last_machine["backend_cpu"] = b1 - b0
    # CPU (of 2) charged to none of proxy, backend, load generator: a shared machine's others.
    last_machine["other_busy"] = max(0.0, (m1 - m0) - (c1 - c0) - (b1 - b0) - (g1 - g0)) / max(1e-9, t1 - t0)
    return j, (c1 - c0 if pids else None), (b1 - b0) / max(1e-9, t1 - t0)


def per_unit(cpu, work):
    return cpu * 1e6 / work if cpu is not None and work > 0 else None


def with_machine(res):
    """Adds the whole machine's CPU per unit (proxy, load generator and backends together)."""
    res["machine_per_unit"] = per_unit(last_machine.get("cpu"), res["work"])
    res["backend_per_unit"] = per_unit(last_machine.get("backend_cpu"), res["work"])
    res["other_busy"] = last_machine.get("other_busy")   # tls_result computes its own
    return res


def w_sessions(workload, args):
    """conn (session churn) and reconnect (storms): CPU per completed session."""
    def f(cfg, tools, port, pids, backends):
        j, cpu, busy = measured(cfg, pids, backends, lambda: ringbench(cfg, tools, workload, port, args(cfg)))
        if j["operations"] == 0:
            raise RuntimeError(f"no session completed ({j['failed']} failed)")
        return with_machine(dict(raw=j, rate=j["per_second"], cpu_s=cpu, work=j["operations"], backend_busy=busy,
                                 per_unit=per_unit(cpu, j["operations"]), failed=j["failed"], p50=j["p50_us"],
                                 p99=j["p99_us"]))
    return f


w_conn = w_sessions("conn", lambda cfg: ["--connections", "32", "--ids", "10000"])
LOADED_IDLE = 8000   # idle connections held during conn-loaded (one process/worker can hold them)


def wait_ready(p, seconds):
    """The "ready" JSON line of a running `ringbench idle` (all connections open), or None."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 0.5)
        if r:
            line = p.stdout.readline()
            if not line:
                return None
            j = json.loads(line)
            if j.get("phase") == "ready":
                return j
    return None


def w_conn_loaded(cfg, tools, port, pids, backends):
    """conn while idle MQTT connections are held open through the same proxy: an edge's
    normal state, and where per-connection costs that grow with the table would show."""
    n = 300 if cfg.smoke else LOADED_IDLE
    p = start(["taskset", "-c", CPU_LOAD, tools["ringbench"], "idle", "--target", f"127.0.0.1:{port}",
               "--connections", str(n), "--sources", "127.0.0.1-127.0.0.60", "--seconds", str(cfg.seconds + 60)],
              stdout=subprocess.PIPE, text=True)
    try:
        ready = wait_ready(p, 60)
        if ready is None or ready["connections"] < n:
            raise RuntimeError(f"could not hold {n} idle connections ({ready})")
        res = w_conn(cfg, tools, port, pids, backends)
        res["raw"]["idle_held"] = ready["connections"]
        return res
    finally:
        stop(p)
        forget(p)
w_reconnect = w_sessions("reconnect", lambda cfg: ["--connections", "200" if cfg.smoke else "2000"])


def w_pingpong(cfg, tools, port, pids, backends):
    j, cpu, busy = measured(cfg, pids, backends, lambda: ringbench(
        cfg, tools, "pingpong", port, ["--mqtt", "--connections", "100", "--window", "16", "--size", "64"]))
    if j.get("failed"):
        raise RuntimeError(f"ringbench reported {j['failed']} failed connection(s)")
    return with_machine(dict(raw=j, rate=j["per_second"], cpu_s=cpu, work=j["operations"], backend_busy=busy,
                             per_unit=per_unit(cpu, j["operations"])))


def w_latency(cfg, tools, port, pids, backends):
    """One connection, one 64-byte message in flight: the latency a hop adds."""
    j, cpu, busy = measured(cfg, pids, backends, lambda: ringbench(
        cfg, tools, "pingpong", port, ["--mqtt", "--connections", "1", "--window", "1", "--size", "64"]))
    if j.get("failed"):
        raise RuntimeError(f"ringbench reported {j['failed']} failed connection(s)")
    return dict(raw=j, rate=j["per_second"], cpu_s=cpu, work=j["operations"], per_unit=j["p99_us"],
                p50=j["p50_us"], p99=j["p99_us"], backend_busy=busy)


def w_bulk(streams):
    def f(cfg, tools, port, pids, backends):
        j, cpu, busy = measured(cfg, pids, backends, lambda: ringbench(
            cfg, tools, "bulk", port, ["--connections", str(streams)]))
        if j.get("failed"):
            raise RuntimeError(f"ringbench reported {j['failed']} failed connection(s)")
        mb = 2 * j["bytes"] / 1e6   # echoed: every byte crossed the proxy once each way
        return with_machine(dict(raw=j, rate=mb / max(1e-9, j["seconds"]), cpu_s=cpu, work=mb,
                                 backend_busy=busy, per_unit=per_unit(cpu, mb)))
    return f


def w_idle(cfg, tools, port, pids, backends, n):
    """Opens n MQTT connections (CONNECT/CONNACK each), holds them with keepalive pings, and
    reads the proxy's RSS after a round of pings."""
    if not pids:
        return None
    time.sleep(0.3)
    before = rss_all(pids)
    c0 = cpu_all(pids)
    keepalive = 1 if cfg.smoke else 2
    hold = keepalive + 3
    threads = max(1, math.ceil(n / 19_000))
    errpath = os.path.join(scratch, "ringbench-idle.stderr")
    with open(errpath, "w") as errf:
        p = start(["taskset", "-c", CPU_LOAD, tools["ringbench"], "idle", "--target", f"127.0.0.1:{port}",
                   "--connections", str(n), "--threads", str(threads), "--sources", "127.0.0.1-127.0.0.60",
                   "--seconds", str(hold), "--keepalive", str(keepalive)],
                  stdout=subprocess.PIPE, stderr=errf, text=True)
    try:
        ready = wait_ready(p, 120 + n / 1000)
        if ready is None:
            raise RuntimeError("ringbench idle did not report its connections open")
        time.sleep(keepalive + 1)          # at least one round of PINGREQ/PINGRESP
        after = rss_all(pids)
        cpu = cpu_all(pids) - c0
        out, _ = p.communicate(timeout=hold + 60)
        final = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    finally:
        stop(p)
        forget(p)
    held = ready["connections"]
    with open(errpath) as f:
        err = f.read().strip()[-200:]
    res = dict(raw=dict(ready=ready, final=final, requested=n, instances=len(pids) if len(pids) > 1 else None,
                        rss_before_kb=before, rss_after_kb=after),
               rate=held, cpu_s=cpu, work=held, per_unit=(after - before) * 1024 / max(1, held),
               open_per_second=ready.get("open_per_second"))
    if held < n or final.get("failed"):
        res["warning"] = (f"held {held} of {n} connections, {final.get('failed', '?')} failed during the hold "
                          f"({err or 'no message'})")
    return res


# (name, function, backend ports, run MQTT-validating configs)
WORKLOADS = [
    ("conn", w_conn, MQTT_PORTS, True),
    ("conn-loaded", w_conn_loaded, MQTT_PORTS, True),
    ("reconnect", w_reconnect, MQTT_PORTS, True),
    ("pingpong", w_pingpong, MQTT_PORTS[:1], True),
    ("bulk-1", w_bulk(1), [ECHO_PORT], False),
    ("bulk-100", w_bulk(100), [ECHO_PORT], False),
    ("latency", w_latency, MQTT_PORTS[:1], True),
]


# ---------------------------------------------------------------- TLS workloads (issue 11)

def make_certificates():
    """Throwaway self-signed certificates, certificate and key in one file (HAProxy's `crt`,
    nginx takes the same file for both)."""
    certs = {}
    for name, key in (("ecdsa", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]),
                      ("rsa", ["-newkey", "rsa:2048"])):
        k, c, pem = (os.path.join(scratch, f"{name}.{x}") for x in ("key", "crt", "pem"))
        subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "30", "-subj", "/CN=localhost",
                        "-keyout", k, "-out", c] + key, check=True, capture_output=True, timeout=60)
        with open(pem, "w") as f:
            f.write(open(c).read() + open(k).read())
        os.chmod(pem, 0o644)
        certs[name] = pem
    return certs


def tlsbench(tools, mode, port, args, seconds):
    out = run(["taskset", "-c", CPU_LOAD, tools["tlsbench"], mode, "127.0.0.1", str(port), "--seconds", str(seconds),
               "--ciphersuites", TLS_SUITE, "--groups", TLS_GROUP] + args, timeout=seconds + 60)
    return json.loads(out.strip().splitlines()[-1])


def tls_result(j, cpu, busy, work, rate):
    """Per-unit figures of a TLS run, with the load generator's own CPU share."""
    res = with_machine(dict(raw=j, rate=rate, cpu_s=cpu, work=work, backend_busy=busy,
                            per_unit=per_unit(cpu, work), client_busy=j["client_busy"],
                            client_per_unit=per_unit(j["client_cpu_s"], work)))
    # The machine is shared: CPU that neither the proxy, the client nor the backend used.
    secs = max(1e-9, j["seconds"])
    res["other_busy"] = max(0.0, (last_machine["cpu"] - (cpu or 0) - j["client_cpu_s"] - busy * secs) / secs)
    if j.get("failed"):
        res["failed"] = j["failed"]
        if j["failed"] > 0.01 * max(1, j["operations"]):
            res["warning"] = f"{j['failed']} failed ({j.get('last_error')})"
    return res


def w_tls_handshakes(cert, resume):
    def f(cfg, tools, port, pids, backends):
        args = ["--connections", "32", "--size", "64"] + (["--resume"] if resume else [])
        j, cpu, busy = measured(cfg, pids, backends, lambda: tlsbench(tools, "handshake", port, args, cfg.seconds))
        if j["operations"] == 0:
            raise RuntimeError(f"no handshake completed ({j['failed']} failed: {j.get('last_error')})")
        res = tls_result(j, cpu, busy, j["operations"], j["per_second"])
        res.update(p50=j["p50_us"], p99=j["p99_us"], resumed_share=j["resumed"] / max(1, j["handshakes"]),
                   tickets_per_handshake=j["tickets"] / max(1, j["handshakes"]))
        if resume and res["resumed_share"] < 0.9:
            res["warning"] = f"only {100 * res['resumed_share']:.0f} % of the handshakes resumed"
        return res
    f.cert = cert
    return f


def w_tls_pingpong(cfg, tools, port, pids, backends):
    j, cpu, busy = measured(cfg, pids, backends, lambda: tlsbench(
        tools, "pingpong", port, ["--connections", "100", "--window", "16", "--size", "64"], cfg.seconds))
    if j["operations"] == 0:
        raise RuntimeError(f"no round trip ({j['failed']} failed: {j.get('last_error')})")
    return tls_result(j, cpu, busy, j["operations"], j["per_second"])
w_tls_pingpong.cert = "ecdsa"


def w_tls_bulk(streams):
    def f(cfg, tools, port, pids, backends):
        j, cpu, busy = measured(cfg, pids, backends, lambda: tlsbench(
            tools, "bulk", port, ["--connections", str(streams), "--chunk", "16384"], cfg.seconds))
        mb = 2 * j["bytes"] / 1e6   # echoed: every byte crossed the proxy once each way
        if mb == 0:
            raise RuntimeError(f"no bytes echoed ({j['failed']} failed: {j.get('last_error')})")
        return tls_result(j, cpu, busy, mb, mb / max(1e-9, j["seconds"]))
    f.cert = "ecdsa"
    return f


def w_tls_idle(cfg, tools, port, pids, backends):
    """n TLS connections (handshake and one message echoed each) held idle: the proxy's RSS
    after minus before, per connection."""
    n = 300 if cfg.smoke else TLS_IDLE
    time.sleep(0.3)
    before = rss_all(pids)
    c0 = cpu_all(pids)
    p = start(["taskset", "-c", CPU_LOAD, tools["tlsbench"], "idle", "127.0.0.1", str(port), "--connections", str(n),
               "--seconds", "4", "--ciphersuites", TLS_SUITE, "--groups", TLS_GROUP],
              stdout=subprocess.PIPE, text=True)
    try:
        ready = wait_ready(p, 120)
        if ready is None:
            raise RuntimeError("tlsbench idle did not report its connections open")
        time.sleep(2)
        after = rss_all(pids)
        cpu = cpu_all(pids) - c0
        out, _ = p.communicate(timeout=70)
        final = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    finally:
        stop(p)
        forget(p)
    held = ready["connections"]
    res = dict(raw=dict(ready=ready, final=final, requested=n, rss_before_kb=before, rss_after_kb=after),
               rate=held, cpu_s=cpu, work=held, per_unit=(after - before) * 1024 / max(1, held))
    if held < n or final.get("failed"):
        res["warning"] = f"held {held} of {n}, {final.get('failed', '?')} failed ({final.get('last_error')})"
    return res
w_tls_idle.cert = "ecdsa"


# (name, function, backend ports); each function names its certificate (f.cert)
TLS_WORKLOADS = [
    ("tls-full-ecdsa", w_tls_handshakes("ecdsa", False), [ECHO_PORT]),
    ("tls-full-rsa", w_tls_handshakes("rsa", False), [ECHO_PORT]),
    ("tls-resume", w_tls_handshakes("ecdsa", True), [ECHO_PORT]),
    ("tls-pingpong", w_tls_pingpong, [ECHO_PORT]),
    ("tls-bulk-1", w_tls_bulk(1), [ECHO_PORT]),
    ("tls-bulk-100", w_tls_bulk(100), [ECHO_PORT]),
    ("tls-idle", w_tls_idle, [ECHO_PORT]),
]
TLS_SMOKE = ["tls-full-ecdsa"]


# ---------------------------------------------------------------- WebSocket workloads (issue 14)

def wsbench(tools, mode, port, args, seconds):
    out = run(["taskset", "-c", CPU_LOAD, tools["wsbench"], mode, "127.0.0.1", str(port), "--seconds", str(seconds),
               "--path", WS_PATH] + args, timeout=seconds + 60)
    return json.loads(out.strip().splitlines()[-1])


def w_ws_conn(cfg, tools, port, pids, backends):
    j, cpu, busy = measured(cfg, pids, backends, lambda: wsbench(
        tools, "session", port, ["--connections", "32", "--ids", "10000"], cfg.seconds))
    if j["operations"] == 0:
        raise RuntimeError(f"no session completed ({j['failed']} failed: {j.get('last_error')})")
    res = tls_result(j, cpu, busy, j["operations"], j["per_second"])
    res.update(p50=j["p50_us"], p99=j["p99_us"])
    return res


def w_ws_pingpong(cfg, tools, port, pids, backends):
    j, cpu, busy = measured(cfg, pids, backends, lambda: wsbench(
        tools, "pingpong", port, ["--connections", "100", "--window", "16", "--size", "64"], cfg.seconds))
    if j["operations"] == 0 or j["failed"]:
        raise RuntimeError(f"{j['operations']} round trips, {j['failed']} failed: {j.get('last_error')}")
    return tls_result(j, cpu, busy, j["operations"], j["per_second"])


def w_ws_idle(cfg, tools, port, pids, backends):
    """n WebSocket MQTT connections (upgrade, CONNECT/CONNACK each) held idle, opened in two
    halves by two wsbench processes (distinct client ids): per_unit is the proxy's RSS after
    minus before, per connection (one-off costs such as buffers first touched included, as in
    the plain idle runs); marginal_per_conn is the second half's growth alone, which leaves
    them out."""
    if not pids:
        return None
    n = 300 if cfg.smoke else WS_IDLE
    half = n // 2
    time.sleep(0.3)
    rss = [rss_all(pids)]
    c0 = cpu_all(pids)
    holders, readies, finals = [], [], []
    try:
        for k in range(2):
            p = start(["taskset", "-c", CPU_LOAD, tools["wsbench"], "idle", "127.0.0.1", str(port), "--connections", str(half),
                       "--seconds", str(8 - 4 * k), "--path", WS_PATH, "--ids", str(half), "--id-base", str(k * half)],
                      stdout=subprocess.PIPE, text=True)
            holders.append(p)
            ready = wait_ready(p, 120)
            if ready is None:
                raise RuntimeError("wsbench idle did not report its connections open")
            readies.append(ready)
            time.sleep(2)
            rss.append(rss_all(pids))
        cpu = cpu_all(pids) - c0
        for p in holders:
            out, _ = p.communicate(timeout=70)
            finals.append(json.loads(out.strip().splitlines()[-1]) if out.strip() else {})
    finally:
        for p in holders:
            stop(p)
            forget(p)
    held = sum(r["connections"] for r in readies)
    res = dict(raw=dict(ready=readies, final=finals, requested=n, rss_kb=rss, rss_before_kb=rss[0], rss_after_kb=rss[2]),
               rate=held, cpu_s=cpu, work=held, per_unit=(rss[2] - rss[0]) * 1024 / max(1, held),
               marginal_per_conn=(rss[2] - rss[1]) * 1024 / max(1, readies[1]["connections"]),
               rss_start_mb=rss[0] / 1024, rss_held_mb=rss[2] / 1024)
    still = sum(f.get("held", 0) for f in finals)
    if held < 2 * half or still < held or any(f.get("failed") for f in finals):
        res["warning"] = (f"held {held} of {2 * half} ({still} at the end), "
                          f"{sum(f.get('failed', 0) for f in finals)} failed ({[f.get('last_error') for f in finals]})")
    return res


# (name, function, backend ports)
WS_WORKLOADS = [
    ("ws-conn", w_ws_conn, WS_PORTS),
    ("ws-pingpong", w_ws_pingpong, WS_PORTS[:1]),
    ("ws-idle", w_ws_idle, WS_PORTS),
]


# ---------------------------------------------------------------- report

def loadavg():
    """The 1/5/15-minute load averages: a shared machine's other work shows here."""
    try:
        with open("/proc/loadavg") as f:
            return " / ".join(f.read().split()[:3])
    except OSError:
        return ""


def machine():
    def sh(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=REPO).stdout.strip()
        except Exception:
            return ""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    dirty = sh(["git", "status", "--porcelain", "--untracked-files=no"])
    return dict(kernel=platform.release(), cpu=model, nproc=os.cpu_count(),
                date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                git_rev=sh(["git", "rev-parse", "HEAD"]) + ("-dirty" if dirty else ""),
                haproxy=sh(["haproxy", "-v"]).splitlines()[0] if sh(["haproxy", "-v"]) else "",
                nginx=subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip())


def summarize(runs):
    """{workload: {proxy: {rate|per_unit|p50|p99|backend_busy: (med, lo, hi)}}}"""
    keys = ("rate", "per_unit", "p50", "p99", "backend_busy", "machine_per_unit", "client_busy", "client_per_unit",
            "tickets_per_handshake", "resumed_share", "other_busy", "marginal_per_conn", "rss_start_mb", "rss_held_mb",
            "backend_per_unit")
    out = {}
    for r in runs:
        if r.get("error") or r.get("result") is None:
            continue
        d = out.setdefault(r["workload"], {}).setdefault(r["proxy"], {k: [] for k in keys})
        for k in keys:
            if r["result"].get(k) is not None:
                d[k].append(r["result"][k])
    for w in out.values():
        for p, d in w.items():
            for k in keys:
                v = d[k]
                d[k] = (statistics.median(v), min(v), max(v)) if v else None
    return out


def unit(w):
    return UNITS["idle" if w.startswith("idle") else w]


def fmt(t, digits=1):
    if t is None:
        return "–"
    med, lo, hi = t
    f = lambda x: f"{x:,.{digits}f}"
    return f"{f(med)} ({f(lo)}–{f(hi)})" if f(lo) != f(hi) else f(med)


def ratio(summary, w, a, b, invert=False):
    try:
        x, y = summary[w][a]["per_unit"][0], summary[w][b]["per_unit"][0]
        return (y / x) if invert else (x / y)
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def machine_added_ratio(summary, w, a, b, invert=False):
    """Whole-machine CPU per unit added over the direct run: proxy a ÷ proxy b."""
    try:
        base = summary[w]["direct"]["machine_per_unit"][0]
        x = summary[w][a]["machine_per_unit"][0] - base
        y = summary[w][b]["machine_per_unit"][0] - base
        return (y / x) if invert else (x / y)
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def added_latency(summary, proxy, q):
    lat = summary.get("latency", {})
    try:
        return lat[proxy][q][0] - lat["direct"][q][0]
    except (KeyError, TypeError):
        return None


def targets(summary, idle_sizes, loaded):
    """The issue's targets: (label, measured text, target text, met)."""
    rows = []
    def add(label, value, target, ok, digits=2, suffix="x"):
        rows.append((label, "–" if value is None else f"{value:,.{digits}f}{suffix}", target,
                     "–" if value is None else ("yes" if ok(value) else "no")))
    add("CPU per forwarded small message (pingpong): ringproxy-sticky ÷ haproxy-mqtt",
        ratio(summary, "pingpong", "ringproxy-sticky", "haproxy-mqtt"), "≤ 0.5x", lambda v: v <= 0.5)
    add("  same, whole machine's CPU added over direct",
        machine_added_ratio(summary, "pingpong", "ringproxy-sticky", "haproxy-mqtt"), "≤ 0.5x", lambda v: v <= 0.5)
    add("CPU per new MQTT connection, sticky (conn): ringproxy-sticky ÷ haproxy-mqtt",
        ratio(summary, "conn", "ringproxy-sticky", "haproxy-mqtt"), "≤ 0.5x", lambda v: v <= 0.5)
    add("  same, whole machine's CPU added over direct",
        machine_added_ratio(summary, "conn", "ringproxy-sticky", "haproxy-mqtt"), "≤ 0.5x", lambda v: v <= 0.5)
    add(f"CPU per new MQTT connection while {loaded:,} idle ones are held (conn-loaded)",
        ratio(summary, "conn-loaded", "ringproxy-sticky", "haproxy-mqtt"), "≤ 0.5x", lambda v: v <= 0.5)
    add("CPU per reconnection in a storm (reconnect): ringproxy-sticky ÷ haproxy-mqtt",
        ratio(summary, "reconnect", "ringproxy-sticky", "haproxy-mqtt"), "≤ 0.5x", lambda v: v <= 0.5)
    for n in idle_sizes:
        try:
            v = summary[f"idle-{n}"]["ringproxy-sticky"]["per_unit"][0]
        except (KeyError, TypeError):
            v = None
        add(f"RSS per idle connection at {n:,}: ringproxy-sticky (bytes)", v, "≤ 1,024 B", lambda v: v <= 1024,
            digits=0, suffix=" B")
    a, b = added_latency(summary, "ringproxy-sticky", "p99"), added_latency(summary, "haproxy-mqtt", "p99")
    add("Added p99 latency (1 connection x 1 message): ringproxy-sticky minus haproxy-mqtt (µs)",
        None if a is None or b is None else a - b, "≤ 0 µs", lambda v: v <= 0, digits=1, suffix=" µs")
    for w, label in (("bulk-1", "1 connection"), ("bulk-100", "100 connections")):
        add(f"MB per CPU-second, bulk over {label}: ringproxy ÷ haproxy",
            ratio(summary, w, "ringproxy", "haproxy", invert=True), "≥ 1.5x", lambda v: v >= 1.5)
        add("  same, whole machine's CPU added over direct",
            machine_added_ratio(summary, w, "ringproxy", "haproxy", invert=True), "≥ 1.5x", lambda v: v >= 1.5)
    return rows


def write_report(out, cfg, runs, mach, elapsed):
    summary = summarize(runs)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(dict(machine=mach, args=vars(cfg), elapsed_s=round(elapsed, 1), runs=runs,
                       summary=summary), f, indent=2)
    md = [f"# ringproxy side by side ({'smoke' if cfg.smoke else 'full'}, repeat {cfg.repeat}, "
          f"{cfg.seconds:g} s runs)", "",
          "Each proxy pinned to CPU 0 with one worker/thread/process (the idle runs use more where the "
          f"open-files limit demands it: one per {PER_PROCESS_CONNS:,} connections, all on CPU 0); load "
          "generator (ringbench) and backends on CPU 1. CPU = utime+stime of all the proxy's processes and "
          "threads. Values: median (min–max) over repeats. Ratio = the proxy's figure ÷ the reference's "
          "(CPU per unit: lower is better). \"backend busy\" = the backend's CPU share during the run "
          "(below 100 %: the backend did not limit it).", ""]
    idle_names = [f"idle-{n}" for n in cfg.idle_sizes]
    for w in [x[0] for x in WORKLOADS] + ["conn-mosquitto"] + idle_names:
        if w not in summary:
            continue
        rate_u, unit_label = unit(w)
        ref = REFERENCE["idle" if w.startswith("idle") else w]
        title = w if not w.startswith("idle") else f"idle, {int(w.split('-')[1]):,} connections"
        lat_cols = w in ("conn", "conn-loaded", "reconnect", "conn-mosquitto")
        mach_cols = not w.startswith("idle") and w != "latency"
        extra = (" machine CPU-µs/unit | machine, added over direct |" if mach_cols else "") + \
                (" p50 µs | p99 µs |" if lat_cols else "")
        md += [f"## {title}", "", f"| proxy | {rate_u} | {unit_label} | ratio to {ref} | backend busy |{extra}",
               "|---|---|---|---|---|" + "---|" * extra.count("|")]
        direct_machine = (summary[w].get("direct") or {}).get("machine_per_unit")
        for p in PROXY_NAMES:
            if p not in summary[w]:
                continue
            d = summary[w][p]
            r = ratio(summary, w, p, ref)
            busy = "–" if d["backend_busy"] is None else f"{100 * d['backend_busy'][0]:.0f} %"
            row = (f"| {p} | {fmt(d['rate'], 0)} | {fmt(d['per_unit'], 2 if w == 'pingpong' else 1)} | "
                   f"{'–' if r is None else f'{r:.2f}'} | {busy} |")
            if mach_cols:
                m = d.get("machine_per_unit")
                added = "–" if not m or not direct_machine or p == "direct" else \
                    f"{m[0] - direct_machine[0]:,.{2 if w == 'pingpong' else 1}f}"
                row += f" {fmt(m, 2 if w == 'pingpong' else 1)} | {added} |"
            if lat_cols:
                row += f" {fmt(d['p50'], 0)} | {fmt(d['p99'], 0)} |"
            md.append(row)
        for e in runs:
            if e["workload"] != w:
                continue
            if e.get("error"):
                md.append(f"\nFailed: {e['proxy']} (repeat {e['repeat']}): {e['error']}")
            elif e["result"].get("warning"):
                md.append(f"\nWarning: {e['proxy']} (repeat {e['repeat']}): {e['result']['warning']}")
            elif e["result"].get("failed"):
                md.append(f"\nNote: {e['proxy']} (repeat {e['repeat']}): {e['result']['failed']} failed sessions")
        md.append("")
    lat = summary.get("latency", {})
    if "direct" in lat and lat["direct"].get("p50"):
        md += ["## Latency added over direct (1 MQTT connection, 1 PUBLISH of 64 B in flight)", "",
               "| proxy | p50 µs | p99 µs | added p50 µs | added p99 µs |", "|---|---|---|---|---|"]
        for p in PROXY_NAMES:
            d = lat.get(p)
            if not d or not d.get("p50"):
                continue
            md.append(f"| {p} | {d['p50'][0]:.1f} | {d['p99'][0]:.1f} | {added_latency(summary, p, 'p50'):.1f} | "
                      f"{added_latency(summary, p, 'p99'):.1f} |")
        md.append("")
    md += tls_report(summary, runs)
    md += ws_report(summary, runs)
    md += pp2_report(summary, runs)
    if any(w in summary for w, *_ in WORKLOADS):
        md += ["## Targets (ringproxy vs HAProxy 2.6 with the seed's MQTT configuration, same CPU, same run)", "",
               "| measure | measured | target | met |", "|---|---|---|---|"]
        for label, value, target, met in targets(summary, cfg.idle_sizes, 300 if cfg.smoke else LOADED_IDLE):
            md.append(f"| {label} | {value} | {target} | {met} |")
    md += ["", "## Machine", ""] + [f"- {k}: {v}" for k, v in mach.items()] + [
        f"- command: `python3 Benchmarks/driver/sidebyside.py {' '.join(sys.argv[1:])}`".rstrip(),
        f"- driver wall time: {elapsed:.0f} s", ""]
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(md))
    charts(out, summary, idle_names)
    return "\n".join(md)


def pp2_report(summary, runs):
    """Issue 12: what send-proxy-v2 adds per unit, ringproxy and HAProxy each against its own
    plain variant, paired per repeat (interleaved, so a repeat's pair saw the same machine)."""
    ws = [w for w, *_ in WORKLOADS if w in summary and any(a in summary[w] for a, _ in PP2_PAIRS)]
    if not ws:
        return []
    per = {}
    for r in runs:
        if not r.get("error") and r.get("result") and r["result"].get("per_unit") is not None:
            per[(r["workload"], r["proxy"], r["repeat"])] = r["result"]["per_unit"]
    def paired(w, a, b, op):
        v = [op(per[(w, a, k)], per[(w, b, k)]) for (w2, p, k) in per if w2 == w and p == a and (w, b, k) in per]
        return (statistics.median(v), min(v), max(v)) if v else None
    md = ["## PROXY protocol v2 cost (issue 12)", "",
          "`-pp2`: `send-proxy-v2` on every server line, the MQTT backends in `--proxy-protocol` mode (each "
          "connection's v2 header read and dropped before MQTT). ringproxy-pp2 and ringproxy-file load a "
          "generated haproxy.cfg mirroring the `ringproxy` command line (one worker, roundrobin, timeouts "
          "connect 5 s / client 240 s / server 240 s, retries 3, maxconn, no log); ringproxy-file has no "
          "send-proxy-v2 and shows what loading a file instead of the command line changes. Added cost and "
          "ratios are taken per repeat (each repeat runs every proxy back to back): median (min–max). "
          "\"others busy\" = CPU (of 2) charged to neither the proxy, the backend nor ringbench during the "
          "run: other users of a shared machine plus softirq time charged to no task.", ""]
    names = [p for p in PROXY_NAMES if p in ("ringproxy", "ringproxy-file", "ringproxy-pp2", "haproxy", "haproxy-pp2")]
    for w in ws:
        rate_u, unit_label = unit(w)
        digits = 2 if w == "pingpong" else 1
        md += [f"### {w}", "", f"| proxy | {rate_u} | proxy {unit_label} | backend {unit_label} | backend busy | others busy |",
               "|---|---|---|---|---|---|"]
        for p in names:
            d = summary[w].get(p)
            if not d:
                continue
            busy = "–" if d["backend_busy"] is None else f"{100 * d['backend_busy'][0]:.0f} %"
            others = "–" if d.get("other_busy") is None else \
                f"{100 * d['other_busy'][0]:.0f} % ({100 * d['other_busy'][1]:.0f}–{100 * d['other_busy'][2]:.0f})"
            md.append(f"| {p} | {fmt(d['rate'], 0)} | {fmt(d['per_unit'], digits)} | "
                      f"{fmt(d.get('backend_per_unit'), digits)} | {busy} | {others} |")
        md += ["", f"| {unit_label} | median (min–max) of the per-repeat figures |", "|---|---|"]
        rows = [("added by the header, ringproxy: ringproxy-pp2 − ringproxy", "ringproxy-pp2", "ringproxy", "-"),
                ("added by the header, ringproxy, same file: ringproxy-pp2 − ringproxy-file", "ringproxy-pp2", "ringproxy-file", "-"),
                ("-f instead of the command line: ringproxy-file − ringproxy", "ringproxy-file", "ringproxy", "-"),
                ("added by the header, HAProxy: haproxy-pp2 − haproxy", "haproxy-pp2", "haproxy", "-"),
                ("ringproxy-pp2 ÷ haproxy-pp2", "ringproxy-pp2", "haproxy-pp2", "/"),
                ("ringproxy ÷ haproxy", "ringproxy", "haproxy", "/")]
        for label, a, b, op in rows:
            t = paired(w, a, b, (lambda x, y: x - y) if op == "-" else (lambda x, y: x / y))
            if t is None:
                continue
            if op == "-":
                base = summary[w][b]["per_unit"][0]
                md.append(f"| {label} | {t[0]:+,.{digits}f} µs ({t[1]:+,.{digits}f} to {t[2]:+,.{digits}f}); "
                          f"{100 * t[0] / base:+.1f} % of {b} |")
            else:
                md.append(f"| {label} | **{t[0]:.2f}x** ({t[1]:.2f}–{t[2]:.2f}) |")
        for e in runs:
            if e["workload"] == w and e["proxy"] in names and e.get("error"):
                md.append(f"\nFailed: {e['proxy']} (repeat {e['repeat']}): {e['error']}")
        md.append("")
    return md


def tls_report(summary, runs):
    """The TLS workloads: per proxy, its CPU per unit and the ratios to HAProxy and nginx; the
    whole machine's CPU per unit (the client's TLS work included: no kTLS, every record is
    sealed and opened in some process); the load generator's own CPU share."""
    ws = [w for w, *_ in TLS_WORKLOADS if w in summary]
    if not ws:
        return []
    md = ["## TLS (TLS 1.3, TLS_AES_128_GCM_SHA256, X25519; ringproxy and HAProxy load the same haproxy.cfg)", "",
          "Proxy on CPU 0; tlsbench (OpenSSL + epoll, one thread) and the echo backend on CPU 1. "
          "\"client busy\" = tlsbench's CPU share of the run (near 100 %: the load generator was the limit, "
          "not the proxy; the per-unit figures still hold, the rates do not). \"machine\" = both CPUs "
          "(/proc/stat) per unit: proxy, client and backend together. \"others busy\" = CPU (of 2) not charged "
          "to the proxy, client or backend during the run: other users of a shared machine, plus softirq time "
          "charged to no task; well above ~10 %, the machine figures of that run are noisy.", ""]
    for w in ws:
        rate_u, unit_label = unit(w)
        digits = 2 if w == "tls-pingpong" else 1
        hs = w.startswith("tls-full") or w == "tls-resume"
        md += [f"### {w}", "", f"| proxy | {rate_u} | {unit_label} | ÷ haproxy-tls | ÷ nginx-tls |"
               + ("" if w == "tls-idle" else " machine CPU-µs/unit | client CPU-µs/unit | client busy | backend busy | others busy |")
               + (" tickets/handshake | resumed | p50 µs | p99 µs |" if hs else ""),
               "|---|---|---|---|---|" + ("" if w == "tls-idle" else "---|---|---|---|---|") + ("---|---|---|---|" if hs else "")]
        for p in TLS_PROXY_NAMES:
            d = summary[w].get(p)
            if not d:
                continue
            r1, r2 = ratio(summary, w, p, "haproxy-tls"), ratio(summary, w, p, "nginx-tls")
            pct = lambda t: "–" if t is None else f"{100 * t[0]:.0f} %"
            row = (f"| {p} | {fmt(d['rate'], 0)} | {fmt(d['per_unit'], digits)} | {'–' if r1 is None else f'{r1:.2f}'} | "
                   f"{'–' if r2 is None else f'{r2:.2f}'} |")
            if w != "tls-idle":
                row += (f" {fmt(d['machine_per_unit'], digits)} | {fmt(d['client_per_unit'], digits)} | "
                        f"{pct(d['client_busy'])} | {pct(d['backend_busy'])} | {pct(d['other_busy'])} |")
            if hs:
                row += (f" {fmt(d['tickets_per_handshake'], 1)} | {pct(d['resumed_share'])} | "
                        f"{fmt(d['p50'], 0)} | {fmt(d['p99'], 0)} |")
            md.append(row)
        for e in runs:
            if e["workload"] != w:
                continue
            if e.get("error"):
                md.append(f"\nFailed: {e['proxy']} (repeat {e['repeat']}): {e['error']}")
            elif e["result"].get("warning"):
                md.append(f"\nWarning: {e['proxy']} (repeat {e['repeat']}): {e['result']['warning']}")
            elif e["result"].get("failed"):
                md.append(f"\nNote: {e['proxy']} (repeat {e['repeat']}): {e['result']['failed']} failed connections")
        md.append("")
    md += ["### TLS ratios (ringproxy-tls ÷ peer, proxy CPU per unit or RSS per connection: below 1 is better)", "",
           "| workload | ÷ haproxy-tls | ÷ nginx-tls |", "|---|---|---|"]
    for w in ws:
        r1, r2 = ratio(summary, w, "ringproxy-tls", "haproxy-tls"), ratio(summary, w, "ringproxy-tls", "nginx-tls")
        md.append(f"| {w} | {'–' if r1 is None else f'{r1:.2f}'} | {'–' if r2 is None else f'{r2:.2f}'} |")
    md.append("")
    return md


def ws_report(summary, runs):
    """The WebSocket workloads: per proxy, its CPU per unit (RSS per connection for ws-idle) and
    the ratios to HAProxy and nginx; the whole machine's and the load generator's CPU."""
    ws = [w for w, *_ in WS_WORKLOADS if w in summary]
    if not ws:
        return []
    md = ["## MQTT over WebSocket (the seed's mqtt-ws.cfg: mode tcp passthrough; ringproxy-mqttws adds "
          "`option mqtt-websocket path /mqtt` + a stick table on the client id)", "",
          "Proxy on CPU 0; wsbench (C, epoll, one thread) and the mqttbackend --websocket backends on CPU 1. "
          "ringproxy and haproxy load the same file. HAProxy has no MQTT-aware WebSocket mode: ringproxy-mqttws "
          "÷ haproxy compares ringproxy doing more work (it answers the upgrade itself, reads and checks the "
          "CONNECT inside the frames, looks up the stick table, replays the upgrade to the broker and checks its "
          "101). \"client busy\" = wsbench's CPU share of the run; \"machine\" = both CPUs (/proc/stat) per unit; "
          "\"others busy\" = CPU (of 2) charged to none of proxy, client, backend.", ""]
    for w in ws:
        rate_u, unit_label = unit(w)
        digits = 2 if w == "ws-pingpong" else 0 if w == "ws-idle" else 1
        idle = w == "ws-idle"
        md += [f"### {w}", "", f"| proxy | {rate_u} | {unit_label} | ÷ haproxy | ÷ nginx |"
               + ("" if idle else " machine CPU-µs/unit | client CPU-µs/unit | client busy | backend busy | others busy |")
               + (" p50 µs | p99 µs |" if w == "ws-conn" else "") + (" RSS B/conn, 2nd half only | its ÷ haproxy | RSS MB at start | RSS MB, all held |" if idle else ""),
               "|---|---|---|---|---|" + ("" if idle else "---|---|---|---|---|") + ("---|---|" if w == "ws-conn" else "")
               + ("---|---|---|---|" if idle else "")]
        for p in WS_PROXY_NAMES:
            d = summary[w].get(p)
            if not d:
                continue
            r1, r2 = ratio(summary, w, p, "haproxy"), ratio(summary, w, p, "nginx")
            pct = lambda t: "–" if t is None else f"{100 * t[0]:.0f} %"
            row = (f"| {p} | {fmt(d['rate'], 0)} | {fmt(d['per_unit'], digits)} | {'–' if r1 is None else f'{r1:.2f}'} | "
                   f"{'–' if r2 is None else f'{r2:.2f}'} |")
            if not idle:
                row += (f" {fmt(d['machine_per_unit'], digits)} | {fmt(d['client_per_unit'], digits)} | "
                        f"{pct(d['client_busy'])} | {pct(d['backend_busy'])} | {pct(d['other_busy'])} |")
            if w == "ws-conn":
                row += f" {fmt(d['p50'], 0)} | {fmt(d['p99'], 0)} |"
            if idle:
                try:
                    rm = d["marginal_per_conn"][0] / summary[w]["haproxy"]["marginal_per_conn"][0]
                except (KeyError, TypeError, ZeroDivisionError):
                    rm = None
                row += (f" {fmt(d['marginal_per_conn'], 0)} | {'–' if rm is None else f'{rm:.2f}'} | "
                        f"{fmt(d['rss_start_mb'], 1)} | {fmt(d['rss_held_mb'], 1)} |")
            md.append(row)
        for e in runs:
            if e["workload"] != w:
                continue
            if e.get("error"):
                md.append(f"\nFailed: {e['proxy']} (repeat {e['repeat']}): {e['error']}")
            elif e["result"] and e["result"].get("warning"):
                md.append(f"\nWarning: {e['proxy']} (repeat {e['repeat']}): {e['result']['warning']}")
            elif e["result"] and e["result"].get("failed"):
                md.append(f"\nNote: {e['proxy']} (repeat {e['repeat']}): {e['result']['failed']} failed sessions")
        md.append("")
    md += ["### WebSocket ratios (÷ haproxy, proxy CPU per unit or RSS per connection: below 1 is better)", "",
           "| workload | ringproxy ÷ haproxy (both passthrough) | ringproxy-mqttws ÷ haproxy (more work) | nginx ÷ haproxy |",
           "|---|---|---|---|"]
    for w in ws:
        cells = [ratio(summary, w, p, "haproxy") for p in ("ringproxy", "ringproxy-mqttws", "nginx")]
        md.append(f"| {w} | " + " | ".join("–" if r is None else f"{r:.2f}" for r in cells) + " |")
    md.append("")
    return md


def charts(out, summary, idle_names):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib not installed (pip install matplotlib): no charts")
        return
    groups = {"conn": ["conn", "conn-loaded", "reconnect"], "pingpong": ["pingpong"], "bulk": ["bulk-1", "bulk-100"],
              "idle": idle_names, "latency": ["latency"],
              "tls-handshakes": ["tls-full-ecdsa", "tls-full-rsa", "tls-resume"],
              "tls-records": ["tls-pingpong", "tls-bulk-1", "tls-bulk-100", "tls-idle"],
              "ws": ["ws-conn", "ws-pingpong", "ws-idle"]}
    for chart, ws in groups.items():
        ws = [w for w in ws if w in summary]
        if not ws:
            continue
        fig, axes = plt.subplots(1, len(ws), figsize=(5.5 * len(ws), 4), squeeze=False)
        for ax, w in zip(axes[0], ws):
            names, meds, lo, hi = [], [], [], []
            for p in (TLS_PROXY_NAMES if w.startswith("tls-") else WS_PROXY_NAMES if w.startswith("ws-") else PROXY_NAMES):
                d = summary[w].get(p)
                if not d or not d["per_unit"]:
                    continue
                m, a, b = d["per_unit"]
                names.append(p); meds.append(m); lo.append(m - a); hi.append(b - m)
            ax.bar(names, meds, yerr=[lo, hi], capsize=4,
                   color=["tab:orange" if n.startswith("ringproxy") else "tab:blue" for n in names])
            ax.set_title(w if not w.startswith("idle") else f"idle, {int(w.split('-')[1]):,} connections")
            ax.set_ylabel(unit(w)[1] + " (lower is better)")
            ax.tick_params(axis="x", rotation=30)
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"{chart}.png"), dpi=100)
        plt.close(fig)


# ---------------------------------------------------------------- main

def one_run(rec, name, spec, binpath, port, backends, conns, body, crt=None):
    pids = []
    started = []
    try:
        started, lport = start_proxy(name, spec, binpath, port, backends, conns, crt)
        pids = [p.pid for p in started]
        rec["result"] = body(lport, pids)
        res = rec["result"]
        if res is not None:
            w = rec["workload"]
            pu = "" if res["per_unit"] is None else f"{res['per_unit']:10.2f} {unit(w)[1]}"
            busy = "" if res.get("backend_busy") is None else f"  backend {100 * res['backend_busy']:3.0f} %"
            if res.get("client_busy") is not None:
                busy += f"  client {100 * res['client_busy']:3.0f} %"
            log(f"r{rec['repeat']} {w:12s} {name:17s} rate {res['rate']:>12,.0f} {unit(w)[0]:14s} {pu}{busy}")
    except Exception as e:
        rec["error"] = str(e)
        log(f"r{rec['repeat']} {rec['workload']:12s} {name:17s} FAILED: {e}")
    finally:
        for p in started:
            stop(p, timeout=30)
            forget(p)


def run_million(cfg, binpath, tools, runs):
    """The million-connection run's small version (issue 16): ringproxy at --million sessions,
    HAProxy and nginx at what one process of theirs holds under the open-files limit (full
    runs only). A failed ringproxy run is a failed run of this driver."""
    n = cfg.million if cfg.million is not None else (20_000 if cfg.smoke else 50_000)
    if n <= 0:
        return []
    script = os.path.join(REPO, "Benchmarks", "million", "million.py")
    out = os.path.join(cfg.out, "million")
    results = []
    plans = [("ringproxy", n)] + ([] if cfg.smoke else [("haproxy", min(n, 9_000)), ("nginx", min(n, 9_000))])
    for proxy, count in plans:
        cmd = [sys.executable, script, "--proxy", proxy, "--steps", str(count), "--bin", binpath,
               "--ringbench", tools["ringbench"], "--out", out,
               "--cpu-window", "5" if cfg.smoke else "30", "--latency-seconds", "2" if cfg.smoke else "5"]
        if cfg.smoke:
            cmd += ["--cores", "1"]
        log(f"million: {proxy} at {count:,} sessions")
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
        res = json.loads(lines[-1]) if lines else dict(proxy=proxy, requested=count, error=r.stderr[-500:])
        results.append(res)
        if r.returncode != 0 and proxy == "ringproxy":
            runs.append(dict(repeat=0, workload=f"million-{count}", proxy=proxy,
                             error=res.get("error") or f"million.py failed: {json.dumps(res.get('pings'))} {r.stderr[-300:]}"))
    return results


def million_report(results):
    md = ["", "## Many sessions held (Benchmarks/million/million.py)", "",
          "| proxy | sessions | open s | failed | RSS B/conn | kernel B/proxied conn | CPU ms/s (pings every 60 s) | PUBLISH RTT p50/p99 µs held (none held) |",
          "|---|---|---|---|---|---|---|---|"]
    for r in results:
        if not r.get("held"):
            md.append(f"| {r['proxy']} | {r['requested']:,} | - | {r.get('error', '?')[:80]} | | | | |")
            continue
        h, q = r["publish_rtt_held"], r["publish_rtt_none_held"]
        md.append(f"| {r['proxy']} | {r['held']:,} | {r['open_seconds']} | {r['open_failed']} + {r.get('pings', {}).get('failed_during_hold')} held |"
                  f" {r['proxy_rss_per_conn_b']:,} | {r['kernel_per_proxied_conn_b']:,} | {r['proxy_cpu_per_s'] * 1000:.1f} |"
                  f" {h['p50_us']}/{h['p99_us']} ({q['p50_us']}/{q['p99_us']}) |")
    return "\n".join(md) + "\n"


def main():
    global scratch
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="repeat 1, 1-second runs, 500 idle connections")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=4.0, help="length of each load run")
    ap.add_argument("--idle", default="10000,50000,100000", help="idle connection counts (comma-separated)")
    ap.add_argument("--mosquitto", action="store_true", help="also run conn against three mosquitto brokers")
    ap.add_argument("--out", default=os.path.join(REPO, "Benchmarks", "results", "latest"))
    ap.add_argument("--no-build", action="store_true", help="use the existing release binaries")
    ap.add_argument("--unpinned", action="store_true", help="let every process run on CPUs 0 and 1 (the proxy, the load "
                    "and the backends; the scheduler places them): for relays whose work runs outside their process")
    ap.add_argument("--bin", default="", help="ringproxy release binary to run (ringbench beside it); implies --no-build")
    ap.add_argument("--only", default="", help="comma-separated workloads (conn,conn-loaded,reconnect,pingpong,bulk-1,bulk-100,latency,idle)")
    ap.add_argument("--proxies", default="", help="comma-separated proxies (default: all but the opt-in "
                    "ringproxy-file, ringproxy-pp2, haproxy-pp2, ringproxy-mqttcfg, ringproxy-connack)")
    ap.add_argument("--strict", action="store_true", help="exit 1 if any run failed (CI's smoke run)")
    ap.add_argument("--tls", action="store_true", help="the TLS workloads (issue 11) instead of the plain ones")
    ap.add_argument("--ws", action="store_true", help="the MQTT-over-WebSocket workloads (issue 14) instead of the plain ones")
    ap.add_argument("--million", type=int, default=None,
                    help="sessions of the million-connection run's small version (Benchmarks/million/million.py; "
                         "default 50,000, --smoke 20,000 on one CPU so that it needs three rings; 0: skip)")
    cfg = ap.parse_args()
    if cfg.unpinned:
        global CPU_PROXY, CPU_LOAD
        CPU_PROXY = CPU_LOAD = "0,1"
    if cfg.tls and cfg.ws:
        die("--tls and --ws are separate runs")
    if cfg.smoke:
        cfg.repeat, cfg.seconds, cfg.idle = 1, 1.0, "500"
    if cfg.tls and cfg.out == ap.get_default("out"):
        cfg.out = os.path.join(REPO, "Benchmarks", "results", "latest-tls")
    if cfg.ws and cfg.out == ap.get_default("out"):
        cfg.out = os.path.join(REPO, "Benchmarks", "results", "latest-ws")
    cfg.idle_sizes = [int(x) for x in cfg.idle.split(",") if x.strip()]
    if os.cpu_count() < 2:
        die("needs at least 2 CPUs (proxy on CPU 0, load on CPU 1)")
    check_tools(cfg)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    subprocess.run(["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"], capture_output=True)
    os.makedirs(cfg.out, exist_ok=True)
    t0 = time.time()
    load_start = loadavg()
    atexit.register(cleanup)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, lambda *_: sys.exit(1))
    scratch = tempfile.mkdtemp(prefix="rp-sidebyside.")
    os.chmod(scratch, 0o777)  # mosquitto drops root to its own user
    runs = []
    only = set(filter(None, cfg.only.split(",")))
    chosen = set(filter(None, cfg.proxies.split(","))) or ({p for p, s in PROXIES if not s.get("optin")} | set(WS_PROXY_NAMES))
    unknown = chosen - set(PROXY_NAMES) - set(TLS_PROXY_NAMES) - set(WS_PROXY_NAMES)
    if unknown:
        die(f"unknown proxies: {', '.join(sorted(unknown))} (known: {', '.join(PROXY_NAMES + TLS_PROXY_NAMES + WS_PROXY_NAMES)})")
    workloads = list(WORKLOADS)
    if cfg.mosquitto:
        workloads.append(("conn-mosquitto", w_conn, MOSQUITTO_PORTS, True))
    # TLS: all of them with --tls; the plain smoke run covers one so that it never rots.
    tls_workloads = [t for t in TLS_WORKLOADS if (cfg.tls and not cfg.smoke) or t[0] in TLS_SMOKE] \
        if (cfg.tls or (cfg.smoke and not cfg.ws)) else []
    ws_workloads = WS_WORKLOADS if cfg.ws else []
    if cfg.tls or cfg.ws:
        workloads = []
    try:
        binpath, tools = build(cfg.no_build, cfg.ws, cfg.bin)
        start_backends(cfg, tools, pp2=any(s.get("pp2") for p, s in PROXIES if p in chosen))
        certs = make_certificates() if tls_workloads else {}
        for rep in range(cfg.repeat):
            for wi, (w, fn, backends) in enumerate(tls_workloads):
                if only and w not in only:
                    continue
                for pi, (name, spec) in enumerate(TLS_PROXIES):
                    if cfg.proxies and name not in chosen:
                        continue
                    rec = dict(repeat=rep, workload=w, proxy=name)
                    capacity = (300 if cfg.smoke else TLS_IDLE) + 500 if w == "tls-idle" else 3000
                    one_run(rec, name, spec, binpath, PROXY_PORT_BASE + 200 + wi * 10 + pi, backends, capacity,
                            lambda lport, pids, fn=fn, backends=backends: fn(cfg, tools, lport, pids, backends),
                            crt=certs[fn.cert])
                    runs.append(rec)
            for wi, (w, fn, backends) in enumerate(ws_workloads):
                if only and w not in only:
                    continue
                for pi, (name, spec) in enumerate(WS_PROXIES):
                    if name not in chosen or (w == "ws-idle" and spec["kind"] == "direct"):
                        continue
                    rec = dict(repeat=rep, workload=w, proxy=name)
                    capacity = (300 if cfg.smoke else WS_IDLE) + 500 if w == "ws-idle" else 3000
                    one_run(rec, name, spec, binpath, PROXY_PORT_BASE + 300 + wi * 10 + pi, backends, capacity,
                            lambda lport, pids, fn=fn, backends=backends: fn(cfg, tools, lport, pids, backends))
                    runs.append(rec)
            for wi, (w, fn, backends, mqtt_ok) in enumerate(workloads):
                if only and w not in only:
                    continue
                for pi, (name, spec) in enumerate(PROXIES):
                    if name not in chosen or (spec["mqtt"] and not mqtt_ok):
                        continue  # raw bytes would be rejected by MQTT-validating configs
                    bports = proxy_backends(spec, backends)
                    if bports is None:
                        continue  # no --proxy-protocol twin of this workload's backends
                    rec = dict(repeat=rep, workload=w, proxy=name)
                    capacity = LOADED_IDLE + 600 if w == "conn-loaded" else 3000
                    one_run(rec, name, spec, binpath, PROXY_PORT_BASE + wi * 10 + pi, bports, capacity,
                            lambda lport, pids, bports=bports: fn(cfg, tools, lport, pids, bports))
                    runs.append(rec)
            # RSS per idle connection moves little between repeats: the first repeat measures it.
            if rep == 0 and not cfg.tls and not cfg.ws and (not only or "idle" in only):
                for si, n in enumerate(cfg.idle_sizes):
                    for pi, (name, spec) in enumerate(PROXIES):
                        if name not in chosen or spec["kind"] == "direct" or proxy_backends(spec, IDLE_PORTS) is None:
                            continue
                        rec = dict(repeat=rep, workload=f"idle-{n}", proxy=name)
                        one_run(rec, name, spec, binpath, PROXY_PORT_BASE + 80 + si * 6 + pi, IDLE_PORTS, n,
                                lambda lport, pids, n=n: w_idle(cfg, tools, lport, pids, IDLE_PORTS, n))
                        runs.append(rec)
        million = run_million(cfg, binpath, tools, runs) if not cfg.tls and not cfg.ws and (not only or "million" in only) else []
        mach = machine()
        mach["load average (1/5/15 min) at start, at end"] = f"{load_start}, {loadavg()}"
        md = write_report(cfg.out, cfg, runs, mach, time.time() - t0)
        if million:
            md += million_report(million)
            with open(os.path.join(cfg.out, "results.md"), "a") as f:
                f.write(million_report(million))
        print(md)
        log(f"wrote {cfg.out}/results.md, results.json and charts in {time.time() - t0:.0f} s")
    finally:
        cleanup()
    failed = [r for r in runs if r.get("error")]
    if cfg.strict and failed:
        for r in failed:
            log(f"failed: {r['workload']} {r['proxy']}: {r['error']}")
        return 1
    return 0 if runs and len(failed) < len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
