#!/usr/bin/python3
"""
introduction.proof = "optional": an introduction without a proof is accepted
and can sign; a proof that is present must still verify (bad_proof, 1008);
an honest proof is accepted too.
"""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import Daemon, b64, check, check_eq, run_tests, unb64, verify

CONFIG = {"introduction": {"proof": "optional"}}


async def test_no_proof_accepted():
    async with Daemon(CONFIG) as d:
        s = d.signer()
        await s.connect()
        await s.read_challenge()
        await s.introduce(s.introduction(proof=None))
        msg = b"legacy signer"
        status, body, _ = await d.sign(s.pk, msg, timeout_ms=10000)
        check_eq(status, 200, "legacy signer round trip (body %r)" % (body,))
        check(verify(s.pk, msg, unb64(body["signature"])), "signature verifies")
        await s.close()


async def test_wrong_proof_refused():
    async with Daemon(CONFIG) as d:
        s = d.signer()
        await s.connect()
        await s.read_challenge()
        await s.send_json(s.introduction(proof=b64(os.urandom(64))))
        frames, cc = await s.recv_until_closed(5.0)
        check(frames and frames[0].get("type") == "error", "no error frame: %r" % frames)
        check_eq(frames[0].get("code"), "bad_proof", "error code (frames %r)" % frames)
        check_eq(cc, 1008, "close code")


async def test_wrong_host_refused_without_proof():
    async with Daemon(CONFIG) as d:
        s = d.signer(host="evil.example")
        await s.connect()
        await s.read_challenge()
        await s.send_json(s.introduction(proof=None))
        frames, cc = await s.recv_until_closed(5.0)
        check(frames and frames[0].get("type") == "error", "no error frame: %r" % frames)
        check_eq(frames[0].get("code"), "bad_host", "error code (frames %r)" % frames)
        check_eq(cc, 1008, "close code")


async def test_honest_proof_accepted():
    async with Daemon(CONFIG) as d:
        async with d.signer() as s:
            status, body, _ = await d.sign(s.pk, b"proved", timeout_ms=10000)
            check_eq(status, 200, "proved signer round trip (body %r)" % (body,))


run_tests(globals())
