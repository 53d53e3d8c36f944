#!/usr/bin/env python3
"""Failover under churn (issue 13): ringproxy vs HAProxy 2.6 given the same haproxy.cfg.

Usage: python3 Benchmarks/failover/failover.py [--smoke] [--repeat 3] [--out Benchmarks/results/failover-latest]

Three real mosquitto brokers (each listening on 127.0.0.1 and 127.0.0.2), one haproxy.cfg that
both proxies load unchanged (`option tcp-check` sending an MQTT CONNECT and expecting its
CONNACK, `check inter 100 fall 2 rise 2 addr 127.0.0.2`, `retries 3`, `option redispatch`), the
proxy pinned to CPU 0 with one worker / thread, brokers, clients and tcpdump on CPU 1 (the
conventions of Benchmarks/driver/sidebyside.py). `failoverclients` (C, epoll) runs CLIENTS
clients that connect, CONNECT with a fresh client id, wait for CONNACK (2 s), DISCONNECT and
close, pausing 0-50 ms, for SECONDS. At --kill-at the driver kill -9s broker 2, at --restart-at
it starts it again on the same port. Measured per run:
  a) last client SYN the proxy sent to the dead broker after the kill (tcpdump on lo; checks go
     to 127.0.0.2, client traffic to 127.0.0.1), and how many there were;
  b) failed client sessions: in flight at the kill, started after it (the goal is 0);
  c) from the broker listening again to the first client SYN it receives (goal: rise x inter +
     one interval);
  d) sessions/s and the proxy's CPU (utime+stime, /proc) per session;
  plus DOWN / UP as each proxy reports it (its stderr lines, timestamped on arrival).
Runs are interleaved (ringproxy, haproxy, ringproxy, ...); results.json (raw) and results.md
(medians, min-max) go to --out.
"""
import argparse
import atexit
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "Benchmarks", "driver"))
import sidebyside as sbs  # noqa: E402  start/stop/forget/cleanup, cpu_seconds, log, die, BUILD_LOCK

log, die = sbs.log, sbs.die

BROKER_PORTS = [29201, 29202, 29203]   # below the ephemeral range (32768-60999)
PROXY_PORT = 29200
DEAD = 1                               # index of the broker that is killed (broker 2)
CHECK_INTER_MS, CHECK_FALL, CHECK_RISE = 100, 2, 2
# MQTT 3.1.1 CONNECT: clean session, keepalive 60 s, empty client id (MQTT 3.1.1 §3.1.3.1).
CHECK_CONNECT = "100c00044d5154540402003c0000"
CHECK_CONNACK = "20020000"               # CONNACK, no session present, accepted
RESULT_NAMES = ["ok", "connect_failed", "closed_before_connack", "timeout", "bad_connack", "send_failed"]
PROXIES = ["ringproxy", "haproxy"]
STATE_LINE = re.compile(r"Server (\S+)/(\S+) is (DOWN|UP)")


def haproxy_cfg():
    """The one file both proxies load."""
    servers = "".join(
        f"  server b{i + 1} 127.0.0.1:{p} check inter {CHECK_INTER_MS} fall {CHECK_FALL} rise {CHECK_RISE} "
        f"addr 127.0.0.2\n" for i, p in enumerate(BROKER_PORTS))
    return ("global\n  nbthread 1\n  maxconn 4000\n  log stderr format raw local0\n\n"
            "defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n"
            "  retries 3\n  option redispatch\n\n"
            "backend brokers\n  balance roundrobin\n  option tcp-check\n"
            f"  tcp-check send-binary {CHECK_CONNECT}\n  tcp-check expect binary {CHECK_CONNACK}\n{servers}\n"
            f"frontend mqtt\n  bind 127.0.0.1:{PROXY_PORT}\n  default_backend brokers\n")


# ---------------------------------------------------------------- set-up

def check_tools():
    if shutil.which("tcpdump") is None and os.geteuid() == 0:
        log("tcpdump missing: apt-get install -y tcpdump")
        subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "tcpdump"],
                       capture_output=True, timeout=900)
    missing = [t for t in ("gcc", "taskset", "haproxy", "mosquitto", "tcpdump") if shutil.which(t) is None]
    if missing:
        die(f"missing: {', '.join(missing)} (apt-get install -y {' '.join(missing)})")
    if os.geteuid() != 0:
        die("run as root (tcpdump on lo, mosquitto dropping privileges)")


def build(skip, scratch):
    if not skip:
        log("swift build -c release --product ringproxy (under flock)")
        r = subprocess.run(["flock", sbs.BUILD_LOCK, "swift", "build", "-c", "release", "--product", "ringproxy"],
                           cwd=REPO, capture_output=True, text=True, timeout=3600)
        if r.returncode != 0:
            die("swift build failed:\n" + (r.stdout + r.stderr)[-3000:])
    binpath = os.path.join(REPO, ".build", "release", "ringproxy")
    if shutil.which("swift"):
        r = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=REPO,
                           capture_output=True, text=True, timeout=120)
        if r.returncode == 0 and r.stdout.strip():
            binpath = os.path.join(r.stdout.strip(), "ringproxy")
    if not os.access(binpath, os.X_OK):
        die(f"ringproxy binary not found at {binpath}")
    clients = os.path.join(scratch, "failoverclients")
    r = subprocess.run(["gcc", "-O2", "-Wall", os.path.join(REPO, "Benchmarks", "tools", "failoverclients.c"),
                        "-o", clients], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        die(f"gcc failoverclients.c failed: {r.stderr}")
    return binpath, clients


def listening(port, hosts=("127.0.0.1", "127.0.0.2")):
    """True when every host has a socket in LISTEN on port. Asks the kernel through `ss`
    (netlink, filtered in the kernel): no probe connection, which tcpdump would count as traffic,
    and no walk of /proc/net/tcp, which takes hundreds of ms with tens of thousands of
    TIME_WAIT entries on a busy loopback."""
    r = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, timeout=5)
    local = {line.split()[3] for line in r.stdout.splitlines() if len(line.split()) >= 4}
    return f"0.0.0.0:{port}" in local or all(f"{h}:{port}" in local for h in hosts)


def wait_listening(port, hosts, timeout_s):
    """When the port was seen listening: the start of the first query that saw it (the socket
    appeared between the previous query and this one, ~15 ms apart on a loaded machine)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        t = time.time()
        if listening(port, hosts):
            return t
        time.sleep(0.001)
    return None


def start_broker(scratch, i):
    port = BROKER_PORTS[i]
    conf = os.path.join(scratch, f"mosquitto-{port}.conf")
    with open(conf, "w") as f:
        f.write(f"listener {port} 127.0.0.1\nlistener {port} 127.0.0.2\nallow_anonymous true\n"
                "max_connections -1\nlog_type none\npersistence false\n")
    os.chmod(conf, 0o644)
    return sbs.start(["taskset", "-c", "1", "mosquitto", "-c", conf])


class LineReader(threading.Thread):
    """Reads a process's stderr line by line, stamping each with the wall clock on arrival, and
    keeps a copy in a file."""

    def __init__(self, stream, path):
        super().__init__(daemon=True)
        self.stream, self.path, self.lines = stream, path, []

    def run(self):
        with open(self.path, "w") as f:
            for raw in iter(self.stream.readline, b""):
                line = raw.decode(errors="replace").rstrip("\n")
                self.lines.append((time.time(), line))
                f.write(f"{time.time():.6f} {line}\n")


def start_proxy(name, binpath, cfgpath, cores_arg):
    if name == "ringproxy":
        cmd = ["taskset", "-c", "0", binpath, "-f", cfgpath, "--cores", str(cores_arg)]
    else:
        cmd = ["taskset", "-c", "0", "haproxy", "-f", cfgpath, "-db"]
    return sbs.start(cmd, stderr=subprocess.PIPE)


def start_tcpdump(scratch, run_id):
    """SYNs (no ACK) to the dead broker's port, to both addresses: client traffic (127.0.0.1)
    and checks (127.0.0.2)."""
    path = os.path.join(scratch, f"syn-{run_id}.txt")
    out = open(path, "w")
    errpath = os.path.join(scratch, f"tcpdump-{run_id}.stderr")
    err = open(errpath, "w")
    flt = f"dst port {BROKER_PORTS[DEAD]} and tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn"
    p = sbs.start(["taskset", "-c", "1", "tcpdump", "-i", "lo", "-tt", "-n", "-l", "-B", "16384",
                   "--immediate-mode", flt], stdout=out, stderr=err)
    out.close()
    err.close()
    deadline = time.time() + 10
    while time.time() < deadline:
        with open(errpath) as f:
            if "listening on" in f.read():
                return p, path, errpath
        time.sleep(0.05)
    raise RuntimeError("tcpdump did not start listening")


def cpu_times():
    """{cpu index: (busy, total, steal)} in ticks from /proc/stat."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                v = [int(x) for x in line.split()[1:9]]
                out[int(line[3:line.index(" ")])] = (sum(v) - v[3] - v[4], sum(v), v[7])
    return out


# A sleeper pinned beside the proxy: each wake-up more than 30 ms late is written down, so a
# stall that every process on CPU 0 suffered (a neighbour, the hypervisor) can be told from one
# of the proxy's own. 5 ms sleeps: ~1 % of the CPU.
STALL_PROBE = """
import sys, time
end = time.time() + float(sys.argv[1])
last = time.time()
while last < end:
    time.sleep(0.005)
    t = time.time()
    if t - last > 0.035:
        print(f"{last:.6f} {t:.6f}", flush=True)
    last = t
"""


def start_stall_probe(scratch, run_id, seconds):
    path = os.path.join(scratch, f"stalls-{run_id}.txt")
    out = open(path, "w")
    p = sbs.start(["taskset", "-c", "0", sys.executable, "-c", STALL_PROBE, str(seconds)], stdout=out)
    out.close()
    return p, path


def connections_to(port):
    """Proxy-to-broker connections open to 127.0.0.1:port (client traffic, not checks)."""
    r = subprocess.run(["ss", "-Htn", "state", "established", f"dst 127.0.0.1:{port}"],
                       capture_output=True, text=True, timeout=5)
    return len(r.stdout.splitlines())


def parse_syns(path):
    """[(time, dst host, attempt)] of every SYN captured; attempt = (source port, initial
    sequence number), the same for a SYN and its retransmissions."""
    out = []
    pat = re.compile(r"^(\d+\.\d+) IP \d+\.\d+\.\d+\.\d+\.(\d+) > (\d+\.\d+\.\d+\.\d+)\.\d+: Flags \[S\], seq (\d+)")
    with open(path) as f:
        for line in f:
            m = pat.match(line)
            if m:
                out.append((float(m.group(1)), m.group(3), (int(m.group(2)), int(m.group(4)))))
    return out


# ---------------------------------------------------------------- one run

def one_run(cfg, name, run_id, binpath, clients_bin, cfgpath, scratch):
    brokers = [start_broker(scratch, i) for i in range(3)]
    proxy = tcpdump = clients = reader = None
    try:
        for i, port in enumerate(BROKER_PORTS):
            if wait_listening(port, ("127.0.0.1", "127.0.0.2"), 5) is None:
                raise RuntimeError(f"mosquitto on {port} did not listen")
        proxy = start_proxy(name, binpath, cfgpath, 1)
        reader = LineReader(proxy.stderr, os.path.join(scratch, f"{run_id}.stderr"))
        reader.start()
        if wait_listening(PROXY_PORT, ("127.0.0.1",), 10) is None:
            raise RuntimeError(f"{name} did not listen on {PROXY_PORT}")
        # Several check rounds pass before the load: every server's health counter at its top.
        time.sleep(cfg.warmup)
        tcpdump, synpath, tcpdump_err = start_tcpdump(scratch, run_id)
        sessions_path = os.path.join(scratch, f"sessions-{run_id}.txt")
        cpu0 = sbs.cpu_seconds(proxy.pid)
        survivors = [b.pid for i, b in enumerate(brokers) if i != DEAD]
        brokers_cpu0 = sum(sbs.cpu_seconds(p) for p in survivors)
        stat0 = cpu_times()
        probe, stalls_path = start_stall_probe(scratch, run_id, cfg.seconds + 1)
        t0 = time.time()
        clients = sbs.start(["taskset", "-c", "1", clients_bin, "127.0.0.1", str(PROXY_PORT), str(cfg.clients),
                             str(cfg.seconds), str(cfg.pause_ms), str(cfg.timeout_ms), sessions_path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(max(0, t0 + cfg.kill_at - time.time() - 0.02))
        at_dead_broker = connections_to(BROKER_PORTS[DEAD])   # ~10 ms: before the kill, not in its timing
        time.sleep(max(0, t0 + cfg.kill_at - time.time()))
        t_kill = time.time()
        os.kill(brokers[DEAD].pid, signal.SIGKILL)
        brokers[DEAD].wait(timeout=5)
        t_reaped = time.time()
        sbs.forget(brokers[DEAD])
        time.sleep(max(0, t0 + cfg.restart_at - time.time()))
        t_restart = time.time()
        brokers[DEAD] = start_broker(scratch, DEAD)
        t_listening = wait_listening(BROKER_PORTS[DEAD], ("127.0.0.1", "127.0.0.2"), 5)
        if t_listening is None:
            raise RuntimeError("the restarted broker did not listen")
        try:
            out, err = clients.communicate(timeout=cfg.seconds + 30)
        except subprocess.TimeoutExpired:
            raise RuntimeError("failoverclients did not finish")
        finally:
            sbs.forget(clients)
        t_end = time.time()
        cpu = sbs.cpu_seconds(proxy.pid) - cpu0
        stat1 = cpu_times()
        busy = {f"cpu{c}": round(100 * (stat1[c][0] - stat0[c][0]) / max(1, stat1[c][1] - stat0[c][1]), 1)
                for c in sorted(stat1) if c in stat0}
        steal = {f"cpu{c}": round(100 * (stat1[c][2] - stat0[c][2]) / max(1, stat1[c][1] - stat0[c][1]), 1)
                 for c in sorted(stat1) if c in stat0}
        sbs.stop(probe)
        sbs.forget(probe)
        with open(stalls_path) as f:
            stalls = [(round(float(a) - t_kill, 4), round((float(b) - float(a)) * 1e3, 1))
                      for a, b in (line.split() for line in f if line.strip())]
        brokers_cpu = sum(sbs.cpu_seconds(p) for p in survivors) - brokers_cpu0
        load = dict(busy_percent=busy, steal_percent=steal, cpu0_stalls=stalls,
                    proxy_percent=round(100 * cpu / (t_end - t0), 1),
                    two_brokers_percent=round(100 * brokers_cpu / (t_end - t0), 1),
                    connections_at_dead_broker_before_kill=at_dead_broker)
        summary = json.loads(out.decode().strip().splitlines()[-1])
        time.sleep(0.2)   # the last SYNs reach tcpdump's output
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait(timeout=10)
        sbs.forget(tcpdump)
        with open(tcpdump_err) as f:
            tcpdump_stats = [line.strip() for line in f if "packets" in line]
        events = dict(t0=t0, kill=t_kill, reaped=t_reaped, restart=t_restart, listening=t_listening, end=t_end)
        return analyse(cfg, name, events, summary, cpu, sessions_path, parse_syns(synpath), list(reader.lines),
                       tcpdump_stats, load)
    finally:
        for p in [clients, tcpdump, proxy] + brokers:
            if p is not None:
                sbs.stop(p, timeout=10)
                sbs.forget(p)


def percentile(values, q):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def analyse(cfg, name, ev, summary, cpu, sessions_path, syns, lines, tcpdump_stats, load):
    kill, restart, listening_at = ev["kill"], ev["restart"], ev["listening"]
    server = f"b{DEAD + 1}"
    # Each proxy's own view: the first DOWN after the kill and the first UP after the restart.
    states = [(t, m.group(3), line) for t, line in lines if (m := STATE_LINE.search(line)) and m.group(2) == server]
    down = next((t for t, s, _ in states if s == "DOWN" and t >= kill), None)
    up = next((t for t, s, _ in states if s == "UP" and t >= restart), None)
    # a) client SYNs to the dead broker while it was dead.
    # A SYN that meets a TIME_WAIT socket the dead broker left behind (its side closed first)
    # is answered with an ACK, not a reset (RFC 793 / tcp_timewait_state_process: no listener
    # to take it); the connecting side resets that and sends its SYN again ~2 jiffies later,
    # which the kernel then refuses. So a SYN is either an attempt's first or a retransmission.
    client_syns = sorted(t for t, host, _ in syns if host == "127.0.0.1")
    check_syns = sorted(t for t, host, _ in syns if host == "127.0.0.2")
    first_seen = {}
    for t, host, attempt in sorted(syns):
        if host == "127.0.0.1" and attempt not in first_seen:
            first_seen[attempt] = t
    dead_all = [(t, first_seen[a] == t) for t, host, a in sorted(syns) if host == "127.0.0.1" and kill <= t < restart]
    dead_syns = [t for t, first in dead_all if first]            # attempts
    retransmits = [t for t, first in dead_all if not first]
    after_down = [t for t in dead_syns if down is not None and t > down]
    # c) the restarted broker's first client SYN.
    back = next((t for t in client_syns if t >= listening_at), None)
    # b) sessions.
    rows = []
    with open(sessions_path) as f:
        for line in f:
            s, e, r, err = line.split()
            rows.append((float(s), float(e), int(r), int(err)))
    failed = [x for x in rows if x[2] != 0]
    before = [x for x in failed if x[1] < kill]
    # A SIGKILLed broker takes a few ms (more on a busy CPU) to close its sockets: until it is
    # reaped its listener still completes handshakes, and those connections die with it.
    gone = ev["reaped"]
    in_flight = [x for x in failed if x[0] < kill <= x[1]]
    dying = [x for x in failed if kill <= x[0] < gone]
    after = [x for x in failed if x[0] >= gone]
    in_flight_rows = [x for x in rows if x[0] < kill <= x[1]]
    in_flight_all = len(in_flight_rows)
    ok = [x for x in rows if x[2] == 0]
    # Redispatch costs time: session set-up time (connect to CONNACK) before the kill and for
    # the sessions that started while the dead broker was still in rotation.
    window_end = down if down is not None else kill + 0.5
    base = [(x[1] - x[0]) * 1e3 for x in ok if x[1] < kill]
    during = [(x[1] - x[0]) * 1e3 for x in ok if kill <= x[0] < window_end]
    # Sessions per 50 ms bucket from t0, for plots and for seeing a dip (raw).
    buckets = {}
    for x in rows:
        b = int((x[0] - ev["t0"]) / 0.05)
        d = buckets.setdefault(b, [0, 0])
        d[0 if x[2] == 0 else 1] += 1
    ms = lambda t, ref: None if t is None or ref is None else round((t - ref) * 1e3, 1)
    seconds = summary["seconds"]
    res = dict(
        proxy=name,
        last_syn_to_dead_ms=ms(dead_syns[-1], kill) if dead_syns else 0.0,
        syns_to_dead=len(dead_syns),
        last_any_syn_to_dead_ms=ms(dead_all[-1][0], kill) if dead_all else 0.0,
        syn_retransmits_to_dead=len(retransmits),
        syns_to_dead_after_down=len(after_down),
        last_syn_after_down_ms=ms(after_down[-1], down) if after_down else None,
        down_ms=ms(down, kill),
        failed_in_flight=len(in_flight),
        in_flight_at_kill=in_flight_all,
        failed_while_dying=len(dying),
        broker_death_ms=ms(gone, kill),
        failed_after_kill=len(after),
        failed_before_kill=len(before),
        failed_by_result={RESULT_NAMES[r]: sum(1 for x in failed if x[2] == r) for r in set(x[2] for x in failed)},
        back_ms=ms(back, listening_at),
        back_from_spawn_ms=ms(back, restart),
        up_ms=ms(up, listening_at),
        broker_listen_ms=ms(listening_at, restart),
        sessions=len(rows),
        ok=len(ok),
        sessions_per_s=len(ok) / seconds,
        cpu_s=cpu,
        cpu_us_per_session=cpu * 1e6 / max(1, len(ok)),
        setup_p50_ms_before=percentile(base, 0.5),
        setup_p99_ms_before=percentile(base, 0.99),
        setup_p99_ms_failover=percentile(during, 0.99),
        setup_max_ms_failover=max(during) if during else None,
        connections_at_dead_broker=load["connections_at_dead_broker_before_kill"],
        cpu1_busy_percent=load["busy_percent"].get("cpu1"),
        cpu0_longest_stall_ms=max((d for _, d in load["cpu0_stalls"]), default=0.0),
        raw=dict(events=ev, clients=summary, tcpdump=tcpdump_stats, load=load,
                 in_flight_at_kill=[(round(s - kill, 4), round(e - kill, 4), RESULT_NAMES[r], err)
                                    for s, e, r, err in in_flight_rows],
                 state_lines=[(round(t, 6), line) for t, line in lines if STATE_LINE.search(line)
                              or "no server available" in line],
                 check_syns=[round(t - kill, 4) for t in check_syns if kill - 0.5 <= t <= listening_at + 1],
                 client_syns_dead=[round(t - kill, 4) for t in dead_syns],
                 client_syn_retransmits_dead=[round(t - kill, 4) for t in retransmits],
                 client_syns_back=[round(t - listening_at, 4) for t in client_syns if listening_at <= t <= listening_at + 0.3][:50],
                 failed_sessions=[(round(s - kill, 4), round(e - kill, 4), RESULT_NAMES[r], err)
                                  for s, e, r, err in failed],
                 buckets_50ms={k: buckets[k] for k in sorted(buckets)},
                 stderr_tail=[line for _, line in lines[-20:]]),
    )
    return res


# ---------------------------------------------------------------- report

# (key, label, digits, goal text)
COLUMNS = [
    ("last_syn_to_dead_ms", "last new connection attempt to the dead broker, ms after kill -9", 0, "< 300"),
    ("syns_to_dead", "client connection attempts sent to the dead broker (first SYNs)", 0, "–"),
    ("syn_retransmits_to_dead", "  SYN retransmissions (a SYN that met the dead broker's TIME_WAIT)", 0, "–"),
    ("last_any_syn_to_dead_ms", "  last SYN of any kind to the dead broker, ms after kill", 0, "–"),
    ("down_ms", "DOWN reported by the proxy, ms after kill", 0, f"≤ fall × inter = {CHECK_FALL * CHECK_INTER_MS}"),
    ("syns_to_dead_after_down", "  of those attempts, sent after DOWN was reported", 0, "0"),
    ("last_syn_after_down_ms", "  latest such attempt, ms after DOWN was reported", 1, "–"),
    ("failed_in_flight", "failed sessions that were in flight at the kill", 0, "–"),
    ("in_flight_at_kill", "  sessions in flight at the kill (all brokers)", 0, "–"),
    ("connections_at_dead_broker", "  proxy connections open to the dead broker ~20 ms before the kill", 0, "–"),
    ("failed_while_dying", "failed sessions started after the kill, before the broker was reaped", 0, "–"),
    ("broker_death_ms", "  kill -9 to the broker reaped (its sockets closed), ms", 1, "–"),
    ("failed_after_kill", "failed sessions started after the broker was gone", 0, "0"),
    ("failed_before_kill", "failed sessions before the kill", 0, "0"),
    ("setup_p50_ms_before", "session set-up p50 before the kill, ms", 2, "–"),
    ("setup_p99_ms_failover", "session set-up p99 while the dead broker was in rotation, ms", 1, "–"),
    ("setup_max_ms_failover", "  slowest such session, ms", 1, "–"),
    ("up_ms", "UP reported by the proxy, ms after the broker listens again", 0, "–"),
    ("back_ms", "first client SYN to the restarted broker, ms after it listens", 0,
     f"≤ (rise + 1) × inter = {(CHECK_RISE + 1) * CHECK_INTER_MS}"),
    ("sessions_per_s", "sessions/s (whole run)", 0, "–"),
    ("cpu_us_per_session", "proxy CPU per session, µs", 1, "–"),
    ("cpu1_busy_percent", "CPU 1 busy (brokers, clients, tcpdump), %", 0, "–"),
    ("cpu0_longest_stall_ms", "longest wake-up delay of a 5 ms sleeper pinned beside the proxy, ms", 0, "–"),
]


def med(runs, proxy, key):
    v = [r[key] for r in runs if r.get("proxy") == proxy and not r.get("error") and r.get(key) is not None]
    if not v:
        return None
    return statistics.median(v), min(v), max(v)


def fmt(t, digits):
    if t is None:
        return "–"
    m, lo, hi = t
    f = lambda x: f"{x:,.{digits}f}"
    return f(m) if f(lo) == f(hi) else f"{f(m)} ({f(lo)}–{f(hi)})"


def table(runs):
    md = ["| per run (median, min–max) | ringproxy | HAProxy 2.6 | goal |", "|---|---|---|---|"]
    for key, label, digits, goal in COLUMNS:
        md.append(f"| {label} | {fmt(med(runs, 'ringproxy', key), digits)} | "
                  f"{fmt(med(runs, 'haproxy', key), digits)} | {goal} |")
    return md


def machine():
    def sh(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=REPO).stdout.strip()
        except Exception:
            return ""
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    dirty = sh(["git", "status", "--porcelain", "--untracked-files=no"])
    return dict(kernel=platform.release(), cpu=model, nproc=os.cpu_count(),
                date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                git_rev=sh(["git", "rev-parse", "HEAD"]) + ("-dirty" if dirty else ""),
                haproxy=(sh(["haproxy", "-v"]).splitlines() or [""])[0],
                mosquitto=(sh(["mosquitto", "-h"]).splitlines() or [""])[0],
                load=open("/proc/loadavg").read().strip())


def write_report(cfg, runs, mach, elapsed, cfgtext):
    os.makedirs(cfg.out, exist_ok=True)
    with open(os.path.join(cfg.out, "results.json"), "w") as f:
        json.dump(dict(machine=mach, args=vars(cfg), elapsed_s=round(elapsed, 1), haproxy_cfg=cfgtext, runs=runs),
                  f, indent=1)
    with open(os.path.join(cfg.out, "haproxy.cfg"), "w") as f:
        f.write(cfgtext)
    md = [f"# Failover under churn: ringproxy vs HAProxy 2.6 ({'smoke' if cfg.smoke else 'full'}, "
          f"repeat {cfg.repeat})", "",
          f"{cfg.clients} clients connect, CONNECT, wait for CONNACK ({cfg.timeout_ms} ms), DISCONNECT and close, "
          f"pausing 0–{cfg.pause_ms} ms, for {cfg.seconds:g} s, through each proxy to three mosquitto brokers; "
          f"broker b{DEAD + 1} is killed with SIGKILL at {cfg.kill_at:g} s and restarted at {cfg.restart_at:g} s. "
          "Both proxies load the same haproxy.cfg (beside this file): checks every "
          f"{CHECK_INTER_MS} ms (fall {CHECK_FALL}, rise {CHECK_RISE}) to 127.0.0.2, clients' traffic to 127.0.0.1, "
          "`retries 3`, `option redispatch`. Proxy pinned to CPU 0 (one worker / thread); brokers, clients and "
          "tcpdump on CPU 1. SYN times from `tcpdump -i lo -tt`; DOWN/UP times are each proxy's stderr line "
          "stamped on arrival. Runs interleaved.", ""] + table(runs) + [""]
    for r in runs:
        if r.get("error"):
            md.append(f"Failed: {r['proxy']} (repeat {r['repeat']}): {r['error']}")
        else:
            fails = r["raw"]["failed_sessions"]
            md.append(f"- {r['proxy']} r{r['repeat']}: SYNs to the dead broker at +"
                      f"{', +'.join(f'{x * 1e3:.0f}' for x in r['raw']['client_syns_dead'][:12]) or '(none)'}"
                      f"{' …' if len(r['raw']['client_syns_dead']) > 12 else ''} ms; DOWN +{r['down_ms']} ms; "
                      f"failed sessions (start, end ms from the kill, result): "
                      f"{'; '.join(f'{s * 1e3:+.0f} → {e * 1e3:+.0f} {n}' for s, e, n, _ in fails[:8]) or 'none'}"
                      f"{' …' if len(fails) > 8 else ''}; first SYN to the returned broker +{r['back_ms']} ms "
                      f"(UP +{r['up_ms']} ms)")
    md += ["", "## Machine", ""] + [f"- {k}: {v}" for k, v in mach.items()] + [
        f"- command: `python3 Benchmarks/failover/failover.py {' '.join(sys.argv[1:])}`".rstrip(),
        f"- driver wall time: {elapsed:.0f} s", ""]
    with open(os.path.join(cfg.out, "results.md"), "w") as f:
        f.write("\n".join(md))
    return md


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="repeat 1, 60 clients, 3 s (kill at 1 s, restart at 2 s)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clients", type=int, default=300)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--kill-at", type=float, default=2.0)
    ap.add_argument("--restart-at", type=float, default=4.0)
    ap.add_argument("--pause-ms", type=int, default=50)
    ap.add_argument("--timeout-ms", type=int, default=2000)
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds between the proxy's start and the load")
    ap.add_argument("--proxies", default=",".join(PROXIES))
    ap.add_argument("--out", default=os.path.join(REPO, "Benchmarks", "results", "failover-latest"))
    ap.add_argument("--no-build", action="store_true", help="use the existing release binary")
    ap.add_argument("--hold-build-lock", action="store_true",
                    help=f"hold {sbs.BUILD_LOCK} while measuring, so no build that takes it shares the CPUs")
    cfg = ap.parse_args()
    if cfg.smoke:
        cfg.repeat, cfg.clients, cfg.seconds, cfg.kill_at, cfg.restart_at, cfg.warmup = 1, 60, 3.0, 1.0, 2.0, 0.5
    if not (0 < cfg.kill_at < cfg.restart_at < cfg.seconds) or not 1 <= cfg.repeat <= 20 or not 1 <= cfg.clients <= 4000:
        die("need 0 < --kill-at < --restart-at < --seconds, repeat 1..20, clients 1..4000")
    if os.cpu_count() < 2:
        die("needs at least 2 CPUs (proxy on CPU 0, the rest on CPU 1)")
    check_tools()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    subprocess.run(["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"], capture_output=True)
    t_start = time.time()
    atexit.register(sbs.cleanup)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, lambda *_: sys.exit(1))
    scratch = tempfile.mkdtemp(prefix="rp-failover.")
    os.chmod(scratch, 0o777)   # mosquitto drops root to its own user
    sbs.scratch = scratch      # removed by sbs.cleanup at exit
    binpath, clients_bin = build(cfg.no_build, scratch)
    cfgtext = haproxy_cfg()
    cfgpath = os.path.join(scratch, "haproxy.cfg")
    with open(cfgpath, "w") as f:
        f.write(cfgtext)
    os.chmod(cfgpath, 0o644)
    for cmd in ([binpath, "-c", "-f", cfgpath], ["haproxy", "-c", "-f", cfgpath]):
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            die(f"{' '.join(cmd)} refused the configuration:\n{r.stdout}{r.stderr}")
    chosen = [p for p in PROXIES if p in cfg.proxies.split(",")]
    if cfg.hold_build_lock:
        import fcntl
        lock = open(sbs.BUILD_LOCK, "a")
        for _ in range(600):   # at most 10 minutes for a build that holds it to finish
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(1)
        else:
            die(f"{sbs.BUILD_LOCK} stayed busy for 10 minutes")
        log(f"holding {sbs.BUILD_LOCK} while measuring")
    runs = []
    for rep in range(cfg.repeat):
        for name in chosen:
            rec = dict(proxy=name, repeat=rep)
            try:
                rec.update(one_run(cfg, name, f"{name}-r{rep}", binpath, clients_bin, cfgpath, scratch))
                log(f"r{rep} {name:9s} last SYN to dead +{rec['last_syn_to_dead_ms']} ms ({rec['syns_to_dead']} SYNs, "
                    f"{rec['syns_to_dead_after_down']} after DOWN at +{rec['down_ms']} ms); failed: in flight "
                    f"{rec['failed_in_flight']}, dying {rec['failed_while_dying']}, after {rec['failed_after_kill']}, before {rec['failed_before_kill']}; "
                    f"back +{rec['back_ms']} ms (UP +{rec['up_ms']}); {rec['sessions_per_s']:,.0f} sessions/s, "
                    f"{rec['cpu_us_per_session']:.1f} CPU-µs/session")
            except Exception as e:
                rec["error"] = str(e)
                log(f"r{rep} {name} FAILED: {e}")
            runs.append(rec)
            # Keep each run's raw stderr beside the results.
            os.makedirs(os.path.join(cfg.out, "stderr"), exist_ok=True)
            src = os.path.join(scratch, f"{name}-r{rep}.stderr")
            if os.path.exists(src):
                shutil.copy(src, os.path.join(cfg.out, "stderr", f"{name}-r{rep}.txt"))
    md = write_report(cfg, runs, machine(), time.time() - t_start, cfgtext)
    print("\n".join(md))
    log(f"wrote {cfg.out}/results.md and results.json in {time.time() - t_start:.0f} s")
    return 0 if runs and not any(r.get("error") for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
