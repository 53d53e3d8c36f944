#!/usr/bin/env python3
"""Issue 16: N concurrent MQTT sessions through one ringproxy process on this machine.

Usage: python3 Benchmarks/million/million.py [--connections 1000000] [--steps 100000,250000,...]
                                             [--proxy ringproxy|haproxy|nginx] [--out DIR]

For each count (a fresh set-up per count): 60 mqttbackend processes (C, epoll; each under the
20,000 open-files limit, so 60 hold a million) on ports 29101-29160; the proxy in front on
127.0.0.1:29100 with the seed's MQTT rules (CONNECT validated, stick table on the client id sized
for the count) and a round-robin backend of the 60, its server connections leaving from a source
pool (`source 127.0.1.1-127.0.1.30`); `ringbench idle` opens the sessions (CONNECT/CONNACK each)
from 60 loopback source addresses and holds them with a PINGREQ on each every --keepalive seconds
(60 s), spread over the interval. Measured, beside a run with none held:
  - time to open, open rate, failures (goal 0), PINGREQs unanswered;
  - the proxy's RSS per connection (whole RSS after minus before, and over the idle baseline);
  - kernel memory per proxied connection: Slab + the sockets' tcp_mem pages + page tables
    (whole machine, four sockets per proxied connection: client, the proxy's two, backend);
    the slab caches that grew, per connection;
  - CPU per second spent keeping them alive: the proxy's own and the whole machine's over
    --cpu-window seconds of the hold (pings flowing);
  - PUBLISH round trip on one more connection (QoS 0, echoed by the backend, one in flight):
    p50/p99 with N held against the same with none held.
Safety: MemAvailable is watched while connections open; below --memory-floor-mib the opening is
stopped (the clients' SIGTERM), and the run reports the count reached and what ran out.
The sysctls a million sockets need (fs.file-max: every socket has a struct file, direct
descriptors included) are raised for the run and restored after.
Prints one JSON line per count and writes DIR/million.json (+ million.png when matplotlib is there).
"""
import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROXY_PORT = 29100
BACKEND_PORTS = list(range(29101, 29161))
PER_BACKEND = 19_500


def log(msg):
    print(f"[million] {msg}", file=sys.stderr, flush=True)


def meminfo():
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0])
    return out


def sockstat_tcp():
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                parts = line.split()[1:]
                return {parts[i]: int(parts[i + 1]) for i in range(0, len(parts), 2)}
    return {}


def tcp_counters():
    """The kernel's TCP counters (Tcp: from /proc/net/snmp, TcpExt: from /proc/net/netstat) of
    this network namespace: their growth over the hold says whether packets were dropped or
    retransmitted (a PINGREQ or PINGRESP dropped under memory pressure waits for a retransmit)."""
    out = {}
    for path in ("/proc/net/snmp", "/proc/net/netstat"):
        with open(path) as f:
            lines = f.read().splitlines()
        for names, values in zip(lines[0::2], lines[1::2]):
            kind, keys = names.split(":", 1)
            if kind not in ("Tcp", "TcpExt"):
                continue
            for k, v in zip(keys.split(), values.split(":", 1)[1].split()):
                out[f"{kind}.{k}"] = int(v)
    return out


def counters_grown(before, after):
    return {k: after[k] - before.get(k, 0) for k in sorted(after)
            if after[k] - before.get(k, 0) != 0 and not k.startswith(("Tcp.CurrEstab", "Tcp.RtoAlgorithm",
                                                                        "Tcp.RtoMin", "Tcp.RtoMax", "Tcp.MaxConn"))}


def queued_sockets():
    """Established sockets of the run holding bytes (Recv-Q or Send-Q not 0), by where they are:
    after the pings have stopped, a PINGREQ or PINGRESP still queued says which hop holds it.
    Ports: the proxy listens on PROXY_PORT, the backends on BACKEND_PORTS."""
    out = subprocess.run(["ss", "-tnH", "state", "established"], capture_output=True, text=True, timeout=300).stdout
    kinds = {}
    examples = {}
    for line in out.splitlines():
        p = line.split()
        if len(p) < 4:
            continue
        rq, sq, local, peer = int(p[0]), int(p[1]), p[2], p[3]
        if rq == 0 and sq == 0:
            continue
        lport, pport = int(local.rsplit(":", 1)[1]), int(peer.rsplit(":", 1)[1])
        if lport == PROXY_PORT:
            where = "proxy, client side"
        elif lport in BACKEND_PORTS:
            where = "backend"
        elif pport == PROXY_PORT:
            where = "client"
        elif pport in BACKEND_PORTS:
            where = "proxy, server side"
        else:
            continue
        key = f"{where}: " + ("recv-q" if rq else "") + ("+" if rq and sq else "") + ("send-q" if sq else "")
        kinds[key] = kinds.get(key, 0) + 1
        if len(examples.setdefault(key, [])) < 3:
            examples[key].append(line.strip())
    return dict(counts=kinds, examples=examples)


def slabinfo():
    """Bytes per slab cache (active objects x object size)."""
    out = {}
    try:
        with open("/proc/slabinfo") as f:
            for line in f.readlines()[2:]:
                p = line.split()
                out[p[0]] = int(p[1]) * int(p[3])
    except OSError:
        pass
    return out


def proc_status(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            p = f.read().rsplit(")", 1)[1].split()
        return (int(p[11]) + int(p[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def machine_busy():
    """(busy, total) jiffies over all CPUs."""
    with open("/proc/stat") as f:
        p = [int(x) for x in f.readline().split()[1:]]
    idle = p[3] + p[4]
    return sum(p) - idle, sum(p)


def set_sysctl(name, value, saved):
    path = "/proc/sys/" + name.replace(".", "/")
    with open(path) as f:
        saved.setdefault(name, f.read().strip())
    with open(path, "w") as f:
        f.write(str(value))


def restore_sysctls(saved):
    for name, value in saved.items():
        try:
            with open("/proc/sys/" + name.replace(".", "/"), "w") as f:
                f.write(value)
        except OSError as e:
            log(f"could not restore {name}: {e}")


# tcp_mem (pages) as tuning/sysctl-ringproxy.conf has it: the default (~1.5 GB before pressure on
# this machine) is reached by the queues of ~300k sessions being opened.
TCP_MEM = "1048576 1572864 2097152"


def in_own_netns(buckets):
    """Runs this script again inside a network namespace with its own established-hash table of
    `buckets` buckets (the host's is sized at boot: 262,144 for 24 GiB, so 4 M sockets make
    chains of ~16 that every segment's lookup walks). Returns its exit code."""
    name = f"million-{os.getpid()}"
    saved = {}
    try:
        set_sysctl("net.ipv4.tcp_child_ehash_entries", buckets, saved)
        subprocess.run(["ip", "netns", "add", name], check=True)
        restore_sysctls(saved)   # only namespaces made meanwhile get the table
        saved = {}
        set_sysctl("net.ipv4.tcp_mem", TCP_MEM, saved)   # host-wide, not visible in the namespace
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        log(f"network namespace {name}: established hash of {buckets} buckets")
        return subprocess.run(["ip", "netns", "exec", name, sys.executable, *sys.argv],
                              env=dict(os.environ, MILLION_NETNS=name)).returncode
    finally:
        restore_sysctls(saved)
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


def build_tools(args, scratch):
    tools = {}
    src = os.path.join(REPO, "Benchmarks", "tools", "mqttbackend.c")
    dst = os.path.join(scratch, "mqttbackend")
    subprocess.run(["gcc", "-O2", "-pthread", src, "-o", dst, "-lcrypto"], check=True)
    tools["mqttbackend"] = dst
    if args.bin is None or args.ringbench is None:
        for product in ("ringproxy", "ringbench"):
            subprocess.run(["flock", "/tmp/ringproxy-build.lock", "swift", "build", "-c", "release", "--product", product],
                           cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        binpath = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=REPO, check=True,
                                 capture_output=True, text=True).stdout.strip()
    tools["ringproxy"] = args.bin or os.path.join(binpath, "ringproxy")
    tools["ringbench"] = args.ringbench or os.path.join(binpath, "ringbench")
    return tools


def mqtt_cfg(maxconn, sessions, nbthread, servers, global_extra="", defaults_extra="", frontend_extra="", backend_extra=""):
    """The seed's MQTT rules (CONNECT validated, stick table on the client id) in front of the
    60 backends: the one file both ringproxy and HAProxy get, each with its own extras."""
    return f"""global
  maxconn {maxconn}
  nbthread {nbthread}
{global_extra}defaults
  mode tcp
{defaults_extra}  timeout connect 5s
  timeout client 300s
  timeout server 300s
frontend mqtt
  bind 127.0.0.1:{PROXY_PORT}
  tcp-request inspect-delay 5s
  tcp-request content reject unless {{ req.payload(0,0),mqtt_is_valid }}
{frontend_extra}  default_backend brokers
backend brokers
  balance roundrobin
  tcp-request inspect-delay 5s
  stick-table type string len 32 size {max(1, math.ceil((sessions + 2000) / 1000))}k expire 30m
  stick on req.payload(0,0),mqtt_field_value(connect,client_identifier)
{backend_extra}{servers}
"""


def ringproxy_cfg(n, cores, log=False):
    servers = "\n".join(f"  server s{i + 1} 127.0.0.1:{p}" for i, p in enumerate(BACKEND_PORTS))
    return mqtt_cfg(n + 2000, n, cores, servers,
                    global_extra="  log stderr local0\n" if log else "\n",
                    defaults_extra="  log global\n  option tcplog\n" if log else "\n",
                    frontend_extra="  option mqtt-keepalive-timeout\n",
                    backend_extra="  source 127.0.1.1-127.0.1.30\n")


def haproxy_cfg(n):
    # HAProxy has no address ranges in `source`: each server gets one of the 30 addresses.
    servers = "\n".join(f"  server s{i + 1} 127.0.0.1:{p} source 127.0.1.{1 + i % 30}" for i, p in enumerate(BACKEND_PORTS))
    # One process: two fds per session under the 20,000 open-files limit.
    return mqtt_cfg(min(n + 2000, 9_900), n, 2, servers)


def nginx_cfg(n, scratch):
    servers = "\n".join(f"    server 127.0.0.1:{p};" for p in BACKEND_PORTS)
    return f"""load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 2;
worker_rlimit_nofile 20000;
error_log {scratch}/nginx-error.log warn;
pid {scratch}/nginx.pid;
events {{ worker_connections {min(n * 2 + 100, 19_900)}; }}
stream {{
  upstream b {{
{servers}
  }}
  server {{ listen 127.0.0.1:{PROXY_PORT} reuseport; proxy_pass b; proxy_bind 127.0.1.1; proxy_timeout 300s; }}
}}
"""


def wait_listening(port, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout
        if out.strip():
            return True
        time.sleep(0.1)
    return False


def proxy_pids(proc, kind):
    if kind == "nginx":
        out = subprocess.run(["pgrep", "-f", f"nginx.*{PROXY_PORT}|nginx: worker|nginx: master"], capture_output=True, text=True).stdout
        return [int(x) for x in out.split()] or [proc.pid]
    return [proc.pid]


def ping_latency(tools, seconds):
    """PUBLISH round trips on one connection (one in flight): (p50 µs, p99 µs)."""
    r = subprocess.run([tools["ringbench"], "pingpong", "--target", f"127.0.0.1:{PROXY_PORT}", "--connections", "1",
                        "--window", "1", "--seconds", str(seconds), "--mqtt", "--sources", "127.0.0.200-127.0.0.200"],
                       capture_output=True, text=True, timeout=seconds + 60)
    try:
        j = json.loads(r.stdout.strip().splitlines()[-1])
        return j["p50_us"], j["p99_us"], j["operations"]
    except (IndexError, ValueError, KeyError):
        return None, None, 0


def run_count(args, tools, n, scratch):
    procs = []

    def start(cmd, **kw):
        p = subprocess.Popen(cmd, **kw)
        procs.append(p)
        return p

    result = dict(proxy=args.proxy, requested=n)
    perf_data = None
    try:
        for port in BACKEND_PORTS:
            start([tools["mqttbackend"], str(port), "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for port in BACKEND_PORTS:
            if not wait_listening(port):
                raise RuntimeError(f"mqttbackend on {port} did not start")
        errpath = os.path.join(scratch, f"{args.proxy}-{n}.stderr")
        errf = open(errpath, "w")
        if args.proxy == "ringproxy":
            cfg = os.path.join(scratch, "ringproxy.cfg")
            with open(cfg, "w") as f:
                f.write(ringproxy_cfg(n, args.cores, args.log))
            proxy = start([tools["ringproxy"], "-f", cfg], stderr=errf)
            result["log"] = errpath
        elif args.proxy == "haproxy":
            cfg = os.path.join(scratch, "haproxy.cfg")
            with open(cfg, "w") as f:
                f.write(haproxy_cfg(n))
            proxy = start(["haproxy", "-f", cfg, "-db"], stderr=errf, stdout=errf)
        else:
            cfg = os.path.join(scratch, "nginx.conf")
            with open(cfg, "w") as f:
                f.write(nginx_cfg(n, scratch))
            proxy = start(["nginx", "-c", cfg, "-p", scratch, "-g", "daemon off;"], stderr=errf, stdout=errf)
        if not wait_listening(PROXY_PORT):
            raise RuntimeError(f"{args.proxy} did not start: " + open(errpath).read()[-500:])
        time.sleep(1.0)
        pids = proxy_pids(proxy, args.proxy)
        if args.proxy == "ringproxy":
            # The listeners are up before every ring is (114 of them at a million): wait for the line.
            started, deadline = [], time.time() + 20
            while not started and time.time() < deadline:
                with open(errpath) as f:
                    started = [l for l in f if "started " in l]
                if not started:
                    time.sleep(0.2)
            result["start_line"] = started[0].strip() if started else None
        p50, p99, ops = ping_latency(tools, args.latency_seconds)
        result["publish_rtt_none_held"] = dict(p50_us=p50, p99_us=p99, round_trips=ops)
        rss0 = sum(proc_status(p, "VmRSS") for p in pids)
        mem0, sock0, slab0 = meminfo(), sockstat_tcp(), slabinfo()
        with open("/proc/sys/fs/file-nr") as f:
            files0 = int(f.read().split()[0])

        threads = max(1, math.ceil(n / 19_000))
        # About 4,000 sessions being opened at once over all threads: more only waits in queues
        # (a session not open within 5 s is given up, and a given-up one is churn for everyone).
        opening = args.opening or max(16, min(512, 4096 // threads))
        # 199 source addresses (~5,000 sessions each at a million): ringbench binds each socket
        # to its source with port 0, and the kernel's search for a free port slows down as an
        # address's ephemeral range fills (60 addresses: the opening fell to ~350/s past 800k,
        # ringbench spinning in the kernel).
        # ringbench's clock starts once every session is open: the hold covers the measurements.
        hold = 3 + args.cpu_window + args.perf + 2 * args.latency_seconds + 15
        bench = start([tools["ringbench"], "idle", "--target", f"127.0.0.1:{PROXY_PORT}", "--connections", str(n),
                       "--threads", str(threads), "--sources", "127.0.0.1-127.0.0.199", "--opening", str(opening),
                       "--open-seconds", str(int(args.open_timeout)), "--rate", str(args.rate),
                       # Pings start once every session is open: the Keep Alive each CONNECT
                       # announces covers the opening (or the proxy's mqtt-keepalive-timeout
                       # would rightly reap the first sessions as dead devices).
                       "--connect-keepalive", str(int(max(args.keepalive, (args.open_timeout + 60) / 1.5))),
                       "--seconds", str(hold), "--keepalive", str(args.keepalive),
                       "--answer-grace", str(args.answer_grace)],
                      stdout=subprocess.PIPE, stderr=open(os.path.join(scratch, f"ringbench-{n}.stderr"), "w"), text=True)
        os.set_blocking(bench.stdout.fileno(), False)
        t0 = time.time()
        ready, low_memory, min_avail = None, None, None
        buf = ""
        while time.time() - t0 < args.open_timeout and bench.poll() is None:
            avail = meminfo()["MemAvailable"] // 1024
            min_avail = avail if min_avail is None else min(min_avail, avail)
            if avail < args.memory_floor_mib:
                low_memory = dict(mem_available_mib=avail, tcp=sockstat_tcp(), seconds=round(time.time() - t0, 1))
                log(f"MemAvailable {avail} MiB < {args.memory_floor_mib}: stopping the opening")
                break
            try:
                buf += bench.stdout.read() or ""
            except (BlockingIOError, TypeError):
                pass
            for line in buf.splitlines():
                if '"phase":"ready"' in line and ready is None:
                    ready = json.loads(line)
                    t_ready = time.time()
            if ready:
                break
            time.sleep(0.5)
        result["min_mem_available_mib"] = min_avail
        if low_memory:
            result["ran_out"] = low_memory
        if ready is None:
            tcp = sockstat_tcp()
            result["ready"] = None
            result["held_when_stopped_estimate"] = (tcp.get("inuse", 0) - sock0.get("inuse", 0)) // 4
            raise RuntimeError(f"not all {n} sessions opened within {args.open_timeout} s")
        result["ready"] = ready
        held = ready["connections"]
        log(f"{held} sessions open in {ready['open_seconds']} s ({ready['failed']} failed)")
        tcp_held = tcp_counters()
        # Once ringbench has stopped pinging (its hold is over) and before it closes anything
        # (it waits up to --answer-grace s for the last answers), where are the unanswered pings?
        at_end = {}

        def after_the_pings():
            if bench.poll() is not None:
                return
            at_end["tcp_counters_grown_during_hold"] = counters_grown(tcp_held, tcp_counters())
            try:
                at_end["queued_sockets_after_the_pings"] = queued_sockets()
            except (OSError, subprocess.SubprocessError) as e:
                at_end["queued_sockets_after_the_pings"] = dict(error=str(e))
            at_end["bench_still_running"] = bench.poll() is None

        timer = threading.Timer(max(0.0, hold + 2.0 - (time.time() - t_ready)), after_the_pings)
        timer.daemon = True
        timer.start()
        time.sleep(3)
        rss1 = sum(proc_status(p, "VmRSS") for p in pids)
        mem1, sock1, slab1 = meminfo(), sockstat_tcp(), slabinfo()
        with open("/proc/sys/fs/file-nr") as f:
            files1 = int(f.read().split()[0])
        # CPU while the pings flow (every connection pinged once per --keepalive seconds).
        c0 = sum(cpu_seconds(p) for p in pids)
        b0, tot0 = machine_busy()
        time.sleep(args.cpu_window)
        c1 = sum(cpu_seconds(p) for p in pids)
        b1, tot1 = machine_busy()
        ncpu = os.cpu_count()
        if args.proxy == "ringproxy":
            proxy.send_signal(signal.SIGUSR1)   # its counters into its stderr (copied to --out)
        if args.perf > 0:
            # Where the machine's CPU goes while the sessions are held (after the CPU window, so
            # perf's own cost is not in that figure). perf runs at a real-time priority: on a
            # saturated machine it would otherwise not get to stop in time; 499 Hz keeps its
            # data small. The reports are made once everything is stopped.
            perf_data = os.path.join(scratch, "perf.data")
            try:
                subprocess.run(["chrt", "-f", "50", "perf", "record", "-a", "-g", "-F", "499", "-o", perf_data,
                                "--", "sleep", str(args.perf)], capture_output=True, timeout=args.perf + 120)
            except subprocess.TimeoutExpired:
                result["perf_error"] = "perf record did not finish"
        p50h, p99h, opsh = ping_latency(tools, args.latency_seconds)
        rss2 = sum(proc_status(p, "VmRSS") for p in pids)
        kernel_kb = ((mem1["Slab"] - mem0["Slab"]) + (mem1["PageTables"] - mem0["PageTables"])
                     + (sock1.get("mem", 0) - sock0.get("mem", 0)) * 4)
        slab_growth = {k: v - slab0.get(k, 0) for k, v in slab1.items() if v - slab0.get(k, 0) > 1 << 20}
        result.update(
            held=held,
            open_seconds=ready["open_seconds"], open_per_second=ready["open_per_second"], open_failed=ready["failed"],
            proxy_rss_mib=dict(before=round(rss0 / 1024, 1), held=round(rss1 / 1024, 1), after_cpu_window=round(rss2 / 1024, 1)),
            proxy_rss_per_conn_b=round(rss1 * 1024 / held, 1),
            proxy_rss_added_per_conn_b=round((rss1 - rss0) * 1024 / held, 1),
            kernel_per_proxied_conn_b=round(kernel_kb * 1024 / held, 1),
            kernel_breakdown_per_conn_b=dict(
                slab=round((mem1["Slab"] - mem0["Slab"]) * 1024 / held, 1),
                page_tables=round((mem1["PageTables"] - mem0["PageTables"]) * 1024 / held, 1),
                tcp_mem_pages=round((sock1.get("mem", 0) - sock0.get("mem", 0)) * 4096 / held, 1)),
            slab_caches_per_conn_b={k: round(v / held, 1) for k, v in sorted(slab_growth.items(), key=lambda kv: -kv[1])[:8]},
            tcp_sockets_added=sock1.get("inuse", 0) - sock0.get("inuse", 0),
            files_added=files1 - files0,
            mem_available_mib=mem1["MemAvailable"] // 1024,
            cpu_window_s=args.cpu_window,
            keepalive_s=args.keepalive,
            proxy_cpu_per_s=round((c1 - c0) / args.cpu_window, 4),
            machine_cpu_per_s=round((b1 - b0) / max(1, tot1 - tot0) * ncpu, 4),
            publish_rtt_held=dict(p50_us=p50h, p99_us=p99h, round_trips=opsh),
        )
        try:
            out, _ = bench.communicate(timeout=hold + args.answer_grace + 120)
            lines = [l for l in (buf + (out or "")).splitlines() if l.startswith("{") and '"phase"' not in l]
            if lines:
                final = json.loads(lines[-1])
                result["pings"] = dict(sent=final.get("pings_sent"), unanswered=final.get("pings_unanswered"),
                                       answer_grace_s=args.answer_grace,
                                       rtt_us={k: final.get(k) for k in ("p50_us", "p99_us", "p999_us", "ping_max_us")},
                                       # ringbench's count includes the sessions that never opened
                                       failed_during_hold=(final.get("failed") or 0) - ready["failed"])
                result["failure_causes"] = final.get("failure_causes")
            timer.cancel()   # ringbench is done: a snapshot not yet taken would only see it gone
            timer.join()
            result.update(at_end)
            result["tcp_counters_grown_until_bench_exit"] = counters_grown(tcp_held, tcp_counters())
        except subprocess.TimeoutExpired:
            pass
    except RuntimeError as e:
        result["error"] = str(e)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGKILL if p is not procs[-1] else signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
        if args.proxy == "nginx":
            subprocess.run(["pkill", "-f", f"nginx -c {scratch}"], capture_output=True)
        # Let the kernel free the sockets before the next count.
        deadline = time.time() + 120
        while time.time() < deadline and sockstat_tcp().get("alloc", 0) > 5000:
            time.sleep(1)
    if perf_data and os.path.exists(perf_data):
        for sort, name in (("comm", "comm"), ("comm,dso,sym", "sym")):
            rep = subprocess.run(["perf", "report", "-i", perf_data, "--no-children", "--stdio", "-g", "none",
                                  "--percent-limit", "0.5", "--sort", sort],
                                 capture_output=True, text=True, timeout=600)
            with open(os.path.join(args.out, f"perf-{args.proxy}-{n}-{name}.txt"), "w") as f:
                f.write(rep.stdout)
    return result


def chart(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    ok = [r for r in results if r.get("held")]
    if not ok:
        return False
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    for proxy in sorted({r["proxy"] for r in ok}):
        rs = sorted((r for r in ok if r["proxy"] == proxy), key=lambda r: r["held"])
        x = [r["held"] / 1000 for r in rs]
        ax[0].plot(x, [r["proxy_rss_per_conn_b"] for r in rs], marker="o", label=f"{proxy}: RSS / conn")
        ax[0].plot(x, [r["kernel_per_proxied_conn_b"] for r in rs], marker="s", linestyle="--",
                   label=f"{proxy} run: kernel / proxied conn (4 sockets)")
        ax[1].plot(x, [r["proxy_cpu_per_s"] * 1000 for r in rs], marker="o", label=f"{proxy}: CPU ms/s")
        ax[1].plot(x, [r["machine_cpu_per_s"] * 1000 for r in rs], marker="s", linestyle="--", label=f"{proxy} run: machine CPU ms/s")
    ax[0].set_xlabel("sessions held (thousands)")
    ax[0].set_ylabel("bytes per connection")
    ax[0].set_yscale("log")
    ax[0].legend(fontsize=7)
    ax[0].grid(alpha=0.3)
    ax[1].set_xlabel("sessions held (thousands)")
    ax[1].set_ylabel("CPU ms per second (pings every 60 s)")
    ax[1].legend(fontsize=7)
    ax[1].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--connections", type=int, default=1_000_000)
    ap.add_argument("--steps", default=None, help="comma-separated counts (each a fresh run); default: --connections")
    ap.add_argument("--proxy", choices=["ringproxy", "haproxy", "nginx"], default="ringproxy")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--bin", default=None, help="ringproxy binary (default: swift build -c release)")
    ap.add_argument("--ringbench", default=None)
    ap.add_argument("--keepalive", type=float, default=60)
    ap.add_argument("--opening", type=int, default=0, help="sessions being opened at once per ringbench thread (0: ~4,000 over all)")
    ap.add_argument("--open-timeout", type=float, default=600)
    ap.add_argument("--rate", type=float, default=0,
                    help="sessions opened per second (0: as fast as they go; a million at once as fast as they go is a "
                         "SYN storm over 100+ rings on 2 CPUs, in which sessions time out: 5000 opens one in 200 s)")
    ap.add_argument("--cpu-window", type=float, default=60)
    ap.add_argument("--latency-seconds", type=float, default=5)
    ap.add_argument("--memory-floor-mib", type=int, default=1536)
    ap.add_argument("--log", action="store_true", help="ringproxy's connection log to DIR/ringproxy-N.log (diagnosis)")
    ap.add_argument("--perf", type=float, default=0,
                    help="seconds of `perf record -a -g` while the sessions are held, after the CPU window "
                         "(reports by command and by symbol into --out; diagnosis)")
    ap.add_argument("--answer-grace", type=float, default=5,
                    help="seconds ringbench waits, once the pings stop, for the answers still owed "
                         "(a PINGRESP later than that is counted unanswered; diagnosis: late or lost)")
    ap.add_argument("--ehash", type=int, default=0,
                    help="run everything in a network namespace made for the run whose TCP established-hash table "
                         "has this many buckets (net.ipv4.tcp_child_ehash_entries, a power of two up to 2^24); "
                         "0: the host's table, sized at boot from RAM (262,144 buckets here)")
    ap.add_argument("--out", default=os.path.join(REPO, "Benchmarks", "results", "million-latest"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("million.py needs root (sysctls, loopback source addresses)")
    # SIGTERM (a CI timeout) unwinds like ^C, so the finally blocks stop what was started and
    # restore the sysctls.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    if args.ehash and not os.environ.get("MILLION_NETNS"):
        sys.exit(in_own_netns(args.ehash))
    steps = [int(x) for x in args.steps.split(",")] if args.steps else [args.connections]
    if len(BACKEND_PORTS) * PER_BACKEND < max(steps):
        sys.exit(f"at most {len(BACKEND_PORTS) * PER_BACKEND} sessions (60 backends)")
    os.makedirs(args.out, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="ringproxy-million.")
    saved = {}
    results = []
    try:
        tools = build_tools(args, scratch)
        # Every socket has a struct file (direct descriptors too): four per proxied session.
        set_sysctl("fs.file-max", max(8_388_608, 5 * max(steps)), saved)
        set_sysctl("net.core.somaxconn", 65535, saved)
        set_sysctl("net.ipv4.tcp_max_syn_backlog", 65535, saved)
        if not os.environ.get("MILLION_NETNS"):   # host-wide: set by in_own_netns otherwise
            set_sysctl("net.ipv4.tcp_mem", TCP_MEM, saved)
        for n in steps:
            log(f"{args.proxy}: {n} sessions")
            r = run_count(args, tools, n, scratch)
            print(json.dumps(r), flush=True)
            results.append(r)
    finally:
        restore_sysctls(saved)
        # The processes' stderr (ringproxy's start-up line and counters at SIGUSR1; with --log
        # its connection log too) and ringbench's.
        for name in os.listdir(scratch):
            if name.endswith(".stderr"):
                shutil.copy(os.path.join(scratch, name), args.out)
        shutil.rmtree(scratch, ignore_errors=True)
    path = os.path.join(args.out, f"million-{args.proxy}.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    everything = []
    for name in os.listdir(args.out):
        if name.startswith("million-") and name.endswith(".json"):
            with open(os.path.join(args.out, name)) as f:
                everything += json.load(f)
    chart(everything, os.path.join(args.out, "million.png"))
    # Pass: every session opened, none lost while held, every PINGREQ answered.
    def passed(r):
        pings = r.get("pings") or {}
        return (r.get("held") == r["requested"] and not r.get("error") and r.get("open_failed") == 0
                and pings.get("failed_during_hold") == 0 and pings.get("unanswered") == 0)
    sys.exit(0 if all(passed(r) for r in results) else 1)


if __name__ == "__main__":
    main()
