#!/usr/bin/python3
"""
wssign agent against a hostile server (wssign_util.Peer, raw RFC 6455 framing).
The server the agent dials is not trusted: whatever it sends, the agent must
not crash, must close with the right code and say why in its log, and must
come back with backoff. Shapes: a 1.6 MB text frame as the very first frame,
a 200 KB binary frame, a fragmented message that grows too large, a frame
announcing an enormous length, a refused frame of exactly one receive buffer
followed by more data, frames before the challenge, garbage JSON, control
frames lws itself refuses, a server that sends large sign requests and
never reads the answers (the outgoing queue is bounded), and a flood of
frames that decide nothing (their log lines are rate-limited).

tests/run-checked.sh runs this file with the agent under valgrind
(WSSIGN_TEST_WRAPPER) and under ASan: an invalid write fails it there too.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wssd_test as T  # noqa: E402
from wssd_test import TestFailure, check, check_eq, run_tests, status_kib  # noqa: E402
from wssd_test import frame as ws_frame  # noqa: E402
from wssign_util import (INTRO_PREFIX, WRAPPER, Agent, Peer, introduce,  # noqa: E402
                         keygen, rid, run, sanitized, send_sign_request, sign_request)

AGENT_RX_MAX = 4 * (1048576 // 3 + 1) + 4096  # agent.c: the largest message reassembled


def send_raw(conn, data):
    """Sends bytes the agent may stop reading half-way; a reset is not an error here."""
    try:
        conn.send(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def frame(opcode, payload=b"", fin=True, length=None):
    """A server's (unmasked) frame; length, when given, is the declared length."""
    return ws_frame(opcode, payload, fin=fin, mask=False, length=length)


def expect_agent_close(conn, code, what):
    """The agent's close frame carries code; it is acknowledged so the agent finishes."""
    try:
        got = conn.expect_close(timeout=15, ack=True)
    except ConnectionError as e:
        raise TestFailure("%s: the connection ended without a close frame (%s)" % (what, e))
    check_eq(got, code, "close code after %s" % what)
    conn.close()


def check_alive(agent, what):
    if agent.proc.poll() is not None:
        raise TestFailure("agent died (exit %s) after %s; log:\n%s"
                          % (agent.proc.returncode, what, agent.log()))


def serves_then_stops(peer, agent, pk, n):
    """A well-behaved connection after the hostile ones: introduced, signs;
    then SIGTERM ends the agent with status 0 (under valgrind: no errors)."""
    conn = peer.accept(timeout=15)
    introduce(conn, pk, "127.0.0.1")
    agent.wait_introduced(timeout=T.scaled(10))
    ans = sign_request(conn, rid(n), b"after the storm")
    check_eq(ans.get("type"), "sign_response", "answer on a fresh connection")
    check_eq(agent.stop(), 0, "agent exit status")


def test_oversized_and_binary_frames_close_cleanly():
    key, pk = keygen()
    with Peer() as peer:
        agent = Agent(peer.url, key, "--backoff-max-ms", "300")
        shapes = [
            # (what, bytes to send, expected close code, expected log line)
            ("a 1.6 MB text frame as the first frame",
             frame(0x1, b"A" * 1600000), 1009, r"event=frame_refused reason=too_large"),
            ("a 200 KB binary frame as the first frame",
             frame(0x2, os.urandom(200000)), 1003, r"event=frame_refused reason=binary"),
            ("a fragmented message that grows past the limit",
             frame(0x1, b"[" * 1000000, fin=False) + frame(0x0, b"[" * 1000000, fin=False)
             + frame(0x0, b"]" * 1000, fin=True), 1009,
             r"event=frame_refused reason=too_large"),
            # refused from its header: only a little of it is ever sent
            ("a frame announcing 2^40 bytes",
             frame(0x1, length=1 << 40) + b"{" * 65536, 1009,
             r"event=frame_refused reason=too_large"),
            # the refusal comes with the last byte of exactly one 4096-byte
            # receive buffer, and more frames follow at once
            ("garbage JSON of exactly 4096 bytes, then 300 KB more",
             frame(0x1, b"x" * 4096) + frame(0x1, b"y" * 300000) + frame(0x2, b"z" * 70000),
             1002, r"event=protocol_error"),
            ("a sign_request before the challenge",
             frame(0x1, b'{"type":"sign_request","request_id":"%s","message":"eA==",'
                        b'"expires_at":99999999999999}' % rid(1).encode()), 1002,
             r"event=protocol_error error=\"sign_request before the introduction"),
            ("a binary frame fragmented into text continuations",
             frame(0x2, b"\x00" * 5000, fin=False) + frame(0x0, b"\x01" * 5000), 1003,
             r"event=frame_refused reason=binary"),
        ]
        for i, (what, data, code, line) in enumerate(shapes):
            conn = peer.accept(timeout=15)
            send_raw(conn, data)
            expect_agent_close(conn, code, what)
            agent.wait_log(line, timeout=T.scaled(10),
                           count=len([s for s in shapes[:i + 1] if s[3] == line]))
            check_alive(agent, what)
        # every close was followed by a reconnect delay drawn under a growing ceiling
        agent.wait_log(r"event=reconnect_scheduled", count=len(shapes))
        sched = agent.lines(r"event=reconnect_scheduled .*after=\"closed\"")
        check(len(sched) >= len(shapes), "a reconnect after each close: %r" % sched)
        for ln in sched:
            m = re.search(r"delay_ms=(\d+) ceiling_ms=(\d+)", ln)
            check(m and int(m.group(1)) <= int(m.group(2)) <= 300, "backoff: %r" % ln)
        disc = agent.lines(r"event=disconnected reason=")
        for why in ("frame too large", "binary frame", "protocol error"):
            check(any('"%s"' % why in ln for ln in disc), "disconnect reason %r: %r" % (why, disc))
        serves_then_stops(peer, agent, pk, 2)


def test_hostile_frames_after_the_introduction():
    key, pk = keygen()
    with Peer() as peer:
        agent = Agent(peer.url, key, "--backoff-max-ms", "300")
        cases = [
            ("a binary frame", frame(0x2, os.urandom(200000)), 1003),
            ("a 1.6 MB text frame", frame(0x1, b" " * 1600000), 1009),
            ("garbage JSON", frame(0x1, b'{"type":'), 1002),
            ("a JSON array", frame(0x1, b"[]"), 1002),
            ("a second challenge", frame(0x1, b'{"type":"challenge","nonce":"%s",'
                                              b'"protocol":"wssign.v1"}'
                                         % (b"A" * 43 + b"=")), 1002),
        ]
        for i, (what, data, code) in enumerate(cases):
            conn = peer.accept(timeout=15)
            introduce(conn, pk, "127.0.0.1")
            agent.wait_introduced(count=i + 1, timeout=T.scaled(10))
            # a request in flight, then the hostile frame
            check_eq(sign_request(conn, rid(10 + i), b"ok")["type"], "sign_response",
                     "served before %s" % what)
            send_raw(conn, data)
            expect_agent_close(conn, code, what)
            check_alive(agent, what)
        serves_then_stops(peer, agent, pk, 99)


def test_frames_lws_refuses_drop_the_connection():
    """Framing errors lws itself catches: the agent is dropped, survives, reconnects."""
    key, pk = keygen()
    with Peer() as peer:
        agent = Agent(peer.url, key, "--backoff-max-ms", "300")
        cases = [
            ("a ping with a 16-bit length", frame(0x9, b"p" * 200)),
            ("a continuation with nothing to continue", frame(0x0, b"orphan")),
            ("a reserved opcode", frame(0x3, b"?")),
            ("a fragmented close frame", frame(0x8, b"\x03\xe8", fin=False)),
        ]
        for what, data in cases:
            conn = peer.accept(timeout=15)
            send_raw(conn, data)
            try:
                conn.expect_close(timeout=10, ack=True)
            except ConnectionError:
                pass  # dropped without a close frame: what lws does for these
            conn.close()
            check_alive(agent, what)
        serves_then_stops(peer, agent, pk, 3)


def test_repeated_server_lines_are_rate_limited():
    """Frames that change nothing (error frames, cancels of unknown ids, a
    repeat of a request whose confirmation runs) cannot flood the agent's log:
    one line per second each, the next one counting those left out."""
    key, pk = keygen()
    with Peer() as peer:
        agent = Agent(peer.url, key, "--confirm", "sleep 30")
        conn = peer.accept()
        introduce(conn, pk, "127.0.0.1")
        agent.wait_introduced(timeout=T.scaled(10))
        send_sign_request(conn, rid(7), b"waits for its confirmation")
        agent.wait_log(r"event=confirm_started request_id=%s" % rid(7))
        n = 300
        for i in range(n):
            conn.send_json({"type": "error", "code": "bad_json", "message": "noise %d" % i})
            conn.send_json({"type": "cancel", "request_id": rid(500 + i), "reason": "timeout"})
            send_sign_request(conn, rid(7), b"waits for its confirmation")
        # frames are handled in order: once this is answered, all the noise was read
        check_eq(sign_request(conn, rid(8), INTRO_PREFIX)["reason"], "reserved_prefix",
                 "served after the noise")
        for event in ("server_error", "cancel", "duplicate_request"):
            count = len(agent.lines(r"event=%s " % event))
            check(1 <= count < n // 10, "%d %s lines for %d frames" % (count, event, n))
        check_eq(agent.stop(), 0, "agent exit status")


def test_outgoing_queue_is_bounded():
    key, pk = keygen()
    limit = 65536
    # a tiny receive buffer: the answers back up in the agent sooner
    with Peer(rcvbuf=4096) as peer:
        agent = Agent(peer.url, key, "--backoff-max-ms", "300", "--max-queued-bytes", limit)
        conn = peer.accept()
        introduce(conn, pk, "127.0.0.1")
        agent.wait_introduced(timeout=T.scaled(10))
        before = status_kib(agent.proc.pid, "VmHWM")
        msg = os.urandom(40 * 1024)  # each answer is a frame of about 54 KB
        sent = 0
        try:
            for n in range(700):  # about 38 MB of answers if nothing stopped them
                send_sign_request(conn, rid(1000 + n), msg)
                sent += 1
                if agent.lines(r"event=queue_full"):
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass  # the agent hung up: what this test waits for
        m = agent.wait_log(r"event=queue_full queued_bytes=(\d+) frame_bytes=(\d+) "
                           r"max_queued_bytes=%d" % limit, timeout=T.scaled(20))
        queued, frame_bytes = int(m.group(1)), int(m.group(2))
        check(queued <= limit < queued + frame_bytes,
              "queue full at %d + %d bytes with a %d limit" % (queued, frame_bytes, limit))
        agent.wait_log(r'event=disconnected reason="queue full"', timeout=T.scaled(10))
        check_alive(agent, "the queue overflow")
        if not WRAPPER and not sanitized():
            # Answers the server never read are not kept: the peak grows by
            # about the kernel's socket buffers, not by what was asked.
            grown = status_kib(agent.proc.pid, "VmHWM") - before
            check(grown < 24 * 1024, "agent memory grew by %d KiB for %d requests (%d MB of "
                  "answers)" % (grown, sent, sent * 54 // 1000))
        conn.close()
        serves_then_stops(peer, agent, pk, 4)


def test_default_queue_limit_and_bad_values():
    key, _ = keygen()
    for bad in ("0", "4095", "268435457", "x"):
        rc, _, err = run(["agent", "--url", "ws://127.0.0.1:1/v1/ws", "--key", key,
                          "--max-queued-bytes", bad])
        check_eq(rc, 2, "--max-queued-bytes %s" % bad)
        check("--max-queued-bytes" in err, "message names the option: %r" % err)
    rc, out, _ = run(["agent", "--help"])
    check("--max-queued-bytes N" in out and "default 4194304" in out,
          "help gives the default: %r" % out)


def test_refused_frame_from_a_server_that_does_not_read():
    """The close frame cannot go out to a server that reads nothing: the agent
    drops the connection after a grace period instead of waiting for ever."""
    key, pk = keygen()
    with Peer(rcvbuf=4096) as peer:
        agent = Agent(peer.url, key, "--backoff-max-ms", "300", "--max-queued-bytes", 1 << 28)
        conn = peer.accept()
        introduce(conn, pk, "127.0.0.1")
        agent.wait_introduced(timeout=T.scaled(10))
        for n in range(150):  # about 8 MB of answers: more than the socket buffers hold
            send_sign_request(conn, rid(2000 + n), os.urandom(40 * 1024))
        agent.wait_log(r"request_id=%s" % rid(2149), timeout=T.scaled(20))
        send_raw(conn, frame(0x2, b"\x00" * 10))
        agent.wait_log(r"event=frame_refused reason=binary", timeout=T.scaled(10))
        agent.wait_log(r'event=disconnected reason="binary frame"', timeout=T.scaled(30))
        peer.accept(timeout=30).close()
        conn.close()
        check_alive(agent, "a close the server never read")
        check_eq(agent.stop(), 0, "agent exit status")


run_tests(globals())
