#!/usr/bin/python3
"""
Requests one after another on a keep-alive control connection, and many at
once. The daemon reuses a finished request's record and body buffer for the
next request, and writes small answers from storage it reuses too: whatever
the sizes before it (a body or an answer larger than what is kept, then a
smaller one), every answer carries its own request's message and a valid
signature, and an empty body is refused exactly as on a fresh connection.
"""

import asyncio
import base64
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nacl.signing import VerifyKey  # noqa: E402

from wssd_test import AsyncHttp, Daemon, b64, check, check_eq, run_tests  # noqa: E402

# Message sizes in turn: larger than the body buffer kept (2 KiB of body) and the
# answer written from the transaction's storage (1 KiB), then small, then between.
SIZES = [6000, 1, 32, 1500, 3, 700, 5000, 0x40]


def check_signed(r, pk, msg, what):
    check_eq(r.status, 200, "%s: status (body %r)" % (what, r.body[:200]))
    check_eq(r.json.get("public_key"), b64(pk), "%s: public_key" % what)
    check_eq(base64.b64decode(r.json["message"]), msg, "%s: message" % what)
    check_eq(int(r.headers["content-length"]), len(r.body), "%s: content-length" % what)
    VerifyKey(pk).verify(msg, base64.b64decode(r.json["signature"]))


def sign_body(pk, msg):
    return {"public_key": b64(pk), "message": b64(msg)}


async def test_sizes_in_turn_on_one_connection():
    async with Daemon() as d:
        async with d.signer() as s, AsyncHttp(d.control_port) as c:
            for round_ in range(2):
                for i, n in enumerate(SIZES):
                    msg = bytes((i * 7 + j + round_) % 251 for j in range(n))
                    r = await c.request("POST", "/v1/sign", sign_body(s.pk, msg))
                    check_signed(r, s.pk, msg, "round %d, %d-byte message" % (round_, n))
            check_eq(c.opened, 1, "connections opened for %d requests" % (2 * len(SIZES)))


async def test_empty_body_after_a_large_one():
    async with Daemon() as d:
        async with d.signer() as s:
            async with AsyncHttp(d.control_port) as fresh:
                want = await fresh.request("POST", "/v1/sign", b"")
            check_eq(want.status, 400, "empty body on a fresh connection (body %r)" % (want.body,))
            async with AsyncHttp(d.control_port) as c:
                msg = b"m" * 3000
                check_signed(await c.request("POST", "/v1/sign", sign_body(s.pk, msg)), s.pk,
                             msg, "large body first")
                r = await c.request("POST", "/v1/sign", b"")
                check_eq((r.status, r.json), (want.status, want.json),
                         "empty body after a large one, as on a fresh connection")
                # A short body that is a prefix of nothing valid: still its own.
                r = await c.request("POST", "/v1/sign", b"{}")
                check_eq(r.status, 400, "body {} after a large one (body %r)" % (r.body,))
                msg = b"after"
                check_signed(await c.request("POST", "/v1/sign", sign_body(s.pk, msg)), s.pk,
                             msg, "small body after the refusals")


async def test_many_at_once():
    # More requests in flight than records are kept for reuse (32): every one
    # is answered with its own message, on many connections at once.
    async with Daemon() as d:
        async with d.signer() as s:
            clients = [AsyncHttp(d.control_port) for _ in range(48)]

            async def run(k, c):
                for j in range(4):
                    msg = ("client %d request %d " % (k, j)).encode() * (1 + (k * j) % 60)
                    check_signed(await c.request("POST", "/v1/sign", sign_body(s.pk, msg)),
                                 s.pk, msg, "client %d request %d" % (k, j))
                await c.close()

            await asyncio.gather(*(run(k, c) for k, c in enumerate(clients)))
            check(len(s.requests) == 48 * 4, "sign_request frames: %d" % len(s.requests))


run_tests(globals())
