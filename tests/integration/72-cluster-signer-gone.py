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
from cluster_util import Cluster  # noqa: E402
from wssd_test import (SignerProcess, check, check_eq, check_error_body, run_tests,  # noqa: E402
                       scaled)

DEADLINE_MS = 30000


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
        status, body, _ = await asyncio.wait_for(task, scaled(10))
        took = time.monotonic() - t0
        check_error_body(status, body, 502, "connection_closed", "signer killed")
        check(took < scaled(3.0), "connection_closed %.2f s after the kill (deadline %d s)"
              % (took, DEADLINE_MS // 1000))
        # The key is gone from the cluster.
        await c.wait_holders(sp.pk, 0)
        status, body, _ = await c.sign(2, sp.pk, b"anyone?", timeout_ms=DEADLINE_MS)
        check_error_body(status, body, 404, "not_connected", "after the kill")


async def test_signer_connection_reset():
    async with Cluster(2) as c:
        s = await c.connect(1, policy="silent")
        task = asyncio.ensure_future(c.sign(2, s.pk, b"reset", timeout_ms=DEADLINE_MS))
        await s.wait_request(0, timeout=scaled(3))
        t0 = time.monotonic()
        s.reset()
        status, body, _ = await asyncio.wait_for(task, scaled(10))
        took = time.monotonic() - t0
        check_error_body(status, body, 502, "connection_closed", "signer reset")
        check(took < scaled(3.0), "connection_closed %.2f s after the reset" % took)


async def test_shutdown_of_the_requesting_node():
    async with Cluster(2) as c:
        s = await c.connect(1, policy="silent")
        task = asyncio.ensure_future(c.sign(2, s.pk, b"drained", timeout_ms=DEADLINE_MS))
        req = await s.wait_request(0, timeout=scaled(3))
        t0 = time.monotonic()
        stopper = asyncio.ensure_future(c.stop_node(2))  # SIGTERM; fails unless it exits 0
        status, body, _ = await asyncio.wait_for(task, scaled(10))
        check_error_body(status, body, 503, "shutting_down", "requesting node stops")
        check(time.monotonic() - t0 < scaled(3.0), "shutting_down at once")
        await s.expect_frame("cancel", timeout=scaled(2), request_id=req["request_id"],
                             reason="shutting_down")
        await stopper
        # node1 and its signer go on.
        check(s.is_open, "the signer on node1 stays connected")


async def test_shutdown_of_the_owner_node():
    async with Cluster(2) as c:
        s = await c.connect(1, policy="silent")
        task = asyncio.ensure_future(c.sign(2, s.pk, b"owner stops", timeout_ms=DEADLINE_MS))
        await s.wait_request(0, timeout=scaled(3))
        t0 = time.monotonic()
        stopper = asyncio.ensure_future(c.stop_node(1))
        status, body, _ = await asyncio.wait_for(task, scaled(10))
        took = time.monotonic() - t0
        check_error_body(status, body, 502, "connection_closed", "owner node stops")
        check(took < scaled(3.0), "connection_closed %.2f s after SIGTERM" % took)
        check_eq(await s.wait_closed(scaled(5)), 1001, "signer's close code at shutdown")
        await stopper
        status, body, _ = await c.sign(2, s.pk, b"anyone?", timeout_ms=DEADLINE_MS)
        check_error_body(status, body, 404, "not_connected", "after the owner stopped")


run_tests(globals())
