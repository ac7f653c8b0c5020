#!/usr/bin/python3
"""
Redis stops. Keys connected to a node keep signing through that node; a
request for a key not connected locally gets 503 cluster_unavailable at
once; a request in flight through another node ends connection_closed and
its signer gets cancel; every request gets one outcome and no node crashes.
/healthz and /metrics (wssignd_cluster_up) show the state. When Redis is
back the daemons reconnect and announce every local key again, and
cross-node service returns. The same when Redis stops answering (SIGSTOP)
instead of closing its connections.
"""

import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_util import Cluster, ends_with  # noqa: E402
from wssd_test import (TestFailure, check, check_eq, check_error_body, run_tests,  # noqa: E402
                       scaled)

DEADLINE_MS = 30000


async def wait_metric(c, j, name, want, within):
    deadline = time.monotonic() + scaled(within)
    while True:
        got = (await c.metrics(j)).value(name)
        if got == want:
            return
        if time.monotonic() > deadline:
            raise TestFailure("node%d: %s is %r, expected %r within %.0f s"
                              % (j, name, got, want, within))
        await asyncio.sleep(0.05)


async def redis_gone(c, stop_redis, start_redis, detect_s):
    """Two nodes, a signer on each and a silent one on node1 holding a
    request from node2; Redis goes away by stop_redis() (the nodes notice
    within detect_s) and comes back by `await start_redis()`; checks the contract
    while it is away and after it is back."""
    a = await c.connect(1)
    b = await c.connect(2)
    silent = await c.connect(1, policy="silent")
    inflight = asyncio.ensure_future(c.sign(2, silent.pk, b"in flight", timeout_ms=DEADLINE_MS))
    req = await silent.wait_request(0, timeout=scaled(3))

    t0 = time.monotonic()
    await asyncio.to_thread(stop_redis)
    for j in c.numbers():
        await wait_metric(c, j, "wssignd_cluster_up", 0.0, detect_s)

    # In flight through node1: ends connection_closed (not at its deadline), and the
    # signer is told.
    await ends_with(inflight, 502, "connection_closed", t0, detect_s + 3,
                    "request in flight when Redis went")
    await silent.expect_frame("cancel", timeout=scaled(2), request_id=req["request_id"])
    await silent.send_json(silent.response(req))  # crossed the cancel: refused, forgiven
    await silent.expect_error("unknown_request", request_id=req["request_id"])

    # Local keys sign through their node.
    for n in range(10):
        await c.check_sign(1, a, what="node1's key without Redis")
        await c.check_sign(2, b, what="node2's key without Redis")

    # Anything else: cluster_unavailable, at once.
    for j, pk, what in ((2, a.pk, "node1's key"), (1, b.pk, "node2's key"),
                        (1, os.urandom(32), "a key nobody holds")):
        status, body, elapsed = await c.sign(j, pk, b"needs Redis", timeout_ms=DEADLINE_MS)
        check_error_body(status, body, 503, "cluster_unavailable",
                         "%s asked on node%d without Redis" % (what, j))
        check(elapsed < scaled(1.0), "cluster_unavailable after %.2f s" % elapsed)

    # A burst of both kinds: one outcome each, as above.
    jobs = [(1, a, 200), (2, b, 200), (2, a, 503), (1, b, 503)] * 10
    results = await asyncio.gather(*(c.sign(j, s.pk, b"burst %d" % n, timeout_ms=DEADLINE_MS)
                                     for n, (j, s, _) in enumerate(jobs)))
    for (j, s, want), (status, body, _) in zip(jobs, results):
        check_eq(status, want, "burst without Redis, asked on node%d (body %r)" % (j, body))

    # Redis back: both nodes reconnect, announce their keys again, and serve each
    # other's keys.
    marks = {j: c.node(j).log_mark() for j in c.numbers()}
    await start_redis()
    for j in c.numbers():
        await c.wait_cluster_up(j, since=marks[j])
        await wait_metric(c, j, "wssignd_cluster_up", 1.0, 5)
    for s in (a, b, silent):
        await c.wait_holders(s.pk, 1)
    await c.check_sign(2, a, what="node1's key with Redis back")
    await c.check_sign(1, b, what="node2's key with Redis back")
    check(a.is_open and b.is_open and silent.is_open, "signers stayed connected")


async def test_redis_stops():
    async with Cluster(2) as c:
        await redis_gone(c, c.redis.stop, c.redis.astart, detect_s=1)


async def test_redis_killed():
    async with Cluster(2) as c:
        await redis_gone(c, c.redis.kill, c.redis.astart, detect_s=1)


async def test_redis_stops_answering():
    # SIGSTOP: the connections stay open and nothing answers; pings find it out.
    async with Cluster(2) as c:
        async def resume():
            c.redis.resume()
        await redis_gone(c, c.redis.pause, resume, detect_s=3)


async def test_healthz_and_metrics_show_redis_state():
    async with Cluster(2) as c:
        async def state(j):
            status, body = await c.node(j).ahttp("GET", "/healthz")
            check_eq(status, 200, "node%d GET /healthz (body %r)" % (j, body))
            return body, (await c.metrics(j)).value("wssignd_cluster_up")

        async def wait_state(j, cluster, up, within):
            deadline = time.monotonic() + scaled(within)
            want = ({"status": "ok", "cluster": cluster}, up)
            while True:
                got = await state(j)
                if got == want:
                    return
                if time.monotonic() > deadline:
                    raise TestFailure("node%d: /healthz and wssignd_cluster_up are %r, "
                                      "expected %r" % (j, got, want))
                await asyncio.sleep(0.05)

        for j in c.numbers():
            await wait_state(j, "up", 1.0, 0)
        await asyncio.to_thread(c.redis.stop)
        for j in c.numbers():
            await wait_state(j, "down", 0.0, 3)
        await c.redis.astart()
        for j in c.numbers():
            await wait_state(j, "up", 1.0, 3)


run_tests(globals())
