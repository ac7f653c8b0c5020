#!/usr/bin/python3
"""
wssign agent against a bare wssign.v1 peer (a minimal WebSocket server in
this file, so the test sees every frame): the introduction proof is bound to
the URL's host and the challenge nonce, the agent itself refuses the reserved
introduction prefix, malformed or out-of-order frames close the connection
with 1002 and the agent reconnects, error frames are logged, cancel for an
unknown id is harmless, a server that never completes the handshake is
given up on after --connect-timeout-ms, and idle connections get keep-alive
pings.
"""

import base64
import hashlib
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import TestFailure, check, check_eq, run_tests, verify  # noqa: E402
from wssign_util import Agent, keygen  # noqa: E402

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PREFIX = b"wssign-introduction-v1"


def b64(b):
    return base64.b64encode(b).decode()


class Conn:
    """One accepted WebSocket connection (server side, blocking)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.pings = 0
        self.request = self._handshake()

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TestFailure("peer sent nothing within the time limit")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TestFailure("peer sent nothing within the time limit")
        if not chunk:
            raise ConnectionError("peer closed the TCP connection")
        self.buf += chunk

    def _read(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _handshake(self):
        deadline = time.monotonic() + 5
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in
                   (ln.split(":", 1) for ln in lines[1:])}
        accept = b64(hashlib.sha1(headers["sec-websocket-key"].encode() + GUID).digest())
        resp = ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n" % accept)
        if "sec-websocket-protocol" in headers:
            resp += "Sec-WebSocket-Protocol: wssign.v1\r\n"
        self.sock.sendall((resp + "\r\n").encode())
        return {"line": lines[0], "headers": headers}

    def send(self, opcode, payload):
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        self.sock.sendall(head + payload)

    def send_json(self, obj):
        self.send(0x1, json.dumps(obj).encode())

    def send_text(self, text):
        self.send(0x1, text.encode())

    def recv_frame(self, timeout=5.0):
        """Next (opcode, payload); answers pings (and counts them)."""
        deadline = time.monotonic() + timeout
        while True:
            b0, b1 = self._read(2, deadline)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2, deadline))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8, deadline))[0]
            mask = self._read(4, deadline) if b1 & 0x80 else b"\0\0\0\0"
            data = bytes(c ^ mask[i % 4] for i, c in enumerate(self._read(n, deadline)))
            opcode = b0 & 0x0F
            if opcode == 0x9:
                self.pings += 1
                self.send(0xA, data)
                continue
            return opcode, data

    def recv_json(self, timeout=5.0):
        opcode, data = self.recv_frame(timeout)
        if opcode != 0x1:
            raise TestFailure("expected a text frame, got opcode %d %r" % (opcode, data))
        return json.loads(data)

    def expect_close(self, timeout=5.0):
        """Reads until a close frame; returns its code."""
        deadline = time.monotonic() + timeout
        while True:
            opcode, data = self.recv_frame(max(0.01, deadline - time.monotonic()))
            if opcode == 0x8:
                return struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Peer:
    """A listening socket that hands out Conn objects."""

    def __init__(self, family=socket.AF_INET, host="127.0.0.1"):
        self.lsock = socket.socket(family, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((host, 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.conns = []

    def accept(self, timeout=10.0):
        self.lsock.settimeout(timeout)
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


def introduce(conn, pk, host):
    """Challenge, check the introduction (proof over host + nonce), send introduced."""
    nonce = b64(os.urandom(32))
    conn.send_json({"type": "challenge", "nonce": nonce, "protocol": "wssign.v1"})
    intro = conn.recv_json()
    check_eq(sorted(intro), ["host", "proof", "public_key", "type"], "introduction fields")
    check_eq(intro["type"], "introduction", "type")
    check_eq(intro["public_key"], pk, "public_key")
    check_eq(intro["host"], host, "host")
    transcript = PREFIX + b"\n" + host.encode() + b"\n" + nonce.encode()
    check(verify(base64.b64decode(pk), transcript, base64.b64decode(intro["proof"])),
          "proof does not verify over the host-bound transcript")
    conn.send_json({"type": "introduced", "public_key": pk, "session_id": "s-1"})
    return intro


def sign_request(conn, rid, message):
    conn.send_json({"type": "sign_request", "request_id": rid, "message": b64(message),
                    "expires_at": int(time.time() * 1000) + 30000})
    return conn.recv_json()


def rid(n):
    return "00000000-0000-4000-8000-%012d" % n


def test_proof_is_bound_to_the_url_host():
    key, pk = keygen()
    peer = Peer()
    try:
        for i, (url_host, want) in enumerate((("localhost", "localhost"),
                                              ("127.0.0.1", "127.0.0.1"),
                                              ("LocalHost", "localhost"))):
            agent = Agent("ws://%s:%d/v1/ws" % (url_host, peer.port), key, name="a%d" % i)
            conn = peer.accept()
            check(conn.request["line"].startswith("GET /v1/ws "), "path: %r" % conn.request)
            introduce(conn, pk, want)
            agent.wait_introduced()
            check_eq(agent.stop(), 0, "agent exit")
    finally:
        peer.close()

    # IPv6 literal: no brackets in the proof
    try:
        peer6 = Peer(socket.AF_INET6, "::1")
    except OSError:
        print("no IPv6 loopback: IPv6 case skipped")
        return
    try:
        agent = Agent("ws://[::1]:%d/v1/ws" % peer6.port, key, name="a6")
        introduce(peer6.accept(), pk, "::1")
        agent.wait_introduced()
        check_eq(agent.stop(), 0, "agent exit")
    finally:
        peer6.close()


def test_agent_refuses_reserved_prefix_and_signs_others():
    key, pk = keygen()
    peer = Peer()
    try:
        agent = Agent("ws://127.0.0.1:%d/v1/ws" % peer.port, key)
        conn = peer.accept()
        introduce(conn, pk, "127.0.0.1")
        forged = PREFIX + b"\nbank.example\n" + b64(os.urandom(32)).encode()
        ans = sign_request(conn, rid(1), forged)
        check_eq(ans, {"type": "sign_reject", "request_id": rid(1), "reason": "reserved_prefix"},
                 "answer to a transcript-shaped message")
        agent.wait_log(r"decision=refused reason=reserved_prefix request_id=%s" % rid(1))
        ans = sign_request(conn, rid(2), PREFIX)
        check_eq(ans.get("type"), "sign_reject", "bare prefix")

        msg = b"ordinary \x00 bytes"
        ans = sign_request(conn, rid(3), msg)
        check_eq(sorted(ans), ["message", "request_id", "signature", "type"], "response fields")
        check_eq((ans["type"], ans["request_id"], ans["message"]),
                 ("sign_response", rid(3), b64(msg)), "response")
        check(verify(base64.b64decode(pk), msg, base64.b64decode(ans["signature"])),
              "signature verifies")

        # cancel of an id the agent does not hold, and an error frame: logged, no answer
        conn.send_json({"type": "cancel", "request_id": rid(9), "reason": "timeout"})
        conn.send_json({"type": "error", "code": "unknown_request", "message": "no such request",
                        "request_id": rid(9)})
        agent.wait_log(r"event=cancel request_id=%s reason=timeout pending=false" % rid(9))
        agent.wait_log(r"event=server_error code=unknown_request")
        ans = sign_request(conn, rid(4), b"still here")
        check_eq(ans.get("type"), "sign_response", "connection still serves after them")
        check_eq(agent.stop(), 0, "agent exit")
        check_eq(conn.expect_close(), 1001, "close code when the agent stops")
    finally:
        peer.close()


def test_malformed_frames_close_with_1002_and_reconnect():
    key, pk = keygen()
    peer = Peer()
    bad_frames = [
        ("not json", None),
        ("sign_request before the introduction",
         {"type": "sign_request", "request_id": rid(1), "message": "", "expires_at": 0}),
        ("unknown type", "intro"),
        ("unknown field", "intro+extra"),
        ("bad base64", "intro+badb64"),
        ("uppercase request id", "intro+upper"),
        ("introduced for another key", "wrongkey"),
    ]
    try:
        agent = Agent("ws://127.0.0.1:%d/v1/ws" % peer.port, key, "--backoff-max-ms", "300")
        for i, (what, frame) in enumerate(bad_frames):
            conn = peer.accept()
            if frame is None:
                conn.send_text("{not json")
            elif frame == "wrongkey":
                nonce = b64(os.urandom(32))
                conn.send_json({"type": "challenge", "nonce": nonce, "protocol": "wssign.v1"})
                conn.recv_json()
                conn.send_json({"type": "introduced", "public_key": b64(os.urandom(32)),
                                "session_id": "s"})
            elif isinstance(frame, str):
                introduce(conn, pk, "127.0.0.1")
                req = {"type": "sign_request", "request_id": rid(2), "message": b64(b"x"),
                       "expires_at": 1}
                if frame == "intro":
                    req["type"] = "sign_everything"
                elif frame == "intro+extra":
                    req["note"] = "unexpected"
                elif frame == "intro+badb64":
                    req["message"] = "eA"
                elif frame == "intro+upper":
                    req["request_id"] = rid(2).upper().replace("0000-4000", "AAAA-4000")
                conn.send_json(req)
            else:
                conn.send_json(frame)
            check_eq(conn.expect_close(), 1002, "close code after %s" % what)
            conn.close()
            agent.wait_log(r"event=protocol_error", count=i + 1)
        # after all that, a well-behaved peer gets served
        conn = peer.accept()
        introduce(conn, pk, "127.0.0.1")
        check_eq(sign_request(conn, rid(5), b"ok")["type"], "sign_response", "served again")
        check_eq(agent.stop(), 0, "agent exit")
    finally:
        peer.close()


def test_silent_server_hits_the_connect_timeout():
    key, pk = keygen()
    peer = Peer()
    try:
        agent = Agent("ws://127.0.0.1:%d/v1/ws" % peer.port, key, "--connect-timeout-ms", "500",
                      "--backoff-max-ms", "200")
        # 1: TCP accepted, the HTTP upgrade never answered
        peer.lsock.settimeout(5)
        raw, _ = peer.lsock.accept()
        t0 = time.monotonic()
        agent.wait_log(r"event=connect_failed .*handshake timeout", timeout=5)
        check(time.monotonic() - t0 < 2.0, "gave up after %.1f s" % (time.monotonic() - t0))
        check_eq(len(agent.lines(r"event=handshake_timeout")), 1, "handshake_timeout logged")
        raw.close()
        # 2: upgraded, but no challenge ever comes: the agent hangs up and retries
        conn = peer.accept()
        agent.wait_log(r"event=handshake_timeout", timeout=5, count=2)
        try:
            conn.expect_close(timeout=5)
        except ConnectionError:
            pass  # dropped without a close frame: just as good
        # 3: a peer that does its part gets an introduction
        conn = peer.accept()
        introduce(conn, pk, "127.0.0.1")
        agent.wait_introduced()
        sched = agent.lines(r"event=reconnect_scheduled")
        check(all("ceiling_ms=200" in ln for ln in sched), "backoff capped at 200: %r" % sched)
        check_eq(agent.stop(), 0, "agent exit")
    finally:
        peer.close()


def test_keepalive_pings():
    key, pk = keygen()
    peer = Peer()
    try:
        agent = Agent("ws://127.0.0.1:%d/v1/ws" % peer.port, key, "--ping-secs", "1")
        conn = peer.accept()
        introduce(conn, pk, "127.0.0.1")
        agent.wait_introduced()
        # idle: the next frames are pings (answered by recv_frame); wait for two
        try:
            conn.recv_frame(timeout=3.5)
        except TestFailure:
            pass
        check(conn.pings >= 2, "pings on an idle connection with --ping-secs 1: %d" % conn.pings)
        check_eq(agent.stop(), 0, "agent exit")
    finally:
        peer.close()


run_tests(globals())
