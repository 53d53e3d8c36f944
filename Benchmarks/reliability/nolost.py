#!/usr/bin/env python3
"""No lost messages (issue 15): paho-mqtt publishers and subscribers at QoS 1 through ringproxy
while brokers are killed (-9) and restarted and ringproxy is reloaded 20 times; every message a
broker acknowledged to a publisher must reach a subscriber.

Usage: python3 Benchmarks/reliability/nolost.py [--seconds 60 | --short] [--bin PATH]

                          +-> frontend pub  127.0.0.1:61830 -> backend brokers: b1, b2, b3
  6 publishers (paho) ----+   (stick table on the client id, roundrobin, option redispatch,
                              retries 3, check inter 200 fall 2 rise 2: an MQTT CONNECT/CONNACK)
  subscriber k (paho) ----->  frontend subk 127.0.0.1:6183{3+k} -> backend subk: bk alone
  mosquitto bk 127.0.0.1:6183k (k = 1..3; plain, not bridged, persistence on)

Why this topology. The three mosquittos are not a cluster: a message published on b1 reaches
only b1's subscribers. So each broker has its own subscriber (client id nolost-sub-k, subscribed
to nolost/#), pinned to it by a frontend of its own: whichever broker acknowledges a message, a
subscriber of that broker is there to receive it. Publishers go through the balanced frontend,
sticky on their client id, and move to another broker (redispatch) when theirs dies; paho sends
what was in flight again on the new connection. Subscribers and publishers alike go through
ringproxy, so every byte of every message and acknowledgement crosses it (and its reloads).

Why a loss is ringproxy's. A message counts as acknowledged when its PUBACK reached the
publisher (paho's on_publish). The broker that sent that PUBACK had by then routed the
message to its subscriber's session (mosquitto queues the subscribers' copies, and writes them
when it can, before it sends the PUBACK), so the copy is either already on its way to the
subscriber through ringproxy, or in the broker's session for it. The subscribers' sessions are
persistent (clean_session=False, QoS 1, max_inflight_messages and max_queued_messages
unlimited), and so are the brokers (persistence true, autosave_interval 1: a killed broker
comes back with each subscriber's session and subscription, and the messages not yet
acknowledged by the subscriber at its last save, which it sends again: duplicates, reported,
not errors). What kill -9 can still take without ringproxy's doing: a copy the broker had queued
but not yet written to the subscriber's socket, acknowledged after its last save (the write
would have had to block: the rates here are 25 messages/s per publisher, far below what fills
a loopback socket). Each lost message is listed with its acknowledgement time and the nearest
kill, so that such a case shows itself as one (acknowledged within a few ms before a kill of
that broker), not as a mystery. Everything else lost -- a PUBACK relayed to the wrong client,
bytes the broker sent before dying not relayed to the subscriber, a session sent to the wrong
broker -- is ringproxy's.

During the run: 20 reloads (SIGHUP, each awaited) spread over the publishing time, and kills
(-9) of one broker at a time, restarted after --down-s seconds (4 in the full run, cycling
b1 b2 b3 b1; 2 with --short). After publishing stops: every published message acknowledged
(bounded wait, all brokers up), every acknowledged one received (bounded wait), the proxy back
at active=0 buffers_in_use=0 once the clients disconnect.

--control routes b1's subscriber to b2 (the mistake a proxy could make with a session): b1's
acknowledged messages then reach no one, and the run must fail with losses; it checks the check.

Prints one JSON line: published, acked, received (distinct), lost, duplicates, reloads, kills,
and what the proxy logged (servers DOWN / UP, redispatches). Exit 1 if lost > 0, if the run did
not do its reloads and kills, or if nothing was acknowledged.
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import paho.mqtt.client as mqtt

import proxyctl

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
# Above the ephemeral range (32768-60999) and the tests' random ports (20000-32000); used by no
# other script of the repository (soak.py: 61850-61852).
PUB_PORT = 61830
BROKER_PORTS = [61831, 61832, 61833]
SUB_PORTS = [61834, 61835, 61836]
TOPIC = "nolost"
# MQTT 3.1.1 CONNECT: clean session, keepalive 60 s, empty client id (MQTT 3.1.1 §3.1.3.1).
CHECK_CONNECT = "100c00044d5154540402003c0000"
CHECK_CONNACK = "20020000"


def log(msg):
    print(f"[nolost] {msg}", file=sys.stderr, flush=True)


def config(control=False):
    """The proxy's file. control: b1's subscriber is sent to b2 instead (a session on the wrong
    broker), so that what b1 acknowledges reaches no one: the run must then count losses."""
    check = (f"  option tcp-check\n  tcp-check send-binary {CHECK_CONNECT}\n"
             f"  tcp-check expect binary {CHECK_CONNACK}\n")
    server = "check inter 200 fall 2 rise 2"
    out = ["global\n  maxconn 2000\n  log stderr format raw local0\n",
           "defaults\n  mode tcp\n  timeout connect 1s\n  timeout client 60s\n  timeout server 60s\n"
           "  retries 3\n  option redispatch\n",
           "backend brokers\n  balance roundrobin\n  tcp-request inspect-delay 5s\n"
           "  stick-table type string len 64 size 10k expire 30m\n"
           "  stick on req.payload(0,0),mqtt_field_value(connect,client_identifier)\n" + check
           + "".join(f"  server b{i + 1} 127.0.0.1:{p} {server}\n" for i, p in enumerate(BROKER_PORTS)),
           f"frontend pub\n  bind 127.0.0.1:{PUB_PORT}\n  tcp-request inspect-delay 5s\n"
           "  tcp-request content reject unless { req.payload(0,0),mqtt_is_valid }\n  default_backend brokers\n"]
    for i, (bp, sp) in enumerate(zip(BROKER_PORTS, SUB_PORTS)):
        bp = BROKER_PORTS[1] if control and i == 0 else bp
        out.append(f"backend sub{i + 1}\n{check}  server b{i + 1} 127.0.0.1:{bp} {server}\n")
        out.append(f"frontend sub{i + 1}\n  bind 127.0.0.1:{sp}\n  default_backend sub{i + 1}\n")
    return "\n".join(out)


class Broker:
    def __init__(self, scratch, index):
        self.index, self.port = index, BROKER_PORTS[index]
        self.dir = os.path.join(scratch, f"b{index + 1}")
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o777)  # mosquitto drops root for its own user, which writes the db here
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        with open(self.conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\nmax_connections -1\n"
                    f"persistence true\npersistence_location {self.dir}/\nautosave_interval 1\n"
                    "max_inflight_messages 0\nmax_queued_messages 0\nlog_dest stderr\n"
                    "log_type error\nlog_type warning\nlog_type notice\n")
        os.chmod(self.conf, 0o644)
        self.process = None
        self.starts = 0

    def start(self):
        self.starts += 1
        out = open(os.path.join(self.dir, f"mosquitto-{self.starts}.log"), "w")
        self.process = subprocess.Popen(["mosquitto", "-c", self.conf], stdout=out, stderr=subprocess.STDOUT)
        out.close()
        if not proxyctl.wait_listening(self.port, alive=lambda: self.process.poll() is None):
            raise RuntimeError(f"mosquitto b{self.index + 1} did not listen on {self.port} (see {self.dir})")

    def kill(self):
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def new_client(client_id, clean):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean,
                    protocol=mqtt.MQTTv311)
    c.reconnect_delay_set(min_delay=0.1, max_delay=0.5)
    c.max_inflight_messages_set(0)  # no client-side window: a broker's death finds all of it in flight
    c.max_queued_messages_set(0)
    return c


class Subscriber:
    def __init__(self, index, received, lock):
        self.index = index
        self.connects = 0
        self.subscribed = threading.Event()
        self.client = new_client(f"nolost-sub-{index + 1}", clean=False)
        self.client.on_connect = self.on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self.on_message
        self.received, self.lock = received, lock

    def on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            return
        self.connects += 1
        client.subscribe(f"{TOPIC}/#", qos=1)  # again each time: a broker that lost its db forgot it

    def on_message(self, client, userdata, msg):
        key = msg.payload.decode()
        with self.lock:
            self.received[key] = self.received.get(key, 0) + 1

    def start(self):
        self.client.connect_async("127.0.0.1", SUB_PORTS[self.index], keepalive=30)
        self.client.loop_start()


class Publisher:
    """Publishes its own numbered messages; a message is acknowledged when paho reports its
    PUBACK (on_publish). paho calls on_publish from its thread, possibly before publish() has
    returned the message id to this one: such early acknowledgements wait in `early`."""

    def __init__(self, index, t0):
        self.index, self.t0 = index, t0
        self.client_id = f"nolost-pub-{index + 1}"
        self.client = new_client(self.client_id, clean=True)
        self.connects = 0
        self.client.on_connect = self.on_connect
        self.client.on_publish = self.on_publish
        self.lock = threading.Lock()
        self.sent = {}  # seq -> when published
        self.inflight, self.early = {}, set()  # mid -> seq; mids acknowledged before publish() returned
        self.refused = 0
        self.acked_at = {}  # seq -> when its PUBACK arrived

    def on_connect(self, client, userdata, flags, reason_code, properties):
        if not reason_code.is_failure:
            self.connects += 1

    def on_publish(self, client, userdata, mid, reason_code, properties):
        with self.lock:
            if mid in self.inflight:
                self.acked_at[self.inflight.pop(mid)] = time.monotonic() - self.t0
            else:
                self.early.add(mid)

    def start(self):
        self.client.connect_async("127.0.0.1", PUB_PORT, keepalive=30)
        self.client.loop_start()

    def publish(self, seq):
        key = f"{self.client_id}/{seq}"
        now = time.monotonic() - self.t0
        # Queued by paho even while disconnected (rc MQTT_ERR_NO_CONN): sent on reconnection.
        info = self.client.publish(f"{TOPIC}/{self.client_id}", key, qos=1)
        if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
            self.refused += 1
            return
        with self.lock:
            self.sent[seq] = now
            if info.mid in self.early:
                self.early.remove(info.mid)
                self.acked_at[seq] = now
            else:
                self.inflight[info.mid] = seq

    def unacked(self):
        with self.lock:
            return len(self.inflight)


class Run:
    def __init__(self, args):
        self.args = args
        self.scratch = tempfile.mkdtemp(prefix="ringproxy-nolost.")
        os.chmod(self.scratch, 0o755)
        self.brokers = []
        self.proxy = None
        self.events = []  # (t, what)
        self.received, self.lock = {}, threading.Lock()
        self.subscribers, self.publishers = [], []

    def event(self, what):
        self.events.append((round(time.monotonic() - self.t0, 3), what))
        log(f"t={self.events[-1][0]:.2f} {what}")

    def setup(self):
        for port in [PUB_PORT] + BROKER_PORTS + SUB_PORTS:
            if not proxyctl.port_free(port):
                raise RuntimeError(f"port {port} is in use (another nolost.py running?)")
        self.brokers = [Broker(self.scratch, i) for i in range(3)]
        for b in self.brokers:
            b.start()
        cfg = os.path.join(self.scratch, "ringproxy.cfg")
        with open(cfg, "w") as f:
            f.write(config(self.args.control))
        self.proxy = proxyctl.Proxy(self.args.bin, cfg, os.path.join(self.scratch, "ringproxy.log"))
        for port in [PUB_PORT] + SUB_PORTS:
            if not proxyctl.wait_listening(port, alive=self.proxy.alive):
                raise RuntimeError(f"ringproxy does not listen on {port} (see {self.proxy.log_path})")
        self.subscribers = [Subscriber(i, self.received, self.lock) for i in range(3)]
        for s in self.subscribers:
            s.start()
        for s in self.subscribers:
            if not s.subscribed.wait(15):
                raise RuntimeError(f"subscriber {s.index + 1} not subscribed within 15 s")
        time.sleep(1.5)  # one autosave (1 s) with the subscribers' sessions in every broker's db
        self.publishers = [Publisher(i, self.t0) for i in range(self.args.publishers)]
        for p in self.publishers:
            p.start()

    def schedule(self):
        """(time from the start of publishing, action) for the reloads and the kills/restarts."""
        a = self.args
        span = a.seconds
        plan = [(span * (0.05 + 0.9 * i / (a.reloads - 1 if a.reloads > 1 else 1)), "reload", None)
                for i in range(a.reloads)]
        for k in range(a.kills):
            at = span * (0.12 + 0.7 * k / max(1, a.kills - 1)) if a.kills > 1 else span * 0.3
            plan.append((at, "kill", k % 3))
            plan.append((at + a.down_s, "restart", k % 3))
        return sorted(plan, key=lambda p: p[0])

    def run(self):
        a = self.args
        self.t0 = time.monotonic()
        self.setup()
        self.event("clients started")
        plan = self.schedule()
        start = time.monotonic()
        interval = 1.0 / a.rate
        seq = 0
        next_pub = start
        while True:
            now = time.monotonic()
            if now - start >= a.seconds:
                break
            while plan and now - start >= plan[0][0]:
                _, what, b = plan.pop(0)
                if what == "reload":
                    self.proxy.reload()
                    self.event(f"reload {self.proxy.reloads}")
                elif what == "kill":
                    self.brokers[b].kill()
                    self.event(f"kill -9 b{b + 1}")
                else:
                    self.brokers[b].start()
                    self.event(f"restart b{b + 1}")
            if not self.proxy.alive():
                raise RuntimeError(f"ringproxy exited with {self.proxy.process.returncode}")
            if now >= next_pub:
                seq += 1
                for p in self.publishers:
                    p.publish(seq)
                next_pub += interval
            time.sleep(max(0.0, min(next_pub, start + a.seconds) - time.monotonic()))
        for _, what, b in plan:  # whatever the loop did not reach (a restart after the end)
            if what == "restart":
                self.brokers[b].start()
                self.event(f"restart b{b + 1} (after publishing)")
        self.event(f"publishing stopped after {seq} rounds")
        # Every published message acknowledged, then every acknowledged one received (bounded).
        deadline = time.monotonic() + a.settle_s
        while time.monotonic() < deadline:
            if all(p.unacked() == 0 for p in self.publishers):
                break
            time.sleep(0.1)
        self.event("acks settled")
        deadline = time.monotonic() + a.settle_s
        while time.monotonic() < deadline and self.missing():
            time.sleep(0.1)
        time.sleep(0.5)  # duplicates still on their way are counted too
        self.event("receipts settled")

    def missing(self):
        with self.lock:
            return [(p, seq) for p in self.publishers for seq in list(p.acked_at)
                    if f"{p.client_id}/{seq}" not in self.received]

    def teardown(self):
        for c in self.publishers + self.subscribers:
            try:
                c.client.disconnect()
                c.client.loop_stop()
            except Exception:  # noqa: BLE001 -- best effort on the way out
                pass
        after = None
        if self.proxy is not None and self.proxy.alive():
            try:
                after = self.proxy.drained(timeout_s=10)
            except RuntimeError:
                pass
        if self.proxy is not None:
            self.proxy.stop()
        for b in self.brokers:
            b.stop()
        return after

    def result(self, after):
        published = sum(len(p.sent) for p in self.publishers)
        acked = sum(len(p.acked_at) for p in self.publishers)
        with self.lock:
            distinct = len(self.received)
            duplicates = sum(n - 1 for n in self.received.values())
        missing = self.missing()
        kills = [t for t, w in self.events if w.startswith("kill")]
        lost_list = []
        for p, seq in missing[:20]:
            t = p.acked_at[seq]
            sent_at = p.sent[seq]
            near = min(kills, key=lambda k: abs(k - t)) if kills else None
            lost_list.append({"message": f"{p.client_id}/{seq}", "published_t": round(sent_at, 3),
                              "acked_seen_t": round(t, 3), "nearest_kill_t": near})
        log_lines = self.proxy.lines("") if self.proxy else []
        down = sum(1 for l in log_lines if " is DOWN" in l)
        up = sum(1 for l in log_lines if " is UP" in l)
        return {
            "published": published, "acked": acked, "unacked": published - acked,
            "refused_by_client_queue": sum(p.refused for p in self.publishers),
            "received_distinct": distinct, "lost": len(missing), "duplicates": duplicates,
            "reloads": self.proxy.reloads if self.proxy else 0, "kills": len(kills),
            "restarts": sum(b.starts - 1 for b in self.brokers),
            "publisher_connects": sum(p.connects for p in self.publishers),
            "subscriber_connects": sum(s.connects for s in self.subscribers),
            "proxy_log_down": down, "proxy_log_up": up,
            "proxy_after": None if after is None else {k: after.get(k) for k in (
                "active", "buffers_in_use", "redispatch_server_closed", "redispatch_server_unavailable",
                "connect_failures", "give_ups", "checks_failed")},
            "lost_messages": lost_list,
        }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60, help="publishing time")
    ap.add_argument("--short", action="store_true", help="20 s of publishing, 2 kills (CI)")
    ap.add_argument("--publishers", type=int, default=6)
    ap.add_argument("--rate", type=float, default=25, help="messages/s per publisher")
    ap.add_argument("--reloads", type=int, default=20)
    ap.add_argument("--kills", type=int, default=None, help="4; 2 with --short")
    ap.add_argument("--down-s", type=float, default=None, help="a killed broker's time down: 4 s; 2 with --short")
    ap.add_argument("--settle-s", type=float, default=20, help="bound on each wait after publishing")
    ap.add_argument("--control", action="store_true",
                    help="route b1's subscriber to b2: a run that must find losses (checks the counting)")
    ap.add_argument("--bin", default=os.environ.get("RINGPROXY_BIN", os.path.join(REPO, ".build", "debug", "ringproxy")))
    args = ap.parse_args()
    if args.short:
        args.seconds = 20
    args.kills = args.kills if args.kills is not None else (2 if args.short else 4)
    args.down_s = args.down_s if args.down_s is not None else (2 if args.short else 4)
    if shutil.which("mosquitto") is None:
        sys.exit("nolost.py: mosquitto missing (apt-get install -y mosquitto)")
    run = Run(args)
    started = time.time()
    error, after = proxyctl.guarded(args.bin, run.run, run.teardown)
    r = run.result(after)
    failures = []
    if error:
        failures.append(error)
    if r["lost"]:
        failures.append(f"{r['lost']} acknowledged message(s) never received")
    if r["acked"] == 0:
        failures.append("nothing was acknowledged")
    if r["reloads"] < args.reloads:
        failures.append(f"{r['reloads']} of {args.reloads} reloads")
    if r["kills"] < args.kills or r["restarts"] < args.kills:
        failures.append(f"{r['kills']} kills, {r['restarts']} restarts of {args.kills}")
    if after is None or after.get("active") != 0 or after.get("buffers_in_use") != 0:
        failures.append(f"proxy not back to active=0 buffers_in_use=0: {r['proxy_after']}")
    ok = not failures
    print(json.dumps({"nolost": "PASS" if ok else "FAIL", "seconds": round(time.time() - started, 1),
                      "publishing_s": args.seconds, "binary": args.bin, **r, "failures": failures,
                      "events": run.events}))
    if ok:
        shutil.rmtree(run.scratch, ignore_errors=True)
    else:
        print(f"logs: {run.scratch}", file=sys.stderr)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
