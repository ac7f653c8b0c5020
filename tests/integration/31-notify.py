#!/usr/bin/python3
"""
sd_notify: with NOTIFY_SOCKET set, the daemon sends READY=1 (with a STATUS=
line) only once both listeners accept connections; WATCHDOG=1 at least every
WATCHDOG_USEC/2 while its loop runs, and none while it is stopped;
STATUS=serving: N signers, M pending, kept current; RELOADING=1 then READY=1
around a SIGHUP reload; STOPPING=1 before it exits on SIGTERM. Every
datagram comes from the daemon's own pid (NotifyAccess=main).
"""

import asyncio
import os
import re
import signal
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ops_util import NotifySocket
from wssd_test import Daemon, TestFailure, check, check_eq, free_port, port_accepts, run_tests

STATUS_RE = r"serving: (\d+) signers?, (\d+) pending"


def status_counts(value):
    m = re.search(STATUS_RE, value)
    return (int(m.group(1)), int(m.group(2))) if m else None


def notify_daemon(ns, config=None, watchdog_usec=None, wait_ready=True):
    env = {"NOTIFY_SOCKET": ns.path}
    if watchdog_usec is not None:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    d = Daemon(config, env=env, wait_ready=wait_ready)
    d.start()
    return d


def test_ready_only_when_both_listeners_accept():
    seen = {}

    def on_ready(t, fields):
        # runs in the receiver thread the moment READY=1 arrives
        seen["signer"] = port_accepts(d.port)
        seen["control"] = port_accepts(d.control_port)

    ns = NotifySocket(on_ready=on_ready)
    # fixed ports: the check runs the moment READY=1 arrives, before the ready line is read
    d = Daemon({"listen": "127.0.0.1:%d" % free_port(),
                   "control": {"listen": "127.0.0.1:%d" % free_port()}},
                  env={"NOTIFY_SOCKET": ns.path}, wait_ready=False)
    d.start()
    # until READY=1, note whether it ever came before the ports accepted
    deadline = time.monotonic() + 10
    while not ns.find("READY", "1"):
        if time.monotonic() > deadline:
            raise TestFailure("no READY=1 within 10 s (datagrams %r)"
                              % [m[3] for m in ns.snapshot()])
        check(d.proc.poll() is None, "daemon exited before READY=1")
        time.sleep(0.005)
    ready = ns.find("READY", "1")
    check_eq(len(ready), 1, "READY=1 datagrams at start-up")
    check_eq(seen.get("signer"), True, "signer listener accepts when READY=1 arrives")
    check_eq(seen.get("control"), True, "control listener accepts when READY=1 arrives")
    t_ready, pid, fields, raw = ready[0]
    check_eq(pid, d.pid, "sender pid of READY=1")
    # STATUS= in the same datagram or one close to it
    status = [m for m in ns.find("STATUS") if abs(m[0] - t_ready) < 1.0]
    if not status:
        status = [ns.wait_for("STATUS", since=t_ready, timeout=1.0)]
    check(status, "no STATUS= with READY=1")
    counts = status_counts(status[-1][2]["STATUS"])
    check_eq(counts, (0, 0), "counts in STATUS=%r" % status[-1][2]["STATUS"])
    d.wait_log("event=ready", 2.0)
    for m in ns.snapshot():
        check_eq(m[1], d.pid, "sender pid of %r" % m[3])
    d.stop()
    ns.close()


def test_ready_without_notify_socket():
    """Without NOTIFY_SOCKET the daemon starts as usual."""
    d = Daemon(env={"NOTIFY_SOCKET": None, "WATCHDOG_USEC": "400000"})
    d.start()
    check(port_accepts(d.port) and port_accepts(d.control_port), "listeners accept")
    d.stop()


def watchdog_gaps(ns, since, until):
    times = [m[0] for m in ns.find("WATCHDOG", "1", since) if m[0] <= until]
    return times, [b - a for a, b in zip(times, times[1:])]


def test_watchdog_interval():
    ns = NotifySocket()
    d = notify_daemon(ns, watchdog_usec=400000)
    t_ready = ns.wait_for("READY", "1", timeout=10)[0]
    time.sleep(2.2)
    t_end = time.monotonic()
    times, gaps = watchdog_gaps(ns, t_ready, t_end)
    check(len(times) >= 8, "%d WATCHDOG=1 in 2.2 s with WATCHDOG_USEC=400000" % len(times))
    check(times[0] - t_ready <= 0.3, "first WATCHDOG=1 %.3f s after READY=1"
          % (times[0] - t_ready))
    check(t_end - times[-1] <= 0.3, "last WATCHDOG=1 %.3f s before the end"
          % (t_end - times[-1]))
    check(max(gaps) <= 0.3, "WATCHDOG=1 gap of %.3f s (limit 0.2 s + 0.1 s slack); gaps %r"
          % (max(gaps), [round(g, 3) for g in gaps]))
    for m in ns.find("WATCHDOG"):
        check_eq(m[1], d.pid, "sender pid of WATCHDOG=1")
    d.stop()
    ns.close()


def test_watchdog_stops_while_stopped():
    ns = NotifySocket()
    d = notify_daemon(ns, watchdog_usec=400000)
    ns.wait_for("READY", "1", timeout=10)
    ns.wait_for("WATCHDOG", "1", since=time.monotonic(), timeout=1.0)
    d.signal(signal.SIGSTOP)
    t_stop = time.monotonic()
    try:
        time.sleep(1.2)
        # a datagram already in flight when the signal landed is tolerated
        late = [round(m[0] - t_stop, 3) for m in ns.find("WATCHDOG", "1", t_stop + 0.05)]
        check_eq(late, [], "WATCHDOG=1 times (s after SIGSTOP) while the daemon was stopped")
    finally:
        d.signal(signal.SIGCONT)
    t_cont = time.monotonic()
    ns.wait_for("WATCHDOG", "1", since=t_cont, timeout=0.5)
    time.sleep(1.0)
    times, gaps = watchdog_gaps(ns, t_cont + 0.3, time.monotonic())
    check(len(times) >= 3, "only %d WATCHDOG=1 in the second after SIGCONT" % len(times))
    check(max(gaps) <= 0.3, "WATCHDOG=1 gap of %.3f s after SIGCONT" % max(gaps))
    d.stop()
    ns.close()


async def test_status_counts_signers_and_pending():
    ns = NotifySocket()
    d = await asyncio.to_thread(notify_daemon, ns)
    await ns.await_for("READY", "1", timeout=10)
    async with d.signer(), d.signer(policy="silent") as b:
        t0 = time.monotonic()
        m = await ns.await_for("STATUS", since=t0, timeout=5.0, match=r"serving: 2 signers")
        check_eq(status_counts(m[2]["STATUS"]), (2, 0), "STATUS=%r" % m[2]["STATUS"])
        task = asyncio.ensure_future(d.sign(b.pk, b"pending for STATUS", timeout_ms=15000))
        await b.wait_request(0)
        t1 = time.monotonic()
        m = await ns.await_for("STATUS", since=t1, timeout=5.0,
                               match=r"serving: 2 signers?, 1 pending")
        await b.send_json(b.response(b.requests[0]))
        status, body, _ = await task
        check_eq(status, 200, "answered request (body %r)" % (body,))
        t2 = time.monotonic()
        m = await ns.await_for("STATUS", since=t2, timeout=5.0, match=r"serving: 2 signers?, 0 pending")
    t3 = time.monotonic()
    m = await ns.await_for("STATUS", since=t3, timeout=5.0, match=r"serving: 0 signers?, 0 pending")
    await d.astop()
    ns.close()


def test_reload_sends_reloading_then_ready():
    ns = NotifySocket()
    d = notify_daemon(ns)
    ns.wait_for("READY", "1", timeout=10)
    cfg = dict(d.config, log_level="debug")
    d.rewrite_config(cfg)
    t0 = time.monotonic()
    d.reload()
    rel = ns.wait_for("RELOADING", "1", since=t0, timeout=5.0)
    rdy = ns.wait_for("READY", "1", since=rel[0], timeout=5.0)
    msgs = ns.snapshot()
    check(msgs.index(rel) < msgs.index(rdy),
          "READY=1 not in a datagram after RELOADING=1 (%r)" % [m[3] for m in msgs])
    d.wait_log(r"level=notice event=reload outcome=ok", 1.0)
    check_eq(rel[1], d.pid, "sender pid of RELOADING=1")
    d.stop()
    ns.close()


def test_refused_reload_still_ends_with_ready():
    """systemd keeps a unit in "reloading" until READY=1 follows RELOADING=1,
    so a refused reload must send READY=1 too."""
    ns = NotifySocket()
    d = notify_daemon(ns)
    ns.wait_for("READY", "1", timeout=10)
    d.rewrite_config(text="{ this is not json")
    t0 = time.monotonic()
    d.reload()
    d.wait_log(r"level=err event=reload outcome=refused", 5.0)
    rel = ns.wait_for("RELOADING", "1", since=t0, timeout=2.0)
    rdy = ns.wait_for("READY", "1", since=rel[0], timeout=5.0)
    msgs = ns.snapshot()
    check(msgs.index(rel) < msgs.index(rdy),
          "READY=1 not in a datagram after RELOADING=1 (%r)" % [m[3] for m in msgs])
    check(port_accepts(d.port), "signer listener after a refused reload")
    d.stop()
    ns.close()


def test_stopping_before_exit():
    ns = NotifySocket()
    d = notify_daemon(ns)
    ns.wait_for("READY", "1", timeout=10)
    t0 = time.monotonic()
    d.stop()     # SIGTERM; fails unless the exit status is 0
    time.sleep(0.1)
    stopping = ns.find("STOPPING", "1", since=t0)
    check_eq(len(stopping), 1, "STOPPING=1 datagrams after SIGTERM")
    check_eq(stopping[0][1], d.pid, "sender pid of STOPPING=1")
    after = [m[3] for m in ns.snapshot() if m[0] > stopping[0][0] and "READY" in m[2]]
    check_eq(after, [], "READY=1 after STOPPING=1")
    ns.close()


run_tests(globals())
