#!/usr/bin/python3
"""
The HTTP API's token file is read again on every reload (SIGHUP): deleting a
token's line revokes it without a restart, a new line is accepted at once,
and the other tokens keep working. A token file that no longer loads
(missing, readable by others, a short token, no token at all) refuses the
whole reload with one `level=err event=reload outcome=refused` line, and the
tokens loaded before keep serving. controllers.http_api.token_file may name
a systemd credential, "credential:NAME", read from $CREDENTIALS_DIRECTORY.
"""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ops_util import reload_expect as ops_reload_expect  # noqa: E402
from wssd_test import (Daemon, check, check_eq, check_error_body, current_tmpdir,  # noqa: E402
                       run_cli, run_tests, write_json, write_lines)

TOKEN_A = "token-A-0f1e2d3c4b5a6978"
TOKEN_B = "token-B-8899aabbccddeeff"
TOKEN_C = "token-C-1234567890abcdef"

def config(token_file):
    return {"controllers": {"http_api": {"token_file": token_file}}}


async def status_with(d, token):
    status, _ = await d.ahttp("GET", "/metrics", token=token, timeout=10)
    return status


async def expect_tokens(d, allowed, refused, what):
    for t in allowed:
        check_eq(await status_with(d, t), 200, "%s: token %s" % (what, t[:7]))
    for t in refused:
        check_eq(await status_with(d, t), 401, "%s: token %s" % (what, t[:7]))


async def reload_expect(d, outcome):
    """reload_expect, and exactly one level=err line for a refusal (none for ok)."""
    mark = d.log_mark()
    line = await ops_reload_expect(d, outcome, since=mark)
    errs = [l for l in d.log_lines(mark) if " level=err " in l]
    check_eq(len(errs), 0 if outcome == "ok" else 1, "level=err lines (%r)" % errs)
    return line


async def test_revocation_without_restart():
    path = write_lines("tokens", ["# api", TOKEN_A, TOKEN_B])
    async with Daemon(config(path)) as d:
        pid = d.proc.pid
        await expect_tokens(d, [TOKEN_A, TOKEN_B], [TOKEN_C], "at start")

        write_lines(path, ["# api", TOKEN_B])
        await reload_expect(d, "ok")
        check(d.wait_log(r"event=controller_reloaded name=http_api tokens=1"),
              "controller_reloaded line")
        await expect_tokens(d, [TOKEN_B], [TOKEN_A, TOKEN_C], "after revoking A")

        write_lines(path, [TOKEN_B, TOKEN_C])
        await reload_expect(d, "ok")
        await expect_tokens(d, [TOKEN_B, TOKEN_C], [TOKEN_A], "after adding C")
        check_eq(d.proc.pid, pid, "same process (no restart)")
        check(d.alive(), "daemon alive")


async def test_bad_token_file_refuses_the_reload():
    path = write_lines("tokens", [TOKEN_A, TOKEN_B])
    async with Daemon(config(path)) as d:
        for what, lines, mode in (("a token of 15 characters", [TOKEN_B, "x" * 15], 0o600),
                                  ("no token", ["# all revoked"], 0o600),
                                  ("mode 0644", [TOKEN_B], 0o644),
                                  ("a token with a space", [TOKEN_B, "with space 0123456789"],
                                   0o600)):
            write_lines(path, lines, mode)
            line = await reload_expect(d, "refused")
            check("token file" in line, "%s: reason names the token file: %r" % (what, line))
            # the tokens loaded before keep serving: A is not revoked
            await expect_tokens(d, [TOKEN_A, TOKEN_B], [TOKEN_C], "after a refused reload (%s)"
                                % what)
        os.unlink(path)
        line = await reload_expect(d, "refused")
        check("token file" in line, "missing file: reason names the token file: %r" % line)
        await expect_tokens(d, [TOKEN_A, TOKEN_B], [], "after a reload with no token file")

        write_lines(path, [TOKEN_C])
        await reload_expect(d, "ok")
        await expect_tokens(d, [TOKEN_C], [TOKEN_A, TOKEN_B], "after a good file again")


async def test_token_file_as_systemd_credential():
    creds = os.path.join(current_tmpdir(), "credentials")
    os.mkdir(creds, 0o700)
    path = write_lines(os.path.join(creds, "api-tokens"), [TOKEN_A], mode=0o400)
    cfg = config("credential:api-tokens")
    async with Daemon(cfg, env={"CREDENTIALS_DIRECTORY": creds}) as d:
        await expect_tokens(d, [TOKEN_A], [TOKEN_B], "token from the credential")
        write_lines(path, [TOKEN_B], mode=0o400)
        await reload_expect(d, "ok")
        await expect_tokens(d, [TOKEN_B], [TOKEN_A], "credential after a reload")
        status, body = await d.ahttp("POST", "/v1/sign", {"public_key": "x", "message": "x"},
                                     token=TOKEN_A)
        check_error_body(status, body, 401, "unauthorized", "revoked token on /v1/sign")

    # Without $CREDENTIALS_DIRECTORY the daemon does not start, and says why.
    env = dict(os.environ)
    env.pop("CREDENTIALS_DIRECTORY", None)
    cfg_path = write_json(os.path.join(current_tmpdir(), "cred.json"),
                          dict(cfg, listen="127.0.0.1:0", control={"listen": "127.0.0.1:0"}))
    rc, out, err = run_cli(["-c", cfg_path], env=env)
    check_eq(rc, 1, "exit status without CREDENTIALS_DIRECTORY (stderr %r)" % err)
    check("CREDENTIALS_DIRECTORY" in err, "the error names CREDENTIALS_DIRECTORY: %r" % err)


run_tests(globals())
