#!/usr/bin/python3
"""
Pipelined HTTP requests on the control listener: a request and the start of
another in one write. libwebsockets 4.1.6 mishandles the bytes behind a
request whose answer is not out yet (it repeats the body's completion for
ever, or runs the request again, or parses the next request's headers as
its body and loops), so wssignd answers the first request with
"connection: close" and closes. Checked for every way in: POST + body twice
to /healthz, to an unknown path and with a bad body to /v1/sign; a sign
request followed by another (the signer gets exactly one sign_request,
whether it signs, stays silent until the deadline, or its requester leaves);
a POST followed only by the headers of a second; two GETs, and a GET
followed by part of one. Each time the daemon's CPU time barely moves over
2 s, both listeners still answer, and SIGTERM still stops it with exit 0
(checked when each daemon stops). Sequential requests on one keep-alive
connection are unaffected.

With WSSIGND_TEST_CONTROL_TLS=1 (87-hostile-control-pipelining-tls.py) every
case runs against a control listener that serves HTTPS (control.tls), where
lws reads the pipelined bytes through TLS records instead.
"""

import asyncio
import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile_util import log_count  # noqa: E402
from wssd_test import (RawHTTP, b64, check, check_eq, cpu_seconds,  # noqa: E402
                       http_request, run_tests, scaled, unb64, verify)
from wssd_test import Daemon as HarnessDaemon  # noqa: E402

CONTROL_TLS = os.environ.get("WSSIGND_TEST_CONTROL_TLS") == "1"


def Daemon(*args, **kw):  # noqa: N802 (the harness's Daemon, over HTTPS when asked)
    return HarnessDaemon(*args, control_tls=CONTROL_TLS, **kw)


def control(d):
    """A raw connection to the control listener (TLS when it serves HTTPS)."""
    return RawHTTP(d.control_port, tls=d.control_ssl_context)


# CPU seconds the daemon may use while idle for IDLE_S seconds (a spin uses all of them).
IDLE_S = 2.0
IDLE_CPU_MAX = 0.25


def sign_body(pk, message, timeout_ms=None):
    body = {"public_key": b64(pk), "message": b64(message)}
    if timeout_ms is not None:
        body["timeout_ms"] = timeout_ms
    return body


def first_answer_then_close(d, data, status, what, timeout=5.0):
    """Sends data in one write; expects one answer with `status` and
    "connection: close", then the connection closed with nothing more.
    Returns the parsed body."""
    with control(d) as c:
        c.send(data)
        st, hdrs, body, parsed = c.response(scaled(timeout))
        check_eq(st, status, "%s: status of the first answer (body %r)" % (what, body[:200]))
        check_eq(hdrs.get("connection", "").lower(), "close",
                 "%s: connection header of the first answer" % what)
        check(c.closed_within(scaled(3.0)), "%s: connection still open after the answer" % what)
        check_eq(bytes(c.buf), b"", "%s: bytes after the first answer" % what)
    return parsed


async def quiet_and_serving(d, what):
    """The daemon stays idle for IDLE_S seconds, and both listeners still answer."""
    pid = d.proc.pid
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(IDLE_S)
    used, held = cpu_seconds(pid) - cpu0, time.monotonic() - t0
    check(used <= IDLE_CPU_MAX * held / IDLE_S,
          "%s: daemon used %.2f s of CPU in %.2f s of quiet (spinning?)" % (what, used, held))
    status, body = await d.ahttp("GET", "/healthz", timeout=scaled(5))
    check_eq((status, body), (200, {"status": "ok"}), "%s: /healthz afterwards" % what)
    async with d.signer() as s:
        msg = b"after " + what.encode()
        status, body, _ = await d.sign(s.pk, msg, timeout_ms=5000)
        check_eq(status, 200, "%s: a sign round trip afterwards (body %r)" % (what, body))
        check(verify(s.pk, msg, unb64(body["signature"])), "%s: signature verifies" % what)


def twice(request):
    return request + request


async def test_pipelined_posts_to_healthz():
    async with Daemon() as d:
        req = http_request("POST", "/healthz", b"{}")
        body = await asyncio.to_thread(first_answer_then_close, d, twice(req), 405,
                                       "POST /healthz twice")
        check_eq(body["error"]["code"], "method_not_allowed", "error code")
        await quiet_and_serving(d, "POST /healthz twice")


async def test_pipelined_posts_to_refused_paths():
    async with Daemon() as d:
        for what, req, status in (
                ("POST /nope twice", http_request("POST", "/nope", b"{}"), 404),
                ("POST /v1/sign with a bad body twice", http_request("POST", "/v1/sign", b"{}"),
                 400),
                ("POST /v1/sign with a non-JSON body twice",
                 http_request("POST", "/v1/sign", b"<>", content_type="text/plain"), 415)):
            await asyncio.to_thread(first_answer_then_close, d, twice(req), status, what)
        await quiet_and_serving(d, "refused POSTs twice")


async def test_pipelined_sign_requests_signed_once():
    async with Daemon() as d:
        async with d.signer(policy="sign") as s:
            msg = b"pipelined " + os.urandom(8)
            req = http_request("POST", "/v1/sign", sign_body(s.pk, msg, 5000))
            body = await asyncio.to_thread(first_answer_then_close, d, twice(req), 200,
                                           "two sign requests")
            check(verify(s.pk, msg, unb64(body["signature"])), "signature verifies")
            await quiet_and_serving(d, "two sign requests")
            check_eq(len(s.requests), 1, "sign_request frames the signer received")
        check_eq(log_count(d, r"event=sign_outcome .*outcome=ok msg_len=%d " % len(msg)), 1,
                 "audit lines of the pipelined request")


async def test_pipelined_sign_request_waiting_for_a_silent_signer():
    async with Daemon() as d:
        async with d.signer(policy="silent") as s:
            req = http_request("POST", "/v1/sign", sign_body(s.pk, b"silent", 3000))
            answer = asyncio.ensure_future(asyncio.to_thread(
                first_answer_then_close, d, twice(req), 504, "sign request to a silent signer",
                timeout=10.0))
            await s.wait_request(0)
            # While the answer is due, lws has the second request's bytes: no spin meanwhile.
            pid = d.proc.pid
            cpu0, t0 = cpu_seconds(pid), time.monotonic()
            await asyncio.sleep(1.5)
            used = cpu_seconds(pid) - cpu0
            check(used <= IDLE_CPU_MAX * (time.monotonic() - t0) / IDLE_S,
                  "daemon used %.2f s of CPU while the request waited" % used)
            body = await answer
            check_eq(body["error"]["code"], "timeout", "error code")
            await s.expect_frame("cancel", reason="timeout")
            check_eq(len(s.requests), 1, "sign_request frames the signer received")
        await quiet_and_serving(d, "silent signer")


async def test_pipelined_sign_request_whose_requester_leaves():
    async with Daemon() as d:
        async with d.signer(policy="silent") as s:
            req = http_request("POST", "/v1/sign", sign_body(s.pk, b"leaving", 30000))
            with control(d) as c:
                c.send(twice(req) + b"POST /v1/sign HTTP/1.1\r\n")
                await s.wait_request(0)
                await asyncio.sleep(0.3)
            cancel = await s.expect_frame("cancel", reason="requester_cancelled")
            check_eq(cancel["request_id"], s.requests[0]["request_id"], "cancelled request")
            # An answer to the withdrawn request reaches no connection, and nothing breaks.
            await s.answer(s.requests[0], s.response(s.requests[0]))
            await s.expect_error("unknown_request")
            await s.no_frame(0.5)
            check_eq(len(s.requests), 1, "sign_request frames the signer received")
        await quiet_and_serving(d, "requester left")


async def test_post_followed_by_headers_only():
    async with Daemon() as d:
        async with d.signer(policy="sign") as s:
            msg = b"then headers"
            req = http_request("POST", "/v1/sign", sign_body(s.pk, msg, 5000))
            more = b"POST /v1/sign HTTP/1.1\r\nContent-Type: application/json\r\n" \
                   b"Content-Length: 40\r\n"
            body = await asyncio.to_thread(first_answer_then_close, d, req + more, 200,
                                           "sign request + headers of another")
            check(verify(s.pk, msg, unb64(body["signature"])), "signature verifies")
            check_eq(len(s.requests), 1, "sign_request frames the signer received")
        await asyncio.to_thread(first_answer_then_close, d,
                                http_request("POST", "/healthz", b"{}") + more, 405,
                                "POST /healthz + headers of another")
        await quiet_and_serving(d, "headers only")


async def test_pipelined_gets():
    async with Daemon() as d:
        get = http_request("GET", "/healthz")
        body = await asyncio.to_thread(first_answer_then_close, d, twice(get), 200, "two GETs")
        check_eq(body, {"status": "ok"}, "first GET's answer")
        body = await asyncio.to_thread(first_answer_then_close, d,
                                       get + b"GET /metr", 200, "a GET and part of another")
        await asyncio.to_thread(first_answer_then_close, d,
                                http_request("GET", "/nope") + get, 404, "GET /nope, then a GET")
        await quiet_and_serving(d, "two GETs")


async def test_sequential_requests_keep_the_connection():
    async with Daemon() as d:
        async with d.signer(policy="sign") as s:
            def exchange():
                with control(d) as c:
                    for i in range(3):
                        msg = b"keep-alive %d" % i
                        for req, status in (
                                (http_request("GET", "/healthz"), 200),
                                (http_request("POST", "/v1/sign", sign_body(s.pk, msg, 5000)),
                                 200),
                                (http_request("POST", "/v1/sign", b"{}"), 400),
                                (http_request("GET", "/metrics"), 200)):
                            c.send(req)
                            st, hdrs, body, parsed = c.response(scaled(5.0))
                            check_eq(st, status, "request %d on one connection (%r)"
                                     % (i, body[:200]))
                            check(hdrs.get("connection", "").lower() != "close",
                                  "connection: close on a sequential request")
                    check(not c.closed_within(0.5), "connection closed after sequential requests")
            await asyncio.to_thread(exchange)
            check_eq(len(s.requests), 3, "sign_request frames the signer received")
        check_eq(log_count(d, r"event=http_pipelined"), 0, "pipelining reported")


run_tests(globals())
