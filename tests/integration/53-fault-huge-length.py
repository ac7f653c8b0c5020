#!/usr/bin/python3
"""
"Huge declared length, junk body" (mosquitto's 01-bad-initial-packets
shape): 14 connections at once each declare a length the daemon must never
allocate for, then send junk.
  - Control API: POST /v1/sign with Content-Length: 4294967295 (and, in a
    second case, a chunked body whose first chunk declares 0xffffffff bytes)
    is answered 413 at once, before the body is read;
  - signer listener: a text frame header declaring 2^63-1 bytes, then a
    trickle of bytes, closes with 1009 once the running total passes
    limits.max_frame_bytes, and not before.
While the connections are held the daemon's VmRSS grows by at most 20 MiB,
and afterwards it still signs.
"""

import asyncio
import os
import socket
import sys
import threading
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wssd_test import (CLOSE, PROTOCOL, TEXT, Daemon, NoData, RawWS, RssPeak,  # noqa: E402
                       check, check_eq, close_code, frame, http_request, parse_head, rss_kib,
                       run_tests, scaled)

SOCKETS = 14
RSS_GROWTH_MAX_KIB = 20 * 1024
JUNK_PER_SOCKET = 8 * 1024 * 1024
CHUNK = 64 * 1024


async def roundtrip(d):
    await d.aroundtrip(timeout_ms=10000, what="round trip after the junk")


def read_status(sock, timeout):
    """The status of the response on sock, or None if none came; and the bytes
    read. (A plain socket: another thread writes junk to it meanwhile.)"""
    sock.settimeout(timeout)
    buf = bytearray()
    head = None
    try:
        while head is None:
            chunk = sock.recv(4096)
            if not chunk:
                break
            buf += chunk
            head = parse_head(bytearray(buf))
    except (socket.timeout, ConnectionError):
        pass
    return (head[0] if head else None), bytes(buf)


def junk_sender(sock, total, sent):
    """Sends up to total bytes of junk; stops quietly when the daemon closes."""
    junk = os.urandom(CHUNK)
    sock.settimeout(5)
    try:
        while sent[0] < total:
            sock.sendall(junk)
            sent[0] += len(junk)
    except (OSError, socket.timeout):
        pass


def control_flood(d, head):
    """SOCKETS connections send head then junk; returns [(status, seconds)], peak RSS growth."""
    base = rss_kib(d.proc.pid)
    results = [None] * SOCKETS
    with RssPeak(d.proc.pid) as peak:
        socks, senders, sent = [], [], []
        for i in range(SOCKETS):
            s = socket.create_connection(("127.0.0.1", d.control_port), timeout=5)
            socks.append(s)
        for i, s in enumerate(socks):
            t0 = time.monotonic()
            s.sendall(head)
            counter = [0]
            sent.append(counter)
            t = threading.Thread(target=junk_sender, args=(s, JUNK_PER_SOCKET, counter),
                                 daemon=True)
            t.start()
            senders.append(t)
            status, raw = read_status(s, scaled(5))
            results[i] = (status, time.monotonic() - t0, raw[:200])
        for t in senders:
            t.join(scaled(30))
        time.sleep(0.2)
        for s in socks:
            s.close()
    return results, peak.peak - base, sum(c[0] for c in sent)


async def test_control_content_length_4294967295():
    async with Daemon() as d:
        head = http_request("POST", "/v1/sign", headers=[("Content-Type", "application/json"),
                                                         ("Content-Length", "4294967295")])
        results, growth, sent = await asyncio.to_thread(control_flood, d, head)
        for i, (status, took, raw) in enumerate(results):
            check_eq(status, 413, "socket %d: status for Content-Length 4294967295 (%r)"
                     % (i, raw))
            check(took < scaled(1.0), "socket %d: 413 after %.2f s" % (i, took))
        check(growth <= RSS_GROWTH_MAX_KIB,
              "VmRSS grew by %d KiB while %d sockets sent %d MiB of junk"
              % (growth, SOCKETS, sent >> 20))
        await roundtrip(d)


async def test_control_chunked_huge_chunk():
    async with Daemon() as d:
        head = http_request("POST", "/v1/sign", headers=[("Content-Type", "application/json"),
                                                         ("Transfer-Encoding", "chunked")])
        head += b"ffffffff\r\n"
        results, growth, sent = await asyncio.to_thread(control_flood, d, head)
        for i, (status, took, raw) in enumerate(results):
            # 413 as soon as the body passes max_body_bytes, or a refusal of chunked
            # bodies outright; never an accepted body, never silence.
            check(status in (400, 411, 413, 501),
                  "socket %d: status %r for a 0xffffffff-byte chunk (%r)" % (i, status, raw))
            check(took < scaled(2.0), "socket %d: answered after %.2f s" % (i, took))
        check(growth <= RSS_GROWTH_MAX_KIB,
              "VmRSS grew by %d KiB while %d sockets sent %d MiB of junk"
              % (growth, SOCKETS, sent >> 20))
        await roundtrip(d)


def ws_trickle(d, max_frame):
    """SOCKETS signer connections declare a 2^63-1 byte text frame and trickle ASCII.
    Returns [(bytes sent when the close arrived, close code)] and peak RSS growth."""
    base = rss_kib(d.proc.pid)
    with RssPeak(d.proc.pid) as peak:
        closed = _ws_trickle(d, max_frame)
    return closed, peak.peak - base


def _ws_trickle(d, max_frame):
    conns = [RawWS(d.port).open(protocol=PROTOCOL) for _ in range(SOCKETS)]
    for w in conns:
        # Mask 0: the junk stays ASCII, so it is valid UTF-8 and only the size is wrong.
        w.send(frame(TEXT, length=2 ** 63 - 1, key=b"\0\0\0\0"))
        w.sock.setblocking(False)
    sent = [0] * SOCKETS
    closed = [None] * SOCKETS
    piece = b"a" * 1024
    # Fill to just under the limit at once, then trickle 1 KiB per connection per step.
    bulk = b"a" * (max_frame - 2048)
    for i, w in enumerate(conns):
        w.sock.setblocking(True)
        w.sock.settimeout(5)
        w.sock.sendall(bulk)
        sent[i] = len(bulk)
        w.sock.setblocking(False)
    deadline = time.monotonic() + scaled(10)
    while None in closed and time.monotonic() < deadline:
        for i, w in enumerate(conns):
            if closed[i] is not None:
                continue
            s = w.sock
            try:
                data = s.recv(65536, socket.MSG_PEEK)
            except BlockingIOError:
                data = None
            except ConnectionError:
                closed[i] = (sent[i], "reset")
                continue
            if data is not None:
                try:
                    _, _, opcode, payload = w.next_frame(2)
                    closed[i] = (sent[i], close_code(payload) if opcode == CLOSE
                                 else "opcode %d" % opcode)
                except (ConnectionError, NoData, OSError) as e:
                    closed[i] = (sent[i], repr(e))
                continue
            try:
                s.send(piece)
                sent[i] += len(piece)
            except (BlockingIOError, ConnectionError):
                pass
        time.sleep(0.01)
    for w in conns:
        w.close()
    return closed


async def test_ws_frame_declaring_2_63():
    max_frame = 65536
    async with Daemon({"limits": {"max_frame_bytes": max_frame}}) as d:
        closed, growth = await asyncio.to_thread(ws_trickle, d, max_frame)
        for i, c in enumerate(closed):
            check(c is not None, "connection %d: no close within the trickle" % i)
            at, code = c
            check_eq(code, 1009, "connection %d: close code" % i)
            # Not before the limit was passed, and soon after (one receive buffer of slack).
            check(at > max_frame,
                  "connection %d: closed after %d bytes, within the %d limit" % (i, at, max_frame))
            check(at <= max_frame + 64 * 1024,
                  "connection %d: closed only after %d bytes (limit %d)" % (i, at, max_frame))
        check(growth <= RSS_GROWTH_MAX_KIB, "VmRSS grew by %d KiB" % growth)
        await roundtrip(d)


run_tests(globals())
