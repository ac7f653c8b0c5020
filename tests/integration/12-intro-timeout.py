#!/usr/bin/python3
"""
introduction.timeout_ms: a connection that does not introduce itself gets an
error frame introduction_timeout and close 4002; an introduced connection is
not affected by that deadline.
"""

import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import Daemon, check, check_eq, run_tests

CONFIG = {"introduction": {"timeout_ms": 500}}


async def test_silent_connection_times_out():
    async with Daemon(CONFIG) as d:
        s = d.signer()
        t0 = time.monotonic()
        await s.connect()
        await s.read_challenge()
        frames, cc = await s.recv_until_closed(5.0)
        elapsed = time.monotonic() - t0
        check_eq(len(frames), 1, "frames before the close (%r)" % frames)
        check_eq(frames[0].get("type"), "error", "frame type (%r)" % frames)
        check_eq(frames[0].get("code"), "introduction_timeout", "error code")
        check_eq(cc, 4002, "close code")
        check(0.4 <= elapsed <= 2.5, "closed after %.3f s, expected ~0.5 s" % elapsed)


async def test_partial_activity_does_not_extend():
    # a malformed frame is not an introduction: the deadline still applies
    async with Daemon(CONFIG) as d:
        s = d.signer()
        t0 = time.monotonic()
        await s.connect()
        await s.read_challenge()
        await s.send_text("{}")
        frames, cc = await s.recv_until_closed(5.0)
        elapsed = time.monotonic() - t0
        check(frames and frames[-1].get("code") == "introduction_timeout",
              "last frame before close (%r)" % frames)
        check_eq(cc, 4002, "close code")
        check(elapsed <= 2.5, "closed after %.3f s" % elapsed)


async def test_introduced_connection_stays():
    async with Daemon(CONFIG) as d:
        async with d.signer() as s:
            await asyncio.sleep(1.5)
            check(s.is_open, "introduced connection closed (code %r)" % s.close_code)
            await s.no_frame(0.1)
            status, body, _ = await d.sign(s.pk, b"still here", timeout_ms=10000)
            check_eq(status, 200, "sign after the introduction deadline (body %r)" % (body,))


run_tests(globals())
