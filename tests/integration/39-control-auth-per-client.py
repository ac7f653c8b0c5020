#!/usr/bin/python3
"""
Failed authentications on the HTTP API are throttled per client, never for
everyone: after controllers.http_api.auth_failures_burst bad tokens a client
gets 429 for every request that needs a token (its right token included)
until its allowance refills at one a second, while any other client's valid
token is accepted throughout and its bad ones still get 401. A client is an
IPv4 address (an IPv6 /64); on a Unix control socket, a user id.
"""

import os
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import (Daemon, RawHTTP, check_eq, current_tmpdir, metric, run_tests,  # noqa: E402
                       write_lines)

TOKEN = "per-client-token-0123456789"
WRONG = "x" * len(TOKEN)
BURST = 5


def token_config(**extra):
    path = write_lines("tokens", [TOKEN])
    cfg = {"controllers": {"http_api": {"token_file": path, "auth_failures_burst": BURST}}}
    cfg.update(extra)
    return cfg


def status_from(d, source, token, method="GET", path="/metrics", body=None):
    """The status of one request from the loopback address source."""
    with RawHTTP(d.control_port, source=source) as c:
        return c.request(method, path, body, timeout=5.0, token=token or None).status


def exhaust(d, source):
    for i in range(BURST):
        check_eq(status_from(d, source, WRONG), 401, "bad token %d from %s" % (i + 1, source))
    check_eq(status_from(d, source, WRONG), 429, "bad token past the burst from %s" % source)


def test_one_clients_failures_lock_out_no_one_else():
    with Daemon(token_config()) as d:
        exhaust(d, "127.0.0.2")
        check_eq(status_from(d, "127.0.0.2", TOKEN), 429,
                 "the throttled client's own right token")
        check_eq(status_from(d, "127.0.0.1", TOKEN), 200, "another client's valid token")
        check_eq(status_from(d, "127.0.0.1", TOKEN, "POST", "/v1/sign",
                             {"public_key": "AAAA", "message": "aGk="}), 400,
                 "another client's POST /v1/sign gets past authentication")
        check_eq(status_from(d, "127.0.0.1", WRONG), 401,
                 "another client's bad token: checked, 401 (not 429)")
        # many throttled clients change nothing for the rest
        for i in range(3, 20):
            exhaust(d, "127.0.0.%d" % i)
        for _ in range(10):
            check_eq(status_from(d, "127.0.0.1", TOKEN), 200, "valid token among throttled ones")
        check_eq(status_from(d, "127.0.0.2", None, path="/healthz"), 200,
                 "/healthz for a throttled client")
        time.sleep(1.5)  # the allowance refills at one a second
        check_eq(status_from(d, "127.0.0.2", TOKEN), 200, "the throttled client after 1.5 s")
        check_eq(metric(d, "wssignd_sign_requests_total", token=TOKEN,
                        outcome="too_many_requests"), 0, "no sign request was throttled")


def unix_connect(path, uid=None):
    """A connection to the Unix socket path made by uid (None: this process).
    A child process connects and exits; the socket stays with this process,
    and the daemon sees the credentials it was connected with."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if uid is None:
        s.connect(path)
        return s
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setuid(uid)
            s.connect(path)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    check_eq(os.waitstatus_to_exitcode(status), 0, "connect to %s as uid %d" % (path, uid))
    return s


def unix_status(sock_path, token, uid=None):
    """The status of GET /metrics over the Unix socket, as uid (None: this process)."""
    with RawHTTP(sock=unix_connect(sock_path, uid)) as c:
        return c.request("GET", "/metrics", host="x", token=token or None,
                         headers=[("Connection", "close")]).status


def test_unix_socket_clients_throttled_per_user():
    sock = os.path.join(current_tmpdir(), "control.sock")
    os.chmod(current_tmpdir(), 0o755)
    with Daemon(token_config(control={"listen": "unix:" + sock, "socket_mode": "0660"})):
        for i in range(BURST):
            check_eq(unix_status(sock, WRONG), 401, "bad token %d over the socket" % (i + 1))
        check_eq(unix_status(sock, TOKEN), 429, "this user's right token once throttled")
        if os.geteuid() != 0:
            print("not root: the second user of the socket is not tried")
            return
        # uid 65534 with group 0 may use the 0660 socket: another user, another bucket
        check_eq(unix_status(sock, TOKEN, uid=65534), 200, "another user's valid token")
        check_eq(unix_status(sock, WRONG, uid=65534), 401, "another user's bad token")


run_tests(globals())
