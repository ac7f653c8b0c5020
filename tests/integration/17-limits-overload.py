#!/usr/bin/python3
"""
Pending limits: requests.max_pending_per_key and requests.max_pending refuse
further requests with 503 overloaded without reaching the signer; other keys
and later requests are unaffected.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import Daemon, check_eq, check_error_body, run_tests


async def hold(d, s, n):
    """Starts n requests to s and waits until all reached it."""
    base = len(s.requests)
    tasks = [asyncio.ensure_future(d.sign(s.pk, b"held %d" % i, timeout_ms=20000))
             for i in range(n)]
    await s.wait_request(base + n - 1)
    return tasks


async def release(s, tasks):
    for req in list(s.requests):
        await s.send_json(s.response(req))
    for status, body, _ in await asyncio.gather(*tasks):
        check_eq(status, 200, "held request answered (body %r)" % (body,))


async def test_max_pending_per_key():
    async with Daemon({"requests": {"max_pending_per_key": 2}}) as d:
        async with d.signer(policy="silent") as a, d.signer() as b:
            tasks = await hold(d, a, 2)
            status, body, _ = await d.sign(a.pk, b"one too many", timeout_ms=20000)
            check_error_body(status, body, 503, "overloaded", "third request for one key")
            check_eq(len(a.requests), 2, "requests that reached the signer")
            status, body, _ = await d.sign(b.pk, b"other key", timeout_ms=20000)
            check_eq(status, 200, "other key while the first is full (body %r)" % (body,))
            await release(a, tasks)
            a.policy = "sign"
            status, body, _ = await d.sign(a.pk, b"after release", timeout_ms=20000)
            check_eq(status, 200, "after the held requests ended (body %r)" % (body,))


async def test_max_pending_global():
    async with Daemon({"requests": {"max_pending": 3}}) as d:
        async with d.signer(policy="silent") as a, d.signer(policy="silent") as b:
            ta = await hold(d, a, 2)
            tb = await hold(d, b, 1)
            status, body, _ = await d.sign(b.pk, b"over the global cap", timeout_ms=20000)
            check_error_body(status, body, 503, "overloaded", "fourth request overall")
            check_eq(len(b.requests), 1, "requests that reached signer b")
            await release(a, ta)
            await release(b, tb)
            b.policy = "sign"
            status, body, _ = await d.sign(b.pk, b"room again", timeout_ms=20000)
            check_eq(status, 200, "after the cap cleared (body %r)" % (body,))


run_tests(globals())
