#!/usr/bin/python3
"""
Audit log: exactly one `level=notice event=sign_outcome` line per sign
request, with request_id, key (16 hex), outcome, msg_len, msg_sha256 (of the
message), latency_ms and requester; requests refused before being queued
(not_connected, overloaded) carry request_id=-. The message bytes, their base64 and
their hex never appear in the log.
"""

import asyncio
import base64
import hashlib
import os
import re
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import Daemon, TestFailure, check, check_eq, check_error_body, is_uuid, run_tests

# A line starts with its time (outside the journal); failures on the signer's side are
# warnings, every other outcome a notice.
AUDIT_RE = re.compile(
    r"^ts=\S+ level=(?P<level>notice|warn) event=sign_outcome request_id=(?P<request_id>\S+) "
    r"key=(?P<key>\S+) "
    r"outcome=(?P<outcome>\S+) msg_len=(?P<msg_len>\S+) msg_sha256=(?P<msg_sha256>\S+) "
    r"label_len=(?P<label_len>\d+) label_sha256=(?P<label_sha256>\S+) "
    r"latency_ms=(?P<latency_ms>\S+) requester=(?P<requester>\S.*)$")


def canary(tag):
    # printable, so that it would show up verbatim in any log line quoting it
    return ("AUDIT-CANARY-%s-%s" % (tag, os.urandom(12).hex())).encode()


def audit_lines(d):
    out = []
    for line in d.log_lines():
        if "event=sign_outcome" in line:
            m = AUDIT_RE.match(line)
            if m is None:
                raise TestFailure("audit line not in the expected form: %r" % line)
            fields = m.groupdict()
            want = "warn" if fields["outcome"] in WARNED else "notice"
            check_eq(fields["level"], want, "level of the %s audit line" % fields["outcome"])
            out.append(fields)
    return out


WARNED = ("timeout", "invalid_signature", "connection_closed")


def forms(message):
    """Ways the message could leak into a log line."""
    yield message.decode("latin-1")
    yield base64.b64encode(message).decode()
    yield base64.urlsafe_b64encode(message).decode().rstrip("=")
    yield message.hex()
    # base64 of the message starting at each offset mod 3 still leaks 3-byte groups
    for k in (1, 2):
        yield base64.b64encode(message[k:]).decode()[4:-4]


async def test_one_line_per_outcome():
    async with Daemon() as d:
        msgs = {}
        ids = {}
        async with d.signer(policy="sign") as ok_s, d.signer(policy="reject") as rej_s, \
                d.signer(policy="bad_signature") as badsig_s, \
                d.signer(policy="silent") as silent_s:
            msgs["ok"] = canary("ok")
            status, body, _ = await d.sign(ok_s.pk, msgs["ok"], timeout_ms=10000)
            check_eq(status, 200, "ok request (body %r)" % (body,))
            ids["ok"] = (body["request_id"], ok_s.pk)

            msgs["rejected"] = canary("rejected")
            status, body, _ = await d.sign(rej_s.pk, msgs["rejected"], timeout_ms=10000)
            check_error_body(status, body, 422, "rejected", "rejected request")
            ids["rejected"] = (rej_s.requests[-1]["request_id"], rej_s.pk)

            msgs["invalid_signature"] = canary("badsig")
            status, body, _ = await d.sign(badsig_s.pk, msgs["invalid_signature"],
                                           timeout_ms=10000)
            check_error_body(status, body, 502, "invalid_signature", "bad-signature request")
            ids["invalid_signature"] = (badsig_s.requests[-1]["request_id"], badsig_s.pk)

            msgs["timeout"] = canary("timeout")
            status, body, _ = await d.sign(silent_s.pk, msgs["timeout"], timeout_ms=300)
            check_error_body(status, body, 504, "timeout", "timed-out request")
            ids["timeout"] = (silent_s.requests[-1]["request_id"], silent_s.pk)

            msgs["connection_closed"] = canary("closed")
            task = asyncio.ensure_future(d.sign(silent_s.pk, msgs["connection_closed"],
                                                timeout_ms=10000))
            await silent_s.wait_request(1)
            ids["connection_closed"] = (silent_s.requests[1]["request_id"], silent_s.pk)
            await silent_s.close()
            status, body, _ = await task
            check_error_body(status, body, 502, "connection_closed", "request whose signer left")

        msgs["not_connected"] = canary("absent")
        absent = os.urandom(32)
        status, body, _ = await d.sign(absent, msgs["not_connected"], timeout_ms=10000)
        check_error_body(status, body, 404, "not_connected", "request to an absent key")
        ids["not_connected"] = ("-", absent)
        await asyncio.sleep(0.3)
        await d.astop()

        lines = audit_lines(d)
        check_eq(len(lines), len(msgs), "audit lines for %d requests (%r)" % (len(msgs), lines))
        by_outcome = {}
        for l in lines:
            check(l["outcome"] not in by_outcome, "two audit lines with outcome %s" % l["outcome"])
            by_outcome[l["outcome"]] = l
        check_eq(sorted(by_outcome), sorted(msgs), "outcomes in the audit lines")
        for outcome, message in msgs.items():
            l = by_outcome[outcome]
            rid, pk = ids[outcome]
            check_eq(l["request_id"], rid, "%s: request_id" % outcome)
            if rid != "-":
                check(is_uuid(l["request_id"]), "%s: request_id is not a UUID" % outcome)
            check_eq(l["key"], pk.hex()[:16], "%s: key" % outcome)
            check_eq(l["msg_len"], str(len(message)), "%s: msg_len" % outcome)
            check_eq(l["msg_sha256"], hashlib.sha256(message).hexdigest(),
                     "%s: msg_sha256" % outcome)
            check(re.fullmatch(r"[0-9]+", l["latency_ms"]) is not None,
                  "%s: latency_ms %r" % (outcome, l["latency_ms"]))
            check(l["requester"].strip() != "", "%s: empty requester" % outcome)
        check(int(by_outcome["timeout"]["latency_ms"]) >= 250,
              "timeout latency_ms %s for a 300 ms timeout" % by_outcome["timeout"]["latency_ms"])

        text = d.log_text()
        for outcome, message in msgs.items():
            for form in forms(message):
                check(form not in text, "%s: the message appears in the log as %r"
                      % (outcome, form[:40]))
            check("CANARY" not in text, "the message text appears in the log")


async def test_refused_requests_one_line_each():
    async with Daemon({"requests": {"max_pending_per_key": 1}}) as d:
        msgs = []
        for i in range(3):
            msgs.append(canary("absent%d" % i))
            status, body, _ = await d.sign(os.urandom(32), msgs[-1], timeout_ms=1000)
            check_error_body(status, body, 404, "not_connected", "absent key %d" % i)
        async with d.signer(policy="silent") as s:
            held = asyncio.ensure_future(d.sign(s.pk, b"held", timeout_ms=1000))
            await s.wait_request(0)
            msgs.append(canary("overloaded"))
            status, body, _ = await d.sign(s.pk, msgs[-1], timeout_ms=1000)
            check_error_body(status, body, 503, "overloaded", "request for a full key")
            await held
        await asyncio.sleep(0.2)
        lines = [l for l in audit_lines(d) if l["msg_len"] != str(len(b"held"))]
        check_eq(len(lines), 4, "audit lines for 4 refused requests (%r)" % (lines,))
        for l, msg in zip(lines, msgs):
            check_eq(l["request_id"], "-", "request_id of a request refused before queueing")
            check_eq(l["msg_sha256"], hashlib.sha256(msg).hexdigest(), "msg_sha256")
        check_eq([l["outcome"] for l in lines], ["not_connected"] * 3 + ["overloaded"],
                 "outcomes")
        check_eq(len(audit_lines(d)), 5, "audit lines in all (4 refused, 1 timed out)")


run_tests(globals())
