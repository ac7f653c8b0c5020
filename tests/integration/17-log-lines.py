#!/usr/bin/python3
"""
The log lines an operator reads: every line is logfmt from the daemon's own
sink (lws's lines too, as event=lws), outside the journal each starts with
its time; a refused browser origin is one warn line naming the remote
address (no lws warning after it), a bad host in an introduction is logged
once, and sign outcomes that failed on the signer's side (timeout,
invalid_signature, connection_closed) are warnings while ok is a notice.
"""

import os
import re
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from wssd_test import Daemon, RawHTTP, check, check_eq, run_tests, upgrade_request

LINE_RE = re.compile(r"^ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z "
                     r"level=(err|warn|notice|info|debug) event=[a-z_]+( |$)")


def check_all_lines_formatted(d):
    for line in d.log_lines():
        check(LINE_RE.match(line) is not None, "a line not from the log sink: %r" % line)


def test_refused_origin_is_one_warning():
    with Daemon({"log_level": "debug", "origins": {"allow": ["https://good.example"]}}) as d:
        mark = d.log_mark()
        with RawHTTP(d.port) as h:
            h.send(upgrade_request(origin="https://evil.example"))
            status, _ = h.read_head(5.0)
        check_eq(status, 403, "upgrade from a refused origin")
        lines = [l for l in d.log_lines(mark) if "level=debug" not in l]
        refused = [l for l in lines if "event=origin_refused" in l]
        check_eq(len(refused), 1, "origin_refused lines (%r)" % lines)
        check(" level=warn " in refused[0], "level of %r" % refused[0])
        check("remote=127.0.0.1" in refused[0], "remote= in %r" % refused[0])
        check("origin=https://evil.example" in refused[0], "origin= in %r" % refused[0])
        check(not [l for l in lines if "event=lws" in l], "lws lines besides it: %r" % lines)
        check_all_lines_formatted(d)


async def test_bad_host_logged_once():
    async with Daemon() as d:
        mark = d.log_mark()
        s = d.signer(host="evil.example")
        await s.connect()
        await s.read_challenge()
        await s.send_json(s.introduction())
        await s.recv_until_closed(5.0)
        lines = [l for l in d.log_lines(mark) if "evil.example" in l or "bad_host" in l]
        check_eq(len(lines), 1, "lines about the bad host (%r)" % lines)
        check("event=introduction_refused reason=bad_host host=evil.example" in lines[0],
              "the line: %r" % lines[0])
        check_all_lines_formatted(d)


async def test_failed_outcomes_are_warnings():
    async with Daemon() as d:
        async with d.signer(policy="sign") as ok, d.signer(policy="silent") as silent, \
                d.signer(policy="bad_signature") as bad:
            status, _, _ = await d.sign(ok.pk, b"fine", timeout_ms=5000)
            check_eq(status, 200, "ok")
            status, _, _ = await d.sign(silent.pk, b"nobody answers", timeout_ms=300)
            check_eq(status, 504, "timeout")
            status, _, _ = await d.sign(bad.pk, b"forged", timeout_ms=5000)
            check_eq(status, 502, "invalid_signature")
        levels = {}
        for line in d.log_lines():
            m = re.search(r" level=(\w+) event=sign_outcome .* outcome=(\w+) ", line)
            if m:
                levels[m.group(2)] = m.group(1)
        check_eq(levels, {"ok": "notice", "timeout": "warn", "invalid_signature": "warn"},
                 "levels of the audit lines")
        check_all_lines_formatted(d)


run_tests(globals())
