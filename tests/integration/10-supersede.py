#!/usr/bin/python3
"""
Superseding: a second connection proving the same key takes over. The old
one gets an error frame "superseded" and close 4001; its pending request is
re-sent with the same request_id to the new connection, which answers it.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import Daemon, b64url, check, check_eq, run_tests, unb64, verify


async def test_supersede_moves_pending_request():
    async with Daemon() as d:
        seed = os.urandom(32)
        a = d.signer(seed=seed, policy="silent")
        await a.start()
        message = b"moved to the new connection"
        task = asyncio.ensure_future(d.sign(a.pk, message, timeout_ms=10000))
        req_a = await a.wait_request(0)

        b = d.signer(seed=seed, policy="sign")
        await b.start()
        check(b.introduced["session_id"] != a.introduced["session_id"],
              "new connection got the old session_id")

        await a.expect_error("superseded")
        cc = await a.wait_closed(5.0)
        check_eq(cc, 4001, "old connection close code")

        req_b = await b.wait_request(0)
        check_eq(req_b["request_id"], req_a["request_id"], "re-sent request_id")
        check_eq(req_b["message"], req_a["message"], "re-sent message")

        status, body, _ = await task
        check_eq(status, 200, "answer from the new connection (body %r)" % (body,))
        check_eq(body["request_id"], req_a["request_id"], "request_id")
        check(verify(b.pk, message, unb64(body["signature"])), "signature verifies")
        check_eq(len(b.requests), 1, "requests on the new connection")

        status, body = await d.ahttp("GET", "/v1/keys/" + b64url(b.pk))
        check_eq(status, 200, "key still connected")
        check_eq(body.get("session_id"), b.introduced["session_id"], "session of the new conn")
        await b.close()


async def test_superseded_connection_cannot_answer():
    async with Daemon() as d:
        seed = os.urandom(32)
        a = d.signer(seed=seed, policy="silent")
        await a.start()
        task = asyncio.ensure_future(d.sign(a.pk, b"who answers", timeout_ms=10000))
        req = await a.wait_request(0)
        b = d.signer(seed=seed, policy="silent")
        await b.start()
        await a.expect_error("superseded")
        check_eq(await a.wait_closed(5.0), 4001, "old connection close code")
        await b.wait_request(0)
        # the request is still pending on the new connection only
        await asyncio.sleep(0.2)
        check(not task.done(), "request ended when its connection was superseded")
        await b.send_json(b.response(req))
        status, body, _ = await task
        check_eq(status, 200, "answer from the new connection (body %r)" % (body,))
        await b.close()


async def test_supersede_then_new_requests_go_to_new_connection():
    async with Daemon() as d:
        seed = os.urandom(32)
        a = d.signer(seed=seed)
        await a.start()
        b = d.signer(seed=seed)
        await b.start()
        await a.expect_error("superseded")
        check_eq(await a.wait_closed(5.0), 4001, "old connection close code")
        status, body, _ = await d.sign(b.pk, b"after the takeover", timeout_ms=10000)
        check_eq(status, 200, "sign after supersede (body %r)" % (body,))
        check_eq(len(a.requests), 0, "requests on the old connection")
        check_eq(len(b.requests), 1, "requests on the new connection")
        await b.close()


run_tests(globals())
