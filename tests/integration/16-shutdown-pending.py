#!/usr/bin/python3
"""
SIGTERM with a request pending: the requester gets 503 shutting_down, the
signer gets cancel (reason shutting_down) and close 1001, and the daemon
exits 0.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import Daemon, TestFailure, check_eq, check_error_body, run_tests


async def test_sigterm_with_pending_request():
    d = Daemon()
    await d.astart()
    s = d.signer(policy="silent")
    await s.start()
    task = asyncio.ensure_future(d.sign(s.pk, b"pending at shutdown", timeout_ms=30000))
    req = await s.wait_request(0)
    stopper = asyncio.ensure_future(d.astop())
    try:
        status, body, elapsed = await task
    except Exception as e:
        raise TestFailure("no HTTP answer for a request pending at shutdown: %r" % (e,))
    check_error_body(status, body, 503, "shutting_down", "request pending at shutdown")
    cancel = await s.expect_frame("cancel", timeout=5.0)
    check_eq(cancel.get("request_id"), req["request_id"], "cancel.request_id")
    check_eq(cancel.get("reason"), "shutting_down", "cancel.reason")
    cc = await s.wait_closed(5.0)
    check_eq(cc, 1001, "signer close code at shutdown")
    await stopper          # fails unless the daemon exited 0 within 5 s
    check_eq(d.returncode, 0, "daemon exit status")


async def test_sigterm_idle():
    d = Daemon()
    await d.astart()
    s = d.signer()
    await s.start()
    stopper = asyncio.ensure_future(d.astop())
    cc = await s.wait_closed(5.0)
    check_eq(cc, 1001, "signer close code at shutdown")
    await stopper
    check_eq(d.returncode, 0, "daemon exit status")


run_tests(globals())
