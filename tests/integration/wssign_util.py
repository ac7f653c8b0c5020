#!/usr/bin/python3
"""
Helpers for the wssign end-to-end tests (tests/integration/2N-wssign-*.py),
on top of the shared daemon harness wssd_test.py.

The tool is $WSSIGN_BIN, or dirname($WSSIGND_BIN)/src/wssign/wssign.

  run(args, ...)            runs wssign once; returns (rc, stdout, stderr)
  keygen(dir, name)         makes a key file with `wssign keygen`; returns (path, pubkey b64)
  sanitized()               True for an ASan build of wssign
  openssl_pubkey(path)      the public key of a PEM key, derived by the openssl CLI
  Agent(url, key, ...)      a `wssign agent` process with its log on a file
                            ($WSSIGN_TEST_WRAPPER, shell words, goes before its
                            command line: e.g. valgrind --error-exitcode=99)
  request(d, pk, ...)       `wssign request` against a Daemon's control port
  kill_daemon(d)            SIGKILL a Daemon and tell the harness it is gone
  Peer(), Conn              a bare wssign.v1 server (blocking sockets; Conn is
                            the harness's raw WebSocket client turned server
                            side) that sees and can send any frame
  introduce(conn, pk, host) the challenge/introduction exchange on a Conn
"""

import base64
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wssd_test as T  # noqa: E402
from wssd_test import (CLOSE, INTRO_DOMAIN, PING, PONG, TEXT, NoData, PeerClosed,  # noqa: E402
                       RawWS, TestFailure, b64, check, check_eq, close_code, verify, ws_accept)

WSSIGN = os.environ.get("WSSIGN_BIN") or os.path.join(os.path.dirname(T.BIN), "src", "wssign",
                                                      "wssign")
SRC_DIR = os.path.join(T.REPO, "src", "wssign")
WRAPPER = shlex.split(os.environ.get("WSSIGN_TEST_WRAPPER", ""))


def run(args, input=None, timeout=30.0, env=None):
    """Runs wssign with args; returns (rc, stdout text, stderr text)."""
    if not os.path.exists(WSSIGN):
        raise TestFailure("wssign binary not found: %s (set WSSIGN_BIN)" % WSSIGN)
    return T.run_program([WSSIGN] + list(args), input=input, timeout=timeout, env=env)


def sanitized() -> bool:
    """True if wssign is an ASan build: its heap is not the program's (a bigger
    footprint), and it turns mlock into a no-op."""
    with open(WSSIGN, "rb") as f:
        return b"__asan_init" in f.read()


def keygen(directory=None, name="key.pem"):
    """`wssign keygen -o`; returns (path, public key base64)."""
    path = os.path.join(directory or T.current_tmpdir(), name)
    rc, out, err = run(["keygen", "-o", path])
    if rc != 0:
        raise TestFailure("keygen failed (%d): %s" % (rc, err))
    return path, out.strip()


def openssl_pubkey(path) -> str:
    """Public key of a PEM private key, as `openssl pkey -pubout -outform DER | tail -c 32`."""
    der = subprocess.run(["openssl", "pkey", "-in", path, "-pubout", "-outform", "DER"],
                         check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         timeout=30).stdout
    return base64.b64encode(der[-32:]).decode()


def openssl_genpkey(path):
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", path], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
    os.chmod(path, 0o600)
    return path


def write_script(text, name="confirm.sh") -> str:
    """An executable script (a --confirm program) in the test's temporary directory."""
    path = os.path.join(T.current_tmpdir(), name)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o755)
    return path


def read_env(path) -> dict:
    """NAME=VALUE lines (as `env` prints them) as a dict."""
    with open(path, encoding="utf-8") as f:
        return dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)


def control_url(d) -> str:
    return "http://127.0.0.1:%d" % d.control_port


def request(d, pk, *args, timeout=90.0):
    """`wssign request --control <d> --key pk ARGS`; returns (rc, stdout, stderr)."""
    return run(["request", "--control", control_url(d), "--key", pk] + list(args),
               timeout=timeout)


def kill_daemon(d):
    """SIGKILL, as a crash would; the harness then no longer expects a clean exit."""
    d.kill()


class Agent:
    """One `wssign agent` process; stderr (its logfmt log) goes to a file."""

    def __init__(self, url, key, *extra, name="agent", prefix=(), preexec_fn=None):
        """prefix: words put before the command (after $WSSIGN_TEST_WRAPPER), e.g. setpriv."""
        self.log_path = os.path.join(T.current_tmpdir(), name + ".log")
        self._log = open(self.log_path, "wb")
        self.argv = (WRAPPER + list(prefix) + [WSSIGN, "agent", "--url", url, "--key", key]
                     + [str(a) for a in extra])
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=self._log,
                                     stdin=subprocess.DEVNULL, preexec_fn=preexec_fn)
        T.track(self.proc)

    def log(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def lines(self, pattern):
        return [ln for ln in self.log().splitlines() if re.search(pattern, ln)]

    def wait_log(self, pattern, timeout=10.0, count=1):
        """Waits until `count` log lines match the regex; returns the last match object."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in (re.search(pattern, ln) for ln in self.log().splitlines()) if m]
            if len(found) >= count:
                return found[count - 1]
            if self.proc.poll() is not None:
                raise TestFailure("agent exited (%d) before logging %r; log:\n%s"
                                  % (self.proc.returncode, pattern, self.log()))
            if time.monotonic() > deadline:
                raise TestFailure("agent did not log %r (x%d) within %.1f s; log:\n%s"
                                  % (pattern, count, timeout, self.log()))
            time.sleep(0.02)

    def wait_introduced(self, timeout=10.0, count=1):
        return self.wait_log(r"event=introduced public_key=(\S+)", timeout, count)

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Sends sig and waits; returns the exit status (fails if it does not exit)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise TestFailure("agent still running %.1f s after signal %d; log:\n%s"
                                  % (timeout, sig, self.log()))
        self._log.close()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._log.close()


# ---------------------------------------------------------------------------
# A bare wssign.v1 server

INTRO_PREFIX = INTRO_DOMAIN


def rid(n):
    """A request id (a valid lowercase UUID v4) numbered n."""
    return "00000000-0000-4000-8000-%012d" % n


class Conn(RawWS):
    """
    One accepted WebSocket connection, server side (blocking): it answers
    the upgrade, sends unmasked frames, and answers (and counts) pings while
    reading. Time limits are scaled(); a silent peer raises TestFailure, a
    closed one ConnectionError.
    """

    masked = False

    def __init__(self, sock):
        super().__init__(sock=sock)
        self.pings = 0
        self.close_text = None
        self.request = self._handshake()

    def send(self, data):
        self.sock.settimeout(T.scaled(30))
        self.sock.sendall(data)

    def _handshake(self):
        deadline = time.monotonic() + T.scaled(5)
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                if self.eof:
                    raise PeerClosed("peer closed the TCP connection")
                raise TestFailure("peer sent nothing within the time limit")
        head, _, rest = bytes(self.buf).partition(b"\r\n\r\n")
        self.buf[:] = rest
        lines = head.decode().split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in
                   (ln.split(":", 1) for ln in lines[1:])}
        resp = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                % ws_accept(headers["sec-websocket-key"]))
        if "sec-websocket-protocol" in headers:
            resp += "Sec-WebSocket-Protocol: wssign.v1\r\n"
        self.send((resp + "\r\n").encode())
        return {"line": lines[0], "headers": headers}

    def recv_frame(self, timeout=5.0):
        """Next (opcode, payload); answers pings (and counts them)."""
        return self._frame(time.monotonic() + T.scaled(timeout))

    def _frame(self, deadline):
        while True:
            try:
                _, _, opcode, data = self.next_frame(deadline - time.monotonic())
            except NoData:
                raise TestFailure("peer sent nothing within the time limit")
            if opcode == PING:
                self.pings += 1
                self.send_frame(PONG, data)
                continue
            return opcode, data

    def recv_json(self, timeout=5.0):
        opcode, data = self.recv_frame(timeout)
        if opcode != TEXT:
            raise TestFailure("expected a text frame, got opcode %d %r" % (opcode, data))
        return json.loads(data)

    def expect_close(self, timeout=5.0, ack=False):
        """Reads until a close frame; returns its code (its text goes to self.close_text).
        With ack, answers it with a close frame of the same code."""
        deadline = time.monotonic() + T.scaled(timeout)
        while True:
            opcode, data = self._frame(deadline)
            if opcode == CLOSE:
                self.close_text = data[2:].decode("utf-8", "replace")
                if ack:
                    try:
                        self.send_frame(CLOSE, data[:2])
                    except OSError:
                        pass
                return close_code(data)


class Peer:
    """A listening socket on loopback that hands out Conn objects."""

    def __init__(self, family=socket.AF_INET, host="127.0.0.1", rcvbuf=None):
        self.lsock = socket.socket(family, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:
            # inherited by accepted sockets: a server that reads slowly fills up sooner
            self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.lsock.bind((host, 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.url = ("ws://[%s]:%d/v1/ws" if family == socket.AF_INET6
                    else "ws://%s:%d/v1/ws") % (host, self.port)
        self.conns = []

    def accept(self, timeout=10.0):
        self.lsock.settimeout(T.scaled(timeout))
        try:
            sock, _ = self.lsock.accept()
        except socket.timeout:
            raise TestFailure("no connection from the agent within %.0f s" % timeout)
        c = Conn(sock)
        self.conns.append(c)
        return c

    def close(self):
        for c in self.conns:
            c.close()
        self.lsock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def introduce(conn, pk, host):
    """Challenge, check the introduction (proof over host + nonce), send introduced."""
    nonce = b64(os.urandom(32))
    conn.send_json({"type": "challenge", "nonce": nonce, "protocol": "wssign.v1"})
    intro = conn.recv_json()
    check_eq(sorted(intro), ["host", "proof", "public_key", "type"], "introduction fields")
    check_eq(intro["type"], "introduction", "type")
    check_eq(intro["public_key"], pk, "public_key")
    check_eq(intro["host"], host, "host")
    check(verify(base64.b64decode(pk), T.intro_transcript(nonce, host),
                 base64.b64decode(intro["proof"])),
          "proof does not verify over the host-bound transcript")
    conn.send_json({"type": "introduced", "public_key": pk, "session_id": "s-1"})
    return intro


def send_sign_request(conn, request_id, message, expires_in_ms=30000):
    conn.send_json({"type": "sign_request", "request_id": request_id, "message": b64(message),
                    "expires_at": int(time.time() * 1000) + expires_in_ms})


def sign_request(conn, request_id, message, expires_in_ms=30000):
    """Sends a sign_request and returns the agent's answer (a dict)."""
    send_sign_request(conn, request_id, message, expires_in_ms)
    return conn.recv_json()


def option_table(source_file, table):
    """Long option names of `static const struct option <table>[]` in src/wssign/<file>."""
    with open(os.path.join(SRC_DIR, source_file)) as f:
        text = f.read()
    m = re.search(r"static const struct option %s\[\] = \{(.*?)\n\};" % re.escape(table), text,
                  re.S)
    if not m:
        raise TestFailure("option table %s not found in %s" % (table, source_file))
    return re.findall(r'\{"([a-z0-9-]+)",', m.group(1))
