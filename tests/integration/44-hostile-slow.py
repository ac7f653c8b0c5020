#!/usr/bin/python3
"""
Slow and greedy peers (SECURITY-NOTES §4.1, §4.2):

  T-S1  slowloris: one header line a second, never ending, on the signer
        and control listeners: closed at about 10 s.
  T-S2  idle TCP (ws, wss, control) and a partial TLS ClientHello: closed
        at about 10 s.
  T-S3  an upgraded connection that never introduces itself: error
        introduction_timeout and close 4002 at introduction.timeout_ms
        (default 10 s).
  T-C3  a control request body trickled at 1 byte a second: closed (or
        408) within about 10 s.
        These run in parallel threads while honest clients keep signing.
  T-S4  an introduced signer that stops answering pings: pinged every
        limits.ping_interval_ms, hung up at limits.idle_timeout_ms; its
        pending request ends connection_closed and the key is gone. One
        that answers pings stays.
  T-F1  100 sockets from 127.0.0.2: limits.max_connections_per_ip (64) are
        kept, the rest closed at accept before any HTTP; an honest client
        from 127.0.0.3 is served within 1 s; refusals are counted and
        logged (rate-limited). limits.max_connections caps the total.
  T-W9  a signer that stops reading: when its queued output passes
        limits.max_queued_bytes the connection is dropped and its requests
        end connection_closed; other keys are unaffected.

After each group a fresh honest signer completes a sign round trip.
"""

import asyncio
import os
import socket
import ssl
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hostile_util import (CLOSE, PING, CaseRunner, NoData, PeerClosed, RawHTTP, RawWS,
                          aroundtrip, asign, close_payload, error_code, frame, http_request,
                          log_count, metric, roundtrip, upgrade_request)
from wssd_test import Daemon, TestFailure, b64, b64url, check, check_eq, run_tests

LWS_IDLE = 10.0                 # lws timeout_secs_ah_idle / timeout_secs
EARLIEST, LATEST = 5.0, 14.0    # bounds for "closed at about 10 s" on a busy machine


def partial_client_hello():
    """The first half of a real TLS ClientHello."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    check(len(hello) > 100 and hello[0] == 0x16, "no ClientHello generated")
    return hello[:len(hello) // 2]


def timed(results, name, fn):
    t0 = time.monotonic()
    try:
        results[name] = (fn(), time.monotonic() - t0, None)
    except Exception as e:  # reported by the case
        results[name] = (None, time.monotonic() - t0, e)


def until_closed(c, feed=None, every=1.0, limit=LATEST + 2.0):
    """Feeds c (feed() returns the next bytes) every `every` seconds until the
    peer closes; returns what the peer sent. Fails if still open at limit."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        if feed is not None and not c.try_send(feed()):
            c.eof = True            # reset or broken pipe: the peer closed
            break
        if c.closed_within(every):
            break
    check(c.eof, "still open after %.0f s" % limit)
    return bytes(c.buf)


def test_slow_and_idle_peers():
    cases = CaseRunner("T-S1/T-S2/T-S3/T-C3")
    with Daemon({}) as d, Daemon({}, tls=True, name="wss") as t:
        results = {}
        counter = iter(range(10 ** 6))

        def loris_signer():
            with RawHTTP(d.port) as c:
                c.send(b"GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                return until_closed(c, lambda: b"X-Slow-%d: x\r\n" % next(counter))

        def loris_control():
            with RawHTTP(d.control_port) as c:
                c.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                return until_closed(c, lambda: b"X-Slow-%d: x\r\n" % next(counter))

        def idle(port):
            def fn():
                with RawHTTP(port) as c:
                    return until_closed(c)
            return fn

        def partial_hello():
            with RawHTTP(t.port) as c:
                c.send(partial_client_hello())
                return until_closed(c)

        def slow_body():
            with RawHTTP(d.control_port) as c:
                body = b'{"public_key":"%s","message":"aGVsbG8="}' % b64(bytes(32)).encode()
                req = http_request("POST", "/v1/sign", body)
                c.send(req[:-len(body)])
                rest = iter(body)
                return until_closed(c, lambda: bytes([next(rest, 32)]))

        def never_introduces():
            with RawWS(d.port) as w:
                w.open()
                got, reason, before = w.read_close(LATEST + 2)
                w.try_send(frame(CLOSE, close_payload(1000)))
                return got, [f[3] for f in before]

        jobs = {
            "T-S1 slowloris headers, signer listener": loris_signer,
            "T-S1 slowloris headers, control listener": loris_control,
            "T-S2 idle TCP, ws listener": idle(d.port),
            "T-S2 idle TCP, control listener": idle(d.control_port),
            "T-S2 idle TCP, wss listener": idle(t.port),
            "T-S2 partial TLS ClientHello": partial_hello,
            "T-C3 request body at 1 byte/s": slow_body,
            "T-S3 upgraded, never introduces": never_introduces,
        }
        threads = [threading.Thread(target=timed, args=(results, n, f), daemon=True)
                   for n, f in jobs.items()]
        for th in threads:
            th.start()
        time.sleep(1.0)
        with cases("honest round trips while the slow peers hold on (ws and wss)"):
            for _ in range(3):
                t0 = time.monotonic()
                roundtrip(d)
                roundtrip(t)
                check(time.monotonic() - t0 < 5.0, "round trips took %.1f s"
                      % (time.monotonic() - t0))
        for th in threads:
            th.join(40)
        for name in jobs:
            with cases(name):
                value, took, err = results.get(name, (None, 0, TestFailure("did not finish")))
                if err is not None:
                    raise err
                check(EARLIEST <= took <= LATEST, "closed after %.1f s (expected about %.0f s)"
                      % (took, LWS_IDLE))
                if name.startswith("T-S3"):
                    code, frames = value
                    check_eq(code, 4002, "close code")
                    check(any(b'"introduction_timeout"' in f for f in frames),
                          "no introduction_timeout error frame: %r" % frames)
                elif name.startswith("T-C3"):
                    check(value == b"" or value.startswith(b"HTTP/1.1 408"),
                          "answer %r" % value[:60])
                else:
                    check(b" 101 " not in value[:20], "upgraded: %r" % value[:60])
        with cases("round trip after the group"):
            roundtrip(d)
            roundtrip(t)
    cases.finish()


def test_unanswered_pings():
    cases = CaseRunner("T-S4 idle introduced signer")
    cfg = {"limits": {"ping_interval_ms": 1000, "idle_timeout_ms": 3000}}
    with Daemon(cfg) as d:
        async def scenario():
            w = RawWS(d.port).open()
            w.introduce()
            pk = w.pk
            task = asyncio.ensure_future(asign(d, pk, b"pending at hang-up", 30000))
            t0 = time.monotonic()
            pings, closed_at, close_code = 0, None, None
            while time.monotonic() - t0 < 15:
                try:
                    f = await asyncio.to_thread(w.next_frame, 0.5)
                except NoData:
                    continue
                except PeerClosed:
                    closed_at, close_code = time.monotonic() - t0, 1006
                    break
                if f[2] == PING:
                    pings += 1
                elif f[2] == CLOSE:
                    closed_at = time.monotonic() - t0
                    close_code = int.from_bytes(f[3][:2], "big") if len(f[3]) >= 2 else None
                    break
            w.close()
            status, body = await asyncio.wait_for(task, 10)
            return pings, closed_at, close_code, status, body, pk

        pings, closed_at, close_code, status, body, pk = asyncio.run(scenario())
        with cases("pinged while idle"):
            check(pings >= 1, "no ping within %s s" % closed_at)
        with cases("hung up after limits.idle_timeout_ms (3 s)"):
            check(closed_at is not None, "still connected after 15 s (close %r)" % close_code)
            check(2.0 <= closed_at <= 8.0, "hung up after %.1f s" % closed_at)
        with cases("its pending request ended connection_closed"):
            check_eq((status, error_code(body)), (502, "connection_closed"), "outcome")
        with cases("the key is no longer connected"):
            st, b = d.http("GET", "/v1/keys/" + b64url(pk))
            check_eq((st, error_code(b)), (404, "not_connected"), "GET /v1/keys")
        with cases("a signer that answers pings stays past idle_timeout_ms"):
            with RawWS(d.port) as w:
                w.open()
                w.introduce()
                t0 = time.monotonic()
                while time.monotonic() - t0 < 5.0:
                    try:
                        f = w.next_frame(0.5)
                    except NoData:
                        continue
                    check(f[2] == PING, "unexpected frame %r" % (f[:3],))
                    w.send_frame(0xA, f[3])
                st, b = d.http("GET", "/v1/keys/" + b64url(w.pk))
                check_eq(st, 200, "still connected after 5 s")
        with cases("round trip"):
            roundtrip(d)
    cases.finish()


def open_sockets(port, source, n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind((source, 0))
        s.settimeout(5)
        s.connect(("127.0.0.1", port))
        socks.append(s)
    return socks


def closed_at_accept(socks, wait=1.0):
    """Counts sockets the daemon closed without sending anything."""
    time.sleep(wait)
    n = 0
    for s in socks:
        s.setblocking(False)
        try:
            data = s.recv(16)
            check_eq(data, b"", "bytes from the daemon before any request")
            n += 1
        except BlockingIOError:
            pass
        except ConnectionResetError:
            n += 1
    return n


def test_connection_caps():
    cases = CaseRunner("T-F1 connection caps")
    with Daemon({}) as d:
        refused0 = metric(d, "wssignd_connections_refused_total")
        flood = open_sockets(d.port, "127.0.0.2", 100)
        with cases("100 sockets from 127.0.0.2: 64 kept, 36 closed at accept"):
            check_eq(closed_at_accept(flood), 36, "sockets closed at accept")
        with cases("honest client from 127.0.0.3 upgraded within 1 s"):
            t0 = time.monotonic()
            with RawWS(d.port, source="127.0.0.3") as w:
                w.open()
                took = time.monotonic() - t0
            check(took <= 1.0, "upgrade took %.2f s" % took)
        with cases("honest round trip during the flood"):
            roundtrip(d)
        with cases("refusals counted in wssignd_connections_refused_total"):
            check_eq(metric(d, "wssignd_connections_refused_total") - refused0, 36.0,
                     "refused connections")
        with cases("wssignd_sockets counts the held sockets"):
            check(metric(d, "wssignd_sockets") >= 64, "wssignd_sockets %r"
                  % metric(d, "wssignd_sockets"))
        with cases("refusals logged, rate-limited to one line a second"):
            n = log_count(d, r"event=connection_refused .*remote=127\.0\.0\.2")
            check(1 <= n <= 3, "%d event=connection_refused lines" % n)
        with cases("a further socket from 127.0.0.2 is refused before any HTTP"):
            with RawHTTP(d.port, source="127.0.0.2") as c:
                c.try_send(upgrade_request())
                check_eq(c.read_some(2.0), b"", "answer to a refused socket")
                check(c.eof, "socket not closed")
        for s in flood:
            s.close()
        with cases("127.0.0.2 served again once its sockets are gone"):
            deadline = time.monotonic() + 5
            while True:
                try:
                    with RawWS(d.port, source="127.0.0.2") as w:
                        w.open()
                    break
                except (TestFailure, PeerClosed, OSError):
                    check(time.monotonic() < deadline, "127.0.0.2 still refused after 5 s")
                    time.sleep(0.2)
    with Daemon({"limits": {"max_connections_per_ip": 8, "max_connections": 20}}) as d:
        socks = open_sockets(d.port, "127.0.0.4", 10)
        with cases("max_connections_per_ip 8: 2 of 10 closed at accept"):
            check_eq(closed_at_accept(socks), 2, "sockets closed at accept")
        more = open_sockets(d.port, "127.0.0.5", 8) + open_sockets(d.port, "127.0.0.6", 8)
        with cases("max_connections 20: 12 of 16 more sockets kept, 4 closed at accept"):
            check_eq(closed_at_accept(more), 4, "sockets closed at accept")
        with cases("a new source is refused while the daemon is full"):
            with RawHTTP(d.port, source="127.0.0.7") as c:
                c.try_send(upgrade_request())
                check_eq(c.read_some(2.0), b"", "answer while full")
        for s in socks + more:
            s.close()
        with cases("round trip once the sockets are gone"):
            deadline = time.monotonic() + 5
            while True:
                try:
                    roundtrip(d)
                    break
                except Exception:
                    check(time.monotonic() < deadline, "still refused 5 s after the flood")
                    time.sleep(0.2)
    cases.finish()


def test_slow_reader():
    cases = CaseRunner("T-W9 slow reader")
    cfg = {"limits": {"max_queued_bytes": 65536}}
    with Daemon(cfg) as d:
        async def scenario():
            w = RawWS(d.port, rcvbuf=4096).open()
            w.introduce()              # then never reads again
            t0 = time.monotonic()
            msg = os.urandom(30000)
            res = await asyncio.gather(*[asign(d, w.pk, msg + bytes([i]), 30000)
                                         for i in range(40)])
            took = time.monotonic() - t0
            # another key is served meanwhile and afterwards
            await aroundtrip(d)
            w.close()
            return res, took, w.pk

        res, took, pk = asyncio.run(scenario())
        outcomes = [(st, error_code(b)) for st, b in res]
        with cases("the stuck connection was dropped: requests end connection_closed"):
            check((502, "connection_closed") in outcomes, "outcomes %r" % sorted(set(outcomes)))
        with cases("no request succeeded or timed out"):
            check(set(outcomes) <= {(502, "connection_closed"), (404, "not_connected")},
                  "outcomes %r" % sorted(set(outcomes)))
        with cases("dropped long before the 30 s deadline"):
            check(took < 15.0, "requests ended after %.1f s" % took)
        with cases("the key is no longer connected"):
            st, b = d.http("GET", "/v1/keys/" + b64url(pk))
            check_eq((st, error_code(b)), (404, "not_connected"), "GET /v1/keys")
        with cases("round trip"):
            roundtrip(d)
    cases.finish()


run_tests(globals())
