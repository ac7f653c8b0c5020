#!/usr/bin/python3
"""
A signer's sign_reject ends the request with 422 rejected; the connection
stays usable for the next request.
"""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import Daemon, check, check_eq, check_error_body, run_tests, unb64, verify


async def test_reject_then_sign():
    async with Daemon() as d:
        async with d.signer(policy="reject", reason="user said no") as s:
            status, body, elapsed = await d.sign(s.pk, b"please sign", timeout_ms=10000)
            err = check_error_body(status, body, 422, "rejected", "rejected request")
            check(elapsed < 5, "rejection took %.2f s" % elapsed)
            check_eq(len(s.requests), 1, "sign_request frames")
            if "request_id" in err:
                check_eq(err["request_id"], s.requests[0]["request_id"], "error.request_id")
            await s.no_frame(0.3)  # no error or cancel for a valid rejection

            s.policy = "sign"
            status, body, _ = await d.sign(s.pk, b"now sign it")
            check_eq(status, 200, "sign after a rejection (body %r)" % (body,))
            check(verify(s.pk, b"now sign it", unb64(body["signature"])), "signature verifies")


async def test_reject_empty_reason():
    async with Daemon() as d:
        async with d.signer(policy="reject", reason="") as s:
            status, body, _ = await d.sign(s.pk, b"x", timeout_ms=10000)
            check_error_body(status, body, 422, "rejected", "rejected with an empty reason")


async def test_reject_reason_with_quotes_and_newlines():
    async with Daemon() as d:
        async with d.signer(policy="reject", reason='no "way"\nlevel=err event=forged') as s:
            status, body, _ = await d.sign(s.pk, b"x", timeout_ms=10000)
            check_error_body(status, body, 422, "rejected", "rejected with an odd reason")
        # the reason must not be able to forge a log line
        for line in d.log_text().splitlines():
            check(not "level=err event=forged" in line,
                  "reason injected a log line: %r" % line)


run_tests(globals())
