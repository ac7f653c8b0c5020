#!/usr/bin/python3
"""
One key space, seen from every node. GET /v1/keys/{key} answers for the whole
cluster and names the node that holds the key (field "node"), following the
key when it moves. The in-process path: the example controller on one node
signs with a key held on another (its log shows outcome ok).
"""

import base64
import os
import re
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nacl.signing  # noqa: E402
from cluster_util import Cluster  # noqa: E402
from wssd_test import (b64, check, check_eq, check_error_body, is_uuid, run_tests,  # noqa: E402
                       scaled, unb64)


def check_presence(body, signer, node, what):
    check(isinstance(body, dict), "%s: body %r" % (what, body))
    check_eq(body.get("public_key"), b64(signer.pk), what + ": public_key")
    check_eq(body.get("connected"), True, what + ": connected")
    check_eq(body.get("node"), node, what + ": node")
    check_eq(body.get("session_id"), signer.introduced["session_id"], what + ": session_id")
    check(is_uuid(body.get("session_id")), what + ": session_id %r" % (body.get("session_id"),))
    at = body.get("connected_at")
    check(isinstance(at, int) and abs(at - time.time() * 1000) < 60000,
          what + ": connected_at %r" % (at,))
    check(isinstance(body.get("pending"), int) and body["pending"] >= 0,
          what + ": pending %r" % (body.get("pending"),))


async def test_key_lookup_names_the_holding_node():
    async with Cluster(3) as c:
        seed = os.urandom(32)
        a = await c.connect(1, seed=seed)
        for j in c.numbers():
            status, body = await c.key_status(j, a.pk)
            check_eq(status, 200, "GET /v1/keys on node%d (body %r)" % (j, body))
            check_presence(body, a, "node1", "asked on node%d" % j)

        # Nobody holds this one: 404 from every node, at once.
        nobody = bytes(nacl.signing.SigningKey(os.urandom(32)).verify_key)
        for j in c.numbers():
            t0 = time.monotonic()
            status, body = await c.key_status(j, nobody)
            check_error_body(status, body, 404, "not_connected", "unheld key on node%d" % j)
            check(time.monotonic() - t0 < scaled(1.0), "404 at once")

        # The key moves to node2: the answer follows it.
        b = await c.connect(2, seed=seed)
        check_eq(await a.wait_closed(scaled(1.0)), 4001, "old connection's close code")
        await c.wait_holders(b.pk, 1)
        for j in c.numbers():
            status, body = await c.key_status(j, b.pk)
            check_eq(status, 200, "GET /v1/keys on node%d after the move (body %r)" % (j, body))
            check_presence(body, b, "node2", "after the move, asked on node%d" % j)

        # It leaves: 404 everywhere.
        await b.close()
        await c.wait_holders(b.pk, 0)
        for j in c.numbers():
            status, body = await c.key_status(j, b.pk)
            check_error_body(status, body, 404, "not_connected", "left key on node%d" % j)


async def test_example_controller_reaches_a_key_on_another_node():
    seed = os.urandom(32)
    pk = bytes(nacl.signing.SigningKey(seed).verify_key)
    example = {"controllers": {"example": {"public_key": base64.b64encode(pk).decode(),
                                           "interval_ms": 100, "message": "cluster ping"}}}
    async with Cluster(2, node_config={2: example}) as c:
        s = await c.connect(1, seed=seed)
        found = await c.node(2).await_log(
            r"event=example_outcome request_id=\S+ outcome=ok seq=(\d+)", timeout=scaled(5),
            count=2)
        check_eq([int(n) for n in found[:2]], [1, 2], "node2's example outcomes")
        msgs = [unb64(r["message"]) for r in s.requests[:2]]
        check_eq(msgs, [b"cluster ping #1", b"cluster ping #2"],
                 "what node2's controller asked the signer on node1")
        ids = re.findall(r"event=example_outcome request_id=(\S+) outcome=ok", c.log(2))
        check_eq(ids[:2], [r["request_id"] for r in s.requests[:2]], "request ids end to end")
        check("event=example_outcome" not in c.log(1), "node1's own controller is not enabled")


run_tests(globals())
