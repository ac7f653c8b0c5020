#!/usr/bin/python3
"""
Waiting for a signer that is not connected yet (POST /v1/sign "wait_ms",
`wssign request --wait-ms/--wait`). A waiting request is sent when the key
is introduced and answered as usual; when the wait ends first it is
not_connected, at the end of the wait and not before. wait_ms beyond the
request's deadline (its timeout_ms, or the configured default) and values
that are not integers from 0 to 60000 are a 400. Waiting requests count
against the pending limits, a requester that leaves cancels its waiting
request, and a request that waited and ended is never sent to a key that
arrives later.
"""

import asyncio
import os
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import (AsyncHttp, Daemon, b64, check, check_eq, check_error_body,  # noqa: E402
                       http_request, run_tests, scaled, unb64, verify)
from wssign_util import Agent, keygen, request  # noqa: E402


async def test_answered_when_the_key_comes():
    async with Daemon() as d:
        seed = os.urandom(32)
        late = d.signer(seed=seed)
        ask = asyncio.ensure_future(d.sign(late.pk, b"wait for me", timeout_ms=20000,
                                           wait_ms=15000))
        await asyncio.sleep(scaled(0.7))
        check(not ask.done(), "the waiting request ended before the key came: %r"
              % (ask.result() if ask.done() else None,))
        await late.start()
        status, body, elapsed = await ask
        check_eq(status, 200, "waited request (body %r)" % (body,))
        check(verify(late.pk, b"wait for me", unb64(body["signature"])), "signature verifies")
        check(elapsed >= 0.7, "answered after %.2f s, before the key came" % elapsed)
        check_eq(len(late.requests), 1, "sign_request frames")
        await late.close()


async def test_not_connected_at_the_end_of_the_wait():
    async with Daemon() as d:
        pk = os.urandom(32)
        status, body, elapsed = await d.sign(pk, b"nobody", timeout_ms=10000, wait_ms=800)
        check_error_body(status, body, 404, "not_connected", "a wait that ends")
        check(elapsed >= 0.75, "not_connected after %.2f s, before the wait ended" % elapsed)
        check(elapsed < scaled(5), "not_connected after %.2f s, long after the wait" % elapsed)
        # wait_ms equal to the whole timeout: not_connected too, not timeout.
        status, body, elapsed = await d.sign(pk, b"nobody", timeout_ms=600, wait_ms=600)
        check_error_body(status, body, 404, "not_connected", "a wait as long as the timeout")
        check(elapsed >= 0.55, "not_connected after %.2f s" % elapsed)
        # wait_ms 0: not_connected at once, as without it.
        status, body, elapsed = await d.sign(pk, b"nobody", wait_ms=0)
        check_error_body(status, body, 404, "not_connected", "wait_ms 0")
        check(elapsed < scaled(0.5), "wait_ms 0 took %.2f s" % elapsed)
        check_eq(d.log_count(r"outcome=not_connected"), 3, "not_connected audit lines")


async def test_a_connected_key_is_asked_at_once():
    async with Daemon() as d:
        async with d.signer() as s:
            status, body, elapsed = await d.sign(s.pk, b"here already", wait_ms=30000)
            check_eq(status, 200, "wait_ms for a connected key (body %r)" % (body,))
            check(elapsed < scaled(2), "took %.2f s" % elapsed)


async def test_bad_waits_refused():
    async with Daemon({"requests": {"default_timeout_ms": 2000}}) as d:
        async with d.signer() as s:
            pk, msg = b64(s.pk), b64(b"hello")
            cases = [
                ("wait_ms beyond timeout_ms", {"timeout_ms": 1000, "wait_ms": 1001},
                 "timeout"),
                ("wait_ms beyond the default timeout", {"wait_ms": 2001}, "timeout"),
                ("wait_ms 60001", {"wait_ms": 60001}, "wait_ms"),
                ("wait_ms negative", {"wait_ms": -1}, "wait_ms"),
                ("wait_ms string", {"wait_ms": "100"}, "wait_ms"),
                ("wait_ms float", {"wait_ms": 10.5}, "wait_ms"),
                ("wait_ms null", {"wait_ms": None}, "wait_ms"),
                ("wait_ms true", {"wait_ms": True}, "wait_ms"),
            ]
            for name, extra, word in cases:
                body = {"public_key": pk, "message": msg}
                body.update(extra)
                status, resp = await d.ahttp("POST", "/v1/sign", body)
                check_error_body(status, resp, 400, "bad_request", name)
                check(word in resp["error"]["message"],
                      "%s: message %r does not say why" % (name, resp["error"]["message"]))
            check_eq(s.requests, [], "sign_request frames that reached the signer")
            # The boundary passes.
            status, resp, _ = await d.sign(s.pk, b"boundary", wait_ms=2000)
            check_eq(status, 200, "wait_ms equal to the default timeout (body %r)" % (resp,))


async def test_waiting_counts_against_the_limits():
    async with Daemon({"requests": {"max_pending_per_key": 2}}) as d:
        seed = os.urandom(32)
        late = d.signer(seed=seed)
        waiting = [asyncio.ensure_future(d.sign(late.pk, b"w%d" % i, timeout_ms=20000,
                                                wait_ms=20000)) for i in range(2)]
        await asyncio.sleep(scaled(0.5))
        status, body, _ = await d.sign(late.pk, b"third", wait_ms=5000)
        check_error_body(status, body, 503, "overloaded", "a third request for the key")
        await late.start()
        for i, w in enumerate(waiting):
            status, body, _ = await w
            check_eq(status, 200, "waiting request %d (body %r)" % (i, body))
        await late.close()


async def test_requester_leaving_cancels_the_wait():
    async with Daemon() as d:
        seed = os.urandom(32)
        late = d.signer(seed=seed)
        body = {"public_key": b64(late.pk), "message": b64(b"gone"), "wait_ms": 20000,
                "timeout_ms": 20000}
        async with AsyncHttp(d.control_port) as c:
            await c.send(http_request("POST", "/v1/sign", body))
            await asyncio.sleep(scaled(0.5))
        outcome = await d.await_log(r"event=sign_outcome request_id=[0-9a-f-]{36} .*"
                                    r"outcome=(\w+)")
        check_eq(outcome, ["cancelled"], "outcome of the abandoned waiting request")
        await late.start()
        await late.no_frame(0.5)
        check_eq(late.requests, [], "sign_request frames after the requester left")
        await late.close()


def test_wssign_request_waits():
    with Daemon() as d:
        key, pk = keygen()
        url = "ws://127.0.0.1:%d/v1/ws" % d.port

        # --wait-ms: the agent starts after the request.
        result = {}

        def ask():
            result["r"] = request(d, pk, "--message", "late agent", "--wait-ms", "20000",
                                  "--timeout-ms", "30000")
        t = threading.Thread(target=ask)
        t.start()
        time.sleep(0.7)
        agent = Agent(url, key)
        t.join(60)
        rc, out, err = result["r"]
        check_eq(rc, 0, "wssign request --wait-ms with a late agent (stderr %r)" % err)
        check_eq(agent.stop(), 0, "agent exit")

        # --wait without an agent: exit 3 (not_connected) once the timeout passes.
        t0 = time.monotonic()
        rc, out, err = request(d, pk, "--message", "nobody", "--wait", "--timeout-ms", "700")
        elapsed = time.monotonic() - t0
        check_eq(rc, 3, "wssign request --wait without an agent (stderr %r)" % err)
        check(elapsed >= 0.65, "gave up after %.2f s" % elapsed)

        # Usage errors, before anything is sent.
        for args in (["--wait-ms", "60001"], ["--wait-ms", "x"],
                     ["--wait-ms", "900", "--timeout-ms", "800"],
                     ["--wait", "--wait-ms", "5"]):
            rc, _, err = request(d, pk, "--message", "m", *args)
            check_eq(rc, 2, "%s: usage error (stderr %r)" % (" ".join(args), err))
            check("--wait" in err, "%s: the error names the option: %r" % (args, err))


run_tests(globals())
