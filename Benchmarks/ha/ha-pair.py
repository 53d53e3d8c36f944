#!/usr/bin/env python3
"""HA pair (issue 15): two ringproxy instances behind one keepalived VIP; the master is stopped
and clients must reach the same brokers through the backup.

Usage (root): python3 Benchmarks/ha/ha-pair.py [--short] [--repeat 3] [--bin PATH] [--nopreempt]
                  [--profiles documented,fast] [--scenarios ringproxy-kill,keepalived-stop,link-down]
                  [--sticky-check] [--seed N] [--keep-logs]
keepalived is installed with apt-get when missing; mosquitto comes with scripts/install-deps.sh.

Topology, made by this script in network namespaces of its own and deleted on exit (nothing is
added to the host's namespace):

  rph-cli 10.203.0.100 --+                     +-- 10.203.1.11 rph-lb1 (keepalived MASTER 101, ringproxy)
                         +== rph-lan: br-front |
  VIP 10.203.0.10 -------+   (bridges)         +-- 10.203.1.12 rph-lb2 (keepalived BACKUP 100, ringproxy)
  rph-lb1 10.203.0.11 ---+   br-back ==========+
  rph-lb2 10.203.0.12 ---+                     +-- rph-brk: mosquitto b1 .21, b2 .22, b3 .23 (:1883)

keepalived's configuration is tuning/keepalived.conf itself with the interface, VIP, state,
priority and (fast profile) timing substituted, so the file the project ships is what is run.
Both ringproxy instances load the same haproxy.cfg: `bind 0.0.0.0:1883`, `balance hash
req.payload(0,0),mqtt_field_value(connect,client_identifier)` (ringproxy's clientid-hash) over
the three brokers (--sticky-check: `balance roundrobin` + a stick table on the client id). Each broker holds a retained message on `whoami` with its own name.

The client (rph-cli) starts a connection attempt every 20 ms, cycling over 50 fixed client ids:
CONNECT, CONNACK, SUBSCRIBE whoami, the retained PUBLISH names the broker, DISCONNECT; 1 s
deadline, attempts overlap. It also holds 20 sessions that ping every second and reconnect when
cut (reset, or no PINGRESP within a second). Which instance served a session is read from the
instances' connection logs once they have stopped (client port and accept time), else from who
held the VIP then (lines of a kill -9'd instance are lost).

Per run: (1) the id -> broker map through lb1; (2) the stop at t0: `ringproxy-kill` (SIGKILL
ringproxy in lb1, the vrrp_script fails), `keepalived-stop` (SIGTERM keepalived in lb1) or
`link-down` (lb1's front link loses carrier); gap = t0 -> first CONNACK served by lb2, failed
attempts in between; (3) the id -> broker map through lb2 against (1); (4) the master is
restored (ringproxy / keepalived started, link up): preempt (keepalived's default) moves the
VIP back (time to the move, sessions cut by it); with --nopreempt it stays on lb2 and nothing
is cut. Profiles: `documented` (tuning/keepalived.conf
as shipped: VRRPv2, advert_int 1, script every 1 s, fall 2 rise 2) and `fast` (VRRPv3 advert_int
0.1, script fall 1 rise 1). One JSON line per run on stdout, then one per profile x scenario
with min/median/max; exit 1 if any run missed its goals (every id on the same broker through
both, lb2 serving after the stop, every held session back on its broker, lb1 serving again
after a preempting restore, nothing cut by a nopreempt one). Logs are kept (and named) when a
run fails or with --keep-logs.
"""
import argparse
import asyncio
import datetime
import fcntl
import json
import os
import random
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
KEEPALIVED_TEMPLATE = os.path.join(REPO, "tuning", "keepalived.conf")
NS_LAN, NS_LB1, NS_LB2, NS_CLI, NS_BRK = "rph-lan", "rph-lb1", "rph-lb2", "rph-cli", "rph-brk"
NAMESPACES = [NS_LAN, NS_LB1, NS_LB2, NS_CLI, NS_BRK]
LBS = {"lb1": NS_LB1, "lb2": NS_LB2}
VIP = "10.203.0.10"
FRONT = {"lb1": "10.203.0.11", "lb2": "10.203.0.12", "cli": "10.203.0.100"}
BACK = {"lb1": "10.203.1.11", "lb2": "10.203.1.12"}
BROKERS = {"b1": "10.203.1.21", "b2": "10.203.1.22", "b3": "10.203.1.23"}
PORT = 1883
PRIORITY = {"lb1": 101, "lb2": 100}
SCENARIOS = ["ringproxy-kill", "keepalived-stop", "link-down"]
PROFILES = ["documented", "fast"]
LOCK = "/tmp/ringproxy-ha-pair.lock"


def log(msg):
    print(f"[ha] {msg}", file=sys.stderr, flush=True)


def run(*cmd, check=True):
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)}: {r.stderr.strip()}")
    return r


def ns(name, *cmd, check=True):
    return run("ip", "-n", name, *cmd, check=check)


# ---------------------------------------------------------------- MQTT client (in rph-cli)

def mqtt_string(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def mqtt_packet(kind, body):
    n, length = len(body), b""
    while True:
        byte, n = n % 128, n // 128
        length += bytes([byte | (0x80 if n else 0)])
        if not n:
            return bytes([kind]) + length + body


async def read_packet(reader):
    head = await reader.readexactly(1)
    length, shift = 0, 0
    for _ in range(4):
        b = (await reader.readexactly(1))[0]
        length |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return head[0], await reader.readexactly(length)


async def open_session(client_id, rec, keepalive):
    """CONNECT, CONNACK, SUBSCRIBE whoami; the retained PUBLISH names the broker (rec)."""
    reader, writer = await asyncio.open_connection(VIP, PORT)
    rec["port"] = writer.get_extra_info("sockname")[1]
    try:
        connect = mqtt_string("MQTT") + bytes([4, 0x02]) + struct.pack("!H", keepalive) + mqtt_string(client_id)
        writer.write(mqtt_packet(0x10, connect))
        kind, body = await read_packet(reader)
        if kind != 0x20 or len(body) < 2 or body[1] != 0:
            raise RuntimeError(f"no CONNACK: {kind:#x} {body.hex()}")
        rec["connack"] = round(time.monotonic(), 4)
        writer.write(mqtt_packet(0x82, struct.pack("!H", 1) + mqtt_string("whoami") + b"\x00"))
        while True:
            kind, body = await read_packet(reader)
            if kind >> 4 == 3:
                tlen = struct.unpack("!H", body[:2])[0]
                rec["broker"] = body[2 + tlen:].decode()
                return reader, writer
    except BaseException:
        writer.close()
        raise


def error_name(e):
    return type(e).__name__ if not str(e) else f"{type(e).__name__}: {e}"[:80]


def emit(out, rec):
    out.write(json.dumps(rec) + "\n")
    out.flush()


async def attempt(client_id, out, deadline):
    """One short session: open_session, then DISCONNECT."""
    rec = {"t": round(time.monotonic(), 4), "w": time.time(), "id": client_id, "ok": False}
    writer = None
    try:
        async def session():
            nonlocal writer
            _, writer = await open_session(client_id, rec, 30)
            writer.write(b"\xe0\x00")
            await writer.drain()
        await asyncio.wait_for(session(), deadline)
        rec["ok"] = True
    except Exception as e:  # refused, reset, timed out: a failed attempt
        rec["err"] = error_name(e)
    finally:
        if writer is not None:
            writer.close()
    rec["end"] = round(time.monotonic(), 4)
    emit(out, rec)


async def held(client_id, out, args, end):
    """A long-lived session that pings every --ping s and reconnects (every 50 ms, each try
    bounded by --deadline) when it is reset or a PINGRESP is --ping s late: what a device does.
    Emits {"kind": "up"} with the broker on each (re)connection and {"kind": "down"}."""
    while time.monotonic() < end and not os.path.exists(args.stop_file):
        rec = {"kind": "up", "id": client_id, "w": time.time()}
        try:
            reader, writer = await asyncio.wait_for(open_session(client_id, rec, int(3 * args.ping) + 1),
                                                    args.deadline)
        except Exception:
            await asyncio.sleep(0.05)
            continue
        rec["t"] = rec["connack"]
        emit(out, rec)
        try:
            while time.monotonic() < end and not os.path.exists(args.stop_file):
                writer.write(b"\xc0\x00")
                await writer.drain()
                pinged = time.monotonic()
                while True:  # skip anything but the PINGRESP
                    kind, _ = await asyncio.wait_for(read_packet(reader), args.ping)
                    if kind == 0xD0:
                        break
                await asyncio.sleep(max(0.0, args.ping - (time.monotonic() - pinged)))
            writer.write(b"\xe0\x00")
            writer.close()
            return
        except Exception as e:
            emit(out, {"kind": "down", "id": client_id, "t": round(time.monotonic(), 4), "err": error_name(e)})
            writer.close()


async def client_loop(args):
    ids = [f"ha-client-{i:02d}" for i in range(args.ids)]
    end = time.monotonic() + args.duration
    tasks = {asyncio.create_task(held(f"ha-held-{i:02d}", sys.stdout, args, end)) for i in range(args.held)}
    i, nxt = 0, time.monotonic()
    while time.monotonic() < end and not os.path.exists(args.stop_file):
        t = asyncio.create_task(attempt(ids[i % len(ids)], sys.stdout, args.deadline))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
        i += 1
        nxt += args.interval
        await asyncio.sleep(max(0.0, nxt - time.monotonic()))
    if tasks:
        await asyncio.wait(tasks, timeout=args.deadline + args.ping + 1)


def client_main(args):
    asyncio.run(client_loop(args))


# ---------------------------------------------------------------- the pair

def keepalived_config(template, who, profile, nopreempt=False):
    """tuning/keepalived.conf with this pair's interface, VIP, role and timing. Fails if the
    file no longer has the lines it substitutes (then this test must be updated with it)."""
    text = template
    subs = [
        (r"interface \S+", "interface lan0"),
        # nopreempt needs both to start as BACKUP (the higher priority still wins the start).
        (r"state MASTER", "state MASTER" if who == "lb1" and not nopreempt else "state BACKUP"),
        (r"priority \d+", f"priority {PRIORITY[who]}" + ("\n    nopreempt" if nopreempt else "")),
        (r"192\.0\.2\.10/24", f"{VIP}/24"),
    ]
    if profile == "fast":
        subs += [(r"vrrp_version \d", "vrrp_version 3"), (r"advert_int [\d.]+", "advert_int 0.1"),
                 (r"fall \d+", "fall 1"), (r"rise \d+", "rise 1")]
    for pattern, repl in subs:
        # Whole lines only (the comments mention some of these words).
        text, n = re.subn(rf"(?m)^(\s*){pattern}\s*$", rf"\g<1>{repl}", text, count=1)
        if n != 1:
            raise RuntimeError(f"{KEEPALIVED_TEMPLATE}: no line '{pattern}' to substitute")
    if profile == "fast":  # VRRPv3 has no authentication
        text, n = re.subn(r"\n\s*authentication \{.*?\n\s*\}\n", "\n", text, flags=re.S)
    return text


def haproxy_config(sticky):
    # ringproxy's clientid-hash (--balance clientid-hash) in the HAProxy dialect.
    balance = "balance hash req.payload(0,0),mqtt_field_value(connect,client_identifier)"
    if sticky:
        balance = ("balance roundrobin\n  stick-table type string len 32 size 10k expire 30m\n"
                   "  stick on req.payload(0,0),mqtt_field_value(connect,client_identifier)")
    servers = "\n".join(f"  server {n} {a}:{PORT}" for n, a in BROKERS.items())
    return f"""global
  maxconn 2000
  log stderr local0
defaults
  mode tcp
  log global
  option tcplog
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  retries 2
frontend mqtt
  bind 0.0.0.0:{PORT}
  tcp-request inspect-delay 5s
  default_backend brokers
backend brokers
  {balance}
{servers}
"""


class Pair:
    def __init__(self, args, work):
        self.args, self.work = args, work
        self.procs = {}  # name -> Popen (every process this script started)
        self.logs = {}
        self.vip_events = []  # (monotonic, lb, "add"|"del")
        self.profile = None
        self.rng = random.Random(args.seed)

    # -- processes
    def start(self, name, namespace, cmd, logname=None):
        path = os.path.join(self.work, f"{logname or name}.log")
        f = open(path, "ab")
        p = subprocess.Popen(["ip", "netns", "exec", namespace] + cmd, stdout=f, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, start_new_session=True)
        f.close()
        self.procs[name], self.logs[name] = p, path
        return p

    def stop(self, name, sig=signal.SIGTERM, wait=5.0):
        p = self.procs.pop(name, None)
        if p is None or p.poll() is not None:
            return
        try:
            os.killpg(p.pid, sig)
            p.wait(timeout=wait)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=5)

    def stop_all(self):
        # ringproxy drains for 5 s whatever --grace says when it loads a file (-f); its last
        # connection lines come at the end of the drain.
        for name in list(self.procs):
            self.stop(name, signal.SIGTERM, wait=7.0 if name.startswith("ringproxy") else 3.0)

    # -- topology
    def build(self):
        for n in NAMESPACES:
            run("ip", "netns", "add", n)
            ns(n, "link", "set", "lo", "up")
        for br in ("br-front", "br-back"):
            ns(NS_LAN, "link", "add", br, "type", "bridge")
            ns(NS_LAN, "link", "set", br, "up")
        ends = [("f-lb1", NS_LB1, "lan0", f"{FRONT['lb1']}/24", "br-front"),
                ("f-lb2", NS_LB2, "lan0", f"{FRONT['lb2']}/24", "br-front"),
                ("f-cli", NS_CLI, "lan0", f"{FRONT['cli']}/24", "br-front"),
                ("b-lb1", NS_LB1, "brk0", f"{BACK['lb1']}/24", "br-back"),
                ("b-lb2", NS_LB2, "brk0", f"{BACK['lb2']}/24", "br-back"),
                ("b-brk", NS_BRK, "brk0", None, "br-back")]
        for port, target, dev, addr, br in ends:
            ns(NS_LAN, "link", "add", port, "type", "veth", "peer", "name", dev, "netns", target)
            ns(NS_LAN, "link", "set", port, "master", br)
            ns(NS_LAN, "link", "set", port, "up")
            if addr:
                ns(target, "addr", "add", addr, "dev", dev)
            ns(target, "link", "set", dev, "up")
        for a in BROKERS.values():
            ns(NS_BRK, "addr", "add", f"{a}/24", "dev", "brk0")

    def teardown(self):
        self.stop_all()
        for n in NAMESPACES:
            if os.path.exists(f"/var/run/netns/{n}"):
                run("ip", "netns", "del", n, check=False)

    def start_brokers(self):
        for name, addr in BROKERS.items():
            conf = os.path.join(self.work, f"{name}.conf")
            with open(conf, "w") as f:
                f.write(f"listener {PORT} {addr}\nallow_anonymous true\npersistence false\n")
            self.start(name, NS_BRK, ["mosquitto", "-c", conf])
        for name, addr in BROKERS.items():
            ok = False
            for _ in range(50):
                r = run("ip", "netns", "exec", NS_BRK, "mosquitto_pub", "-h", addr, "-p", str(PORT),
                        "-t", "whoami", "-m", name, "-r", "-q", "1", check=False)
                if r.returncode == 0:
                    ok = True
                    break
                time.sleep(0.1)
            if not ok:
                raise RuntimeError(f"broker {name} at {addr} did not take its retained message")

    def write_configs(self, profile):
        with open(KEEPALIVED_TEMPLATE) as f:
            template = f.read()
        for lb in LBS:
            with open(os.path.join(self.work, f"keepalived-{lb}.conf"), "w") as f:
                f.write(keepalived_config(template, lb, profile, self.args.nopreempt))
        with open(os.path.join(self.work, "haproxy.cfg"), "w") as f:
            f.write(haproxy_config(self.args.sticky_check))

    def start_ringproxy(self, lb):
        self.start(f"ringproxy-{lb}", LBS[lb], [self.args.bin, "-f", os.path.join(self.work, "haproxy.cfg"),
                                                 "--cores", "1"])

    def start_keepalived(self, lb):
        w = self.work
        self.start(f"keepalived-{lb}", LBS[lb],
                   ["keepalived", "--dont-fork", "--log-console", "--no-syslog", "--vrrp", "--log-detail",
                    "-f", os.path.join(w, f"keepalived-{lb}.conf"), "-p", os.path.join(w, f"ka-{lb}.pid"),
                    "-r", os.path.join(w, f"ka-vrrp-{lb}.pid"), "-c", os.path.join(w, f"ka-chk-{lb}.pid"),
                    "-i", lb])

    def watch_vip(self):
        """`ip monitor address` per instance: when the VIP arrives and leaves, stamped on
        arrival (CLOCK_MONOTONIC is the same in every namespace)."""
        for lb, namespace in LBS.items():
            p = subprocess.Popen(["ip", "-n", namespace, "monitor", "address"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True, start_new_session=True)
            self.procs[f"monitor-{lb}"] = p

            def reader(p=p, lb=lb):
                for line in p.stdout:
                    if f" {VIP}/" in line:
                        self.vip_events.append((time.monotonic(), lb, "del" if line.startswith("Deleted") else "add"))
            threading.Thread(target=reader, daemon=True).start()

    def vip_holder(self):
        holders = [lb for lb, n in LBS.items() if f" {VIP}/" in ns(n, "-o", "addr", "show", "dev", "lan0",
                                                                    check=False).stdout]
        return holders

    def wait_for(self, what, cond, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return time.monotonic()
            time.sleep(0.02)
        raise RuntimeError(f"timed out ({timeout:.0f} s) waiting for {what}")

    def ringproxy_accepts(self, lb):
        r = run("ip", "netns", "exec", LBS[lb], "timeout", "1", "bash", "-c", f"</dev/tcp/127.0.0.1/{PORT}",
                check=False)
        return r.returncode == 0

    def baseline(self, profile):
        """Both instances running, lb1 holding the VIP alone, lb2 BACKUP."""
        if self.profile != profile:
            for lb in LBS:
                self.stop(f"keepalived-{lb}")
            self.write_configs(profile)
            self.profile = profile
        ns(NS_LAN, "link", "set", "f-lb1", "up")
        for lb in LBS:
            p = self.procs.get(f"ringproxy-{lb}")
            if p is None or p.poll() is not None:
                self.start_ringproxy(lb)
        self.wait_for("both ringproxy instances to accept", lambda: all(self.ringproxy_accepts(lb) for lb in LBS), 10)
        for lb in ("lb2", "lb1"):
            p = self.procs.get(f"keepalived-{lb}")
            if p is None or p.poll() is not None:
                self.start_keepalived(lb)
        self.wait_for("the VIP on one instance", lambda: len(self.vip_holder()) == 1, 20)
        if self.vip_holder() == ["lb2"]:  # nopreempt left it there: hand it back
            self.stop("keepalived-lb2")
            self.wait_for("the VIP on lb1", lambda: self.vip_holder() == ["lb1"], 20)
            self.start_keepalived("lb2")
        self.wait_for("the VIP on lb1 alone", lambda: self.vip_holder() == ["lb1"], 20)
        time.sleep(0.5)
        if self.vip_holder() != ["lb1"]:
            raise RuntimeError(f"VIP held by {self.vip_holder()} after the baseline")

    # -- one run
    def stop_action(self, scenario):
        if scenario == "ringproxy-kill":
            self.stop("ringproxy-lb1", signal.SIGKILL)
        elif scenario == "keepalived-stop":
            self.stop("keepalived-lb1", signal.SIGTERM)
        else:
            ns(NS_LAN, "link", "set", "f-lb1", "down")

    def restore_action(self, scenario):
        if scenario == "ringproxy-kill":
            self.start_ringproxy("lb1")
        elif scenario == "keepalived-stop":
            self.start_keepalived("lb1")
        else:
            ns(NS_LAN, "link", "set", "f-lb1", "up")

    def served(self):
        """port -> [(accept time, lb)] from every connection line the instances logged (read
        after they stopped: a line is written when its connection ends, in batches)."""
        table = {}
        for lb in LBS:
            path = self.logs.get(f"ringproxy-{lb}")
            if not path or not os.path.exists(path):
                continue
            with open(path, errors="replace") as f:
                for line in f:
                    m = re.match(rf"{re.escape(FRONT['cli'])}:(\d+) \[([^\]]+)\]", line)
                    if m:
                        accepted = datetime.datetime.strptime(m.group(2), "%d/%b/%Y:%H:%M:%S.%f").timestamp()
                        table.setdefault(int(m.group(1)), []).append((accepted, lb))
        return table

    def one_run(self, profile, scenario, index):
        a = self.args
        self.baseline(profile)
        stop_file = os.path.join(self.work, "client.stop")
        if os.path.exists(stop_file):
            os.unlink(stop_file)
        out_path = os.path.join(self.work, f"client-{profile}-{scenario}-{index}.jsonl")
        out = open(out_path, "w")
        client = subprocess.Popen(["ip", "netns", "exec", NS_CLI, sys.executable, os.path.abspath(__file__), "client",
                                   "--ids", str(a.ids), "--interval", str(a.interval), "--deadline", str(a.deadline),
                                   "--duration", "120", "--stop-file", stop_file,
                                   "--held", str(a.held), "--ping", str(a.ping)],
                                  stdout=out, stderr=subprocess.DEVNULL, start_new_session=True)
        self.procs["client"] = client
        out.close()
        try:
            # Every id through lb1, then a random phase against the 1 s check and advert timers.
            time.sleep(a.ids * a.interval + 1.0 + self.rng.uniform(0.0, 1.0))
            self.vip_events.clear()
            t0 = time.monotonic()
            self.stop_action(scenario)
            self.wait_for("the VIP on lb2", lambda: any(lb == "lb2" and k == "add" for _, lb, k in self.vip_events), 20)
            time.sleep(a.ids * a.interval + 1.5)  # every id through lb2
            t_restore = time.monotonic()
            self.restore_action(scenario)
            if a.nopreempt:  # lb1 back as BACKUP (its check risen) while lb2 keeps the VIP
                time.sleep(4.0 if profile == "documented" else 2.5)
            else:
                self.wait_for("the VIP back on lb1", lambda: any(lb == "lb1" and k == "add" and t > t_restore
                                                               for t, lb, k in self.vip_events), 20)
                time.sleep(a.ping + 1.5)  # the held sessions dropped by the move back reconnect
            t_end = time.monotonic()
        finally:
            with open(stop_file, "w"):
                pass
            try:
                client.wait(timeout=a.deadline + 5)
            except subprocess.TimeoutExpired:
                pass
            self.stop("client", signal.SIGKILL)
        events = list(self.vip_events)
        recs = []
        with open(out_path) as f:
            for line in f:
                try:
                    recs.append(json.loads(line))
                except ValueError:
                    pass
        return dict(recs=recs, events=events, t0=t0, t_restore=t_restore, t_end=t_end, profile=profile,
                    scenario=scenario, index=index)


def vip_owner_at(events, t, before_stop_owner="lb1"):
    owner = before_stop_owner
    for te, lb, kind in events:
        if te > t:
            break
        if kind == "add":
            owner = lb
    return owner


def analyse_held(recs, t0, t_restore):
    """The long-lived sessions: dropped by the stop, back (and where), dropped by the restore."""
    ups = sorted((r for r in recs if r["kind"] == "up"), key=lambda r: r["t"])
    downs = [r for r in recs if r["kind"] == "down"]
    first = {}
    for r in ups:
        if r["t"] < t0:
            first.setdefault(r["id"], r["broker"])
    dropped = {r["id"] for r in downs if t0 <= r["t"] < t_restore}
    back = {}
    for r in ups:
        if r["id"] in dropped and t0 <= r["t"] < t_restore and r["id"] not in back:
            back[r["id"]] = r
    return {
        "held": len(first),
        "held_dropped": len(dropped),
        "held_back": len(back),
        "held_all_back_s": round(max(r["t"] for r in back.values()) - t0, 3) if back and len(back) == len(dropped) else None,
        "held_back_via_lb2": sum(1 for r in back.values() if r["via"] == "lb2"),
        "held_same_broker": sum(1 for i, r in back.items() if first.get(i) == r["broker"]),
        "held_dropped_by_failback": len({r["id"] for r in downs if r["t"] >= t_restore}),
    }


def analyse(recs, served, events, t0, t_restore, t_end, profile, scenario, index, a):
    for r in recs:
        via = None
        if r.get("port") is not None:  # the instance that logged this port within 1 s of it
            via = next((lb for at, lb in served.get(r["port"], []) if abs(at - r["w"]) < 1.0), None)
        r["via"] = via or f"{vip_owner_at(events, r['t'])}?"  # '?': inferred from the VIP owner
    held_recs = [r for r in recs if "kind" in r]
    recs = [r for r in recs if "kind" not in r]
    ok = [r for r in recs if r["ok"]]
    before = [r for r in ok if r["t"] < t0]
    during = [r for r in recs if t0 <= r["t"] < t_restore]
    after = [r for r in recs if r["t"] >= t_restore]
    via_lb2 = [r for r in ok if t0 <= r["t"] < t_restore and r["via"] == "lb2"]
    first_lb2 = min((r["connack"] for r in via_lb2), default=None)
    map1, map2 = {}, {}
    for r in before:
        map1.setdefault(r["id"], set()).add(r["broker"])
    for r in via_lb2:
        map2.setdefault(r["id"], set()).add(r["broker"])
    both = [i for i in map1 if i in map2]
    same = [i for i in both if len(map1[i]) == 1 and map1[i] == map2[i]]
    vip_lb2 = min((t for t, lb, k in events if lb == "lb2" and k == "add" and t >= t0), default=None)
    vip_back = min((t for t, lb, k in events if lb == "lb1" and k == "add" and t >= t_restore), default=None)
    back_lb1 = [r for r in after if r["ok"] and r["via"] == "lb1"]
    failed_after = [r for r in after if not r["ok"]]
    res = {
        "profile": profile, "scenario": scenario, "run": index,
        "sticky": "stick-table" if a.sticky_check else "clientid-hash",
        "attempts": len(recs),
        "ids_via_lb1": len(map1), "ids_via_lb2": len(map2),
        "same_broker_pct": round(100.0 * len(same) / len(both), 1) if both else None,
        "gap_s": round(first_lb2 - t0, 3) if first_lb2 else None,
        "vip_on_lb2_s": round(vip_lb2 - t0, 3) if vip_lb2 else None,
        "failed_during": sum(1 for r in during if not r["ok"]),
        "ok_via_lb1_after_stop": sum(1 for r in during if r["ok"] and r["via"].startswith("lb1")),
        "failback": "nopreempt" if a.nopreempt else "preempt",
        "failback_vip_s": round(vip_back - t_restore, 3) if vip_back else None,
        "failback_failed": len(failed_after),
        "failback_served_by_lb1": len(back_lb1),
        "failback_served_by_lb2": sum(1 for r in after if r["ok"] and r["via"] == "lb2"),
        # attempts that failed before anything was stopped (the goal is 0)
        "failed_before": sum(1 for r in recs if r["end"] < t0 and not r["ok"]),
        "inferred_via": sum(1 for r in ok if r["via"].endswith("?")),
    }
    errs = {}
    for r in recs:
        if not r["ok"]:
            errs[r.get("err", "?").split(":")[0]] = errs.get(r.get("err", "?").split(":")[0], 0) + 1
    res["errors"] = errs
    res.update(analyse_held(held_recs, t0, t_restore))
    goal = 100.0 if not a.sticky_check else None
    res["pass"] = bool(res["gap_s"] is not None and res["failed_before"] == 0 and len(map1) == a.ids
                       and res["held"] == a.held and res["held_back"] == res["held_dropped"]
                       and (goal is None or res["held_same_broker"] == res["held_back"])
                       and len(map2) == a.ids and (goal is None or res["same_broker_pct"] == goal)
                       and (len(back_lb1) > 0 if not a.nopreempt
                            else res["failback_failed"] == 0 and res["failback_vip_s"] is None))
    return res


def summarise(results):
    lines = []
    keys = sorted({(r["profile"], r["scenario"]) for r in results}, key=lambda k: (PROFILES.index(k[0]), SCENARIOS.index(k[1])))
    for prof, scen in keys:
        rs = [r for r in results if r["profile"] == prof and r["scenario"] == scen]

        def mmm(field):
            v = [r[field] for r in rs if r[field] is not None]
            return {"min": min(v), "median": statistics.median(v), "max": max(v)} if v else None
        lines.append({"summary": True, "profile": prof, "scenario": scen, "runs": len(rs),
                      "sticky": rs[0]["sticky"], "gap_s": mmm("gap_s"), "failed_attempts": mmm("failed_during"),
                      "vip_on_lb2_s": mmm("vip_on_lb2_s"), "same_broker_pct": mmm("same_broker_pct"),
                      "failback": rs[0]["failback"], "failback_vip_s": mmm("failback_vip_s"),
                      "failback_failed": mmm("failback_failed"), "held_dropped": mmm("held_dropped"),
                      "held_all_back_s": mmm("held_all_back_s"), "held_same_broker": mmm("held_same_broker"),
                      "held_dropped_by_failback": mmm("held_dropped_by_failback"), "passed": sum(r["pass"] for r in rs)})
    return lines


def ensure_keepalived():
    if shutil.which("keepalived"):
        return
    log("installing keepalived (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "keepalived"], env=env, check=True, stdout=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd")
    c = sub.add_parser("client")
    c.add_argument("--ids", type=int, default=50)
    c.add_argument("--interval", type=float, default=0.02)
    c.add_argument("--deadline", type=float, default=1.0)
    c.add_argument("--duration", type=float, default=60)
    c.add_argument("--stop-file", required=True)
    c.add_argument("--held", type=int, default=20)
    c.add_argument("--ping", type=float, default=1.0)
    ap.add_argument("--short", action="store_true", help="CI: the fast profile, each scenario once (< 60 s)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--bin", default=os.environ.get("RINGPROXY_BIN") or next(
        (b for b in (os.path.join(REPO, ".build", k, "ringproxy") for k in ("release", "debug")) if os.path.exists(b)),
        os.path.join(REPO, ".build", "release", "ringproxy")), help="default: .build/release, else .build/debug")
    ap.add_argument("--profiles", default=",".join(PROFILES))
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--sticky-check", action="store_true",
                    help="balance roundrobin + a stick table on the client id instead of clientid-hash")
    ap.add_argument("--ids", type=int, default=50)
    ap.add_argument("--interval", type=float, default=0.02)
    ap.add_argument("--deadline", type=float, default=1.0)
    ap.add_argument("--nopreempt", action="store_true",
                    help="both start as BACKUP with nopreempt: the restored master does not take the VIP back")
    ap.add_argument("--seed", type=int, default=None, help="for the random moment of each stop")
    ap.add_argument("--held", type=int, default=20, help="long-lived sessions (ping every --ping s)")
    ap.add_argument("--ping", type=float, default=1.0)
    ap.add_argument("--keep-logs", action="store_true")
    args = ap.parse_args()
    if args.cmd == "client":
        return client_main(args)
    if os.geteuid() != 0:
        sys.exit("ha-pair: run as root (network namespaces)")
    if not os.access(args.bin, os.X_OK):
        sys.exit(f"ha-pair: no ringproxy binary at {args.bin} (--bin)")
    ensure_keepalived()
    for tool in ("mosquitto", "mosquitto_pub", "ip"):
        if not shutil.which(tool):
            sys.exit(f"ha-pair: {tool} is missing (scripts/install-deps.sh installs it)")
    if args.short:
        args.profiles, args.repeat = "fast", 1
    profiles = [p for p in args.profiles.split(",") if p]
    scenarios = [s for s in args.scenarios.split(",") if s]
    for p in profiles:
        if p not in PROFILES:
            sys.exit(f"ha-pair: unknown profile {p}")
    for s in scenarios:
        if s not in SCENARIOS:
            sys.exit(f"ha-pair: unknown scenario {s}")
    lock = open(LOCK, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        sys.exit(f"ha-pair: another run holds {LOCK}")
    for n in NAMESPACES:
        if os.path.exists(f"/var/run/netns/{n}"):
            sys.exit(f"ha-pair: namespace {n} exists (a previous run not cleaned up?): ip netns del {n}")
    work = tempfile.mkdtemp(prefix="ringproxy-ha-")
    pair = Pair(args, work)
    failed = True

    def on_signal(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    results, raw = [], []
    started = time.monotonic()
    try:
        pair.build()
        pair.watch_vip()
        pair.start_brokers()
        for profile in profiles:
            for index in range(1, args.repeat + 1):
                for scenario in scenarios:
                    raw.append(pair.one_run(profile, scenario, index))
                    log(f"{profile} {scenario} {index}: done")
        pair.teardown()  # the instances write their last connection lines as they stop
        served = pair.served()
        for r in raw:
            res = analyse(r.pop("recs"), served, r.pop("events"), **r, a=args)
            results.append(res)
            print(json.dumps(res), flush=True)
        for line in summarise(results):
            print(json.dumps(line), flush=True)
        failed = not all(r["pass"] for r in results)
        log(f"{len(results)} runs in {time.monotonic() - started:.0f} s, "
            f"{sum(r['pass'] for r in results)} passed")
    finally:
        pair.teardown()
        if failed or args.keep_logs:
            log(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
