#!/usr/bin/env python3
"""Side-by-side benchmark driver: ringproxy vs HAProxy 2.6 vs nginx stream vs direct.

Usage: python3 Benchmarks/driver/sidebyside.py [--smoke] [--repeat 3] [--out Benchmarks/results/latest]

Proxy pinned to CPU 0 with one worker/thread; load generators and backends on CPU 1.
For every (repeat, workload, proxy) the proxy is started fresh, the load runs bounded in time,
and the proxy's CPU time (utime+stime of all its processes, from /proc/PID/stat) is divided by
the work done. Results: results.json, results.md and PNG charts in --out.
"""
import argparse
import atexit
import datetime
import json
import os
import platform
import resource
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

ECHO_PORT = 29001
BROKER_PORTS = [29011, 29012, 29013]
IPERF_PORT = 29021
PROXY_PORT_BASE = 29100

# Proxies under test. kind: how to start; mqtt: whether the config requires MQTT traffic.
PROXIES = [
    ("direct", dict(kind="direct", mqtt=False)),
    ("ringproxy", dict(kind="ringproxy", mqtt=False, args=[])),
    ("ringproxy-sticky", dict(kind="ringproxy", mqtt=True, args=["--mqtt", "--sticky"])),
    ("haproxy", dict(kind="haproxy", mqtt=False)),
    ("haproxy-mqtt", dict(kind="haproxy", mqtt=True)),
    ("nginx", dict(kind="nginx", mqtt=False)),
]
PROXY_NAMES = [p for p, _ in PROXIES]
# Units for the tables: (rate unit, per-unit CPU label).
UNITS = {
    "conn": ("conn/s", "CPU-µs/conn"),
    "pingpong": ("round trips/s", "CPU-µs/round trip"),
    "bulk-P1": ("MB/s", "CPU-µs/MB"),
    "bulk-P100": ("MB/s", "CPU-µs/MB"),
    "idle": ("conns held", "RSS B/conn"),
    "latency": ("round trips/s", "p99 µs"),
}
# Reference proxy for the "ratio" column of each workload.
REFERENCE = {"conn": "haproxy-mqtt", "idle": "haproxy-mqtt", "pingpong": "haproxy",
             "bulk-P1": "haproxy", "bulk-P100": "haproxy", "latency": "haproxy"}

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


def stop(p, timeout=3):
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


def cleanup():
    for p in reversed(procs):
        try:
            stop(p, timeout=2)
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
        if p in procs:
            procs.remove(p)
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


# ---------------------------------------------------------------- set-up

def check_tools():
    missing = [t for t in ("gcc", "taskset", "haproxy", "mosquitto", "iperf3", "nginx", "pgrep")
               if shutil.which(t) is None]
    if missing:
        die(f"missing tools: {', '.join(missing)} (apt-get install -y haproxy mosquitto iperf3 "
            "nginx libnginx-mod-stream util-linux procps build-essential)")
    if not os.path.exists("/usr/lib/nginx/modules/ngx_stream_module.so"):
        die("nginx stream module missing: apt-get install -y libnginx-mod-stream")


def build(skip):
    if not skip:
        if shutil.which("swift") is None:
            die("swift not found")
        log("swift build -c release --product ringproxy (under flock)")
        for product in ("ringproxy", "ringbench"):
            r = subprocess.run(["flock", BUILD_LOCK, "swift", "build", "-c", "release", "--product", product],
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
    tools = {}
    for t in ("connbench", "pingpong", "echoserver", "idleconns"):
        src = os.path.join(REPO, "Benchmarks", "tools", f"{t}.c")
        dst = f"/tmp/rp-{t}"
        r = subprocess.run(["gcc", "-O2", "-pthread", src, "-o", dst], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            die(f"gcc {src} failed: {r.stderr}")
        tools[t] = dst
    ringbench = os.path.join(os.path.dirname(binpath), "ringbench")
    if not os.access(ringbench, os.X_OK):
        die(f"ringbench not found at {ringbench}")
    tools["ringbench"] = ringbench
    return binpath, tools


def start_backends(tools):
    start(["taskset", "-c", "1", tools["echoserver"], str(ECHO_PORT)])
    for port in BROKER_PORTS:
        conf = os.path.join(scratch, f"mosquitto-{port}.conf")
        with open(conf, "w") as f:
            f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_connections -1\nlog_type none\n")
        os.chmod(conf, 0o644)
        start(["taskset", "-c", "1", "mosquitto", "-c", conf])
    start(["taskset", "-c", "1", "iperf3", "-s", "-p", str(IPERF_PORT)])
    for port in [ECHO_PORT, IPERF_PORT] + BROKER_PORTS:
        if not wait_port(port):
            die(f"backend on port {port} did not come up")


def haproxy_cfg(mqtt, port, backends, maxconn):
    lines = ["global", "  nbthread 1", f"  maxconn {maxconn}",
             "defaults", "  mode tcp", "  timeout connect 5s", "  timeout client 60s", "  timeout server 60s",
             "backend b", "  balance roundrobin"]
    if mqtt:
        lines += ["  stick-table type string len 32 size 100k expire 30m",
                  "  stick on req.payload(0,0),mqtt_field_value(connect,client_identifier)"]
    lines += [f"  server s{i} 127.0.0.1:{b}" for i, b in enumerate(backends)]
    lines += ["frontend f", f"  bind 127.0.0.1:{port}", "  default_backend b"]
    if mqtt:
        lines += ["  tcp-request inspect-delay 5s",
                  "  tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }"]
    return "\n".join(lines) + "\n"


def nginx_cfg(port, backends, maxconn):
    servers = "".join(f"    server 127.0.0.1:{b};\n" for b in backends)
    return (f"load_module /usr/lib/nginx/modules/ngx_stream_module.so;\n"
            f"worker_processes 1;\nworker_cpu_affinity 1;\nworker_rlimit_nofile {maxconn * 2 + 1000};\n"
            f"pid {scratch}/nginx.pid;\nerror_log {scratch}/nginx-error.log;\n"
            f"events {{ worker_connections {maxconn * 2 + 100}; }}\n"
            f"stream {{\n  upstream b {{\n{servers}  }}\n"
            f"  server {{ listen 127.0.0.1:{port}; proxy_pass b; }}\n}}\n")


def start_proxy(name, spec, binpath, port, backends, maxconn):
    """Returns (Popen or None, listen port)."""
    kind = spec["kind"]
    if kind == "direct":
        return None, backends[0]
    if kind == "ringproxy":
        cmd = ["taskset", "-c", "0", binpath, "--listen", f"127.0.0.1:{port}"]
        for b in backends:
            cmd += ["--backend", f"127.0.0.1:{b}"]
        cmd += ["--cores", "1", "--log", "none", "--maxconn", str(maxconn)] + spec["args"]
    elif kind == "haproxy":
        cfg = os.path.join(scratch, f"{name}.cfg")
        with open(cfg, "w") as f:
            f.write(haproxy_cfg(spec["mqtt"], port, backends, maxconn))
        cmd = ["taskset", "-c", "0", "haproxy", "-f", cfg, "-db"]
    elif kind == "nginx":
        cfg = os.path.join(scratch, "nginx.conf")
        with open(cfg, "w") as f:
            f.write(nginx_cfg(port, backends, maxconn))
        cmd = ["taskset", "-c", "0", "nginx", "-c", cfg, "-p", scratch, "-g", "daemon off;"]
    else:
        raise ValueError(kind)
    errlog = open(os.path.join(scratch, f"{name}.stderr"), "a")
    p = start(cmd, stderr=errlog)
    errlog.close()
    if not wait_port(port):
        stop(p)
        raise RuntimeError(f"{name} did not listen on {port}; see {name}.stderr")
    time.sleep(0.2)
    return p, port


# ---------------------------------------------------------------- workloads

def w_conn(cfg, tools, port, pid):
    c0 = cpu_seconds(pid) if pid else None
    out = run(["taskset", "-c", "1", tools["connbench"], "127.0.0.1", str(port), "8", str(cfg.seconds), "10000"],
              timeout=cfg.seconds + 30)
    j = json.loads(out.strip().splitlines()[-1])
    cpu = cpu_seconds(pid) - c0 if pid else None
    n = max(1, j["connections"])
    return dict(raw=j, rate=j["per_second"], cpu_s=cpu, work=j["connections"],
                per_unit=cpu * 1e6 / n if cpu is not None else None, failed=j["failed"])


def w_pingpong(cfg, tools, port, pid):
    c0 = cpu_seconds(pid) if pid else None
    out = run(["taskset", "-c", "1", tools["pingpong"], "127.0.0.1", str(port), "100", "16", "64", str(cfg.seconds)],
              timeout=cfg.seconds + 30)
    j = json.loads(out.strip().splitlines()[-1])
    cpu = cpu_seconds(pid) - c0 if pid else None
    n = max(1, j["roundtrips"])
    return dict(raw=j, rate=j["per_second"], cpu_s=cpu, work=j["roundtrips"],
                per_unit=cpu * 1e6 / n if cpu is not None else None)


def w_latency(cfg, tools, port, pid):
    """One connection, one 64-byte message in flight: the latency a hop adds (ringbench,
    io_uring client, HdrHistogram)."""
    c0 = cpu_seconds(pid) if pid else None
    out = run(["taskset", "-c", "1", tools["ringbench"], "pingpong", "--target", f"127.0.0.1:{port}",
               "--connections", "1", "--window", "1", "--size", "64", "--seconds", str(cfg.seconds)],
              timeout=cfg.seconds + 30)
    j = json.loads(out.strip().splitlines()[-1])
    if j.get("failed"):
        raise RuntimeError(f"ringbench reported {j['failed']} failed connection(s)")
    cpu = cpu_seconds(pid) - c0 if pid else None
    return dict(raw=j, rate=j["per_second"], cpu_s=cpu, work=j["operations"], per_unit=j["p99_us"],
                p50=j["p50_us"], p99=j["p99_us"])


def w_bulk(streams):
    def f(cfg, tools, port, pid):
        c0 = cpu_seconds(pid) if pid else None
        t = max(1, int(cfg.seconds))
        out = run(["taskset", "-c", "1", "iperf3", "-c", "127.0.0.1", "-p", str(port), "-P", str(streams),
                   "-t", str(t), "-J"], timeout=t + 60)
        cpu = cpu_seconds(pid) - c0 if pid else None
        j = json.loads(out)
        if "error" in j and "end" not in j:
            raise RuntimeError(f"iperf3: {j['error']}")
        end = j["end"]
        mb = end["sum_sent"]["bytes"] / 1e6  # bytes that crossed the proxy once
        secs = end["sum_sent"]["seconds"] or t
        return dict(raw=dict(bytes=end["sum_sent"]["bytes"], seconds=secs,
                             gbit_s=end["sum_received"]["bits_per_second"] / 1e9),
                    rate=mb / secs, cpu_s=cpu, work=mb,
                    per_unit=cpu * 1e6 / mb if cpu is not None and mb > 0 else None)
    return f


def w_idle(cfg, tools, port, pid):
    if not pid:
        return None
    time.sleep(0.3)
    before = rss_kb(pid)
    c0 = cpu_seconds(pid)
    hold = 10 + cfg.idle // 500
    errpath = os.path.join(scratch, "idleconns.stderr")
    with open(errpath, "w") as errf:
        p = start(["taskset", "-c", "1", tools["idleconns"], "127.0.0.1", str(port), str(cfg.idle), str(hold)],
                  stdout=subprocess.PIPE, stderr=errf, text=True)
    try:
        import select
        deadline = time.time() + hold
        line = ""
        while time.time() < deadline and not line:
            r, _, _ = select.select([p.stdout], [], [], 0.2)
            if r:
                line = p.stdout.readline()
            if p.poll() is not None and not line:
                line = p.stdout.readline()
                break
        if not line:
            raise RuntimeError("idleconns did not report")
        j = json.loads(line)
        time.sleep(0.5)
        after = rss_kb(pid)
        cpu = cpu_seconds(pid) - c0
    finally:
        stop(p)
        procs.remove(p)
    n = max(1, j["connections"])
    with open(errpath) as f:
        err = f.read().strip()[-200:]
    res = dict(raw=dict(j, requested=cfg.idle, rss_before_kb=before, rss_after_kb=after), rate=j["connections"],
               cpu_s=cpu, work=j["connections"], per_unit=(after - before) * 1024 / n)
    if j["connections"] < cfg.idle:
        res["warning"] = f"held {j['connections']} of {cfg.idle} connections ({err or 'no message'})"
    return res


WORKLOADS = [
    ("conn", w_conn, BROKER_PORTS, True),        # (name, fn, backends, run MQTT configs)
    ("pingpong", w_pingpong, [ECHO_PORT], False),
    ("bulk-P1", w_bulk(1), [IPERF_PORT], False),
    ("bulk-P100", w_bulk(100), [IPERF_PORT], False),
    ("idle", w_idle, [ECHO_PORT], True),
    ("latency", w_latency, [ECHO_PORT], False),
]


# ---------------------------------------------------------------- report

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
    """{workload: {proxy: {rate: (med, lo, hi), per_unit: ..., n}}}"""
    out = {}
    for r in runs:
        if r.get("error") or r.get("result") is None:
            continue
        d = out.setdefault(r["workload"], {}).setdefault(r["proxy"], {"rate": [], "per_unit": [], "p50": [], "p99": []})
        d["rate"].append(r["result"]["rate"])
        if r["result"]["per_unit"] is not None:
            d["per_unit"].append(r["result"]["per_unit"])
        for k in ("p50", "p99"):
            if r["result"].get(k) is not None:
                d[k].append(r["result"][k])
    for w in out.values():
        for p, d in w.items():
            for k in ("rate", "per_unit", "p50", "p99"):
                v = d[k]
                d[k] = (statistics.median(v), min(v), max(v)) if v else None
    return out


def fmt(t, digits=1):
    if t is None:
        return "–"
    med, lo, hi = t
    f = lambda x: f"{x:,.{digits}f}"
    return f"{f(med)} ({f(lo)}–{f(hi)})" if lo != hi else f(med)


def ratio(summary, w, a, b, invert=False):
    try:
        x, y = summary[w][a]["per_unit"][0], summary[w][b]["per_unit"][0]
        return (y / x) if invert else (x / y)
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def write_report(out, cfg, runs, mach, elapsed):
    summary = summarize(runs)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(dict(machine=mach, args=vars(cfg), elapsed_s=round(elapsed, 1), runs=runs,
                       summary=summary), f, indent=2)
    md = [f"# ringproxy side by side ({'smoke' if cfg.smoke else 'full'}, repeat {cfg.repeat}, "
          f"{cfg.seconds}s runs)", "",
          "Proxy on CPU 0 (one worker/thread), load and backends on CPU 1. CPU = utime+stime of all proxy "
          "processes/threads. Values: median (min–max) over repeats. Ratio = CPU per unit ÷ the reference "
          "proxy's (lower is better for the proxy named).", ""]
    for w, _, _, _ in WORKLOADS:
        if w not in summary:
            continue
        rate_u, unit = UNITS[w]
        ref = REFERENCE[w]
        md += [f"## {w}", "", f"| proxy | {rate_u} | {unit} | ratio to {ref} |", "|---|---|---|---|"]
        for p in PROXY_NAMES:
            if p not in summary[w]:
                continue
            d = summary[w][p]
            r = ratio(summary, w, p, ref)
            md.append(f"| {p} | {fmt(d['rate'], 0)} | {fmt(d['per_unit'], 2 if w == 'pingpong' else 1)} | "
                      f"{'–' if r is None else f'{r:.2f}'} |")
        for e in runs:
            if e["workload"] != w:
                continue
            if e.get("error"):
                md.append(f"\nFailed: {e['proxy']} (repeat {e['repeat']}): {e['error']}")
            elif e["result"].get("warning"):
                md.append(f"\nWarning: {e['proxy']} (repeat {e['repeat']}): {e['result']['warning']}")
            elif e["result"].get("failed"):
                md.append(f"\nNote: {e['proxy']} (repeat {e['repeat']}): {e['result']['failed']} failed connection attempts")
        md.append("")
    lat = summary.get("latency", {})
    if "direct" in lat and lat["direct"].get("p50"):
        base50, base99 = lat["direct"]["p50"][0], lat["direct"]["p99"][0]
        md += ["## Latency added over direct (1 connection, 1 message of 64 B in flight)", "",
               "| proxy | p50 µs | p99 µs | added p50 µs | added p99 µs |", "|---|---|---|---|---|"]
        for p in PROXY_NAMES:
            d = lat.get(p)
            if not d or not d.get("p50"):
                continue
            md.append(f"| {p} | {d['p50'][0]:.1f} | {d['p99'][0]:.1f} | {d['p50'][0] - base50:.1f} | {d['p99'][0] - base99:.1f} |")
        md.append("")
    md += ["## Ratios (ringproxy ÷ HAProxy 2.6)", "", "| measure | ratio |", "|---|---|"]
    rows = [
        ("CPU per connection set-up: ringproxy-sticky ÷ haproxy-mqtt", ratio(summary, "conn", "ringproxy-sticky", "haproxy-mqtt")),
        ("CPU per connection set-up: ringproxy ÷ haproxy (plain)", ratio(summary, "conn", "ringproxy", "haproxy")),
        ("CPU per round trip: ringproxy ÷ haproxy", ratio(summary, "pingpong", "ringproxy", "haproxy")),
        ("MB per CPU-second, bulk -P 1: ringproxy ÷ haproxy (higher is better)", ratio(summary, "bulk-P1", "ringproxy", "haproxy", invert=True)),
        ("MB per CPU-second, bulk -P 100: ringproxy ÷ haproxy (higher is better)", ratio(summary, "bulk-P100", "ringproxy", "haproxy", invert=True)),
        ("RSS per idle connection: ringproxy-sticky ÷ haproxy-mqtt", ratio(summary, "idle", "ringproxy-sticky", "haproxy-mqtt")),
        ("p99 latency through the proxy: ringproxy ÷ haproxy", ratio(summary, "latency", "ringproxy", "haproxy")),
    ]
    for label, v in rows:
        md.append(f"| {label} | {'–' if v is None else f'{v:.2f}'} |")
    md += ["", "## Machine", ""] + [f"- {k}: {v}" for k, v in mach.items()] + [f"- driver wall time: {elapsed:.0f} s", ""]
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(md))
    charts(out, summary)
    return "\n".join(md)


def charts(out, summary):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib not installed (pip install matplotlib): no charts")
        return
    groups = {"conn": ["conn"], "pingpong": ["pingpong"], "bulk": ["bulk-P1", "bulk-P100"], "idle": ["idle"],
              "latency": ["latency"]}
    for chart, ws in groups.items():
        ws = [w for w in ws if w in summary]
        if not ws:
            continue
        fig, axes = plt.subplots(1, len(ws), figsize=(6 * len(ws), 4), squeeze=False)
        for ax, w in zip(axes[0], ws):
            names, meds, lo, hi = [], [], [], []
            for p in PROXY_NAMES:
                d = summary[w].get(p)
                if not d or not d["per_unit"]:
                    continue
                m, a, b = d["per_unit"]
                names.append(p); meds.append(m); lo.append(m - a); hi.append(b - m)
            ax.bar(names, meds, yerr=[lo, hi], capsize=4,
                   color=["tab:orange" if n.startswith("ringproxy") else "tab:blue" for n in names])
            ax.set_title(w)
            ax.set_ylabel(UNITS[w][1])
            ax.tick_params(axis="x", rotation=30)
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"{chart}.png"), dpi=100)
        plt.close(fig)


# ---------------------------------------------------------------- main

def main():
    global scratch
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="repeat 1, 1-second runs, 500 idle connections")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=5.0, help="length of each load run")
    ap.add_argument("--idle", type=int, default=9000, help="idle connections for the idle workload")
    ap.add_argument("--out", default=os.path.join(REPO, "Benchmarks", "results", "latest"))
    ap.add_argument("--no-build", action="store_true", help="use the existing release binary")
    ap.add_argument("--only", default="", help="comma-separated workloads (conn,pingpong,bulk-P1,bulk-P100,idle)")
    ap.add_argument("--strict", action="store_true", help="exit 1 if any run failed (CI's smoke run)")
    cfg = ap.parse_args()
    if cfg.smoke:
        cfg.repeat, cfg.seconds, cfg.idle = 1, 1.0, 500
    if os.cpu_count() < 2:
        die("needs at least 2 CPUs (proxy on CPU 0, load on CPU 1)")
    check_tools()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < 2 * cfg.idle + 1000:
        log(f"warning: open-files limit {hard} is low for {cfg.idle} idle connections")
    subprocess.run(["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1"], capture_output=True)
    os.makedirs(cfg.out, exist_ok=True)
    t0 = time.time()
    atexit.register(cleanup)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, lambda *_: sys.exit(1))
    scratch = tempfile.mkdtemp(prefix="rp-sidebyside.")
    os.chmod(scratch, 0o777)  # mosquitto drops root to its own user
    runs = []
    try:
        binpath, tools = build(cfg.no_build)
        start_backends(tools)
        only = set(filter(None, cfg.only.split(",")))
        maxconn = max(4000, cfg.idle + 200)
        for rep in range(cfg.repeat):
            for wi, (w, fn, backends, mqtt_ok) in enumerate(WORKLOADS):
                if only and w not in only:
                    continue
                for pi, (name, spec) in enumerate(PROXIES):
                    if spec["mqtt"] and not mqtt_ok:
                        continue  # non-MQTT traffic would be rejected by MQTT-validating configs
                    if w == "idle" and spec["kind"] == "direct":
                        continue
                    port = PROXY_PORT_BASE + wi * 10 + pi
                    rec = dict(repeat=rep, workload=w, proxy=name)
                    p = None
                    try:
                        p, lport = start_proxy(name, spec, binpath, port, backends, maxconn)
                        rec["result"] = fn(cfg, tools, lport, p.pid if p else None)
                        res = rec["result"]
                        pu = "" if res["per_unit"] is None else f"{res['per_unit']:10.2f} {UNITS[w][1]}"
                        log(f"r{rep} {w:9s} {name:17s} rate {res['rate']:>12,.0f} {UNITS[w][0]:14s} {pu}")
                    except Exception as e:
                        rec["error"] = str(e)
                        log(f"r{rep} {w:9s} {name:17s} FAILED: {e}")
                    finally:
                        stop(p)
                        if p in procs:
                            procs.remove(p)
                    runs.append(rec)
        md = write_report(cfg.out, cfg, runs, machine(), time.time() - t0)
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
