#!/usr/bin/python3
"""
Answers completed after their HTTP requester has gone. A request the HTTP
API holds outlives its connection: whatever finishes it afterwards (a
signature, a verdict from the verifier pool, a presence lookup, the end of
a body) must find the request and nothing of the freed connection. Each
case races the two ends many times, the requester resetting its socket
(RST) at the moment the answer comes, so that both orders happen: the
answer written into a dead socket, or the requester gone first and the
answer dropped. Under tests/run-checked.sh asan any use of freed memory
kills the daemon, which fails the test when it stops. Every sign request
still ends with exactly one audit line, and the daemon keeps serving.
"""

import asyncio
import json
import os
import random
import re
import socket
import struct
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import (Daemon, b64, b64url, check, check_eq, run_tests, scaled,  # noqa: E402
                       unb64, verify)

ROUNDS = 60


async def open_request(port, data):
    """Opens a connection to the control listener and sends data; returns the writer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    return reader, writer


def reset(writer):
    """Closes with a TCP RST: the daemon sees the requester vanish, not a polite FIN."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


def sign_request(pk, message, timeout_ms=10000):
    body = json.dumps({"public_key": b64(pk), "message": b64(message),
                       "timeout_ms": timeout_ms}).encode()
    return (b"POST /v1/sign HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body


def racing_signer(d, requesters):
    """A signer that answers each request and resets its requester's socket (the
    writer requesters[request index]) in a random order, a millisecond or less apart,
    so that the daemon sees the answer first, the reset first, or both in one turn."""
    async def policy(s, req):
        writer = requesters[len(s.requests) - 1] if len(s.requests) <= len(requesters) else None
        pause = random.random() * 0.001
        if writer is None:
            await s.answer(req, s.response(req))  # an ordinary request after the races
        elif random.random() < 0.5:
            reset(writer)
            await asyncio.sleep(pause)
            await s.answer(req, s.response(req))
        else:
            await s.answer(req, s.response(req))
            await asyncio.sleep(pause)
            reset(writer)
    return d.signer(policy=policy)


async def race_signatures(d, what):
    requesters = []
    async with racing_signer(d, requesters) as s:
        for i in range(ROUNDS):
            _, writer = await asyncio.open_connection("127.0.0.1", d.control_port)
            requesters.append(writer)
            writer.write(sign_request(s.pk, b"%s %d" % (what.encode(), i)))
            await s.wait_request(i, timeout=scaled(5))
        # The last answers and cancels settle: every request has ended once.
        await asyncio.sleep(scaled(0.5))
        outcomes = re.findall(r"event=sign_outcome .*outcome=([a-z_]+) msg_len=\d+ "
                              r"msg_sha256=\S+ label_len=\d+ label_sha256=\S+ latency_ms=\d+ "
                              r"requester=\"?http_api",
                              d.log_text())
        check_eq(len(outcomes), ROUNDS, "%s: sign_outcome lines" % what)
        check(set(outcomes) <= {"ok", "cancelled"}, "%s: outcomes %r" % (what, set(outcomes)))
        await still_serving(d, s, what)


async def still_serving(d, s, what):
    msg = b"after " + what.encode()
    status, body, _ = await d.sign(s.pk, msg, timeout_ms=5000)
    check_eq(status, 200, "%s: a sign round trip afterwards (body %r)" % (what, body))
    check(verify(s.pk, msg, unb64(body["signature"])), "%s: signature verifies" % what)


async def test_signature_against_requester_reset():
    async with Daemon() as d:
        await race_signatures(d, "signature")


async def test_verdict_against_requester_reset():
    # With the verifier pool a verdict comes from another thread, a loop turn or more
    # after the answer: the requester may be gone in between.
    async with Daemon({"requests": {"verify_threads": 2}}) as d:
        await race_signatures(d, "verdict")


async def test_key_lookup_against_requester_reset():
    # GET /v1/keys/{key} is answered on a later loop turn; the requester resets at once.
    # A lookup of this daemon's registry comes before the reset is seen (the answer then
    # meets a dead socket); a slower lookup would also meet the gone requester.
    async with Daemon() as d:
        async with d.signer() as s:
            for path in ("/v1/keys/" + b64url(s.pk), "/v1/keys/" + b64url(os.urandom(32))):
                for _ in range(ROUNDS):
                    _, writer = await open_request(
                        d.control_port, b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                        % path.encode())
                    if random.random() < 0.5:
                        await asyncio.sleep(0)
                    reset(writer)
            status, body = await d.ahttp("GET", "/v1/keys/" + b64url(s.pk), timeout=scaled(5))
            check_eq((status, body.get("connected")), (200, True), "lookup afterwards")
            await still_serving(d, s, "key lookups")


async def test_body_against_requester_reset():
    # The requester leaves while its body is read: the half-read request ends quietly.
    async with Daemon() as d:
        async with d.signer(policy="sign") as s:
            whole = sign_request(s.pk, b"never finished")
            for i in range(ROUNDS):
                cut = len(whole) - 1 - (i % 20)
                _, writer = await open_request(d.control_port, whole[:cut])
                if i % 2:
                    await asyncio.sleep(0.005)
                reset(writer)
            await asyncio.sleep(scaled(0.3))
            check_eq(len(s.requests), 0, "sign requests reaching the signer")
            await still_serving(d, s, "half-read bodies")


async def test_shutdown_with_requesters_waiting():
    # SIGTERM while requests wait on a silent signer and their requesters are gone or
    # still there: every one ends once, and the daemon exits 0 (checked on stop).
    async with Daemon() as d:
        async with d.signer(policy="silent") as s:
            writers = []
            for i in range(10):
                _, writer = await open_request(d.control_port,
                                               sign_request(s.pk, b"held %d" % i, 30000))
                await s.wait_request(i, timeout=scaled(5))
                writers.append(writer)
            for writer in writers[::2]:
                reset(writer)
            await asyncio.sleep(scaled(0.2))
            await d.astop()
            outcomes = re.findall(r"event=sign_outcome .*outcome=([a-z_]+)", d.log_text())
            check_eq(sorted(outcomes), ["cancelled"] * 5 + ["shutting_down"] * 5,
                     "outcomes at shutdown")
            for writer in writers[1::2]:
                writer.close()


run_tests(globals())
