#!/usr/bin/python3
"""
Redis restarts mid-traffic: requesters keep asking for keys held on the
other node, back to back, while Redis is stopped and started again on its
port. Every request gets exactly one answer; while Redis is away the answers
are the documented ones (cluster_unavailable, or connection_closed for a
request in flight when it went, or not_connected while a node's keys are
announced again), and every request that starts 3 s after Redis accepts
connections again is signed.
"""

import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cluster_util import Cluster  # noqa: E402
from wssd_test import (AsyncHttp, b64, check, check_eq, run_tests, scaled, unb64,  # noqa: E402
                       verify)

REQUESTERS = 4          # per direction
BACK_WITHIN_S = 3.0     # Redis accepting connections -> full cross-node service
DOWN_S = 0.5            # how long Redis stays down
AFTER_S = 1.0           # traffic after the bound, all of which must be signed
# What a cross-node request may get while Redis is away or just back.
TRANSIENT = {(503, "cluster_unavailable"), (502, "connection_closed"), (404, "not_connected")}


async def requester(client, pk, stop, log):
    n = 0
    while not stop.is_set():
        msg = b"through the restart %d " % n + os.urandom(6)
        n += 1
        t0 = time.monotonic()
        r = await client.request("POST", "/v1/sign", {"public_key": b64(pk), "message": b64(msg),
                                                      "timeout_ms": 20000}, timeout=scaled(30))
        log.append((t0, time.monotonic(), pk, msg, r.status, r.json))
        if r.status != 200:
            await asyncio.sleep(0.01)  # refused at once: no need to spin


async def test_redis_restart_mid_traffic():
    async with Cluster(2, watch=False) as c:
        a = await c.connect(1)
        b = await c.connect(2)
        stop = asyncio.Event()
        log = []
        clients, tasks = [], []
        for j, s in ((2, a), (1, b)):  # each node asks for the other's key
            for _ in range(REQUESTERS):
                cl = AsyncHttp(c.node(j).control_port)
                clients.append(cl)
                tasks.append(asyncio.ensure_future(requester(cl, s.pk, stop, log)))
        await asyncio.sleep(0.5)
        before = len(log)
        t_stop = time.monotonic()
        await asyncio.to_thread(c.redis.stop)
        await asyncio.sleep(DOWN_S)
        await c.redis.astart()
        t_up = c.redis.started_at  # it answered PING: it accepts connections
        await asyncio.sleep(scaled(BACK_WITHIN_S) + AFTER_S)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), scaled(30))
        for cl in clients:
            await cl.close()

        check(before > 0, "no traffic before the restart")
        ids = set()
        late = 0
        last_refusal = None
        counts = {}
        for t0, t1, pk, msg, status, body in log:
            code = body["error"]["code"] if status != 200 else None
            counts[(status, code)] = counts.get((status, code), 0) + 1
            rid = body.get("request_id") if status == 200 else body["error"].get("request_id")
            if rid is not None:
                check(rid not in ids, "request_id %s answered twice" % rid)
                ids.add(rid)
            if status == 200:
                check(verify(pk, msg, unb64(body["signature"])), "signature verifies")
                continue
            check((status, code) in TRANSIENT, "unexpected answer %r %r" % (status, body))
            # Before the stop and after the bound, every request is signed.
            check(t1 >= t_stop, "%s before Redis stopped" % code)
            check(t0 < t_up + scaled(BACK_WITHIN_S),
                  "%s for a request started %.2f s after Redis accepted connections"
                  % (code, t0 - t_up))
            late += 1
            last_refusal = max(last_refusal or t0, t0)
        after = [e for e in log if e[0] >= t_up + scaled(BACK_WITHIN_S)]
        check(len(after) >= REQUESTERS, "too little traffic after the bound: %d" % len(after))
        check(late > 0, "no request saw Redis away (outcomes %r)" % counts)
        print("outcomes: %r; the last refused request started %.2f s after Redis was back; "
              "%d requests after the bound, all signed" % (counts, last_refusal - t_up, len(after)))
        check_eq(sorted(s.is_open for s in (a, b)), [True, True], "signers stay connected")


run_tests(globals())
