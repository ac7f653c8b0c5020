#!/usr/bin/python3
"""
A requester that drops its HTTP connection while its request is pending
cancels the request: the signer gets cancel with reason
"requester_cancelled", a late answer is refused as unknown_request, and the
daemon keeps serving.
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import AsyncHttp, Daemon, b64, check, check_eq, http_request, run_tests


async def test_http_client_leaves():
    async with Daemon() as d:
        async with d.signer(policy="silent") as s:
            requester = await AsyncHttp(d.control_port).connect()
            await requester.send(http_request("POST", "/v1/sign",
                                              {"public_key": b64(s.pk),
                                               "message": b64(b"abandoned"),
                                               "timeout_ms": 20000}))
            req = await s.wait_request(0)
            t0 = time.monotonic()
            await requester.close()
            cancel = await s.expect_frame("cancel", timeout=3.0)
            check_eq(cancel.get("request_id"), req["request_id"], "cancel.request_id")
            check_eq(cancel.get("reason"), "requester_cancelled", "cancel.reason")
            check(time.monotonic() - t0 < 2.0, "cancel came %.2f s after the requester left"
                  % (time.monotonic() - t0))

            await s.send_json(s.response(req))
            await s.expect_error("unknown_request", request_id=req["request_id"])

            s.policy = "sign"
            status, resp, _ = await d.sign(s.pk, b"next one", timeout_ms=10000)
            check_eq(status, 200, "sign after a cancelled request (body %r)" % (resp,))


run_tests(globals())
