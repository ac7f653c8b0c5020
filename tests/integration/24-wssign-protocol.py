#!/usr/bin/python3
"""
wssign agent against a bare wssign.v1 peer (a minimal WebSocket server,
wssign_util.Peer, so the test sees every frame): the introduction proof is bound to
the URL's host and the challenge nonce, the agent itself refuses the reserved
introduction prefix, malformed or out-of-order frames close the connection
with 1002 and the agent reconnects, error frames are logged, cancel for an
unknown id is harmless, a server that never completes the handshake is
given up on after --connect-timeout-ms, and idle connections get keep-alive
pings.
"""

import base64
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import TestFailure, check, check_eq, run_tests, verify  # noqa: E402
from wssign_util import (INTRO_PREFIX, Agent, Peer, b64, introduce, keygen, rid,  # noqa: E402
                         sign_request)

PREFIX = INTRO_PREFIX


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
