"""A ringproxy process for the reliability scripts (nolost.py, soak.py): started on a
configuration file with its output in a log, reloaded with SIGHUP (waiting for its `reloaded:`
line), its SIGUSR1 report read back as numbers, its RSS, threads and descriptors from /proc."""
import os
import re
import signal
import subprocess
import sys
import time


def wait_listening(port, timeout_s=15, alive=None):
    """Until something listens on 127.0.0.1:port (asked of the kernel with `ss`, no probe
    connection); False after timeout_s or once alive() says the process meant to listen died."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        r = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, timeout=5)
        if r.stdout.strip():
            return True
        if alive is not None and not alive():
            return False
        time.sleep(0.05)
    return False


def port_free(port):
    import socket
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class Proxy:
    def __init__(self, binary, config_path, log_path, cores=2):
        self.log_path = log_path
        with open(log_path, "w") as out:
            self.process = subprocess.Popen([binary, "-f", config_path, "--cores", str(cores)], stdout=out,
                                            stderr=subprocess.STDOUT)
        self.reloads = 0

    @property
    def pid(self):
        return self.process.pid

    def alive(self):
        return self.process.poll() is None

    def lines(self, marker):
        with open(self.log_path, errors="replace") as f:
            return [line for line in f if marker in line]

    def counters(self, timeout_s=5):
        """The SIGUSR1 report's `stats:` line as {name: int}, once a new one came."""
        before = len(self.lines("stats: "))
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            lines = self.lines("stats: ")
            if len(lines) > before:
                line = lines[-1][lines[-1].index("stats: "):]
                return {k: int(v) for k, v in (kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)}
            time.sleep(0.02)
        raise RuntimeError(f"no SIGUSR1 report within {timeout_s} s (see {self.log_path})")

    def drained(self, timeout_s=15):
        """Polls the report until nothing is held (bounded): the last {name: int} seen."""
        deadline = time.time() + timeout_s
        while True:
            c = self.counters()
            if (c.get("active") == 0 and c.get("buffers_in_use") == 0) or time.time() > deadline:
                return c
            time.sleep(0.25)

    def reload(self, timeout_s=10):
        """SIGHUP, then waits for the `reloaded:` line it causes."""
        before = len(self.lines("reloaded:"))
        self.process.send_signal(signal.SIGHUP)
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            if len(self.lines("reloaded:")) > before:
                self.reloads += 1
                return
            if not self.alive():
                break
            time.sleep(0.02)
        raise RuntimeError(f"reload {self.reloads + 1}: no 'reloaded:' line within {timeout_s} s (see {self.log_path})")

    def pool_bytes(self):
        """The size of one worker's buffer mapping: the provided buffers its start-up line names
        plus the 64 owned buffers (EngineConfig.ownedBuffersPerWorker), of the same size."""
        for line in self.lines("provided buffers: "):
            m = re.search(r"provided buffers: (\d+) x (\d+) B per worker", line)
            if m:
                return (int(m.group(1)) + 64) * int(m.group(2))
        return None

    def figures(self):
        """VmRSS (KiB), threads and open descriptors of the process, and how much of the RSS is
        in the workers' buffer mappings and how much is the rest. The buffer mappings are found
        in /proc/PID/smaps as the anonymous rw-p mappings at least one worker's size: the kernel
        merges a neighbouring mapping with the same flags into one (jemalloc's, also
        MAP_NORESERVE), so `pools_kib` may hold a few MiB that are not buffers."""
        status = dict(line.split(":", 1) for line in open(f"/proc/{self.pid}/status") if ":" in line)
        pool, pools_kib, vma = self.pool_bytes(), 0, None
        with open(f"/proc/{self.pid}/smaps") as f:
            for line in f:
                head = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$", line)
                if head:
                    start, end = int(head.group(1), 16), int(head.group(2), 16)
                    anonymous = head.group(4) == "0" and not head.group(5)
                    vma = pool and anonymous and head.group(3) == "rw-p" and end - start >= pool
                elif vma and line.startswith("Rss:"):
                    pools_kib += int(line.split()[1])
        rss = int(status["VmRSS"].split()[0])
        return {"rss_kib": rss, "pools_kib": pools_kib, "rest_kib": rss - pools_kib,
                "threads": int(status["Threads"]), "fds": len(os.listdir(f"/proc/{self.pid}/fd"))}

    def stop(self):
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def stop_all(processes, timeout_s=10):
    """SIGTERM to each process still running (last started first), then SIGKILL to any that
    has not exited within timeout_s."""
    for p in reversed(processes):
        if p.poll() is None:
            p.terminate()
    for p in processes:
        try:
            p.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            p.kill()


def guarded(binary, body, teardown):
    """Runs body() and then teardown() whatever happens (SIGTERM and SIGINT included, which
    become an exit through teardown); returns (the error body() raised as text or None, what
    teardown() returned). Exits at once, naming the binary, when it is not there."""
    if not os.access(binary, os.X_OK):
        sys.exit(f"no ringproxy at {binary} (swift build --product ringproxy, or --bin)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(1))
    error = None
    try:
        body()
    except Exception as e:  # noqa: BLE001 -- the caller reports it as a failure with its reason
        error = repr(e)
    finally:
        torn = teardown()
    return error, torn
