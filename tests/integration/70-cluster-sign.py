#!/usr/bin/python3
"""
The sign contract across two nodes of a cluster: the signer on one node, the
requester on another. A round trip signs and verifies; a key nobody holds
is not_connected within one Redis round trip; the requesting node owns the
deadline (timeout, and the signer gets cancel through the owner node); a
rejection is rejected; an HTTP requester that leaves cancels at the signer;
a bad signature is caught by the requesting node, which tells the signer;
an answer from any other connection, on any node, is refused and changes
nothing. A key held on the asked node never touches Redis.
"""

import asyncio
import json
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_util import Cluster  # noqa: E402
from wssd_test import (AsyncHttp, b64, check, check_eq, check_error_body,  # noqa: E402
                       http_request, run_tests, scaled, unb64, verify)


async def late_answer_forgiven(c, s, req):
    """s answers req after it ended: refused (unknown_request) and forgiven,
    and the key keeps signing for node2."""
    await s.send_json(s.response(req))
    await s.expect_error("unknown_request", request_id=req["request_id"])
    check(s.is_open, "connection closed after one late answer")
    s.policy = "sign"
    await c.check_sign(2, s, what="the next request")


async def outcome_logged(c, j, request_id, outcome):
    """Node j's audit line for request_id names the outcome (and appears once)."""
    lines = await c.node(j).await_log(r"event=sign_outcome request_id=%s key=\S+ outcome=(\S+)"
                                      % request_id, timeout=scaled(3))
    check_eq(lines, [outcome], "node%d's audit line for %s" % (j, request_id))


async def test_sign_round_trip_across_nodes():
    async with Cluster(2) as c:
        s = await c.connect(1)
        message = b"signed on node1, asked on node2"
        status, body, _ = await c.sign(2, s.pk, message, timeout_ms=10000)
        check_eq(status, 200, "cross-node sign (body %r)" % (body,))
        check(verify(s.pk, message, unb64(body["signature"])), "signature verifies")
        check_eq(body["public_key"], b64(s.pk), "public_key")
        check_eq(unb64(body["message"]), message, "message")
        check_eq(len(s.requests), 1, "sign_request frames at the signer")
        check_eq(s.requests[0]["request_id"], body["request_id"], "request_id end to end")
        check_eq(unb64(s.requests[0]["message"]), message, "message the signer was asked")
        await s.no_frame(0.2)
        await outcome_logged(c, 2, body["request_id"], "ok")
        m = await c.metrics(2)
        check_eq(m.value("wssignd_cluster_remote_requests_total", outcome="ok"), 1.0,
                 "node2's remote requests answered ok")
        check_eq(m.value("wssignd_cluster_round_trip_seconds_count"), 1.0,
                 "node2's cross-node round trips")

        # The same key asked on its own node is served there, without Redis.
        seen = len(c.watch.messages)
        status, body, _ = await c.sign(1, s.pk, b"local", timeout_ms=10000)
        check_eq(status, 200, "local sign (body %r)" % (body,))
        await asyncio.sleep(0.1)
        check_eq(c.watch.find(seen, t="req"), [], "a local request published on Redis")
        check_eq((await c.metrics(1)).total("wssignd_cluster_remote_requests_total"), 0.0,
                 "node1's remote requests")


async def test_not_connected_within_one_round_trip():
    async with Cluster(2) as c:
        nobody = os.urandom(32)
        s = await c.connect(1)
        pk = s.pk
        status, body, elapsed = await c.sign(2, nobody, b"no holder", timeout_ms=30000)
        check_error_body(status, body, 404, "not_connected", "a key no node holds")
        check(elapsed < scaled(1.0), "not_connected took %.2f s (one Redis round trip)" % elapsed)

        # A key that was held and has left: not connected from the other node too.
        await s.close()
        await c.wait_holders(pk, 0)
        status, body, elapsed = await c.sign(2, pk, b"left", timeout_ms=30000)
        check_error_body(status, body, 404, "not_connected", "a key whose signer left")
        check(elapsed < scaled(1.0), "not_connected took %.2f s" % elapsed)


async def test_timeout_is_the_requesting_nodes():
    async with Cluster(2) as c:
        s = await c.connect(1, policy="silent")
        status, body, elapsed = await c.sign(2, s.pk, b"never answered", timeout_ms=1000)
        err = check_error_body(status, body, 504, "timeout", "silent signer on another node")
        check(0.9 <= elapsed < scaled(3.0), "timeout after %.2f s (deadline 1 s)" % elapsed)
        rid = s.requests[0]["request_id"]
        if "request_id" in err:
            check_eq(err["request_id"], rid, "error.request_id")
        # The deadline's cancel reaches the signer through the owner node.
        await s.expect_frame("cancel", timeout=scaled(2), request_id=rid, reason="timeout")
        await outcome_logged(c, 2, rid, "timeout")
        # An answer that crossed the cancel is refused, forgiven, and changes nothing.
        await late_answer_forgiven(c, s, s.requests[0])


async def test_reject_across_nodes():
    async with Cluster(2) as c:
        s = await c.connect(1, policy="reject", reason="not this one")
        status, body, elapsed = await c.sign(2, s.pk, b"please sign", timeout_ms=10000)
        err = check_error_body(status, body, 422, "rejected", "rejected on another node")
        if "request_id" in err:
            check_eq(err["request_id"], s.requests[0]["request_id"], "error.request_id")
        await s.no_frame(0.3)  # no error or cancel for a valid rejection
        await outcome_logged(c, 2, s.requests[0]["request_id"], "rejected")
        s.policy = "sign"
        await c.check_sign(2, s, what="after a rejection")


async def test_requester_leaves_signer_gets_cancel():
    async with Cluster(2) as c:
        s = await c.connect(1, policy="silent")
        client = AsyncHttp(c.node(2).control_port)
        await client.connect()
        await client.send(http_request("POST", "/v1/sign", {"public_key": b64(s.pk),
                                                            "message": b64(b"withdrawn"),
                                                            "timeout_ms": 30000}))
        req = await s.wait_request(0, timeout=scaled(3))
        await client.close()
        cancel = await s.expect_frame("cancel", timeout=scaled(2),
                                      request_id=req["request_id"])
        check_eq(cancel.get("reason"), "requester_cancelled", "cancel reason")
        await outcome_logged(c, 2, req["request_id"], "cancelled")
        # Its late answer is refused and forgiven; the key keeps signing.
        await late_answer_forgiven(c, s, req)


async def test_bad_signature_caught_by_requesting_node():
    async with Cluster(2) as c:
        s = await c.connect(1, policy="bad_signature")
        status, body, _ = await c.sign(2, s.pk, b"flip a bit", timeout_ms=10000)
        err = check_error_body(status, body, 502, "invalid_signature", "flipped signature")
        rid = s.requests[0]["request_id"]
        if "request_id" in err:
            check_eq(err["request_id"], rid, "error.request_id")
        await s.expect_error("invalid_signature", timeout=scaled(2), request_id=rid)
        await outcome_logged(c, 2, rid, "invalid_signature")

        # A correct signature over other bytes, echoed back: invalid too.
        s.policy = "sign_other"
        status, body, _ = await c.sign(2, s.pk, b"the requested bytes", timeout_ms=10000)
        check_error_body(status, body, 502, "invalid_signature", "signature over other bytes")
        await s.expect_error("invalid_signature", timeout=scaled(2),
                             request_id=s.requests[1]["request_id"])
        check(s.is_open, "the signer's connection stays open")


async def test_largest_answer_across_nodes():
    # The largest message (requests.max_message_bytes, 32768), answered with a
    # frame of almost limits.max_frame_bytes (65536): whitespace between the
    # JSON tokens, as any JSON writer may put. One node takes it; so must the
    # cluster, which carries the frame as received inside its own message.
    message = os.urandom(32768)

    async def padded(signer, req):
        frame = json.dumps(signer.response(req), indent=None)
        pad = 65536 - 64 - len(frame)
        text = "{\n" + "\n" * pad + frame[1:]
        await signer.send_text(text)

    async with Cluster(2) as c:
        s = await c.connect(1, policy=padded)
        for j in (1, 2):
            await c.check_sign(j, s, message, what="the largest answer")


async def test_second_answer_is_refused():
    async def twice(signer, req):
        await signer.answer(req, signer.response(req))
        await signer.answer(req, signer.rejection(req))

    async with Cluster(2) as c:
        s = await c.connect(1, policy=twice)
        status, body, _ = await c.sign(2, s.pk, b"answered twice", timeout_ms=10000)
        check_eq(status, 200, "the first answer decides (body %r)" % (body,))
        await s.expect_error("unknown_request", timeout=scaled(2),
                             request_id=body["request_id"])
        await outcome_logged(c, 2, body["request_id"], "ok")
        check(s.is_open, "the signer's connection stays open")


async def test_answer_from_another_connection_changes_nothing():
    async with Cluster(3) as c:
        a = await c.connect(1, policy="silent")
        others = [("node1", await c.connect(1, policy="silent")),
                  ("node2", await c.connect(2, policy="silent")),
                  ("node3", await c.connect(3, policy="silent"))]
        message = b"for A only"
        task = asyncio.ensure_future(c.sign(3, a.pk, message, timeout_ms=15000))
        req = await a.wait_request(0, timeout=scaled(3))
        rid = req["request_id"]
        for where, b in others:
            # b's own signature, a valid one made with A's key, and a rejection
            await b.send_json(b.response(req))
            await b.expect_error("unknown_request", timeout=scaled(2), request_id=rid)
            await b.send_json(b.response(req, signature=a.sk.sign(message).signature))
            await b.expect_error("unknown_request", timeout=scaled(2), request_id=rid)
            await b.send_json(b.rejection(req))
            await b.expect_error("unknown_request", timeout=scaled(2), request_id=rid)
            check_eq(len(b.requests), 0, "sign_request frames sent to the connection on " + where)
        await asyncio.sleep(0.3)
        check(not task.done(), "request ended by another connection: %r"
              % (task.result() if task.done() else None,))
        await a.send_json(a.response(req))
        status, body, _ = await task
        check_eq(status, 200, "A's answer (body %r)" % (body,))
        check_eq(body["request_id"], rid, "request_id")
        check(verify(a.pk, message, unb64(body["signature"])), "signature verifies")
        await a.no_frame(0.2)


run_tests(globals())
