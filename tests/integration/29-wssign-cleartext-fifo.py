#!/usr/bin/python3
"""
wssign and clear text, and files that are not files:
  - the agent warns on every ws:// URL, loopback included, that no server is
    authenticated, and recommends wss:// with --ca;
  - `wssign request` refuses a plain http:// control URL to a host that is not
    loopback (the token and the message would cross the network in clear
    text) unless --insecure, as the agent refuses ws://;
  - a FIFO given as --key, --token-file or --ca fails at once with a clear
    message instead of hanging on open().
"""

import os
import socket
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wssd_test as T  # noqa: E402
from wssd_test import TestFailure, check, check_eq, run_tests  # noqa: E402
from wssign_util import Agent, Peer, keygen, run  # noqa: E402

PK = "iVIx36x2jkXvDhJB1Y9czI4CZbhPr9Rcvyg0/Kp3Q6k="


def run_fast(args, what):
    """Runs wssign; a hang (the bug this file guards against) fails the test."""
    try:
        return run(args, timeout=T.scaled(10))
    except subprocess.TimeoutExpired:
        raise TestFailure("wssign %s hung (%s)" % (" ".join(args), what))


def test_ws_url_warns_that_no_server_is_authenticated():
    key, _ = keygen()
    with Peer() as peer:
        agent = Agent(peer.url, key, name="ws")
        m = agent.wait_log(r"level=warn event=insecure_transport message=\"(.*)\"")
        text = m.group(1)
        for words in ("authenticates no server", "loopback", "wss://", "--ca"):
            check(words in text, "%r in the warning: %r" % (words, text))
        agent.stop()
        agent = Agent("wss://127.0.0.1:%d/v1/ws" % peer.port, key, name="wss")
        agent.wait_log(r"event=connecting")
        check(not agent.lines(r"event=insecure_transport"), "no warning for wss://")
        agent.stop()


class OneShotHTTP:
    """A listener that records the request head it gets and answers 404 not_connected."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.heads = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                c.settimeout(10)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = c.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                self.heads.append(data.split(b"\r\n\r\n")[0].decode("latin-1"))
                body = b'{"error":{"code":"not_connected","message":"no such key"}}'
                c.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                          % (len(body), body))

    def close(self):
        self.sock.close()


def test_request_refuses_cleartext_to_another_host():
    tmp = T.current_tmpdir()
    token = os.path.join(tmp, "token")
    with open(token, "w") as f:
        f.write("s3cret-token-value\n")
    os.chmod(token, 0o600)
    srv = OneShotHTTP()
    try:
        # 0.0.0.0 is not a loopback name, yet it reaches this machine's listener
        remote = "http://0.0.0.0:%d" % srv.port
        for extra in (["--token-file", token], []):
            rc, out, err = run_fast(["request", "--control", remote, "--key", PK, "-m", "x"]
                                    + extra, "refusal")
            check_eq((rc, out), (2, ""), "plain http:// to 0.0.0.0 %s" % extra)
            check("refusing plain http:// to 0.0.0.0" in err and "--insecure" in err,
                  "message: %r" % err)
        check_eq(srv.heads, [], "nothing was sent")
        # --insecure: the caller asked for it
        rc, _, err = run_fast(["request", "--control", remote, "--key", PK, "-m", "x",
                               "--token-file", token, "--insecure"], "--insecure")
        check_eq(rc, 3, "exit status with --insecure (the server answered not_connected): %r"
                 % err)
        check(len(srv.heads) == 1 and "Bearer s3cret-token-value" in srv.heads[0],
              "request sent with the token: %r" % srv.heads)
        # loopback needs no flag
        for host in ("127.0.0.1", "localhost"):
            rc, _, err = run_fast(["request", "--control", "http://%s:%d" % (host, srv.port),
                                   "--key", PK, "-m", "x", "--token-file", token], host)
            check_eq(rc, 3, "exit status to %s: %r" % (host, err))
        rc, out, _ = run(["request", "--help"])
        check("--insecure" in out, "--help lists --insecure")
    finally:
        srv.close()


def test_fifo_key_token_and_ca_fail_fast():
    tmp = T.current_tmpdir()
    fifo = os.path.join(tmp, "fifo")
    os.mkfifo(fifo, 0o600)
    key, _ = keygen()
    cases = [
        (["agent", "--url", "ws://127.0.0.1:1/v1/ws", "--key", fifo], 1, "key file"),
        (["pubkey", "--key", fifo], 1, "key file"),
        (["request", "--key", PK, "-m", "x", "--token-file", fifo], 2, "token file"),
        (["agent", "--url", "wss://127.0.0.1:1/v1/ws", "--key", key, "--ca", fifo], 2,
         "CA file"),
    ]
    for args, want_rc, what in cases:
        rc, out, err = run_fast(args, "FIFO as the %s" % what)
        check_eq(rc, want_rc, "exit status of wssign %s" % " ".join(args))
        check("%s %s is not a regular file" % (what, fifo) in err,
              "message for a FIFO %s: %r" % (what, err))
    # a directory is not a key file either
    rc, _, err = run_fast(["pubkey", "--key", tmp], "directory as the key file")
    check(rc == 1 and "is not a regular file" in err, "directory: %d %r" % (rc, err))


run_tests(globals())
