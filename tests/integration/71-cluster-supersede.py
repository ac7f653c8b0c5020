#!/usr/bin/python3
"""
Supersede is cluster-wide: the newest introduction of a key wins wherever it
lands. The older connection, on another node, gets an error frame
"superseded" and close 4001 within 1 s; a request in flight on it is re-sent
to the new connection with the same request_id and completes 200. Three
places the request can come from: a third node (the old owner tells it
"moved"), the node of the new connection (the request becomes local), and
the node of the old connection (the request leaves through a proxy).
"""

import asyncio
import json
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_util import Cluster  # noqa: E402
from wssd_test import check, check_eq, free_port, run_tests, scaled, unb64, verify  # noqa: E402


async def supersede_in_flight(old_node, new_node, asking_node):
    async with Cluster(3) as c:
        seed = os.urandom(32)
        a = await c.connect(old_node, seed=seed, policy="silent")
        message = b"moved to node%d" % new_node
        task = asyncio.ensure_future(c.sign(asking_node, a.pk, message, timeout_ms=15000))
        req_a = await a.wait_request(0, timeout=scaled(3))

        t0 = time.monotonic()
        b = await c.signer(new_node, seed=seed, policy="sign").start()
        await a.expect_error("superseded", timeout=scaled(1.0))
        code = await a.wait_closed(scaled(1.0))
        took = time.monotonic() - t0
        check_eq(code, 4001, "old connection's close code")
        check(took < scaled(1.0), "old connection closed %.2f s after the new introduction" % took)

        req_b = await b.wait_request(0, timeout=scaled(3))
        check_eq(req_b["request_id"], req_a["request_id"], "re-sent request_id")
        check_eq(req_b["message"], req_a["message"], "re-sent message")
        status, body, _ = await task
        check_eq(status, 200, "answer from the new connection (body %r)" % (body,))
        check_eq(body["request_id"], req_a["request_id"], "request_id")
        check(verify(b.pk, message, unb64(body["signature"])), "signature verifies")
        await asyncio.sleep(0.2)
        check_eq(len(b.requests), 1, "requests on the new connection (sent once)")

        # The key now lives on the new node alone, and every node reaches it there.
        await c.wait_holders(b.pk, 1)
        await c.signs_everywhere(b, "after the move")
        check_eq(len(b.requests), 4, "requests on the new connection")
        await b.close()


async def test_supersede_request_from_a_third_node():
    await supersede_in_flight(old_node=1, new_node=2, asking_node=3)


async def test_supersede_request_from_the_new_node():
    await supersede_in_flight(old_node=1, new_node=2, asking_node=2)


async def test_supersede_request_from_the_old_node():
    await supersede_in_flight(old_node=1, new_node=2, asking_node=1)


async def test_superseded_connection_cannot_answer():
    async with Cluster(3) as c:
        seed = os.urandom(32)
        a = await c.connect(1, seed=seed, policy="silent")
        task = asyncio.ensure_future(c.sign(3, a.pk, b"who answers", timeout_ms=15000))
        req = await a.wait_request(0, timeout=scaled(3))
        b = await c.signer(2, seed=seed, policy="silent").start()
        await a.expect_error("superseded", timeout=scaled(1.0))
        check_eq(await a.wait_closed(scaled(1.0)), 4001, "old connection's close code")
        await b.wait_request(0, timeout=scaled(3))
        await asyncio.sleep(0.3)
        check(not task.done(), "request ended when its connection was superseded: %r"
              % (task.result() if task.done() else None,))
        await b.send_json(b.response(req))
        status, body, _ = await task
        check_eq(status, 200, "answer from the new connection (body %r)" % (body,))
        await b.close()


async def test_newest_wins_back_and_forth():
    # The key moves node1 -> node2 -> node1: each time the newest introduction wins.
    async with Cluster(2) as c:
        seed = os.urandom(32)
        a = await c.connect(1, seed=seed)
        b = await c.connect(2, seed=seed)
        await a.expect_error("superseded", timeout=scaled(1.0))
        check_eq(await a.wait_closed(scaled(1.0)), 4001, "first connection's close code")
        a2 = await c.connect(1, seed=seed)
        await b.expect_error("superseded", timeout=scaled(1.0))
        check_eq(await b.wait_closed(scaled(1.0)), 4001, "second connection's close code")
        await c.wait_holders(a2.pk, 1)
        await c.signs_everywhere(a2, "back on node1")
        check_eq(len(a2.requests), 2, "requests on the newest connection")
        await a2.close()


async def older_yields(a, b, within=3.0):
    """Of two connections for one key, on two nodes that could not hear each
    other, the older (a) is superseded and the newer (b) stays."""
    deadline = asyncio.get_running_loop().time() + scaled(within)
    while a.is_open and b.is_open and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    check(b.is_open, "the newer connection (node2) was closed with %r: the older one's "
          "node announced the key again and won" % (b.close_code,))
    await a.expect_error("superseded", timeout=scaled(1))
    check_eq(await a.wait_closed(scaled(1.0)), 4001, "older connection's close code")


async def test_newest_wins_after_a_redis_outage():
    # The key is introduced again on another node while Redis is away: when Redis
    # is back, both nodes announce the key again, and the newest introduction
    # still wins, whichever node reaches Redis first.
    async with Cluster(2, watch=False) as c:
        seed = os.urandom(32)
        a = await c.connect(1, seed=seed)
        await asyncio.to_thread(c.redis.stop)
        await asyncio.sleep(0.5)  # both nodes see Redis gone
        b = await c.signer(2, seed=seed).start()  # the newest: node1 cannot tell yet
        await c.redis.astart()
        await older_yields(a, b)
        await c.wait_holders(b.pk, 1)
        await c.signs_everywhere(b, "newest wins")
        check_eq(len(b.requests), 2, "requests on the newest connection")



async def test_newest_wins_after_a_node_was_cut_off():
    # node1 alone loses Redis (here: a reload points it at an address where
    # nothing listens, and a second one points it back); meanwhile its key is
    # introduced on node2. Back in the cluster, node1 announces the key again:
    # the newer connection, on node2, must still win.
    async with Cluster(2, watch=False) as c:
        seed = os.urandom(32)
        a = await c.connect(1, seed=seed)
        d = c.node(1)
        good = json.loads(json.dumps(d.config))
        cut = json.loads(json.dumps(good))
        cut["cluster"]["redis"] = "redis://127.0.0.1:%d" % free_port()
        mark = d.log_mark()
        d.rewrite_config(cut)
        d.reload()
        await d.await_log(r"event=cluster_down node=node1", timeout=scaled(3), since=mark)
        await c.wait_holders(a.pk, 0)
        b = await c.connect(2, seed=seed)
        mark = d.log_mark()
        d.rewrite_config(good)
        d.reload()
        await c.wait_cluster_up(1, since=mark)
        await older_yields(a, b)
        await c.wait_holders(b.pk, 1)
        await c.signs_everywhere(b, "newest wins")


run_tests(globals())
