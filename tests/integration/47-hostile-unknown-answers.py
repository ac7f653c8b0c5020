#!/usr/bin/python3
"""
Answers to requests that were never sent to a connection (made-up or other
connections' request ids) are protocol errors: each is refused with
unknown_request and counted, the connection is closed with 1008 after
limits.max_protocol_errors of them, and the daemon logs them at most once a
second with a count of the lines it held back. An honest signer that answers
a request after its deadline (the cancel crossed its answer) is forgiven:
that late answer is refused but never closes the connection.
"""

import asyncio
import os
import re
import sys
import uuid

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hostile_util import RawWS, asign, metric
from wssd_test import Daemon, b64, check, check_eq, run_tests, unb64


def made_up_answers(w, n):
    """Sends n answers to ids never issued and reads the n refusals."""
    for _ in range(n):
        w.send_json({"type": "sign_reject", "request_id": str(uuid.uuid4()), "reason": "x"})
    for _ in range(n):
        w.expect_error("unknown_request")


def introduced(d):
    w = RawWS(d.port)
    w.open()
    w.introduce()
    return w


def test_made_up_answers_close_the_connection():
    with Daemon({"limits": {"max_protocol_errors": 3}}) as d:
        before = metric(d, "wssignd_protocol_errors_total", code="unknown_request")
        with introduced(d) as w:
            made_up_answers(w, 4)
            w.expect_close(1008)
        check_eq(metric(d, "wssignd_protocol_errors_total", code="unknown_request") - before, 4,
                 "unknown_request errors counted")


def test_log_lines_are_rate_limited():
    """2,000 made-up answers over 20 connections: a handful of log lines, with
    the suppressed count, instead of one line each."""
    with Daemon({"limits": {"max_protocol_errors": 1000}}) as d:
        for _ in range(20):
            with introduced(d) as w:
                made_up_answers(w, 100)
        lines = [l for l in d.log_text().splitlines() if "event=unknown_answer" in l]
        check(1 <= len(lines) <= 10, "unknown_answer lines: %d" % len(lines))
        check(all(re.search(r"suppressed=\d+", l) for l in lines), "suppressed= on each line")
        total = len(lines) + sum(int(re.search(r"suppressed=(\d+)", l).group(1)) for l in lines)
        check(total <= 2000, "lines plus suppressed %d" % total)


async def late_answers(d, w, n):
    for i in range(n):
        task = asyncio.ensure_future(asign(d, w.pk, b"late %d" % i, timeout_ms=100))
        req = await asyncio.to_thread(w.next_message, 5.0)
        check_eq(req.get("type"), "sign_request", "request %d" % i)
        status, body = await task
        check_eq(status, 504, "request %d times out" % i)
        cancel = await asyncio.to_thread(w.next_message, 5.0)
        check_eq((cancel.get("type"), cancel.get("request_id")), ("cancel", req["request_id"]),
                 "cancel for request %d" % i)
        sig = w.sk.sign(unb64(req["message"])).signature
        w.send_json({"type": "sign_response", "request_id": req["request_id"],
                     "message": req["message"], "signature": b64(sig)})
        await asyncio.to_thread(w.expect_error, "unknown_request")


def test_late_honest_answers_are_forgiven():
    with Daemon({"limits": {"max_protocol_errors": 3}}) as d:
        with introduced(d) as w:
            asyncio.run(late_answers(d, w, 6))
            check(w.is_open(), "connection still open after 6 late answers")
            # but an answer beyond what was owed is a protocol error again
            made_up_answers(w, 4)
            w.expect_close(1008)


run_tests(globals())
