#!/usr/bin/python3
"""
With requests.verify_threads set, signatures are verified by a worker pool
and the verdict comes back to the loop thread: outcomes are the same as
inline verification (ok, invalid_signature, timeout, connection_closed),
each request still ends exactly once, and answers while a verdict is
pending are refused.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import Daemon, check, check_eq, check_error_body, run_tests, unb64, verify

POOL = {"requests": {"verify_threads": 2}}


async def test_roundtrips_through_the_pool():
    async with Daemon(POOL) as d:
        async with d.signer() as a, d.signer() as b:
            msgs = [("m%03d" % i).encode() for i in range(60)]
            results = await asyncio.gather(
                *[d.sign((a if i % 2 else b).pk, m) for i, m in enumerate(msgs)])
            for i, ((status, body, _), m) in enumerate(zip(results, msgs)):
                check_eq(status, 200, "request %d (body %r)" % (i, body))
                pk = (a if i % 2 else b).pk
                check(verify(pk, m, unb64(body["signature"])), "signature %d verifies" % i)
                check_eq(unb64(body["message"]), m, "message %d" % i)


async def test_bad_signature_through_the_pool():
    async with Daemon(POOL) as d:
        async with d.signer(policy="bad_signature") as s:
            status, body, _ = await d.sign(s.pk, b"forge me", timeout_ms=10000)
            check_error_body(status, body, 502, "invalid_signature", "bad signature")
            await s.expect_error("invalid_signature")


async def test_timeout_and_disconnect_with_pool():
    async with Daemon(POOL) as d:
        async with d.signer(policy="silent") as s:
            status, body, elapsed = await d.sign(s.pk, b"nobody answers", timeout_ms=400)
            check_error_body(status, body, 504, "timeout", "silent signer")
            check(elapsed < 3, "timeout took %.2f s" % elapsed)
        s = d.signer(policy="silent")
        await s.start()
        task = asyncio.ensure_future(d.sign(s.pk, b"left behind", timeout_ms=10000))
        await s.wait_request()
        await s.close()
        status, body, elapsed = await task
        check_error_body(status, body, 502, "connection_closed", "signer left")
        check(elapsed < 3, "connection_closed took %.2f s" % elapsed)


async def test_pool_is_restart_only():
    # Changing the pool size is a restart: a reload that tries is refused.
    async with Daemon(POOL) as d:
        import json, signal
        cfg = dict(d.config)
        cfg["requests"] = {"verify_threads": 4}
        with open(d.config_path, "w") as f:
            json.dump(cfg, f)
        d.proc.send_signal(signal.SIGHUP)
        for _ in range(50):
            if "event=reload outcome=refused" in d.log_text():
                break
            await asyncio.sleep(0.05)
        check("requests.verify_threads" in d.log_text(), "refusal names the key")
        async with d.signer() as s:
            status, _, _ = await d.sign(s.pk, b"still serving")
            check_eq(status, 200, "round trip after the refused reload")


run_tests(globals())
