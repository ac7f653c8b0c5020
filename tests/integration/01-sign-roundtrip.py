#!/usr/bin/python3
"""
Sign round trip over ws://: POST /v1/sign reaches the signer, the returned
signature verifies independently, key presence and health endpoints, and
concurrent requests to several signers without cross-talk.
"""

import asyncio
import os
import re
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import (Daemon, b64, b64url, check, check_eq, check_error_body, is_uuid4,
                       now_ms, run_tests, unb64, verify)


async def test_roundtrip_signature_verifies():
    async with Daemon() as d:
        async with d.signer() as s:
            message = b"wssignd round trip \x00\x01\xfe\xff " + os.urandom(48)
            t0 = now_ms()
            status, body, _ = await d.sign(s.pk, message)
            t1 = now_ms()
            check_eq(status, 200, "POST /v1/sign status (body %r)" % (body,))
            for key in ("request_id", "public_key", "message", "signature"):
                check(key in body, "response lacks %r: %r" % (key, body))
            check(is_uuid4(body["request_id"]), "request_id is not a UUID v4: %r" % body)
            check_eq(body["public_key"], b64(s.pk), "response public_key")
            check_eq(body["message"], b64(message), "response message")
            sig = unb64(body["signature"])
            check_eq(len(sig), 64, "signature length")
            check(verify(s.pk, message, sig), "returned signature does not verify")

            check_eq(len(s.requests), 1, "sign_request frames seen by the signer")
            req = s.requests[0]
            check_eq(req.get("request_id"), body["request_id"], "sign_request.request_id")
            check_eq(unb64(req["message"]), message, "sign_request.message")
            exp = req.get("expires_at")
            check(isinstance(exp, int), "expires_at is not an integer: %r" % req)
            check(t0 + 60000 - 2000 <= exp <= t1 + 60000 + 2000,
                  "expires_at %r not ~now+60 s (request sent at %d)" % (exp, t0))
            check_eq(s.frames, [], "other frames received by the signer")


async def test_log_is_logfmt_without_message_bytes():
    async with Daemon({"log_level": "debug"}) as d:
        async with d.signer() as s:
            message = b"secret payload \x00\x01\xfe\xff " + os.urandom(48)
            status, body, _ = await d.sign(s.pk, message)
            check_eq(status, 200, "POST /v1/sign status (body %r)" % (body,))
            s.policy = "reject"
            await d.sign(s.pk, message + b"2")
            s.policy = "bad_signature"
            await d.sign(s.pk, message + b"3")

        log = d.log_text()
        problems = []
        for form in ("secret payload", b64(message), message.hex(), b64(message[20:])[:40]):
            if form in log:
                problems.append("daemon log contains the message bytes (%r)" % form)
        for line in log.splitlines():
            if not re.match(r"ts=\S+Z level=(err|warn|notice|info|debug) \S", line):
                problems.append("daemon log line is not logfmt: %r" % line)
        check(not problems, "; ".join(problems))

async def test_keys_endpoint():
    async with Daemon() as d:
        before = now_ms()
        s = d.signer()
        await s.start()
        after = now_ms()
        for path_key in (b64url(s.pk), b64url(s.pk, padding=True)):
            status, body = await d.ahttp("GET", "/v1/keys/" + path_key)
            check_eq(status, 200, "GET /v1/keys/%s (body %r)" % (path_key, body))
            check_eq(body.get("public_key"), b64(s.pk), "keys.public_key")
            check_eq(body.get("connected"), True, "keys.connected")
            ca = body.get("connected_at")
            check(isinstance(ca, int) and before - 1000 <= ca <= after + 1000,
                  "connected_at %r not within [%d, %d]" % (ca, before, after))
            check_eq(body.get("session_id"), s.introduced["session_id"], "keys.session_id")

        unknown = os.urandom(32)
        status, body = await d.ahttp("GET", "/v1/keys/" + b64url(unknown))
        check_error_body(status, body, 404, "not_connected", "GET unknown key")

        # once the signer leaves, the key is no longer connected
        await s.close()
        status, body = await d.wait_key_gone(s.pk)
        check_error_body(status, body, 404, "not_connected", "GET key after disconnect")


async def test_healthz():
    async with Daemon() as d:
        status, body = await d.ahttp("GET", "/healthz")
        check_eq(status, 200, "GET /healthz status")
        check_eq(body, {"status": "ok"}, "GET /healthz body")


async def test_concurrent_three_signers():
    async with Daemon() as d:
        signers = [d.signer() for _ in range(3)]
        for s in signers:
            await s.start()
        per_signer = 5
        jobs = []
        for s in signers:
            for i in range(per_signer):
                msg = b"signer %s request %d " % (s.pk.hex()[:8].encode(), i) + os.urandom(16)
                jobs.append((s, msg))
        results = await asyncio.gather(*(d.sign(s.pk, msg) for s, msg in jobs))
        ids = set()
        for (s, msg), (status, body, _) in zip(jobs, results):
            check_eq(status, 200, "concurrent sign status (body %r)" % (body,))
            check_eq(body["public_key"], b64(s.pk), "concurrent response public_key")
            check_eq(body["message"], b64(msg), "concurrent response message")
            check(verify(s.pk, msg, unb64(body["signature"])),
                  "concurrent signature does not verify with its signer's key")
            ids.add(body["request_id"])
        check_eq(len(ids), len(jobs), "distinct request ids")
        for s in signers:
            got = sorted(unb64(r["message"]) for r in s.requests)
            want = sorted(msg for t, msg in jobs if t is s)
            check_eq(got, want, "messages delivered to signer %s" % s.pk.hex()[:8])
        for s in signers:
            await s.close()


run_tests(globals())
