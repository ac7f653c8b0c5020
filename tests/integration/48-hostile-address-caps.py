#!/usr/bin/python3
"""
The per-address cap at accept (limits.max_connections_per_ip) bounds sockets
that have not proved a key, so many signers behind one balancer or NAT can
share an address; introduced connections have a cap of their own
(limits.max_introduced_per_ip, off by default). A WebSocket upgrade to a
path other than /v1/ws is answered 404, as a plain GET is.
"""

import os
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import nacl.signing

from hostile_util import RawHTTP, RawWS, intro_frame, metric, upgrade_request
from wssd_test import Daemon, check, check_eq, run_tests


def accepted(d, n):
    """n sockets that completed the upgrade and read their challenge."""
    out = []
    for _ in range(n):
        w = RawWS(d.port)
        w.open()
        out.append(w)
    return out


def refused_at_accept(d):
    """True if a new socket is closed before any byte is answered."""
    w = RawWS(d.port)
    try:
        w.send(upgrade_request())
        return w.closed_within(2.0)
    finally:
        w.close()


def test_introduced_connections_do_not_count_against_the_accept_cap():
    with Daemon({"limits": {"max_connections_per_ip": 3}}) as d:
        signers = accepted(d, 3)
        check(refused_at_accept(d), "a 4th unproven socket is refused")
        for w in signers:
            w.introduce()
        # 3 introduced signers from one address; 3 more may connect and introduce
        more = accepted(d, 3)
        for w in more:
            w.introduce()
        extra = accepted(d, 3)
        check(refused_at_accept(d), "the cap still applies to unproven sockets")
        check_eq(metric(d, "wssignd_introduced_keys"), 6, "introduced keys gauge")
        for w in signers + more + extra:
            check(w.is_open(), "every accepted socket is still open")
            w.close()


def test_introduced_cap_per_address():
    with Daemon({"limits": {"max_introduced_per_ip": 2}}) as d:
        ws = accepted(d, 3)
        ws[0].introduce()
        ws[1].introduce()
        sk = nacl.signing.SigningKey(os.urandom(32))
        ws[2].send_json(intro_frame(sk, ws[2].challenge["nonce"]))
        ws[2].expect_error("too_many_connections")
        ws[2].expect_close(1008)
        check_eq(metric(d, "wssignd_introductions_total", outcome="address_limit"), 1,
                 "refusals counted")
        # when one introduced connection goes, another may introduce
        ws[0].send_close(1000)
        ws[0].expect_close(1000)
        w = accepted(d, 1)[0]
        for _ in range(50):
            if metric(d, "wssignd_connections") <= 2:
                break
            time.sleep(0.02)
        w.introduce()
        for x in (ws[1], w):
            x.close()


def test_upgrade_to_a_wrong_path_is_404():
    with Daemon({}) as d:
        for path in ("/", "/v1/wss", "/v1/ws/extra", "/x" * 100):
            with RawHTTP(d.port) as h:
                h.send(upgrade_request(path=path))
                status, hdrs = h.read_head(5.0)
                check_eq(status, 404, "upgrade to %r" % path[:40])


run_tests(globals())
