#!/usr/bin/python3
"""
Bad answers: a wrong signature or a signature over other bytes ends the
request with 502 invalid_signature and an error frame to the signer; a
63-byte signature is a malformed frame (bad_field) that leaves the request
pending, so a correct answer afterwards still completes it with 200.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import (Daemon, check, check_eq, check_error_body, run_tests, unb64,
                       verify)


async def test_flipped_signature():
    async with Daemon() as d:
        async with d.signer(policy="bad_signature") as s:
            status, body, _ = await d.sign(s.pk, b"flip a bit", timeout_ms=10000)
            err = check_error_body(status, body, 502, "invalid_signature", "flipped signature")
            rid = s.requests[0]["request_id"]
            if "request_id" in err:
                check_eq(err["request_id"], rid, "error.request_id")
            await s.expect_error("invalid_signature", request_id=rid)


async def test_signature_over_other_bytes_echoed():
    async with Daemon() as d:
        async with d.signer(policy="sign_other") as s:
            status, body, _ = await d.sign(s.pk, b"the requested bytes", timeout_ms=10000)
            check_error_body(status, body, 502, "invalid_signature", "echoed other message")
            rid = s.requests[0]["request_id"]
            await s.expect_error("invalid_signature", request_id=rid)


async def test_signature_over_other_bytes_requested_echo():
    # the echoed message is right but the signature covers other bytes
    async def policy(signer, req):
        sig = signer.sk.sign(b"something else").signature
        await signer.answer(req, signer.response(req, signature=sig))

    async with Daemon() as d:
        async with d.signer(policy=policy) as s:
            status, body, _ = await d.sign(s.pk, b"the requested bytes", timeout_ms=10000)
            check_error_body(status, body, 502, "invalid_signature", "signature over other bytes")
            await s.expect_error("invalid_signature", request_id=s.requests[0]["request_id"])


async def test_short_signature_then_correct_answer():
    async with Daemon() as d:
        async with d.signer(policy="short_signature") as s:
            message = b"63 bytes is not a signature"
            task = asyncio.ensure_future(d.sign(s.pk, message, timeout_ms=10000))
            req = await s.wait_request(0)
            await s.expect_error("bad_field", request_id=req["request_id"])
            check(not task.done(), "request ended after a malformed answer")
            check(s.is_open, "connection closed after a bad_field frame")
            await s.send_json(s.response(req))
            status, body, elapsed = await task
            check_eq(status, 200, "correct answer after bad_field (body %r)" % (body,))
            check_eq(body["request_id"], req["request_id"], "request_id")
            check(verify(s.pk, message, unb64(body["signature"])), "signature verifies")
            check(elapsed < 5, "request took %.2f s" % elapsed)


run_tests(globals())
