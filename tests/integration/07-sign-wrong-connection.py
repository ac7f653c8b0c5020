#!/usr/bin/python3
"""
Answers are accepted only from the connection the request was sent to: a
second signer answering (even with a valid signature by the right key) or
rejecting another signer's request gets unknown_request, and the request
stays pending for its own signer.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import Daemon, check, check_eq, run_tests, unb64, verify


async def test_other_connection_cannot_answer():
    async with Daemon() as d:
        async with d.signer(policy="silent") as a, d.signer(policy="silent") as b:
            message = b"for A only"
            task = asyncio.ensure_future(d.sign(a.pk, message, timeout_ms=10000))
            req = await a.wait_request(0)
            rid = req["request_id"]

            # B answers with B's own signature
            await b.send_json(b.response(req))
            await b.expect_error("unknown_request", request_id=rid)
            # B answers with a valid signature made by A's key
            forged = b.response(req, signature=a.sk.sign(message).signature)
            await b.send_json(forged)
            await b.expect_error("unknown_request", request_id=rid)
            # B rejects A's request
            await b.send_json(b.rejection(req))
            await b.expect_error("unknown_request", request_id=rid)

            await asyncio.sleep(0.2)
            check(not task.done(), "request ended by another connection: %r"
                  % (task.result() if task.done() else None,))
            check(b.is_open, "connection B closed")
            check_eq(len(b.requests), 0, "sign_request frames sent to B")

            await a.send_json(a.response(req))
            status, body, _ = await task
            check_eq(status, 200, "A's answer (body %r)" % (body,))
            check_eq(body["request_id"], rid, "request_id")
            check(verify(a.pk, message, unb64(body["signature"])), "signature verifies")
            await a.no_frame(0.2)


run_tests(globals())
