#!/usr/bin/python3
"""
Labels the signer can see. A label given to POST /v1/sign (or `wssign
request --label`) travels in the sign_request frame, reaches `wssign agent
--confirm` as WSSIGN_LABEL (a forged WSSIGN_LABEL in the agent's own
environment never does), and is audited by its length and SHA-256 only.
With a token file, the requester's token name travels beside it as
`requester` (WSSIGN_REQUESTER for the confirm program); the token never does. A
label that is not a string, longer than 256 bytes, or holds control
characters or bad UTF-8 is a 400 that never reaches the signer; so is a
--label wssign refuses before sending.
"""

import hashlib
import json
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wssd_test as T  # noqa: E402
from wssd_test import (Daemon, b64, check, check_eq, check_error_body, run_tests,  # noqa: E402
                       write_lines)
from wssign_util import Agent, keygen, read_env, request, write_script  # noqa: E402

SIGN_TOKEN = "billing-token-0f1e2d3c4b5a6978"
BARE_TOKEN = "bare-token-fedcba9876543210"
LABEL = 'Pay 12,50 \u20ac to "ACME" \\ invoice #7 \U0001f355'

CONFIRM_SCRIPT = r"""#!/bin/sh
# Records its environment, then approves.
env | grep '^WSSIGN_' | sort > "$1"
exit 0
"""


def confirm_recorder():
    """The confirm program and the file it records its WSSIGN_ environment in."""
    return write_script(CONFIRM_SCRIPT), os.path.join(T.current_tmpdir(), "env")


async def test_label_in_the_frame_and_the_audit_line():
    async with Daemon() as d:
        async with d.signer() as s:
            status, body, _ = await d.sign(s.pk, b"pay", label=LABEL)
            check_eq(status, 200, "labelled request (body %r)" % (body,))
            check_eq(s.requests[0].get("label"), LABEL, "label in the sign_request frame")
            check("requester" not in s.requests[0],
                  "no requester name without a token: %r" % (s.requests[0],))
            raw = LABEL.encode()
            lines = await d.await_log(r"event=sign_outcome request_id=%s .*label_len=(\d+) "
                                      r"label_sha256=([0-9a-f]{64})" % body["request_id"])
            check_eq(lines, [(str(len(raw)), hashlib.sha256(raw).hexdigest())],
                     "label length and digest in the audit line")
            check("ACME" not in d.log_text(), "the label's text reached the log")

            # Without a label: no field in the frame, and an empty digest in the audit line.
            status, body, _ = await d.sign(s.pk, b"plain")
            check_eq(status, 200, "request without a label (body %r)" % (body,))
            check("label" not in s.requests[1], "label field without a label")
            lines = await d.await_log(r"event=sign_outcome request_id=%s .*label_len=(\d+) "
                                      r"label_sha256=(\S+)" % body["request_id"])
            check_eq(lines, [("0", "-")], "audit line of a request without a label")

            # 256 bytes of UTF-8 is the limit, in bytes, not characters.
            at_limit = "\u20ac" * 85 + "x"  # 3 * 85 + 1 = 256 bytes
            status, body, _ = await d.sign(s.pk, b"limit", label=at_limit)
            check_eq(status, 200, "256-byte label (body %r)" % (body,))
            check_eq(s.requests[2].get("label"), at_limit, "256-byte label in the frame")


async def test_bad_labels_refused():
    async with Daemon() as d:
        async with d.signer() as s:
            pk, msg = b64(s.pk), b64(b"hello")
            cases = [
                ("257 bytes", "\u20ac" * 85 + "xy"),
                ("a newline", "line one\nline two"),
                ("a tab", "a\tb"),
                ("DEL", "a\x7fb"),
                ("a C1 control", "a\u0085b"),
                ("a NUL", "a\u0000b"),
                ("ESC (terminal escapes)", "\x1b[2J"),
                ("a number", 42),
                ("null", None),
                ("an object", {"text": "x"}),
            ]
            for name, label in cases:
                status, resp = await d.ahttp("POST", "/v1/sign",
                                             {"public_key": pk, "message": msg, "label": label})
                check_error_body(status, resp, 400, "bad_request", "label with %s" % name)
                check("label" in resp["error"]["message"],
                      "label with %s: message %r names the label" % (name, resp))
            # Bad UTF-8 and a lone surrogate, as raw JSON text.
            for name, text in (("bad UTF-8", b'"\xc3\x28"'), ("a lone surrogate", b'"\\ud800"')):
                raw = b'{"public_key":"%s","message":"%s","label":%s}' % (
                    pk.encode(), msg.encode(), text)
                status, resp = await d.ahttp("POST", "/v1/sign", raw)
                check_error_body(status, resp, 400, "bad_request", "label with %s" % name)
            check_eq(s.requests, [], "sign_request frames that reached the signer")


def test_label_reaches_the_confirm_program():
    script, rec = confirm_recorder()
    with Daemon() as d:
        key, pk = keygen()
        # A WSSIGN_LABEL in the agent's own environment must not pass for the requester's.
        os.environ["WSSIGN_LABEL"] = "forged by the environment"
        try:
            agent = Agent("ws://127.0.0.1:%d/v1/ws" % d.port, key, "--confirm",
                          "%s %s" % (script, rec))
        finally:
            del os.environ["WSSIGN_LABEL"]
        agent.wait_introduced()

        rc, out, err = request(d, pk, "--message", "order 7", "--label", LABEL)
        check_eq(rc, 0, "wssign request --label (stderr %r)" % err)
        env = read_env(rec)
        check_eq(env.get("WSSIGN_LABEL"), LABEL, "WSSIGN_LABEL")
        check_eq(env.get("WSSIGN_REQUEST_ID"), json.loads(out)["request_id"], "request id")
        check("WSSIGN_REQUESTER" not in env, "WSSIGN_REQUESTER without a token: %r" % env)

        rc, out, err = request(d, pk, "--message", "order 8")
        check_eq(rc, 0, "request without a label (stderr %r)" % err)
        env = read_env(rec)
        check("WSSIGN_LABEL" not in env, "WSSIGN_LABEL of a request without one: %r" % env)
        check("ACME" not in agent.log(),
              "the label's text reached the agent's log")

        # wssign refuses a label the daemon would, before sending anything.
        for bad in ("two\nlines", "x" * 257):
            rc, _, err = request(d, pk, "--message", "order 9", "--label", bad)
            check_eq(rc, 2, "--label %r: usage error (stderr %r)" % (bad[:12], err))
            check("--label" in err, "the error names --label: %r" % err)
        check_eq(agent.stop(), 0, "agent exit")


def token_config():
    path = write_lines("tokens", ["# name  token  options",
                                  "billing %s scopes=sign" % SIGN_TOKEN,
                                  BARE_TOKEN])  # line 3: "token-3"
    return {"controllers": {"http_api": {"token_file": path}}}


async def test_requester_is_the_token_name():
    async with Daemon(token_config()) as d:
        async with d.signer() as s:
            for token, name in ((SIGN_TOKEN, "billing"), (BARE_TOKEN, "token-3")):
                status, body, _ = await d.sign(s.pk, b"pay", label=LABEL, token=token)
                check_eq(status, 200, "request as %s (body %r)" % (name, body))
                frame = s.requests[-1]
                check_eq(frame.get("requester"), name, "requester in the sign_request frame")
                check_eq(frame.get("label"), LABEL, "label beside it")
                check(token not in json.dumps(frame), "the token reached the signer")
            check(SIGN_TOKEN not in d.log_text() and BARE_TOKEN not in d.log_text(),
                  "a token reached the log")


def test_requester_reaches_the_confirm_program():
    script, rec = confirm_recorder()
    token_file = write_lines("billing.token", [SIGN_TOKEN])
    with Daemon(token_config()) as d:
        key, pk = keygen()
        agent = Agent("ws://127.0.0.1:%d/v1/ws" % d.port, key, "--confirm",
                      "%s %s" % (script, rec))
        agent.wait_introduced()
        rc, out, err = request(d, pk, "--message", "order 10", "--label", "invoice 10",
                               "--token-file", token_file)
        check_eq(rc, 0, "wssign request with a named token (stderr %r)" % err)
        env = read_env(rec)
        check_eq(env.get("WSSIGN_REQUESTER"), "billing", "WSSIGN_REQUESTER")
        check_eq(env.get("WSSIGN_LABEL"), "invoice 10", "WSSIGN_LABEL")
        check(SIGN_TOKEN not in agent.log(), "the token reached the agent's log")
        check_eq(agent.stop(), 0, "agent exit")


run_tests(globals())
