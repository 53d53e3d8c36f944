#!/usr/bin/env python3
"""Where the whole machine's CPU goes when a proxy relays (issue 17): for each proxy, one load run
with the side-by-side driver's pinning (proxy on CPU 0, ringbench and the backends on CPU 1),
/proc/stat deltas per CPU and per column (user, system, softirq, ...), and a system-wide
`perf record -a -g` split by command (the proxy, ringbench, the backend, kworkers, ksoftirqd)
and by kernel function. Root; run under the quiet lock:

  flock /tmp/ringproxy-quiet.lock python3 Benchmarks/scripts/splice-where.py --bin /path/ringproxy \
      --workloads bulk-1,pingpong --proxies direct,ringproxy,haproxy,sockmap --out DIR

Writes DIR/where.jsonl (one line per run) and DIR/where.txt (the perf reports, trimmed)."""
import argparse, json, os, signal, subprocess, sys, tempfile, time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
ECHO, MQTT, PROXY = 29601, 29602, 29603
COLS = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"]
HZ = os.sysconf("SC_CLK_TCK")


def stat():
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3] != " ":
                w = line.split()
                out[w[0]] = [int(x) for x in w[1:9]]
    return out


def memory():
    """MemAvailable (MB) and TCP's own accounting (/proc/net/sockstat, MB): what a relay holds."""
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":")
            if k in ("MemAvailable", "Slab"):
                out[k + "_mb"] = int(v.split()[0]) // 1024
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                w = line.split()
                out["tcp_mem_mb"] = int(w[w.index("mem") + 1]) * 4 // 1024
    return out


def start(cmd):
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def stop(p):
    if p and p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(5)


def wait_port(port):
    import socket
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--workloads", default="bulk-1,pingpong")
    ap.add_argument("--proxies", default="direct,ringproxy,haproxy,sockmap")
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--out", required=True)
    ap.add_argument("--unpinned", action="store_true", help="every process on CPUs 0-1 (the scheduler places them)")
    cfg = ap.parse_args()
    p0, p1 = ("0,1", "0,1") if cfg.unpinned else ("0", "1")
    os.makedirs(cfg.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="splice-where.")
    tools = {}
    for t, libs in (("echoserver", ["-lcrypto"]), ("mqttbackend", ["-lcrypto"]), ("sockmapproxy", [])):
        tools[t] = os.path.join(tmp, t)
        subprocess.run(["gcc", "-O2", "-pthread", os.path.join(REPO, "Benchmarks", "tools", f"{t}.c"), "-o", tools[t]] + libs,
                       check=True, timeout=120)
    ringbench = os.path.join(os.path.dirname(cfg.bin), "ringbench")
    backs = [start(["taskset", "-c", p1, tools["echoserver"], str(ECHO)]),
             start(["taskset", "-c", p1, tools["mqttbackend"], str(MQTT)])]
    txt = open(os.path.join(cfg.out, "where.txt"), "a")
    jl = open(os.path.join(cfg.out, "where.jsonl"), "a")
    try:
        for port in (ECHO, MQTT):
            assert wait_port(port)
        for w in cfg.workloads.split(","):
            backend = ECHO if w.startswith("bulk") else MQTT
            args = (["bulk", "--connections", w.split("-")[1]] if w.startswith("bulk")
                    else ["pingpong", "--mqtt", "--connections", "100", "--window", "16", "--size", "64"])
            for proxy in cfg.proxies.split(","):
                cmd = {"direct": None,
                       "ringproxy": [cfg.bin, "--listen", f"127.0.0.1:{PROXY}", "--backend", f"127.0.0.1:{backend}",
                                     "--cores", "1", "--log", "none"],
                       "haproxy": None,
                       "sockmap": [tools["sockmapproxy"], "--listen", f"127.0.0.1:{PROXY}", "--backend", f"127.0.0.1:{backend}"],
                       "sockmap-strp": [tools["sockmapproxy"], "--listen", f"127.0.0.1:{PROXY}", "--backend",
                                        f"127.0.0.1:{backend}", "--mode", "strp"]}[proxy]
                if proxy == "haproxy":
                    hc = os.path.join(tmp, "h.cfg")
                    with open(hc, "w") as f:
                        f.write("global\n  nbthread 1\n  maxconn 4000\ndefaults\n  mode tcp\n  timeout connect 5s\n"
                                f"  timeout client 60s\n  timeout server 60s\nlisten l\n  bind 127.0.0.1:{PROXY}\n"
                                f"  server s 127.0.0.1:{backend}\n")
                    cmd = ["haproxy", "-f", hc, "-db"]
                p = start(["taskset", "-c", p0] + cmd) if cmd else None
                target = PROXY if cmd else backend
                if cmd and not wait_port(PROXY):
                    stop(p)
                    print(f"{proxy} did not listen", file=sys.stderr)
                    continue
                time.sleep(0.3)
                m0 = memory()
                perf_data = os.path.join(tmp, "perf.data")
                rb = subprocess.Popen(["taskset", "-c", p1, ringbench] + args[:1] + ["--target", f"127.0.0.1:{target}",
                                      "--seconds", str(cfg.seconds)] + args[1:], stdout=subprocess.PIPE, text=True)
                time.sleep(1.0)   # past the connections' set-up
                s0 = stat()
                subprocess.run(["perf", "record", "-a", "-g", "-F", "999", "-o", perf_data, "--", "sleep", "2"],
                               capture_output=True, timeout=60)
                s1 = stat()
                m1 = memory()
                out, _ = rb.communicate(timeout=cfg.seconds + 60)
                stop(p)
                j = json.loads(out.strip().splitlines()[-1])
                delta = {c: {COLS[i]: round((s1[c][i] - s0[c][i]) / HZ, 3) for i in range(8)} for c in s0}
                comm = subprocess.run(["perf", "report", "-i", perf_data, "--no-children", "--sort", "comm",
                                       "--stdio", "-g", "none", "--percent-limit", "1"], capture_output=True, text=True).stdout
                syms = subprocess.run(["perf", "report", "-i", perf_data, "--no-children", "--sort", "comm,sym",
                                       "--stdio", "-g", "none", "--percent-limit", "1.5"], capture_output=True, text=True).stdout
                # Inclusive shares of the functions that say where a relay's work sits.
                kids = subprocess.run(["perf", "report", "-i", perf_data, "--children", "--sort", "sym", "--stdio",
                                       "-g", "none", "--percent-limit", "0.5"], capture_output=True, text=True).stdout
                keys = ("sk_psock_backlog", "sk_psock_verdict_recv", "sk_psock_strp_read", "tcp_read_skb", "strp_",
                        "skb_send_sock", "tcp_sendmsg", "tcp_recvmsg", "tcp_v4_rcv", "net_rx_action", "io_uring",
                        "ep_poll", "__x64_sys_splice", "do_splice", "_copy_to_iter", "_copy_from_iter", "kmem_cache_alloc",
                        "__alloc_skb", "skb_clone", "pv_native_safe_halt", "process_one_work", "bpf_prog_")
                inclusive = [l.strip() for l in kids.splitlines() if any(k in l for k in keys) and not l.startswith("#")]
                strip = lambda s: "\n".join(l for l in s.splitlines() if l.strip() and not l.startswith("#"))
                rec = dict(workload=w, proxy=proxy, per_cpu_seconds=delta, ringbench=j, memory_before=m0, memory_loaded=m1,
                           comm=[l.split(None, 1) for l in strip(comm).splitlines()], inclusive=inclusive)
                jl.write(json.dumps(rec) + "\n")
                jl.flush()
                txt.write(f"\n===== {w} {proxy}: /proc/stat over 2 s (seconds per CPU)\n")
                for c, d in delta.items():
                    txt.write(f"  {c}: " + " ".join(f"{k}={v}" for k, v in d.items() if k != "idle") + f" idle={d['idle']}\n")
                txt.write(f"  memory before the load {m0}, 3 s into it {m1}\n")
                txt.write("--- inclusive (children) shares of relay functions\n" + "\n".join(inclusive[:25]) + "\n")
                txt.write(f"--- by command\n{strip(comm)}\n--- by command and symbol (>= 1.5 %)\n{strip(syms)}\n")
                txt.flush()
                print(f"{w} {proxy}: rate {j.get('per_second')} comm {strip(comm).splitlines()[:6]}", flush=True)
    finally:
        for b in backs:
            stop(b)
        txt.close()
        jl.close()


if __name__ == "__main__":
    main()
