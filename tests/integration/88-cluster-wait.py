#!/usr/bin/python3
"""
Waiting for a key across a cluster (POST /v1/sign "wait_ms"). A request
waiting on one node is answered when the key is introduced on another, or on
its own node; it is not_connected at the end of its wait otherwise. A key
that left the node it was on and comes back on a third node is found too,
though the asking node still had a path to the old one. Labels travel with
the request across nodes. The wait channel is subscribed only while a
request waits.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_util import PREFIX, Cluster, key_hex  # noqa: E402
from wssd_test import check, check_eq, check_error_body, run_tests, scaled, unb64, verify  # noqa: E402


def wait_channel(pk):
    return "%sw:%s" % (PREFIX, key_hex(pk))


async def waiters(c, pk):
    return await asyncio.to_thread(c.redis.numsub, wait_channel(pk))


async def ask_then_connect(c, ask_on, connect_on, what, label=None):
    """A request waits on node ask_on; the key then comes on node connect_on."""
    late = c.signer(connect_on, seed=os.urandom(32))
    ask = asyncio.ensure_future(c.sign(ask_on, late.pk, b"waited: " + what.encode(),
                                       timeout_ms=20000, wait_ms=15000, label=label))
    await asyncio.sleep(scaled(0.6))
    check(not ask.done(), "%s: ended before the key came: %r"
          % (what, ask.result() if ask.done() else None))
    await late.start()
    status, body, elapsed = await ask
    check_eq(status, 200, "%s (body %r)" % (what, body))
    check(verify(late.pk, b"waited: " + what.encode(), unb64(body["signature"])),
          "%s: signature verifies" % what)
    check_eq(len(late.requests), 1, "%s: sign_request frames" % what)
    return late, body


async def test_answered_when_the_key_comes_to_another_node():
    async with Cluster(2) as c:
        late, _ = await ask_then_connect(c, 2, 1, "key on node1, asked on node2",
                                         label="approve order 7 \u2713")
        check_eq(late.requests[0].get("label"), "approve order 7 \u2713",
                 "the label across nodes")
        check_eq(await waiters(c, late.pk), 0, "wait channel subscribers once answered")
        await late.close()


async def test_answered_when_the_key_comes_to_the_same_node():
    async with Cluster(2) as c:
        late, _ = await ask_then_connect(c, 1, 1, "key on node1, asked on node1")
        await late.close()


async def test_not_connected_at_the_end_of_the_wait():
    async with Cluster(2) as c:
        pk = os.urandom(32)
        ask = asyncio.ensure_future(c.sign(2, pk, b"nobody", timeout_ms=10000, wait_ms=900))
        await asyncio.sleep(scaled(0.4))
        check_eq(await waiters(c, pk), 1, "wait channel subscribers while waiting")
        status, body, elapsed = await ask
        check_error_body(status, body, 404, "not_connected", "a wait nobody ends")
        check(elapsed >= 0.85, "not_connected after %.2f s, before the wait ended" % elapsed)
        check_eq(await waiters(c, pk), 0, "wait channel subscribers after the wait")


async def test_key_that_moved_while_waiting():
    async with Cluster(3) as c:
        seed = os.urandom(32)
        s = await c.connect(1, seed=seed)
        await c.check_sign(2, s, what="before it left")  # node2 now has a path to node1
        await s.close()
        await c.wait_holders(s.pk, 0)
        ask = asyncio.ensure_future(c.sign(2, s.pk, b"come back", timeout_ms=20000,
                                           wait_ms=15000))
        await asyncio.sleep(scaled(0.6))
        check(not ask.done(), "ended before the key came back: %r"
              % (ask.result() if ask.done() else None,))
        back = await c.signer(3, seed=seed).start()
        status, body, _ = await ask
        check_eq(status, 200, "answered by the key on node3 (body %r)" % (body,))
        check_eq([r["request_id"] for r in back.requests], [body["request_id"]],
                 "the request reached the key on node3")
        await back.close()


async def test_many_waiters_one_arrival():
    async with Cluster(3) as c:
        late = c.signer(3, seed=os.urandom(32))
        asks = [asyncio.ensure_future(c.sign(1 + i % 2, late.pk, b"w%d" % i, timeout_ms=20000,
                                             wait_ms=15000)) for i in range(6)]
        await asyncio.sleep(scaled(0.6))
        check_eq(await waiters(c, late.pk), 2, "one wait subscription per waiting node")
        await late.start()
        for i, a in enumerate(asks):
            status, body, _ = await a
            check_eq(status, 200, "waiter %d (body %r)" % (i, body))
        check_eq(len(late.requests), 6, "sign_request frames, one per request")
        await late.close()


run_tests(globals())
