#!/usr/bin/python3
"""
Malformed frames: each gets an error frame with the listed code and the
connection stays open and usable (bad_json, unknown_type, missing_field,
bad_field, unknown_request; not_introduced before the introduction;
already_introduced for a second introduction). A binary frame gets bad_json
or close 1003; a frame above limits.max_frame_bytes closes with 1009. The
daemon keeps serving other signers throughout.
"""

import asyncio
import json
import os
import sys
import uuid

import websockets

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Many refused frames on one connection: raise the per-connection cap of
# refused frames (limits.max_protocol_errors, default 3) so each case is seen.
LENIENT = {"limits": {"max_protocol_errors": 1000}}

from wssd_test import Daemon, TestFailure, b64, check, check_eq, run_tests


async def test_malformed_after_introduction():
    async with Daemon(LENIENT) as d:
        async with d.signer() as s:
            rid = str(uuid.uuid4())
            sig = b64(bytes(64))
            msg = b64(b"hello")
            good_resp = {"type": "sign_response", "request_id": rid, "message": msg,
                         "signature": sig}
            cases = [
                ("invalid JSON", "this is not json", "bad_json"),
                ("truncated JSON", '{"type": "sign_reject", ', "bad_json"),
                ("top-level array", '["sign_reject"]', "bad_json"),
                ("top-level string", '"sign_reject"', "bad_json"),
                ("top-level number", "42", "bad_json"),
                ("duplicate keys",
                 '{"type":"sign_reject","request_id":"%s","request_id":"%s","reason":"x"}'
                 % (rid, rid), "bad_json"),
                ("unknown type", json.dumps({"type": "hello"}), "unknown_type"),
                ("server-side type", json.dumps({"type": "sign_request", "request_id": rid,
                                                 "message": msg, "expires_at": 1}),
                 "unknown_type"),
                ("missing type", json.dumps({"request_id": rid}), "missing_field"),
                ("sign_response without signature",
                 json.dumps({"type": "sign_response", "request_id": rid, "message": msg}),
                 "missing_field"),
                ("sign_response without message",
                 json.dumps({"type": "sign_response", "request_id": rid, "signature": sig}),
                 "missing_field"),
                ("sign_reject without request_id",
                 json.dumps({"type": "sign_reject", "reason": "x"}), "missing_field"),
                ("signature not base64",
                 json.dumps(dict(good_resp, signature="!!" + sig[2:])), "bad_field"),
                ("message not base64",
                 json.dumps(dict(good_resp, message="aGVsbG8")), "bad_field"),
                ("signature 63 bytes",
                 json.dumps(dict(good_resp, signature=b64(bytes(63)))), "bad_field"),
                ("signature 65 bytes",
                 json.dumps(dict(good_resp, signature=b64(bytes(65)))), "bad_field"),
                ("request_id a number",
                 json.dumps(dict(good_resp, request_id=5)), "bad_field"),
                ("unknown extra field",
                 json.dumps(dict(good_resp, extra=1)), "bad_field"),
                ("sign_response for an unknown id", json.dumps(good_resp), "unknown_request"),
                ("sign_reject for an unknown id",
                 json.dumps({"type": "sign_reject", "request_id": rid, "reason": "no"}),
                 "unknown_request"),
            ]
            for name, text, code in cases:
                await s.send_text(text)
                try:
                    f = await s.expect_error(code)
                except TestFailure as e:
                    raise TestFailure("%s (sent %r): %s" % (name, text, e))
                if code == "unknown_request" and "request_id" in f:
                    check_eq(f["request_id"], rid, "%s: error.request_id" % name)
                await asyncio.sleep(0.02)
                check(s.is_open, "%s: connection closed (code %r)" % (name, s.close_code))
            # the same connection still signs
            await d.check_sign(s)
            await s.no_frame(0.1)
        await d.aroundtrip(timeout_ms=10000)


async def test_binary_frame():
    async with Daemon(LENIENT) as d:
        s = d.signer()
        await s.start()
        await s.send_bytes(b'{"type":"sign_reject"}')
        # either an error frame arrives or the connection closes
        getter = asyncio.ensure_future(s.inbox.get())
        await asyncio.wait([getter, s._task], timeout=3.0,
                           return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            f = getter.result()
            if f.get("type") != "error":
                raise TestFailure("unexpected answer to a binary frame: %r" % f)
            check_eq(f.get("code"), "bad_json", "error code for a binary frame")
            await asyncio.sleep(0.1)
            if s.is_open:
                await d.check_sign(s)
            else:
                check_eq(s.close_code, 1003, "close after bad_json for a binary frame")
        else:
            getter.cancel()
            cc = await s.wait_closed(0.5)
            check_eq(cc, 1003, "close code for a binary frame")
        await s.close()
        await d.aroundtrip(timeout_ms=10000)


async def test_not_introduced():
    async with Daemon(LENIENT) as d:
        s = d.signer()
        await s.connect()
        await s.read_challenge()
        rid = str(uuid.uuid4())
        for frame in ({"type": "sign_response", "request_id": rid, "message": b64(b"x"),
                       "signature": b64(bytes(64))},
                      {"type": "sign_reject", "request_id": rid, "reason": "no"}):
            await s.send_json(frame)
            f = await s.recv_json(5.0)
            check_eq((f.get("type"), f.get("code")), ("error", "not_introduced"),
                     "answer to %s before the introduction (%r)" % (frame["type"], f))
            await asyncio.sleep(0.05)
            check(s.is_open, "connection closed after not_introduced")
        # still able to introduce on the same connection
        await s.introduce()
        await d.check_sign(s)
        await s.close()


async def test_second_introduction():
    async with Daemon(LENIENT) as d:
        async with d.signer() as s:
            await s.send_json(s.introduction())
            await s.expect_error("already_introduced")
        await d.aroundtrip(timeout_ms=10000)


async def test_other_paths_refused():
    async with Daemon(LENIENT) as d:
        for path in ("/", "/v1/ws/extra", "/v1/wss", "/v2/ws"):
            url = d.url(path=path)
            try:
                ws = await websockets.connect(url, open_timeout=3, ping_interval=None)
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
                continue
            try:
                first = await asyncio.wait_for(ws.recv(), 2)
            except (asyncio.TimeoutError, websockets.exceptions.ConnectionClosed):
                first = None
            await ws.close()
            raise TestFailure("WebSocket handshake on %s accepted (first frame %r)"
                              % (path, first))
        await d.aroundtrip(timeout_ms=10000)


async def test_frame_too_big():
    async with Daemon({"limits": {"max_frame_bytes": 4096}}) as d:
        s = d.signer()
        await s.start()
        big = json.dumps({"type": "sign_reject", "request_id": str(uuid.uuid4()),
                          "reason": "x" * 5000})
        await s.send_text(big)
        cc = await s.wait_closed(5.0)
        check_eq(cc, 1009, "close code for a frame above limits.max_frame_bytes")
        await d.aroundtrip(timeout_ms=10000)


async def test_protocol_error_cap():
    # Default limits.max_protocol_errors is 3: three refused frames are answered
    # and the connection stays; the fourth is answered, then closed with 1008.
    async with Daemon() as d:
        async with d.signer() as s:
            for n in range(3):
                await s.send_text("not json %d" % n)
                await s.expect_error("bad_json")
            check(s.is_open, "open after three refused frames")
            await s.send_text("not json 3")
            await s.expect_error("bad_json")
            check_eq(await s.wait_closed(), 1008, "close code after the fourth")
    async with Daemon({"limits": {"max_protocol_errors": 1}}) as d:
        async with d.signer() as s:
            await s.send_text("{}")
            await s.expect_error("missing_field")
            await s.send_text("{}")
            await s.expect_error("missing_field")
            check_eq(await s.wait_closed(), 1008, "close code with a cap of 1")
        await d.aroundtrip(timeout_ms=10000)


run_tests(globals())
