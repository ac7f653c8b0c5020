#!/usr/bin/python3
"""
A signer process frozen with SIGSTOP (its socket stays open, the kernel
still acknowledges bytes, but nothing answers): a request pending on it ends
with 504 timeout at its own deadline, not earlier and not much later; then
the hang-up rule (limits.ping_interval_ms / limits.idle_timeout_ms) closes
the connection, the key reads as not connected and wssignd_connections
drops by one. A live signer on the same daemon is not touched by the rule
and keeps signing.
"""

import asyncio
import os
import signal
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import (Daemon, SignerProcess, ascrape, check, check_eq,  # noqa: E402
                       check_error_body, run_tests, scaled)

PING_MS = 1000
IDLE_MS = 2000
CONFIG = {"limits": {"ping_interval_ms": PING_MS, "idle_timeout_ms": IDLE_MS}}


async def wait_key_gone(d, pk, limit):
    """Seconds until GET /v1/keys/<pk> answers 404, polled every 50 ms; fails after limit."""
    t0 = time.monotonic()
    while True:
        status, _ = await d.key_status(pk)
        if status == 404:
            return time.monotonic() - t0
        check_eq(status, 200, "GET /v1/keys while the key is held")
        check(time.monotonic() - t0 < limit,
              "key still connected %.1f s after the signer stopped (idle_timeout_ms %d)"
              % (limit, IDLE_MS))
        await asyncio.sleep(0.05)


async def test_stopped_signer_times_out_then_is_hung_up():
    async with Daemon(CONFIG) as d:
        live = d.signer()
        await live.start()
        sp = SignerProcess(d.url(), policy="silent")
        await sp.wait_line("introduced", timeout=10)
        # Both hold their keys across several ping intervals while they answer pings.
        await asyncio.sleep(2.5 * PING_MS / 1000)
        check_eq((await d.key_status(sp.pk))[0], 200, "signer process connected after pings")
        before = await ascrape(d)
        check_eq(before.value("wssignd_connections"), 2, "wssignd_connections with two signers")

        # The last pong came at most one ping interval before the stop, so the
        # hang-up can come as early as idle - ping after it: the deadline is shorter.
        timeout_ms = 600
        task = asyncio.ensure_future(d.sign(sp.pk, b"pending when frozen", timeout_ms=timeout_ms))
        line = await sp.wait_line("sign_request", timeout=10)
        rid = line.split()[1]
        os.kill(sp.proc.pid, signal.SIGSTOP)
        t_stop = time.monotonic()

        status, body, elapsed = await task
        err = check_error_body(status, body, 504, "timeout", "request pending on a stopped signer")
        if "request_id" in err:
            check_eq(err["request_id"], rid, "error.request_id")
        check(elapsed >= timeout_ms / 1000 - 0.05,
              "504 after %.3f s, before the %d ms deadline" % (elapsed, timeout_ms))
        check(elapsed <= timeout_ms / 1000 + scaled(0.5),
              "504 after %.3f s, expected at the %d ms deadline" % (elapsed, timeout_ms))

        # No pong comes back: the connection is closed within idle_timeout_ms of the
        # last valid pong (itself at most one ping interval before the stop), plus slack.
        await wait_key_gone(d, sp.pk, (IDLE_MS + PING_MS) / 1000 + scaled(1.5)
                            - (time.monotonic() - t_stop))
        took = time.monotonic() - t_stop
        check(took >= (IDLE_MS - PING_MS) / 1000 - 0.1,
              "hung up %.2f s after the stop, sooner than the rule allows" % took)
        after = await ascrape(d)
        check_eq(after.value("wssignd_connections"), 1,
                 "wssignd_connections after the stopped signer was hung up")
        check_eq(after.value("wssignd_introduced_keys"), 1, "wssignd_introduced_keys")
        check_eq(after.value("wssignd_pending_requests"), 0, "wssignd_pending_requests")

        # The live signer answered every ping and still holds its key.
        check_eq((await d.key_status(live.pk))[0], 200, "live signer still connected")
        check(live.is_open, "live signer's connection is open")
        await d.check_sign(live, timeout_ms=5000, what="live signer after the hang-up")

        # Thawed, the stopped process finds its connection closed.
        os.kill(sp.proc.pid, signal.SIGCONT)
        await sp.wait_line("closed", timeout=scaled(5))
        await live.close()


async def test_stopped_signer_without_requests_is_hung_up():
    async with Daemon(CONFIG) as d:
        sp = SignerProcess(d.url(), policy="sign")
        await sp.wait_line("introduced", timeout=10)
        check_eq((await d.key_status(sp.pk))[0], 200, "signer process connected")
        os.kill(sp.proc.pid, signal.SIGSTOP)
        t_stop = time.monotonic()
        await wait_key_gone(d, sp.pk, (IDLE_MS + PING_MS) / 1000 + scaled(1.5))
        took = time.monotonic() - t_stop
        # Not before a full idle period could have passed without a pong.
        check(took >= (IDLE_MS - PING_MS) / 1000 - 0.1,
              "hung up %.2f s after the stop, sooner than the rule allows" % took)
        status, body, _ = await d.sign(sp.pk, b"after the hang-up", timeout_ms=1000)
        check_error_body(status, body, 404, "not_connected", "sign for the hung-up key")
        m = await ascrape(d)
        check_eq(m.value("wssignd_connections"), 0, "wssignd_connections after the hang-up")
        os.kill(sp.proc.pid, signal.SIGCONT)
        sp.kill()


run_tests(globals())
