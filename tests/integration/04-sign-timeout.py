#!/usr/bin/python3
"""
Request timeouts: a silent signer makes POST /v1/sign end with 504 timeout
after timeout_ms (or requests.default_timeout_ms), the signer receives a
cancel frame with reason "timeout", and a late answer is refused as
unknown_request.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import Daemon, check, check_eq, check_error_body, now_ms, run_tests


async def test_timeout_ms_500():
    async with Daemon() as d:
        async with d.signer(policy="silent") as s:
            t0 = now_ms()
            status, body, elapsed = await d.sign(s.pk, b"nobody answers", timeout_ms=500)
            err = check_error_body(status, body, 504, "timeout", "silent signer")
            check(0.4 < elapsed < 2.5, "504 after %.3f s, expected ~0.5 s" % elapsed)
            check_eq(len(s.requests), 1, "sign_request frames")
            req = s.requests[0]
            exp = req.get("expires_at")
            check(isinstance(exp, int) and t0 + 500 - 1000 <= exp <= t0 + 500 + 1500,
                  "expires_at %r not ~now+0.5 s (sent at %d)" % (exp, t0))
            if "request_id" in err:
                check_eq(err["request_id"], req["request_id"], "error.request_id")
            cancel = await s.expect_frame("cancel", timeout=2.0)
            check_eq(cancel.get("request_id"), req["request_id"], "cancel.request_id")
            check_eq(cancel.get("reason"), "timeout", "cancel.reason")

            # a late answer is no longer accepted
            await s.send_json(s.response(req))
            await s.expect_error("unknown_request", request_id=req["request_id"])
            check(s.is_open, "connection closed after a late answer")


async def test_default_timeout_from_config():
    async with Daemon({"requests": {"default_timeout_ms": 700}}) as d:
        async with d.signer(policy="silent") as s:
            status, body, elapsed = await d.sign(s.pk, b"default timeout")
            check_error_body(status, body, 504, "timeout", "default timeout")
            check(0.6 < elapsed < 2.7, "504 after %.3f s, expected ~0.7 s" % elapsed)
            cancel = await s.expect_frame("cancel", timeout=2.0)
            check_eq(cancel.get("reason"), "timeout", "cancel.reason")
            check_eq(cancel.get("request_id"), s.requests[0]["request_id"], "cancel.request_id")


async def test_timeouts_are_independent():
    async with Daemon() as d:
        async with d.signer(policy="silent") as s:
            short = asyncio.ensure_future(d.sign(s.pk, b"short", timeout_ms=400))
            long = asyncio.ensure_future(d.sign(s.pk, b"long", timeout_ms=3000))
            status, body, elapsed = await short
            check_error_body(status, body, 504, "timeout", "short request")
            check(elapsed < 2.0, "short request took %.3f s" % elapsed)
            check(not long.done(), "long request ended together with the short one")
            # answer the long one now; it must still be pending
            await s.wait_request(1)
            req = [r for r in s.requests if r["message"] == "bG9uZw=="][0]
            await s.send_json(s.response(req))
            status, body, _ = await long
            check_eq(status, 200, "long request answered after the short timed out (%r)" % body)


run_tests(globals())
