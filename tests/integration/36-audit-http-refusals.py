#!/usr/bin/python3
"""
Every POST /v1/sign gets exactly one `event=sign_outcome` audit line, those
the HTTP API refuses before asking the service included: 400 (bad JSON, an
unknown field, a reserved prefix, timeout_ms above the maximum), 401, 413
(message or body too large), 415 and 429. Each has request_id=- and its
error code as outcome, and moves wssignd_sign_requests_total{outcome} by
one. Other refused requests (GET /metrics without a token) are not sign
requests and write none.
"""

import base64
import json
import os
import re
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile_util import RawHTTP, http_request, metric  # noqa: E402
from wssd_test import Daemon, b64, check, check_eq, run_tests, write_lines  # noqa: E402

TOKEN = "audit-refusals-token-0123456789"
BURST = 2
AUDIT_RE = re.compile(r"^ts=\S+ level=notice event=sign_outcome request_id=(\S+) key=(\S+) "
                      r"outcome=(\S+) msg_len=\S+ msg_sha256=\S+ label_len=\d+ "
                      r"label_sha256=\S+ latency_ms=\S+ "
                      r"requester=(.*)$", re.M)


def config():
    path = write_lines("tokens", [TOKEN])
    return {"requests": {"max_message_bytes": 1024},
            "controllers": {"http_api": {"token_file": path, "max_body_bytes": 2048,
                                         "auth_failures_burst": BURST}}}


def post(d, body, token=TOKEN, ctype="application/json", source=None, headers=()):
    hdrs = list(headers) + ([("Authorization", "Bearer " + token)] if token else [])
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    with RawHTTP(d.control_port, source=source) as c:
        c.send(http_request("POST", "/v1/sign", data, headers=hdrs, content_type=ctype))
        st, _, _, parsed = c.response(5.0)
        return st, (parsed or {}).get("error", {}).get("code")


def audits(d):
    return AUDIT_RE.findall(d.log_text())


def test_each_refusal_audited_and_counted_once():
    pk = b64(os.urandom(32))
    good = {"public_key": pk, "message": b64(b"hello")}
    with Daemon(config()) as d:
        cases = [
            ("bad JSON", lambda: post(d, b"{not json"), 400, "bad_request"),
            ("unknown field", lambda: post(d, dict(good, extra=1)), 400, "bad_request"),
            ("reserved prefix",
             lambda: post(d, dict(good, message=b64(b"wssign-introduction-v1\nx"))), 400,
             "bad_request"),
            ("timeout_ms above the maximum", lambda: post(d, dict(good, timeout_ms=60001)), 400,
             "bad_request"),
            ("message over max_message_bytes",
             lambda: post(d, dict(good, message=b64(b"m" * 1025))), 413, "payload_too_large"),
            ("declared body over max_body_bytes",
             lambda: post(d, b"{" + b" " * 2100 + b"}"), 413, "payload_too_large"),
            ("body over max_body_bytes, no length declared",
             lambda: post_chunked(d), 413, "payload_too_large"),
            ("not JSON", lambda: post(d, good, ctype="text/plain"), 415,
             "unsupported_media_type"),
            # from other addresses: failures here must not throttle the scrapes from 127.0.0.1
            ("no token", lambda: post(d, good, token=None, source="127.0.0.3"), 401,
             "unauthorized"),
            ("wrong token", lambda: post(d, good, token="x" * 30, source="127.0.0.4"), 401,
             "unauthorized"),
        ]
        for what, send, status, code in cases:
            before = len(audits(d))
            counted = metric(d, "wssignd_sign_requests_total", token=TOKEN, outcome=code)
            check_eq(send(), (status, code), "%s: answer" % what)
            lines = audits(d)[before:]
            check_eq(len(lines), 1, "%s: audit lines (%r)" % (what, lines))
            rid, key, outcome, requester = lines[0]
            check_eq((rid, key, outcome), ("-", "-", code), "%s: audit line" % what)
            # a valid (bare) token is named after its line; a refused one is no one's
            check(re.fullmatch(r'"http_api (token-1 )?127\.0\.0\.[134]"', requester),
                  "%s: requester %r" % (what, requester))
            check_eq(metric(d, "wssignd_sign_requests_total", token=TOKEN, outcome=code),
                     counted + 1, "%s: wssignd_sign_requests_total{outcome=%s}" % (what, code))

        # 429: a client that used up its failures (from another address, so that the
        # scrapes above and below are not throttled)
        for _ in range(BURST):
            check_eq(post(d, good, token="x" * 30, source="127.0.0.2"), (401, "unauthorized"),
                     "failure from 127.0.0.2")
        before = len(audits(d))
        check_eq(post(d, good, source="127.0.0.2"), (429, "too_many_requests"),
                 "throttled client's sign request")
        lines = audits(d)[before:]
        check_eq([l[:3] for l in lines], [("-", "-", "too_many_requests")], "429 audit line")
        check_eq(metric(d, "wssignd_sign_requests_total", token=TOKEN,
                        outcome="too_many_requests"), 1, "429 counted")

        # requests that are not sign requests write no audit line
        before = len(audits(d))
        with RawHTTP(d.control_port) as c:
            c.send(http_request("GET", "/metrics"))
            check_eq(c.response(5.0)[0], 401, "GET /metrics without a token")
        with RawHTTP(d.control_port) as c:
            c.send(http_request("GET", "/v1/sign", headers=[("Authorization",
                                                             "Bearer " + TOKEN)]))
            check_eq(c.response(5.0)[0], 405, "GET /v1/sign")
        check_eq(audits(d)[before:], [], "audit lines for requests that are not sign requests")
        text = d.log_text()
        check(base64.b64encode(b"m" * 1025).decode()[:40] not in text, "message in the log")


def post_chunked(d):
    """POST /v1/sign whose chunked body runs past max_body_bytes."""
    hdrs = [("Authorization", "Bearer " + TOKEN), ("Transfer-Encoding", "chunked"),
            ("Content-Type", "application/json")]
    req = http_request("POST", "/v1/sign", headers=hdrs)
    req += (b"400\r\n" + b" " * 1024 + b"\r\n") * 3 + b"0\r\n\r\n"
    with RawHTTP(d.control_port) as c:
        c.send(req)
        st, _, _, parsed = c.response(5.0)
        return st, (parsed or {}).get("error", {}).get("code")


run_tests(globals())
