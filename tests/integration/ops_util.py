#!/usr/bin/python3
"""
Helpers for the operator-feature tests (30-39): sd_notify, reload, drain,
journald priorities, audit lines, metrics. Built on the harness (wssd_test):
Daemon takes the environment (NOTIFY_SOCKET, WATCHDOG_USEC, JOURNAL_STREAM)
and waits for log lines, and OpsDaemon is another name for it; the metrics
scraper, port_accepts() and the certificate fingerprints are the harness's
own and importable from here too. This module adds:

  NotifySocket()              an AF_UNIX datagram socket in the test's temp
                              dir that records every sd_notify datagram
  reload_expect(d, outcome)   SIGHUP and the one event=reload line it gives
  raw_post(), sign_raw()      one HTTP request with Connection: close, so that
                              dozens can be in flight at once
  stuck_signer(), all_503()   a signer that stops reading with frames
                              queued; the requesters' 503s at shutdown
"""

import asyncio
import os
import re
import socket
import struct
import threading
import time

from wssd_test import (PROTOCOL, READY_TIMEOUT, Daemon, Metrics, RawWS,  # noqa: F401
                       TestFailure, ahttp, ascrape, b64, cert_fingerprint, check, check_eq,
                       check_error_body, current_tmpdir, pem_fingerprint, port_accepts, scrape)

OpsDaemon = Daemon
Scrape = Metrics


# ---------------------------------------------------------------------------
# sd_notify receiver

class NotifySocket:
    """
    Binds an AF_UNIX SOCK_DGRAM socket (the NOTIFY_SOCKET a service manager
    would provide) and records each datagram as (monotonic time, sender pid,
    {KEY: VALUE}, raw text) from a reader thread. on_ready, if set, is called
    in the reader thread as soon as a datagram with READY=1 arrives.
    """

    def __init__(self, on_ready=None):
        self.path = os.path.join(current_tmpdir(), "notify-%d.sock" % os.getpid())
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(0.05)
        self.on_ready = on_ready
        self.messages = []          # (t, pid, fields, raw)
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        cmsg_len = socket.CMSG_SPACE(struct.calcsize("3i"))
        while not self.closed:
            try:
                data, anc, _flags, _addr = self.sock.recvmsg(65536, cmsg_len)
            except socket.timeout:
                continue
            except OSError:
                return
            t = time.monotonic()
            pid = None
            for level, ctype, cdata in anc:
                if level == socket.SOL_SOCKET and ctype == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", cdata[:12])[0]
            raw = data.decode("utf-8", "replace")
            fields = {}
            for line in raw.split("\n"):
                if "=" in line:
                    k, v = line.split("=", 1)
                    fields[k] = v
            if fields.get("READY") == "1" and self.on_ready is not None:
                try:
                    self.on_ready(t, fields)
                except Exception:
                    pass
            with self.lock:
                self.messages.append((t, pid, fields, raw))

    def snapshot(self):
        with self.lock:
            return list(self.messages)

    def find(self, key, value=None, since=0.0):
        """Messages (t, pid, fields, raw) after `since` carrying key (=value)."""
        return [m for m in self.snapshot()
                if m[0] >= since and key in m[2] and (value is None or m[2][key] == value)]

    def wait_for(self, key, value=None, since=0.0, timeout=5.0, match=None):
        """First message after `since` with key (=value, or whose value matches
        the regex `match`); raises TestFailure after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            for m in self.find(key, value, since):
                if match is None or re.search(match, m[2][key]):
                    return m
            if time.monotonic() > deadline:
                raise TestFailure("no %s%s datagram within %.1f s (received: %r)"
                                  % (key, "=" + value if value else
                                     (" matching %r" % match if match else ""),
                                     timeout, [m[3] for m in self.snapshot()][-20:]))
            time.sleep(0.01)

    async def await_for(self, *args, **kw):
        return await asyncio.to_thread(self.wait_for, *args, **kw)

    def close(self):
        self.closed = True
        self.thread.join(1.0)
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


RELOAD_OK_RE = r"level=notice event=reload outcome=ok"
RELOAD_REFUSED_RE = r"level=err event=reload outcome=refused msg=.*"


async def reload_expect(d, outcome, since=None):
    """SIGHUP to the Daemon d, then waits for one more event=reload line,
    which must have this outcome ("ok" or "refused"); returns it."""
    mark = d.log_mark() if since is None else since
    d.reload()
    rx = RELOAD_OK_RE if outcome == "ok" else RELOAD_REFUSED_RE
    await d.await_log(rx, 5.0, since=mark)
    await asyncio.sleep(0.2)
    lines = [l for l in d.log_lines(mark) if re.search(r"event=reload( |$)", l)]
    check_eq(len(lines), 1, "event=reload lines after one SIGHUP (%r)" % lines)
    check(re.search(rx, lines[0]), "reload line %r, expected outcome=%s" % (lines[0], outcome))
    return lines[0]


# ---------------------------------------------------------------------------
# Requests that close their connection

async def raw_post(port, path, body, token=None, timeout=30.0):
    """
    One HTTP/1.1 request with Connection: close over asyncio streams.
    Returns (status, parsed JSON or None, headers dict with lower-case names).
    Raises OSError if the connection is refused or reset.
    """
    status, parsed, _, headers = await ahttp("POST", port, path, body, token, timeout,
                                             headers={"Connection": "close"}, raw=True)
    return status, parsed, headers


async def sign_raw(port, public_key, message, timeout_ms=None, token=None):
    """POST /v1/sign with raw_post; returns (status, body)."""
    body = {"public_key": b64(public_key), "message": b64(message)}
    if timeout_ms is not None:
        body["timeout_ms"] = timeout_ms
    status, parsed, _ = await raw_post(port, "/v1/sign", body, token=token,
                                       timeout=(timeout_ms or 60000) / 1000 + 30)
    return status, parsed


# ---------------------------------------------------------------------------
# A signer that stops reading

async def stuck_signer(d, n=200, size=24000):
    """
    A RawWS signer (which never answers a close frame) that stops reading
    after n sign_requests of size bytes (~6 MB in all, more than the socket
    buffers hold), so that frames stay queued in the daemon
    (limits.max_queued_bytes must allow it). Returns (signer, requester
    tasks).
    """
    raw = RawWS(d.port, rcvbuf=4096)  # a small receive window: the daemon's writes stall
    await asyncio.to_thread(lambda: raw.open(protocol=PROTOCOL).introduce())
    tasks = [asyncio.ensure_future(sign_raw(d.control_port, raw.pk, os.urandom(size),
                                            timeout_ms=30000)) for _ in range(n)]
    await asyncio.sleep(1.5)
    check(not any(t.done() for t in tasks), "a request ended before SIGTERM")
    return raw, tasks


async def all_503(tasks, t0):
    """Every requester task ends with 503 shutting_down, within 1 s of t0."""
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 5)
    for i, r in enumerate(results):
        if isinstance(r, BaseException):
            raise TestFailure("requester %d got no HTTP answer: %r" % (i, r))
        check_error_body(r[0], r[1], 503, "shutting_down", "requester %d" % i)
    check(time.monotonic() - t0 < 1.0, "requesters answered %.2f s after SIGTERM"
          % (time.monotonic() - t0))
