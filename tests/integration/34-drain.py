#!/usr/bin/python3
"""
Shutdown drain (shutdown.drain_ms, default 5000): with 50 requests pending,
SIGTERM gives every requester 503 shutting_down and every signer one cancel
(reason shutting_down) per pending request followed by close 1001; the
process exits 0 within drain_ms (+1 s), even when a signer never completes
the closing handshake; new connections are refused during the drain.
"""

import asyncio
import os
import re
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import websockets
from ops_util import all_503, raw_post, sign_raw, stuck_signer
from wssd_test import (CLOSE, PROTOCOL, Daemon, RawWS, TestFailure, b64, check, check_eq,
                       check_error_body, close_code, current_tmpdir, run_cli, run_tests,
                       write_json)

N_REQUESTS = 50


async def wait_exit(d, limit):
    """Waits up to `limit` s for the process; returns (rc, seconds)."""
    t0 = time.monotonic()
    try:
        rc = await asyncio.to_thread(d.proc.wait, limit)
    except subprocess.TimeoutExpired:
        raise TestFailure("daemon still running %.1f s after SIGTERM" % limit)
    d.returncode = rc
    return rc, time.monotonic() - t0


async def test_drain_50_pending():
    drain_ms = 3000
    d = Daemon({"shutdown": {"drain_ms": drain_ms}})
    await d.astart()
    a = d.signer(policy="silent")
    b = d.signer(policy="silent")
    await a.start()
    await b.start()
    tasks = []
    for i in range(N_REQUESTS):
        s = a if i % 2 == 0 else b
        tasks.append(asyncio.ensure_future(
            sign_raw(d.control_port, s.pk, b"drain %d" % i, timeout_ms=30000)))
    await a.wait_request(N_REQUESTS // 2 - 1, timeout=10)
    await b.wait_request(N_REQUESTS // 2 - 1, timeout=10)
    pending_a = {r["request_id"] for r in a.requests}
    pending_b = {r["request_id"] for r in b.requests}
    check_eq(len(pending_a) + len(pending_b), N_REQUESTS, "sign_request frames received")

    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
    for i, r in enumerate(results):
        if isinstance(r, BaseException):
            raise TestFailure("requester %d got no HTTP answer: %r" % (i, r))
        check_error_body(r[0], r[1], 503, "shutting_down", "requester %d" % i)

    for name, s, pending in (("a", a, pending_a), ("b", b, pending_b)):
        cc = await s.wait_closed(drain_ms / 1000 + 1)
        check_eq(cc, 1001, "signer %s close code" % name)
        cancels = [f for f in s.frames if f.get("type") == "cancel"]
        others = [f for f in s.frames if f.get("type") != "cancel"]
        check_eq(others, [], "signer %s: frames other than cancel" % name)
        ids = [f.get("request_id") for f in cancels]
        check_eq(len(ids), len(set(ids)), "signer %s: duplicate cancel frames" % name)
        check_eq(set(ids), pending, "signer %s: cancelled request ids" % name)
        bad = [f for f in cancels if f.get("reason") != "shutting_down"]
        check_eq(bad, [], "signer %s: cancel frames without reason shutting_down" % name)

    rc, _ = await wait_exit(d, max(0.0, drain_ms / 1000 + 1 - (time.monotonic() - t0)))
    check_eq(rc, 0, "exit status after the drain")
    elapsed = time.monotonic() - t0
    check(elapsed <= drain_ms / 1000 + 1, "exit %.2f s after SIGTERM" % elapsed)
    outcomes = re.findall(r"event=sign_outcome request_id=(\S+) .*outcome=(\S+)",
                          d.log_text())
    check_eq(len(outcomes), N_REQUESTS, "audit lines for the requests ended by the shutdown")
    check_eq({rid for rid, _ in outcomes}, pending_a | pending_b, "audited request ids")
    check_eq({o for _, o in outcomes}, {"shutting_down"}, "audited outcomes")


async def refused_during_drain(d):
    """New WebSocket and HTTP connections must not be served."""
    try:
        ws = await websockets.connect(d.url(), open_timeout=2, ping_interval=None)
    except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
        pass
    else:
        await ws.close()
        raise TestFailure("a WebSocket handshake succeeded during the drain")
    try:
        status, body, _ = await raw_post(d.control_port, "/v1/sign",
                                         {"public_key": b64(os.urandom(32)),
                                          "message": b64(b"during drain")}, timeout=2)
    except (OSError, asyncio.TimeoutError):
        return
    check_error_body(status, body, 503, "shutting_down", "POST /v1/sign during the drain")


async def test_signer_that_ignores_the_close():
    drain_ms = 2000
    d = Daemon({"shutdown": {"drain_ms": drain_ms}})
    await d.astart()
    raw = RawWS(d.port)
    await asyncio.to_thread(lambda: raw.open(protocol=PROTOCOL).introduce())
    task = asyncio.ensure_future(sign_raw(d.control_port, raw.pk, b"stubborn", timeout_ms=30000))
    frame = await asyncio.to_thread(raw.next_message, 5.0)
    check_eq(frame.get("type"), "sign_request", "first frame after the introduction")

    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    status, body = await asyncio.wait_for(task, 5)
    check_error_body(status, body, 503, "shutting_down", "requester at shutdown")
    cancel = await asyncio.to_thread(raw.next_message, 3.0)
    check_eq(cancel.get("type"), "cancel", "frame after SIGTERM")
    check_eq(cancel.get("reason"), "shutting_down", "cancel.reason")
    check_eq(cancel.get("request_id"), frame["request_id"], "cancel.request_id")
    _, _, op, payload = await asyncio.to_thread(raw.next_frame, 3.0)
    check_eq(op, CLOSE, "opcode after the cancel (close expected)")
    check_eq(close_code(payload), 1001, "close code")
    # the signer never answers the close: the daemon exits anyway
    await asyncio.sleep(0.2)
    await refused_during_drain(d)
    rc, _ = await wait_exit(d, max(0.0, drain_ms / 1000 + 1 - (time.monotonic() - t0)))
    elapsed = time.monotonic() - t0
    check_eq(rc, 0, "exit status after a drain cut short")
    check(elapsed <= drain_ms / 1000 + 1, "exit %.2f s after SIGTERM" % elapsed)
    raw.close()


async def test_stuck_signer_holds_the_drain_until_drain_ms():
    """Frames queued for a signer that stops reading keep the drain going; new
    connections are refused meanwhile, and it ends at drain_ms."""
    drain_ms = 2000
    d = Daemon({"shutdown": {"drain_ms": drain_ms},
                   "limits": {"max_queued_bytes": 16777216}})
    await d.astart()
    raw, tasks = await stuck_signer(d)
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    await all_503(tasks, t0)
    await asyncio.sleep(0.2)
    check(d.alive(), "daemon exited %.2f s after SIGTERM with frames still queued for a "
          "signer (no drain)" % (time.monotonic() - t0))
    await refused_during_drain(d)
    rc, _ = await wait_exit(d, max(0.0, drain_ms / 1000 + 1 - (time.monotonic() - t0)))
    elapsed = time.monotonic() - t0
    check_eq(rc, 0, "exit status after a drain that ran out")
    check(elapsed <= drain_ms / 1000 + 1, "exit %.2f s after SIGTERM" % elapsed)
    raw.close()


async def test_default_drain_is_5000_ms():
    d = Daemon({"limits": {"max_queued_bytes": 16777216}})
    await d.astart()
    raw, tasks = await stuck_signer(d)
    t0 = time.monotonic()
    d.signal(signal.SIGTERM)
    await all_503(tasks, t0)
    rc, _ = await wait_exit(d, 6.5)
    elapsed = time.monotonic() - t0
    check_eq(rc, 0, "exit status")
    check(4.5 <= elapsed <= 6.0, "exit %.2f s after SIGTERM with the default drain (5 s) and "
          "a stuck signer" % elapsed)
    raw.close()


async def test_exit_with_verify_threads():
    """The worker threads of requests.verify_threads do not hold the exit up."""
    drain_ms = 2000
    d = Daemon({"shutdown": {"drain_ms": drain_ms}, "requests": {"verify_threads": 2}})
    await d.astart()
    async with d.signer() as s:
        status, body, _ = await d.sign(s.pk, b"verified on a worker", timeout_ms=10000)
        check_eq(status, 200, "round trip with verify_threads 2 (body %r)" % (body,))
        silent = d.signer(policy="silent")
        await silent.start()
        task = asyncio.ensure_future(sign_raw(d.control_port, silent.pk, b"pending",
                                              timeout_ms=30000))
        await silent.wait_request(0)
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        status, body = await asyncio.wait_for(task, 5)
        check_error_body(status, body, 503, "shutting_down", "pending request at SIGTERM")
        check_eq(await silent.wait_closed(3.0), 1001, "signer close code")
        rc, _ = await wait_exit(d, drain_ms / 1000 + 1)
    elapsed = time.monotonic() - t0
    check_eq(rc, 0, "exit status with verify_threads 2")
    check(elapsed <= drain_ms / 1000 + 1, "exit %.2f s after SIGTERM" % elapsed)


def test_drain_ms_config_checked():
    tmp = current_tmpdir()
    good = write_json(os.path.join(tmp, "good.json"), {"shutdown": {"drain_ms": 1500}})
    rc, out, err = run_cli(["--check-config", "-c", good])
    check_eq(rc, 0, "--check-config with shutdown.drain_ms 1500 (stderr %r)" % err)
    for name, value in (("string", "1500"), ("negative", -1), ("float", 1500.0),
                        ("unknown key", None)):
        section = {"drain_ms": value} if value is not None else {"drain_msec": 1500}
        path = write_json(os.path.join(tmp, "bad.json"), {"shutdown": section})
        rc, out, err = run_cli(["--check-config", "-c", path])
        check(rc != 0, "--check-config accepted shutdown %s: %r" % (name, section))
        check("shutdown." in err, "error for %s does not name the key: %r" % (name, err))


run_tests(globals())
