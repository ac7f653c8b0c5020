#!/usr/bin/python3
"""
Ends that come from outside the request, across two nodes. A signer killed
(kill -9 of its process, or a TCP reset) while it holds a request asked on
another node: the request ends connection_closed promptly, not at its
deadline. SIGTERM on the requesting node: its request ends 503
shutting_down and the signer, on the other node, gets cancel. SIGTERM on the
owner node: the request ends connection_closed at the requesting node.
"""

import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_util import Cluster, ends_with  # noqa: E402
from wssd_test import (SignerProcess, check, check_eq, check_error_body, run_tests,  # noqa: E402
                       scaled)

DEADLINE_MS = 30000


async def pending_on_node1(c, message):
    """A silent signer on node1 holding a request asked on node2: (signer,
    the request's task, the sign_request frame)."""
    s = await c.connect(1, policy="silent")
    task = asyncio.ensure_future(c.sign(2, s.pk, message, timeout_ms=DEADLINE_MS))
    return s, task, await s.wait_request(0, timeout=scaled(3))


async def test_signer_process_killed():
    async with Cluster(2) as c:
        since = len(c.watch.messages)
        sp = SignerProcess(c.node(1).url(), policy="silent")
        await sp.wait_line("introduced")
        await c.announced(sp.pk, 1, since=since)
        task = asyncio.ensure_future(c.sign(2, sp.pk, b"then the signer dies",
                                            timeout_ms=DEADLINE_MS))
        await sp.wait_line("sign_request", timeout=scaled(3))
        t0 = time.monotonic()
        sp.kill()
        await ends_with(task, 502, "connection_closed", t0, 3.0, "signer killed")
        # The key is gone from the cluster.
        await c.wait_holders(sp.pk, 0)
        status, body, _ = await c.sign(2, sp.pk, b"anyone?", timeout_ms=DEADLINE_MS)
        check_error_body(status, body, 404, "not_connected", "after the kill")


async def test_signer_connection_reset():
    async with Cluster(2) as c:
        s, task, _ = await pending_on_node1(c, b"reset")
        t0 = time.monotonic()
        s.reset()
        await ends_with(task, 502, "connection_closed", t0, 3.0, "signer reset")


async def test_shutdown_of_the_requesting_node():
    async with Cluster(2) as c:
        s, task, req = await pending_on_node1(c, b"drained")
        t0 = time.monotonic()
        stopper = asyncio.ensure_future(c.stop_node(2))  # SIGTERM; fails unless it exits 0
        await ends_with(task, 503, "shutting_down", t0, 3.0, "requesting node stops")
        await s.expect_frame("cancel", timeout=scaled(2), request_id=req["request_id"],
                             reason="shutting_down")
        await stopper
        # node1 and its signer go on.
        check(s.is_open, "the signer on node1 stays connected")


async def test_shutdown_of_the_owner_node():
    async with Cluster(2) as c:
        s, task, _ = await pending_on_node1(c, b"owner stops")
        t0 = time.monotonic()
        stopper = asyncio.ensure_future(c.stop_node(1))
        await ends_with(task, 502, "connection_closed", t0, 3.0, "owner node stops")
        check_eq(await s.wait_closed(scaled(5)), 1001, "signer's close code at shutdown")
        await stopper
        status, body, _ = await c.sign(2, s.pk, b"anyone?", timeout_ms=DEADLINE_MS)
        check_error_body(status, body, 404, "not_connected", "after the owner stopped")


run_tests(globals())
