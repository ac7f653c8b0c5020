#!/usr/bin/python3
"""
HTTP API bearer tokens from controllers.http_api.token_file (mode 0600, one
token per line, '#' comments): every request except /healthz needs a valid
token, otherwise 401 unauthorized. A token file readable by others is
refused at start-up.
"""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import (Daemon, b64, b64url, check, check_eq, check_error_body, run_cli, run_tests,
                       unb64, verify, write_lines)

TOKEN_A = "tok-A-3f9c0e1d5b7a"
TOKEN_B = "tok-B-88e2a4c6d0f1"


def token_file(mode=0o600):
    return write_lines("tokens", ["# control API tokens", TOKEN_A, "", "# second one", TOKEN_B],
                       mode)


def config(path):
    return {"controllers": {"http_api": {"enabled": True, "token_file": path}}}


async def test_tokens_required():
    async with Daemon(config(token_file())) as d:
        async with d.signer() as s:
            body = {"public_key": b64(s.pk), "message": b64(b"authorised")}
            key_path = "/v1/keys/" + b64url(s.pk)

            status, resp = await d.ahttp("POST", "/v1/sign", body)
            check_error_body(status, resp, 401, "unauthorized", "POST without a token")
            status, resp = await d.ahttp("GET", key_path)
            check_error_body(status, resp, 401, "unauthorized", "GET key without a token")
            for bad in ("wrong", TOKEN_A + "x", TOKEN_A[:-1], "# control API tokens",
                        "# second one", ""):
                status, resp = await d.ahttp("POST", "/v1/sign", body, token=bad)
                check_error_body(status, resp, 401, "unauthorized", "token %r" % bad)
            for hdr in ("Basic " + TOKEN_A, TOKEN_A, "bearer-" + TOKEN_A):
                status, resp = await d.ahttp("POST", "/v1/sign", body,
                                             headers={"Authorization": hdr})
                check_error_body(status, resp, 401, "unauthorized", "Authorization %r" % hdr)
            check_eq(len(s.requests), 0, "requests that reached the signer without auth")

            status, resp = await d.ahttp("POST", "/v1/sign", body, token=TOKEN_A)
            check_eq(status, 200, "POST with token A (body %r)" % (resp,))
            check(verify(s.pk, b"authorised", unb64(resp["signature"])), "signature verifies")
            status, resp = await d.ahttp("GET", key_path, token=TOKEN_B)
            check_eq(status, 200, "GET key with token B (body %r)" % (resp,))
            check_eq(resp.get("connected"), True, "connected")

            # 401 comes before anything else: unknown path, wrong method
            status, resp = await d.ahttp("GET", "/v1/sign")
            check_eq(status, 401, "GET /v1/sign without a token")

        status, resp = await d.ahttp("GET", "/healthz")
        check_eq(status, 200, "/healthz without a token")
        check_eq(resp, {"status": "ok"}, "/healthz body")


def test_token_file_readable_by_others_refused():
    d = Daemon(config(token_file(mode=0o644)))
    try:
        rc, out, err = run_cli(["-c", d.config_path], timeout=10)
    except Exception as e:
        raise AssertionError("daemon did not exit with a 0644 token file: %s" % e)
    check_eq(rc, 1, "exit status with a 0644 token file (stderr %r)" % err)
    check("level=err" in err, "no level=err line on stderr: %r" % err)


run_tests(globals())
