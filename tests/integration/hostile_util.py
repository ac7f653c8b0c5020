#!/usr/bin/python3
"""
Helpers for the hostile-input end-to-end tests (40-49), on top of the
harness (wssd_test): raw HTTP requests written by hand, WebSocket frames
packed with struct (masking included), TLS through Python's ssl or `openssl
s_client`.

The raw WebSocket client, the HTTP client and the metrics scraper are the
harness's own (harness/wsraw.py, harness/httpc.py, harness/metrics.py); they
are importable from here too. This module adds:
  CaseRunner                    runs named cases, counts them, collects every
                                failure of a group before failing the test
                                (WSSIGND_TEST_VERBOSE=1 lists passed cases too)
  refused_upgrade(), accepted_upgrade()
                                an upgrade that must get no 101 / must get
                                101 and the challenge
  roundtrip(d), aroundtrip(d)   a fresh honest signer: introduce + POST
                                /v1/sign + independent verification
  raw_roundtrip(d, **req)       the same over RawWS (custom upgrade headers,
                                TLS)
  apost(), asign()              POST /v1/sign over asyncio streams (many in
                                flight)
  connect_refused(), log_count(), rss_kb()
  s_client(), negotiated(), expect_handshake(), expect_refused(),
  expect_no_renegotiation(), tls_tail()
                                a TLS listener probed with `openssl s_client`
                                (the signer's and the control listener's policy)
"""

import atexit
import os
import re
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from wssd_test import (BINARY, CLOSE, CONT, INTRO_DOMAIN, PING, PONG, PROTOCOL,  # noqa: E402,F401
                       TEXT, WS_GUID, NoData, PeerClosed, RawHTTP, RawWS, TestFailure, ahttp, b64,
                       check, check_eq, close_payload, error_code, frame, http, http_exchange,
                       http_request, intro_frame, intro_proof, listening, mask_bytes, metric,
                       parse_frames, port_accepts, rss_kib, tls_client_context, unb64,
                       upgrade_request, verify, ws_accept)

# ---------------------------------------------------------------------------
# Cases

_totals = {"run": 0, "passed": 0}


def _print_totals():
    name = os.path.basename(sys.argv[0])
    print("%s: %d hostile cases run, %d passed" % (name, _totals["run"], _totals["passed"]),
          flush=True)


atexit.register(_print_totals)


class CaseRunner:
    """
    Runs named cases of one group. A failing case is recorded and the group
    goes on; finish() raises one TestFailure listing every failed case.

        cases = CaseRunner("T-W2")
        with cases("opcode 3"):
            ...
        cases.finish()
    """

    def __init__(self, group):
        self.group = group
        self.failures = []
        self._name = None

    def __call__(self, name):
        self._name = name
        return self

    def __enter__(self):
        _totals["run"] += 1
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            _totals["passed"] += 1
            if os.environ.get("WSSIGND_TEST_VERBOSE") == "1":
                print("  case ok: %s / %s" % (self.group, self._name), flush=True)
            return False
        if issubclass(exc_type, (KeyboardInterrupt, SystemExit)):
            return False
        self.failures.append("%s / %s: %s: %s" % (self.group, self._name, exc_type.__name__,
                                                  exc))
        print("  case FAILED: %s / %s: %s" % (self.group, self._name, exc), flush=True)
        return True

    def finish(self):
        if self.failures:
            raise TestFailure("%d case(s) failed:\n  %s"
                              % (len(self.failures), "\n  ".join(self.failures)))


def case_count():
    return dict(_totals)


# ---------------------------------------------------------------------------
# Round trips and small checks

async def aroundtrip(d, seed=None):
    """A fresh honest signer introduces itself and signs one message end to end."""
    await d.aroundtrip(seed=seed)


def roundtrip(d, seed=None):
    """aroundtrip() from synchronous code."""
    d.roundtrip(seed=seed)


async def apost(d, body, path="/v1/sign", token=None, timeout=70.0, headers=()):
    """One POST over asyncio streams. body: dict (JSON) or bytes. Returns
    (status, parsed JSON or None)."""
    return await ahttp("POST", d.control_port, path, body, token, timeout, headers=headers)


async def asign(d, public_key: bytes, message: bytes, timeout_ms=None, token=None):
    """POST /v1/sign; returns (status, body)."""
    status, body, _ = await d.sign(public_key, message, timeout_ms=timeout_ms, token=token)
    return status, body


def connect_refused(host, port, family=None, timeout=3.0) -> bool:
    """True if a TCP connect to host:port is refused (or fails)."""
    return not port_accepts(port, host, timeout)


def log_count(d, pattern) -> int:
    return d.log_count(pattern)


rss_kb = rss_kib


REFUSED = (None, 400, 403, 404, 426)


def refused_upgrade(port, statuses=REFUSED, timeout=5.0, tls=None, source=None, **req):
    """
    Sends an upgrade request that must be refused: no 101, a status in
    `statuses` (None = the connection was closed without an answer), and
    no WebSocket frame afterwards. Returns the status.
    """
    with RawWS(port, tls=tls, source=source) as w:
        st = w.handshake(timeout=timeout, **req)
        if st == 101:
            first = w.read_some(0.3)[:80]
            raise TestFailure("upgrade accepted with 101 (then %r)" % first)
        if st not in statuses:
            raise TestFailure("expected one of %r, got HTTP %r" % (statuses, st))
        if st is not None:
            body = w.read_body(w.resp_headers, 2.0)
            check(not body.startswith(b"\x81"), "WebSocket frame after a refusal: %r"
                  % body[:40])
        return st


def accepted_upgrade(port, tls=None, **req):
    """The upgrade must get 101 and the challenge; returns the response headers."""
    with RawWS(port, tls=tls) as w:
        w.open(**req)
        return w.resp_headers


def raw_roundtrip(d, tls=None, source=None, timeout=10.0, **req):
    """
    An honest round trip over RawWS (so the upgrade request can carry e.g.
    an Origin): introduce, POST /v1/sign from a thread, answer the
    sign_request, expect 200 with a signature that verifies.
    """
    with RawWS(d.port, tls=tls, source=source) as w:
        w.open(**req)
        sk = w.introduce()
        msg = b"raw round trip " + os.urandom(8)
        out = {}

        def post():
            out["r"] = http("POST", d.control_port, "/v1/sign",
                            {"public_key": b64(w.pk), "message": b64(msg),
                             "timeout_ms": int(timeout * 1000)}, timeout=timeout + 5)
        t = threading.Thread(target=post, daemon=True)
        t.start()
        f = w.next_message(timeout, answer_pings=True)
        check_eq(f.get("type"), "sign_request", "frame after POST /v1/sign (%r)" % (f,))
        check_eq(unb64(f["message"]), msg, "sign_request.message")
        w.send_json({"type": "sign_response", "request_id": f["request_id"],
                     "message": f["message"], "signature": b64(sk.sign(msg).signature)})
        t.join(timeout + 6)
        status, body = out.get("r", (None, None))
        check_eq(status, 200, "raw round trip (body %r)" % (body,))
        check(verify(w.pk, msg, unb64(body["signature"])), "raw round trip signature verifies")
        w.try_send(frame(CLOSE, close_payload(1000)))


# ---------------------------------------------------------------------------
# TLS probes with openssl s_client

def s_client(port, *args, stdin=b"", timeout=15):
    """Runs openssl s_client against 127.0.0.1:port; returns (rc, output)."""
    argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
            "-servername", "localhost"] + list(args)
    p = subprocess.run(argv, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def negotiated(out):
    """(protocol, cipher) of a completed handshake, or None."""
    m = re.search(r"New, (\S+), Cipher is (\S+)", out)
    if not m or m.group(2) == "(NONE)":
        return None
    return m.group(1), m.group(2)


def tls_tail(out, n=4):
    """The lines of s_client output that tell why, for failure messages."""
    lines = [l for l in out.splitlines() if "error" in l.lower() or "alert" in l.lower()]
    return " | ".join((lines or out.splitlines())[-n:])


def expect_handshake(port, *args):
    """s_client with args must complete a handshake; returns ((protocol, cipher), output)."""
    rc, out = s_client(port, *args)
    got = negotiated(out)
    check(got is not None, "handshake failed (rc %d): %s" % (rc, tls_tail(out)))
    return got, out


def expect_refused(port, *args):
    """s_client with args (which the client can offer) must not complete a handshake."""
    rc, out = s_client(port, *args)
    got = negotiated(out)
    check(got is None, "handshake completed: %r" % (got,))
    check("no cipher match" not in out and "Option unknown" not in out,
          "the client could not offer this: %s" % tls_tail(out))
    check(rc != 0, "s_client exit status 0 without a handshake")
    return out


def expect_no_renegotiation(port):
    """A TLS 1.2 client asks to renegotiate ("R"): the server must refuse (no_renegotiation)."""
    p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-tls1_2"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(1.0)
        p.stdin.write(b"R\n")
        p.stdin.flush()
        time.sleep(1.5)
        try:
            p.stdin.close()
        except BrokenPipeError:
            pass
        out = p.stdout.read().decode("utf-8", "replace")
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    check("RENEGOTIATING" in out, "s_client did not try to renegotiate: %s" % tls_tail(out))
    check("no renegotiation" in out, "renegotiation not refused: %s" % tls_tail(out))
