#!/usr/bin/python3
"""
Introduction refusals with proof required (the default): bad proof, wrong
host, missing proof, proof over another nonce / host / key / without the
domain prefix, malformed key (bad_field, connection stays open), keys that
are not usable Ed25519 points (bad_key). Refusals that close do so with
1008 right after one error frame. A failed introduction does not disturb a
connected signer with that key, and honest signers keep working.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nacl.signing
# Many refused frames on one connection: raise the per-connection cap of
# refused frames (limits.max_protocol_errors, default 3) so each case is seen.
LENIENT = {"limits": {"max_protocol_errors": 1000}}

from wssd_test import (INTRO_DOMAIN, Daemon, TestFailure, b64, check, check_eq, run_tests,
                       unb64)

P = 2 ** 255 - 19
D = (-121665 * pow(121666, P - 2, P)) % P


def off_curve_key():
    """A 32-byte encoding whose y has no x on edwards25519."""
    for y in range(2, 1000):
        u = (y * y - 1) % P
        v = (D * y * y + 1) % P
        x2 = u * pow(v, P - 2, P) % P
        if x2 != 0 and pow(x2, (P - 1) // 2, P) != 1:
            return y.to_bytes(32, "little")
    raise RuntimeError("no off-curve y found")


SMALL_ORDER_KEY = bytes.fromhex("01" + "00" * 31)   # the identity point
ZERO_KEY = bytes(32)                                 # y = 0: a point of order 4


async def expect_refused(d, build, code, close_code=1008, seed=None, host=None):
    """Connects, sends build(signer) as the introduction, expects exactly one
    error frame with code, then the close code."""
    s = d.signer(seed=seed, host=host)
    await s.connect()
    await s.read_challenge()
    await s.send_json(build(s))
    frames, cc = await s.recv_until_closed(5.0)
    check(len(frames) >= 1, "%s: no error frame before the close (close %r)" % (code, cc))
    f = frames[0]
    if f.get("type") != "error" or f.get("code") != code:
        raise TestFailure("%s: expected error frame, got %r" % (code, f))
    check(isinstance(f.get("message"), str), "error without message: %r" % f)
    check_eq(len(frames), 1, "%s: frames before the close (%r)" % (code, frames))
    check_eq(cc, close_code, "%s: close code" % code)


async def expect_error_open(s, frame, code):
    """Sends frame; expects an error frame with code and the connection open."""
    await s.send_json(frame)
    f = await s.recv_json(5.0)
    if f.get("type") != "error" or f.get("code") != code:
        raise TestFailure("expected error frame %r, got %r" % (code, f))
    await asyncio.sleep(0.1)
    check(s.is_open, "connection closed after %s (close %r)" % (code, s.close_code))


async def test_bad_proofs_close_1008():
    async with Daemon() as d:
        seed = os.urandom(32)
        other = nacl.signing.SigningKey(os.urandom(32))

        def flipped(s):
            p = bytearray(s.proof(s.challenge["nonce"]))
            p[10] ^= 0x40
            return s.introduction(proof=b64(bytes(p)))

        def other_nonce(s):
            return s.introduction(proof=b64(s.proof(b64(os.urandom(32)))))

        def other_host(s):
            return s.introduction(proof=b64(s.proof(s.challenge["nonce"], host="localhost")))

        def other_key(s):
            return s.introduction(proof=b64(s.proof(s.challenge["nonce"], sk=other)))

        def no_domain(s):
            raw = s.host.encode() + b"\n" + s.challenge["nonce"].encode()
            return s.introduction(proof=b64(s.sk.sign(raw).signature))

        def decoded_nonce(s):
            raw = (INTRO_DOMAIN + b"\n" + s.host.encode() + b"\n" +
                   unb64(s.challenge["nonce"]))
            return s.introduction(proof=b64(s.sk.sign(raw).signature))

        cases = [
            ("random proof", lambda s: s.introduction(proof=b64(os.urandom(64)))),
            ("flipped proof bit", flipped),
            ("proof over another nonce", other_nonce),
            ("proof over another host", other_host),
            ("proof by another key", other_key),
            ("proof without the domain prefix", no_domain),
            ("proof over the decoded nonce", decoded_nonce),
        ]
        for name, build in cases:
            try:
                await expect_refused(d, build, "bad_proof", seed=seed)
            except TestFailure as e:
                raise TestFailure("%s: %s" % (name, e))
        # the key that failed to prove itself can still introduce honestly
        await d.aroundtrip(seed=seed, timeout_ms=10000)


async def test_wrong_host_close_1008():
    async with Daemon() as d:
        await expect_refused(d, lambda s: s.introduction(), "bad_host", host="evil.example")
        await expect_refused(d, lambda s: s.introduction(), "bad_host",
                             host="127.0.0.1:%d" % d.port)
        await d.aroundtrip(timeout_ms=10000)


async def test_server_names():
    async with Daemon({"server_names": ["signer.example"]}) as d:
        # dialled by address, but the configured name is the one to prove
        async with d.signer(host="signer.example") as s:
            status, body, _ = await d.sign(s.pk, b"named", timeout_ms=10000)
            check_eq(status, 200, "signer proving a configured name (body %r)" % (body,))
        await expect_refused(d, lambda s: s.introduction(), "bad_host", host="127.0.0.1")
        await expect_refused(d, lambda s: s.introduction(), "bad_host", host="localhost")
    async with Daemon() as d:
        # the default names include ::1, written without brackets
        async with d.signer(host="::1") as s:
            status, body, _ = await d.sign(s.pk, b"v6 name", timeout_ms=10000)
            check_eq(status, 200, "signer proving ::1 (body %r)" % (body,))
        await expect_refused(d, lambda s: s.introduction(), "bad_host", host="[::1]")


async def test_missing_proof_close_1008():
    async with Daemon() as d:
        await expect_refused(d, lambda s: s.introduction(proof=None), "missing_proof")
        await d.aroundtrip(timeout_ms=10000)


async def test_bad_keys_close_1008():
    async with Daemon() as d:
        for name, key in (("identity point", SMALL_ORDER_KEY), ("zero bytes", ZERO_KEY),
                          ("off-curve y", off_curve_key())):
            try:
                await expect_refused(
                    d, lambda s, k=key: s.introduction(public_key=b64(k),
                                                       proof=b64(os.urandom(64))),
                    "bad_key")
            except TestFailure as e:
                raise TestFailure("%s: %s" % (name, e))
        await d.aroundtrip(timeout_ms=10000)


async def test_malformed_key_and_proof_keep_connection():
    async with Daemon(LENIENT) as d:
        s = d.signer()
        await s.connect()
        await s.read_challenge()
        await expect_error_open(s, s.introduction(public_key=b64(s.pk[:31])), "bad_field")
        await expect_error_open(s, s.introduction(public_key=b64(s.pk + b"\0")), "bad_field")
        await expect_error_open(s, s.introduction(public_key="not base64!"), "bad_field")
        short = s.proof(s.challenge["nonce"])[:63]
        await expect_error_open(s, s.introduction(proof=b64(short)), "bad_field")
        # the same connection can still introduce with the same challenge
        await s.introduce()
        msg = b"after malformed introductions"
        status, body, _ = await d.sign(s.pk, msg, timeout_ms=10000)
        check_eq(status, 200, "sign on the same connection (body %r)" % (body,))
        await s.close()
        await d.aroundtrip(timeout_ms=10000)


async def test_failed_claim_does_not_disturb_owner():
    async with Daemon() as d:
        async with d.signer() as owner:
            session = owner.introduced["session_id"]
            # an impostor claims the owner's key without its secret
            await expect_refused(
                d, lambda s: s.introduction(public_key=b64(owner.pk),
                                            proof=b64(os.urandom(64))),
                "bad_proof")
            await expect_refused(
                d, lambda s: s.introduction(public_key=b64(owner.pk), proof=None),
                "missing_proof")
            await owner.no_frame(0.3)
            check(owner.is_open, "owner connection closed by a failed claim")
            status, body = await d.ahttp("GET", "/v1/keys/" + b64(owner.pk)
                                         .replace("+", "-").replace("/", "_"))
            check_eq(status, 200, "owner key still connected")
            check_eq(body.get("session_id"), session, "owner session unchanged")
            status, body, _ = await d.sign(owner.pk, b"owner still signs", timeout_ms=10000)
            check_eq(status, 200, "owner still signs (body %r)" % (body,))


run_tests(globals())
