#!/usr/bin/python3
"""
`wssign request --control unix:/PATH` on the daemon's Unix control socket
(control.listen "unix:/run/wssignd/control.sock" in the unit's example):
it signs, a token file still applies when one is configured, the socket's
mode decides who may connect, and a missing socket is a clear error.
"""

import asyncio
import json
import os
import sys

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import (Daemon, b64, check, check_eq, current_tmpdir, run_program, run_tests,
                       unb64, verify, write_lines)
from wssign_util import WSSIGN, run

NOBODY = 65534
TOKEN = "unix-socket-token-7c1e9b3a5d20"


def request(sock, pk, message, *args, prefix=()):
    """`wssign request` on the socket; prefix: words before the tool (setpriv)."""
    argv = ["request", "--control", "unix:" + sock, "--key", pk, "--message", message] + \
        list(args)
    if prefix:
        return run_program(list(prefix) + [WSSIGN] + argv, timeout=60)
    return run(argv, timeout=60)


def check_signed(rc, out, err, pk, message, what):
    check_eq(rc, 0, "%s: exit status (stderr %r)" % (what, err))
    body = json.loads(out)
    check_eq(unb64(body["message"]), message.encode(), "%s: message" % what)
    check(verify(unb64(pk), message.encode(), unb64(body["signature"])),
          "%s: signature verifies" % what)


async def test_request_over_unix_socket():
    sock = os.path.join(current_tmpdir(), "control.sock")
    async with Daemon({"control": {"listen": "unix:" + sock}}) as d:
        check("control=unix:%s" % sock in d.log_text(), "ready line names the socket")
        async with d.signer() as s:
            pk = b64(s.pk)
            rc, out, err = await asyncio.to_thread(request, sock, pk, "over the unix socket")
            check_signed(rc, out, err, pk, "over the unix socket", "unix socket")
            check(d.log_count(r"event=sign_outcome .*outcome=ok") >= 1, "audit line")
        # the key is gone: the daemon's answer comes back as over TCP
        rc, _, err = await asyncio.to_thread(request, sock, pk, "gone")
        check_eq(rc, 3, "not_connected over the socket (stderr %r)" % err)
    rc, _, err = await asyncio.to_thread(request, sock, pk, "no daemon")
    check_eq(rc, 9, "no socket (stderr %r)" % err)
    check("cannot connect to unix:%s" % sock in err, err)


async def test_token_and_mode_on_the_socket():
    sock = os.path.join(current_tmpdir(), "control.sock")
    tokens = write_lines("tokens", [TOKEN])
    tok = write_lines("request.token", [TOKEN])
    os.chmod(current_tmpdir(), 0o755)
    cfg = {"control": {"listen": "unix:" + sock, "socket_mode": "0600"},
           "controllers": {"http_api": {"token_file": tokens}}}
    async with Daemon(cfg) as d:
        check_eq(os.stat(sock).st_mode & 0o777, 0o600, "socket mode")
        async with d.signer() as s:
            pk = b64(s.pk)
            rc, _, err = await asyncio.to_thread(request, sock, pk, "no token")
            check_eq(rc, 8, "no token (stderr %r)" % err)
            rc, out, err = await asyncio.to_thread(request, sock, pk, "with token",
                                                   "--token-file", tok)
            check_signed(rc, out, err, pk, "with token", "with token")
            if os.geteuid() == 0:
                prefix = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY,
                          "--clear-groups"]
                rc, _, err = await asyncio.to_thread(request, sock, pk, "other user",
                                                     prefix=prefix)
                check_eq(rc, 9, "another user on a 0600 socket (stderr %r)" % err)
                check("Permission denied" in err, err)


run_tests(globals())
