#!/usr/bin/python3
"""
wssign agent refuses what a daemon would never ask for: a sign_request past
its expires_at ("expired"), also when it expires while the --confirm command
runs (checked again after the approval, before signing), and a request id it
has already answered on the connection ("duplicate_request"). Each refusal is
a sign_reject with that reason and a sign_decision log line. The server is a
bare wssign.v1 peer (wssign_util.Peer), which, unlike the daemon, neither
cancels expired requests nor avoids repeating ids.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wssd_test as T  # noqa: E402
from wssd_test import check, check_eq, run_tests  # noqa: E402
from wssign_util import Agent, Peer, introduce, keygen, rid, sign_request  # noqa: E402


def connect(peer, agent, pk, count=1):
    conn = peer.accept()
    introduce(conn, pk, "127.0.0.1")
    agent.wait_introduced(count=count)
    return conn


def reject(request_id, reason):
    return {"type": "sign_reject", "request_id": request_id, "reason": reason}


def test_expired_request_is_refused():
    key, pk = keygen()
    with Peer() as peer:
        agent = Agent(peer.url, key)
        conn = connect(peer, agent, pk)
        check_eq(sign_request(conn, rid(1), b"too late", expires_in_ms=-1000),
                 reject(rid(1), "expired"), "answer to an expired request")
        agent.wait_log(r"decision=refused reason=expired request_id=%s" % rid(1))
        check_eq(sign_request(conn, rid(2), b"on time")["type"], "sign_response",
                 "a request that has not expired")
        check_eq(agent.stop(), 0, "agent exit status")


def test_request_expiring_during_confirmation_is_not_signed():
    key, pk = keygen()
    flag = os.path.join(T.current_tmpdir(), "asked")
    with Peer() as peer:
        # approves, but only after the request has expired
        agent = Agent(peer.url, key, "--confirm", "touch %s; sleep 1.5; exit 0" % flag)
        conn = connect(peer, agent, pk)
        ans = sign_request(conn, rid(3), b"approved too late", expires_in_ms=500)
        check(os.path.exists(flag), "the confirm command ran")
        check_eq(ans, reject(rid(3), "expired"), "answer after a late approval")
        agent.wait_log(r"decision=rejected reason=expired request_id=%s .*confirm_status=0"
                       % rid(3))
        check(not agent.lines(r"decision=signed"), "nothing signed")
        # the same command in time signs
        ans = sign_request(conn, rid(4), b"approved in time", expires_in_ms=30000)
        check_eq(ans.get("type"), "sign_response", "answer after a timely approval")
        check_eq(agent.stop(), 0, "agent exit status")


def test_repeated_request_id_is_refused():
    key, pk = keygen()
    with Peer() as peer:
        agent = Agent(peer.url, key, "--backoff-max-ms", "200")
        conn = connect(peer, agent, pk)
        check_eq(sign_request(conn, rid(5), b"once")["type"], "sign_response", "first answer")
        for what, msg in (("same message", b"once"), ("other message", b"twice")):
            check_eq(sign_request(conn, rid(5), msg), reject(rid(5), "duplicate_request"),
                     "repeated id, %s" % what)
        agent.wait_log(r"decision=refused reason=duplicate_request request_id=%s" % rid(5),
                       count=2)
        # a refused id is an answered id too
        check_eq(sign_request(conn, rid(6), b"x", expires_in_ms=-1), reject(rid(6), "expired"),
                 "expired")
        check_eq(sign_request(conn, rid(6), b"x"), reject(rid(6), "duplicate_request"),
                 "repeat of a refused id")
        check_eq(len(agent.lines(r"decision=signed")), 1, "signed once")

        # ids are per connection: the daemon resends a pending request, with its
        # id, on the connection that supersedes the first one
        conn.close()
        conn = connect(peer, agent, pk, count=2)
        check_eq(sign_request(conn, rid(5), b"once")["type"], "sign_response",
                 "the same id on a new connection")
        check_eq(agent.stop(), 0, "agent exit status")


def test_many_ids_remembered():
    """The set of answered ids is bounded: the most recent 1024 per connection."""
    key, pk = keygen()
    with Peer() as peer:
        agent = Agent(peer.url, key, "--log-level", "warn")
        conn = connect_quiet(peer, pk)
        n = 1100
        for i in range(n):
            check_eq(sign_request(conn, rid(10000 + i), b"m")["type"], "sign_response",
                     "request %d" % i)
        # the latest 1024 are refused again, the oldest have been forgotten
        check_eq(sign_request(conn, rid(10000 + n - 1), b"m")["type"], "sign_reject",
                 "the most recent id")
        # repeats of one id do not push the others out
        for _ in range(50):
            check_eq(sign_request(conn, rid(10000 + n - 1), b"m")["type"], "sign_reject",
                     "a repeat")
        check_eq(sign_request(conn, rid(10000 + n - 1024), b"m")["type"], "sign_reject",
                 "the 1024th most recent id")
        check_eq(sign_request(conn, rid(10000), b"m")["type"], "sign_response",
                 "the oldest id, no longer remembered")
        check_eq(agent.stop(), 0, "agent exit status")


def connect_quiet(peer, pk):
    conn = peer.accept()
    introduce(conn, pk, "127.0.0.1")
    return conn


run_tests(globals())
