"""What the headless-Chromium test scripts share (browser-stats-test.py, browser-ws-test.py):
free loopback ports below the ephemeral range, waiting for a listener, the ringproxy binary to
test, starting Debian's chromium through chromedriver (bounded retries), and the guarded run
that always stops every process it started, within a deadline, and prints one PASS/FAIL line."""
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Failure(Exception):
    pass


def default_binary():
    """What scripts/test.sh built (debug), else a release build: the newest of the two."""
    found = [p for p in (os.path.join(ROOT, ".build", kind, "ringproxy") for kind in ("debug", "release"))
             if os.access(p, os.X_OK)]
    if not found:
        raise Failure("no ringproxy binary in .build/debug or .build/release (swift build first, or --binary)")
    return max(found, key=os.path.getmtime)


def free_port(address="127.0.0.1", low=20000, high=32000, taken=()):
    """A port below 32768 (outside Linux's ephemeral range), free right now on `address`."""
    for _ in range(500):
        port = random.randrange(low, high)
        if port in taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((address, port))
                return port
            except OSError:
                continue
    raise Failure("no free port below 32768 after 500 tries")


def wait_listening(port, seconds, what, process=None):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise Failure("%s exited with status %s before listening on %d" % (what, process.returncode, port))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise Failure("%s not listening on 127.0.0.1:%d after %.0f s" % (what, port, seconds))


def headless_chromium(window="800,600", console_log=False):
    """A Selenium driver over Debian's chromium. The driver's path is given, so Selenium Manager
    never looks for (or downloads) one; its port is chosen below the ephemeral range (Selenium's
    own pick can be taken by an outgoing connection before chromedriver binds it, seen under
    connection storms), and a chromedriver that exits at start is retried a few times."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=" + window, "--no-first-run", "--disable-extensions",
                "--disable-background-networking", "--disable-sync", "--disable-component-update"):
        options.add_argument(arg)
    if console_log:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    for attempt in range(3):
        try:
            driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver", port=free_port(high=30000)), options=options)
            driver.set_page_load_timeout(10)
            return driver
        except Exception:
            if attempt == 2:
                raise
            time.sleep(1.0)


def guarded_run(name, deadline, run, logs=()):
    """Runs `run(run_dir, children, browsers)` within `deadline` seconds; whatever happens, quits
    the browsers, stops the child processes and removes the run directory. On failure prints the
    last lines of the run directory's `<log>.log` files. Returns (result, failure text or None,
    seconds)."""
    def give_up(signum, _frame):
        raise Failure("stopped by signal %d" % signum if signum != signal.SIGALRM
                      else "did not finish within %.0f s" % deadline)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(sig, give_up)
    signal.setitimer(signal.ITIMER_REAL, deadline)
    t0 = time.monotonic()
    children, browsers = [], []
    run_dir = tempfile.mkdtemp(prefix="ringproxy-%s." % name)
    failure, result = None, None
    try:
        result = run(run_dir, children, browsers)
    except Failure as e:
        failure = str(e)
    except Exception as e:   # selenium or the browser could not start: a failure, said plainly
        failure = "%s: %s" % (type(e).__name__, str(e).strip().splitlines()[0] if str(e).strip() else "")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for browser in browsers:
            browser.quit()
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(3)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(3)
        if failure:
            for log_name in logs:
                log = os.path.join(run_dir, "%s.log" % log_name)
                if os.path.exists(log):
                    with open(log, errors="replace") as f:
                        for line in f.read().splitlines()[-6:]:
                            print("  %s: %s" % (log_name, line), file=sys.stderr)
        subprocess.run(["rm", "-rf", run_dir])
    return result, failure, time.monotonic() - t0
