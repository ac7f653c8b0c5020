#!/usr/bin/python3
"""
The HTTP control API under hostile requests, written byte by byte
(SECURITY-NOTES T-C2, T-C3, T-H4; docs/PROTOCOL.md §7):

  T-C2  bearer tokens: missing, wrong (same length, other lengths, prefix,
        suffix), scheme and spacing variants -> 401 with a body identical
        for every kind of bad token; /healthz needs none; after
        controllers.http_api.auth_failures_burst failures from one client
        every request of that client needing a token gets 429 (right token
        included) until its bucket refills at 1/s. Token files that are group/world-readable, hold a
        token under 16 characters, or hold none stop the daemon.
  T-C3  wrong method 405, unknown path 404 not_found, Content-Type other
        than application/json 415 (absent is fine), body over
        max_body_bytes 413 (answered at once, connection closed), bad JSON
        / duplicate keys / unknown fields / bad fields 400, message over
        requests.max_message_bytes 413, unknown key 404 not_connected.
  T-H4  Content-Length 4294967295 with a junk body on 14 sockets: 413 at
        once, and the daemon's memory stays within 20 MB.
  A WebSocket or h2c upgrade request gets 400 and a close, not an empty
  reply.

After each group a fresh honest signer completes a sign round trip.
"""

import asyncio
import json
import os
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hostile_util import (CaseRunner, RawHTTP, asign, error_code, http_request, log_count,
                          roundtrip, rss_kb, upgrade_request)
from wssd_test import (BIN, Daemon, b64, b64url, check, check_eq, current_tmpdir, free_port,
                       run_tests, write_json, write_lines)

TOKEN = "hostile-suite-token-0123456789abcdef"
OTHER = "x" * len(TOKEN)


def token_file(lines, mode=0o600, name="tokens"):
    return write_lines(name, lines, mode)


def exchange(d, data, timeout=5.0, see_close=False):
    """(status, headers, body bytes, JSON, closed-after); closed-after is only
    looked at (for up to 2 s) with see_close."""
    with RawHTTP(d.control_port) as c:
        c.send(data)
        status, hdrs, body, parsed = c.response(timeout)
        closed = None
        if see_close:
            closed = True if status is None else c.closed_within(2.0)
        return status, hdrs, body, parsed, closed


def expect_status(d, data, status, code, closed=None):
    st, hdrs, body, parsed, was_closed = exchange(d, data, see_close=closed is not None)
    check_eq((st, error_code(parsed)), (status, code), "answer (body %r)" % body[:200])
    check(isinstance(parsed["error"].get("message"), str), "no error.message: %r" % body)
    if closed is not None:
        check_eq(was_closed, closed, "connection closed after the answer")
    return body


def auth(value):
    return [("Authorization", value)] if value is not None else []


def test_tokens():
    cases = CaseRunner("T-C2 tokens")
    cfg = {"controllers": {"http_api": {"token_file": token_file(["# comment", "", TOKEN])}}}
    with Daemon(cfg) as d:
        bad = [
            ("no Authorization header", None),
            ("wrong token of the same length", "Bearer " + OTHER),
            ("wrong shorter token", "Bearer " + OTHER[:16]),
            ("wrong longer token", "Bearer " + OTHER * 3),
            ("prefix of the right token", "Bearer " + TOKEN[:-1]),
            ("right token plus a character", "Bearer " + TOKEN + "x"),
            ("right token in another letter case", "Bearer " + TOKEN.upper()),
            ("scheme 'bearer' with a wrong token", "bearer " + OTHER),
            ("two spaces and a wrong token", "Bearer  " + OTHER),
            ("scheme only", "Bearer"),
            ("empty header", ""),
            ("Basic scheme", "Basic " + b64(b"user:" + TOKEN.encode())),
            ("the token without a scheme", TOKEN),
        ]
        bodies = set()
        for name, value in bad:
            with cases("%s -> 401" % name):
                body = expect_status(d, http_request("GET", "/metrics", headers=auth(value)),
                                     401, "unauthorized")
                bodies.add(body)
        with cases("every 401 body is identical"):
            check_eq(len(bodies), 1, "distinct 401 bodies: %r" % bodies)
        with cases("POST /v1/sign without a token -> 401, body not read, connection closed"):
            expect_status(d, http_request("POST", "/v1/sign", {"public_key": b64(bytes(32)),
                                                               "message": "aGk="}),
                          401, "unauthorized", closed=True)
        with cases("failures logged as event=auth_failed, at most one line a second"):
            n = log_count(d, r"event=auth_failed remote=127\.0\.0\.1 suppressed=\d+")
            check(1 <= n <= 3, "%d auth_failed lines for %d failures" % (n, len(bad)))
        with cases("right token -> 200"):
            st, _, _, _, _ = exchange(d, http_request("GET", "/metrics",
                                                      headers=auth("Bearer " + TOKEN)))
            check_eq(st, 200, "GET /metrics with the token")
        with cases("/healthz needs no token"):
            st, _, body, _, _ = exchange(d, http_request("GET", "/healthz"))
            check_eq((st, json.loads(body)), (200, {"status": "ok"}), "healthz")

    cfg = {"controllers": {"http_api": {"token_file": token_file([TOKEN], name="t2"),
                                        "auth_failures_burst": 5}}}
    with Daemon(cfg) as d:
        with cases("5 failures (the burst) -> 401 each"):
            for _ in range(5):
                expect_status(d, http_request("GET", "/metrics", headers=auth("Bearer " + OTHER)),
                              401, "unauthorized")
        with cases("then a wrong token -> 429"):
            expect_status(d, http_request("GET", "/metrics", headers=auth("Bearer " + OTHER)),
                          429, "too_many_requests")
        with cases("then the right token -> 429 too"):
            expect_status(d, http_request("GET", "/metrics", headers=auth("Bearer " + TOKEN)),
                          429, "too_many_requests")
        with cases("then POST /v1/sign with the right token -> 429"):
            expect_status(d, http_request("POST", "/v1/sign",
                                          {"public_key": b64(bytes(32)), "message": "aGk="},
                                          headers=auth("Bearer " + TOKEN)),
                          429, "too_many_requests")
        with cases("/healthz still 200 while throttled"):
            st, _, _, _, _ = exchange(d, http_request("GET", "/healthz"))
            check_eq(st, 200, "healthz")
        with cases("after 1.5 s the right token works again"):
            time.sleep(1.5)
            st, _, _, _, _ = exchange(d, http_request("GET", "/metrics",
                                                      headers=auth("Bearer " + TOKEN)))
            check_eq(st, 200, "GET /metrics after the refill")
        with cases("round trip with the token"):
            async def rt():
                async with d.signer() as s:
                    st, body = await asign(d, s.pk, b"with token", 10000, token=TOKEN)
                    check_eq(st, 200, "sign (%r)" % (body,))
            asyncio.run(rt())
    cases.finish()


def start_refused(cfg):
    path = write_json(os.path.join(current_tmpdir(), "refused.json"), cfg)
    p = subprocess.run([BIN, "-c", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       stdin=subprocess.DEVNULL, timeout=10)
    out = p.stdout.decode("utf-8", "replace")
    check_eq(p.returncode, 1, "exit status (output %r)" % out)
    errs = [l for l in out.splitlines() if " level=err " in l]
    check_eq(len(errs), 1, "level=err lines in %r" % out)


def test_token_file_refusals():
    cases = CaseRunner("T-C2 token file at start-up")
    base = {"listen": "127.0.0.1:%d" % free_port(),
            "control": {"listen": "127.0.0.1:%d" % free_port()}}
    for name, path in (
            ("token file mode 0644", token_file([TOKEN], 0o644, "t644")),
            ("token file mode 0640", token_file([TOKEN], 0o640, "t640")),
            ("token of 15 characters", token_file(["a" * 15], 0o600, "tshort")),
            ("only comments, no token", token_file(["# nothing", ""], 0o600, "tnone")),
            ("missing token file", os.path.join(current_tmpdir(), "absent-tokens"))):
        with cases("%s -> exit 1, one level=err line" % name):
            cfg = dict(base, controllers={"http_api": {"token_file": path}})
            start_refused(cfg)
    cases.finish()


def sign_req(body, ctype="application/json", headers=()):
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    return http_request("POST", "/v1/sign", data, content_type=ctype, headers=list(headers))


def test_malformed_requests():
    cases = CaseRunner("T-C3 malformed requests")
    pk = b64(os.urandom(32))
    good = {"public_key": pk, "message": b64(b"hello")}
    with Daemon({"requests": {"max_message_bytes": 1024}}) as d:
        for method, path in (("GET", "/v1/sign"), ("PUT", "/v1/sign"), ("DELETE", "/v1/sign"),
                             ("PATCH", "/v1/sign"), ("OPTIONS", "/v1/sign"),
                             ("POST", "/healthz"), ("POST", "/metrics"),
                             ("PUT", "/v1/keys/" + b64url(os.urandom(32))),
                             ("POST", "/v1/keys")):
            with cases("%s %s -> 405" % (method, path)):
                expect_status(d, http_request(method, path), 405, "method_not_allowed")
        for path in ("/", "/nope", "/v1", "/v1/sign/extra", "/v2/sign", "/v1/ws"):
            with cases("GET %s -> 404 not_found" % path):
                expect_status(d, http_request("GET", path), 404, "not_found")
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/jsonx",
                      "multipart/form-data; boundary=x"):
            with cases("Content-Type %s -> 415, closed" % ctype):
                expect_status(d, sign_req(good, ctype), 415, "unsupported_media_type",
                              closed=True)
        for name, ctype in (("absent", None), ("with a charset", "application/json; charset=utf-8"),
                            ("in upper case", "APPLICATION/JSON")):
            with cases("Content-Type %s accepted (unknown key -> 404 not_connected)" % name):
                expect_status(d, sign_req(good, ctype), 404, "not_connected")
        bad = [
            ("not JSON", b"this is not json"),
            ("truncated JSON", b'{"public_key":'),
            ("duplicate keys", ('{"public_key":"%s","message":"aGk=","message":"aGk="}'
                                % pk).encode()),
            ("top-level array", [good]),
            ("unknown field", dict(good, extra=1)),
            ("public_key missing", {"message": b64(b"x")}),
            ("message missing", {"public_key": pk}),
            ("public_key of 31 bytes", dict(good, public_key=b64(os.urandom(31)))),
            ("public_key not base64", dict(good, public_key="!" * 44)),
            ("public_key in base64url",
             dict(good, public_key=b64url(bytes([0xfb, 0xff, 0xbf] * 10 + [0xfb, 0xff]),
                                          padding=True))),
            ("message empty", dict(good, message="")),
            ("message not base64", dict(good, message="***")),
            ("message without padding", dict(good, message="aGVsbG8")),
            ("message a number", dict(good, message=5)),
            ("timeout_ms 0", dict(good, timeout_ms=0)),
            ("timeout_ms 60001", dict(good, timeout_ms=60001)),
            ("timeout_ms a string", dict(good, timeout_ms="1000")),
            ("timeout_ms 1.5", dict(good, timeout_ms=1.5)),
            ("timeout_ms negative", dict(good, timeout_ms=-1)),
            ("\\u0000 in a string", ('{"public_key":"%s","message":"aGk=\\u0000"}'
                                     % pk).encode()),
            ("1e999", ('{"public_key":"%s","message":"aGk=","timeout_ms":1e999}' % pk).encode()),
        ]
        for name, body in bad:
            with cases("%s -> 400" % name):
                expect_status(d, sign_req(body), 400, "bad_request")
        with cases("message over requests.max_message_bytes -> 413"):
            expect_status(d, sign_req(dict(good, message=b64(b"m" * 1025))), 413,
                          "payload_too_large")
        with cases("message of exactly max_message_bytes accepted (404 not_connected)"):
            expect_status(d, sign_req(dict(good, message=b64(b"m" * 1024))), 404,
                          "not_connected")
        with cases("GET /v1/keys/<not base64url> -> 400"):
            expect_status(d, http_request("GET", "/v1/keys/***"), 400, "bad_request")
        with cases("GET /v1/keys/<31 bytes> -> 400"):
            expect_status(d, http_request("GET", "/v1/keys/" + b64url(os.urandom(31))), 400,
                          "bad_request")
        with cases("GET /v1/keys/<300-character key> -> 400"):
            expect_status(d, http_request("GET", "/v1/keys/" + "A" * 300), 400, "bad_request")
        with cases("GET /v1/keys/<unknown key> -> 404 not_connected"):
            expect_status(d, http_request("GET", "/v1/keys/" + b64url(os.urandom(32))), 404,
                          "not_connected")
        with cases("round trip"):
            roundtrip(d)
    cases.finish()


def test_body_limits():
    cases = CaseRunner("T-C3/T-H4 body limits")
    with Daemon({"controllers": {"http_api": {"max_body_bytes": 2048}}}) as d:
        with cases("body of max_body_bytes + 1 -> 413, closed"):
            body = b'{"public_key":"' + b"A" * 2015 + b'","message":"aGk="}'
            check_eq(len(body), 2049, "body size")
            expect_status(d, sign_req(body), 413, "payload_too_large", closed=True)
        with cases("Content-Length of max_body_bytes + 1, no body sent -> 413 at once"):
            req = http_request("POST", "/v1/sign",
                               headers=[("Content-Type", "application/json"),
                                        ("Content-Length", "2049")])
            t0 = time.monotonic()
            expect_status(d, req, 413, "payload_too_large", closed=True)
            check(time.monotonic() - t0 < 3.0, "413 took %.1f s" % (time.monotonic() - t0))
        with cases("chunked body over max_body_bytes -> 413, closed"):
            req = http_request("POST", "/v1/sign",
                               headers=[("Content-Type", "application/json"),
                                        ("Transfer-Encoding", "chunked")])
            req += (b"400\r\n" + b" " * 1024 + b"\r\n") * 3 + b"0\r\n\r\n"
            expect_status(d, req, 413, "payload_too_large", closed=True)
        with cases("round trip"):
            roundtrip(d)

    with Daemon() as d:
        roundtrip(d)
        rss0 = rss_kb(d.proc.pid)
        conns = []
        with cases("T-H4 14 sockets: Content-Length 4294967295 + junk -> 413 at once"):
            req = http_request("POST", "/v1/sign",
                               headers=[("Content-Type", "application/json"),
                                        ("Content-Length", "4294967295")])
            for _ in range(14):
                c = RawHTTP(d.control_port)
                conns.append(c)
                c.send(req)
            junk = os.urandom(1 << 20)
            for c in conns:
                for _ in range(8):         # up to 8 MiB each, until the daemon closes
                    if not c.try_send(junk):
                        break
            for c in conns:
                st, _, body, parsed = c.response(5.0)
                check_eq((st, error_code(parsed)), (413, "payload_too_large"), "answer")
        with cases("T-H4 daemon RSS grew by at most 20 MB while the sockets were held"):
            grow = rss_kb(d.proc.pid) - rss0
            check(grow <= 20 * 1024, "RSS grew by %d KiB" % grow)
        with cases("T-H4 the sockets were closed by the daemon"):
            for c in conns:
                check(c.closed_within(5.0), "a socket is still open")
        for c in conns:
            c.close()
        with cases("round trip"):
            roundtrip(d)
    cases.finish()


def test_upgrade_requests_answered():
    cases = CaseRunner("control listener upgrades")
    with Daemon() as d:
        for name, req in (
                ("WebSocket upgrade to /v1/ws", upgrade_request("/v1/ws")),
                ("WebSocket upgrade to /healthz", upgrade_request("/healthz")),
                ("h2c upgrade", upgrade_request("/healthz", upgrade="h2c",
                                                connection="Upgrade, HTTP2-Settings",
                                                extra=[("HTTP2-Settings", "AAMAAABkAAQAAP__")]))):
            with cases("%s -> 400, closed (never an empty reply)" % name):
                st, _, body, _, closed = exchange(d, req, see_close=True)
                check_eq(st, 400, "status (body %r)" % body[:200])
                check(closed, "connection closed after the answer")
        with cases("round trip"):
            roundtrip(d)
    cases.finish()


run_tests(globals())
