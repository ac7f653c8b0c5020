#!/usr/bin/python3
"""
POST /v1/sign refusals: 404 not_connected for an unknown key, 400 bad_request
for malformed requests (checked against a connected key, so validation and
not presence decides), 413 for a message above requests.max_message_bytes,
405 for the wrong method, 404 for an unknown path. None of them reaches the
signer.
"""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import (AsyncHttp, Daemon, b64, check, check_eq, check_error_body,
                       http_request, run_tests)


async def test_unknown_key_not_connected():
    async with Daemon() as d:
        status, body, _ = await d.sign(os.urandom(32), b"hello")
        check_error_body(status, body, 404, "not_connected", "unknown key")


async def test_bad_requests():
    async with Daemon() as d:
        async with d.signer() as s:
            pk = b64(s.pk)
            msg = b64(b"hello")
            cases = [
                ("public_key not base64", {"public_key": "!!!not-base64!!!", "message": msg}),
                ("public_key url-safe alphabet", {"public_key": "_" * 43 + "=", "message": msg}),
                ("public_key 31 bytes", {"public_key": b64(s.pk[:31]), "message": msg}),
                ("public_key 33 bytes", {"public_key": b64(s.pk + b"\0"), "message": msg}),
                ("public_key number", {"public_key": 5, "message": msg}),
                ("missing public_key", {"message": msg}),
                ("missing message", {"public_key": pk}),
                ("empty message", {"public_key": pk, "message": ""}),
                ("message not base64", {"public_key": pk, "message": "a*b"}),
                ("message without padding", {"public_key": pk, "message": "aGVsbG8"}),
                ("message null", {"public_key": pk, "message": None}),
                ("reserved prefix", {"public_key": pk,
                                     "message": b64(b"wssign-introduction-v1\n127.0.0.1\nxx")}),
                ("reserved prefix alone", {"public_key": pk,
                                           "message": b64(b"wssign-introduction-v1")}),
                ("timeout_ms 0", {"public_key": pk, "message": msg, "timeout_ms": 0}),
                ("timeout_ms 60001", {"public_key": pk, "message": msg, "timeout_ms": 60001}),
                ("timeout_ms negative", {"public_key": pk, "message": msg, "timeout_ms": -5}),
                ("timeout_ms string", {"public_key": pk, "message": msg, "timeout_ms": "500"}),
                ("timeout_ms float", {"public_key": pk, "message": msg, "timeout_ms": 500.5}),
                ("unknown field", {"public_key": pk, "message": msg, "colour": "blue"}),
                ("JSON array", [pk, msg]),
                ("not JSON", "public_key=%s&message=%s" % (pk, msg)),
                ("empty body", b""),
                ("truncated JSON", '{"public_key": "%s", "message": ' % pk),
            ]
            for name, body in cases:
                status, resp = await d.ahttp("POST", "/v1/sign", body)
                check_error_body(status, resp, 400, "bad_request", name)
            check_eq(len(s.requests), 0, "sign_request frames reaching the signer")
            check_eq(s.frames, [], "other frames reaching the signer")

            # the boundary values pass validation
            status, resp, _ = await d.sign(s.pk, b"boundary 1", timeout_ms=1)
            check(status in (200, 504), "timeout_ms 1: expected 200 or 504, got %r %r"
                  % (status, resp))
            status, resp, _ = await d.sign(s.pk, b"boundary 60000", timeout_ms=60000)
            check_eq(status, 200, "timeout_ms 60000 (body %r)" % (resp,))


async def test_message_too_large():
    async with Daemon({"requests": {"max_message_bytes": 1024}}) as d:
        async with d.signer() as s:
            status, body, _ = await d.sign(s.pk, b"x" * 1024)
            check_eq(status, 200, "message of max_message_bytes (body %r)" % (body,))
            status, body, _ = await d.sign(s.pk, b"x" * 1025)
            check_error_body(status, body, 413, "payload_too_large", "message above the limit")
            check_eq(len(s.requests), 1, "sign_request frames reaching the signer")


async def test_body_too_large_refused_early():
    # a declared body far above any limit is refused before it is sent
    async with Daemon() as d:
        async with AsyncHttp(d.control_port) as c:
            await c.send(http_request("POST", "/v1/sign",
                                      headers=[("Content-Type", "application/json"),
                                               ("Content-Length", "4000000")]))
            r = await c.response(5)
            check(c.status_line.startswith("HTTP/1.1 413"), "status line %r" % c.status_line)
        check_error_body(r.status, r.json, 413, "payload_too_large", "4 MB declared body")


async def test_wrong_method_and_path():
    async with Daemon() as d:
        status, body = await d.ahttp("GET", "/v1/sign")
        check_error_body(status, body, 405, "method_not_allowed", "GET /v1/sign")
        status, body = await d.ahttp("PUT", "/v1/sign", {"public_key": "", "message": ""})
        check_error_body(status, body, 405, "method_not_allowed", "PUT /v1/sign")
        for path in ("/", "/v1/nope", "/v2/sign", "/v1/sign/extra"):
            status, body = await d.ahttp("GET", path)
            check_eq(status, 404, "GET %s status (body %r)" % (path, body))
        status, body = await d.ahttp("POST", "/v1/nope", {"a": 1})
        check_eq(status, 404, "POST /v1/nope status (body %r)" % (body,))


run_tests(globals())
