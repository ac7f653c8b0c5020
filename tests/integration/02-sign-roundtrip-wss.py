#!/usr/bin/python3
"""
Sign round trip over wss:// with a self-signed certificate; a plain ws://
handshake on the TLS port fails and the daemon keeps serving.
"""

import asyncio
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import websockets
from wssd_test import (Daemon, TestFailure, b64, b64url, check, check_eq, run_tests, unb64,
                       verify)


async def roundtrip(d, host):
    async with d.signer(dial=host) as s:
        message = b"over tls via " + host.encode() + b" " + os.urandom(32)
        status, body, _ = await d.sign(s.pk, message)
        check_eq(status, 200, "POST /v1/sign over wss (%s) (body %r)" % (host, body))
        check_eq(body["message"], b64(message), "response message")
        check_eq(body["public_key"], b64(s.pk), "response public_key")
        check(verify(s.pk, message, unb64(body["signature"])), "signature does not verify")
        check_eq(len(s.requests), 1, "sign_request frames seen")
        check_eq(s.requests[0]["request_id"], body["request_id"], "sign_request.request_id")
        status, body = await d.ahttp("GET", "/v1/keys/" + b64url(s.pk))
        check_eq(status, 200, "GET /v1/keys over wss")
        check_eq(body.get("connected"), True, "keys.connected")


async def test_wss_roundtrip_ip():
    async with Daemon(tls=True) as d:
        check(d.url().startswith("wss://"), "url scheme")
        await roundtrip(d, "127.0.0.1")


async def test_wss_roundtrip_localhost():
    async with Daemon(tls=True) as d:
        await roundtrip(d, "localhost")


async def test_plain_ws_to_tls_port_fails():
    async with Daemon(tls=True) as d:
        url = "ws://127.0.0.1:%d/v1/ws" % d.port
        try:
            ws = await websockets.connect(url, open_timeout=3, ping_interval=None)
        except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
            pass
        else:
            await ws.close()
            raise TestFailure("plain ws:// handshake succeeded on the TLS port")
        # the daemon still serves TLS clients
        await roundtrip(d, "127.0.0.1")


run_tests(globals())
