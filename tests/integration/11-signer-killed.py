#!/usr/bin/python3
"""
A signer process killed with SIGKILL while a request is pending: the request
fails at once with 502 connection_closed (not at its timeout), and the key
is no longer connected.
"""

import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import (Daemon, SignerProcess, b64url, check, check_eq, check_error_body,
                       run_tests)


async def test_kill_signer_with_pending_request():
    async with Daemon() as d:
        sp = SignerProcess(d.url(), policy="silent")
        await sp.wait_line("introduced", timeout=10)
        status, body = await d.ahttp("GET", "/v1/keys/" + b64url(sp.pk))
        check_eq(status, 200, "signer process connected")

        task = asyncio.ensure_future(d.sign(sp.pk, b"pending when killed", timeout_ms=30000))
        line = await sp.wait_line("sign_request", timeout=10)
        rid = line.split()[1]
        await asyncio.sleep(0.1)
        check(not task.done(), "request ended before the kill")

        t_kill = time.monotonic()
        sp.kill()
        status, body, _ = await task
        elapsed = time.monotonic() - t_kill
        err = check_error_body(status, body, 502, "connection_closed", "signer killed")
        check(elapsed < 1.0, "502 came %.3f s after the kill, expected < 1 s" % elapsed)
        if "request_id" in err:
            check_eq(err["request_id"], rid, "error.request_id")

        status, body = await d.wait_key_gone(sp.pk)
        check_error_body(status, body, 404, "not_connected", "key after the kill")


async def test_closed_signer_fails_all_pending():
    async with Daemon() as d:
        s = d.signer(policy="silent")
        await s.start()
        tasks = [asyncio.ensure_future(d.sign(s.pk, b"pending %d" % i, timeout_ms=30000))
                 for i in range(3)]
        await s.wait_request(2)
        t0 = time.monotonic()
        await s.close()
        results = await asyncio.gather(*tasks)
        elapsed = time.monotonic() - t0
        for status, body, _ in results:
            check_error_body(status, body, 502, "connection_closed", "signer closed")
        check(elapsed < 1.0, "502s came %.3f s after the close" % elapsed)


run_tests(globals())
