#!/usr/bin/python3
"""
Helpers for the operator-feature tests (30-39): sd_notify, reload, drain,
journald priorities, audit lines, metrics. Built on wssd_test.py.

Pieces:
  NotifySocket()              an AF_UNIX datagram socket in the test's temp
                              dir that records every sd_notify datagram
  OpsDaemon(config, env=...)  a Daemon started with extra environment
                              variables (NOTIFY_SOCKET, WATCHDOG_USEC,
                              JOURNAL_STREAM), optionally without waiting
                              for event=ready; reload() sends SIGHUP
  reload_expect(d, outcome)   SIGHUP and the one event=reload line it gives
  raw_post()                  one HTTP request over asyncio streams, so that
                              dozens can be in flight at once
  RawSigner                   a minimal WebSocket client on a plain socket
                              that never answers a close frame
  stuck_signer(), all_503()   a signer that stops reading with frames
                              queued; the requesters' 503s at shutdown
  scrape()                    GET /metrics, parsed with prometheus_client
  port_accepts()              whether a TCP connect to a port succeeds
  cert_fingerprint()          SHA-256 of the certificate a TLS port presents
"""

import asyncio
import base64
import hashlib
import json
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import threading
import time

import wssd_test
from wssd_test import (BIN, Daemon, TestFailure, b64, check, check_eq, check_error_body,
                       current_tmpdir)

READY_TIMEOUT = wssd_test.READY_TIMEOUT


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


# ---------------------------------------------------------------------------
# A daemon with a chosen environment

class OpsDaemon(Daemon):
    """
    A Daemon whose process gets `env` added to (or, for a value of None,
    removed from) the test's environment. stdout and stderr both go to
    log_path. journal=True sets JOURNAL_STREAM to the device and inode of that
    file, as systemd does for a service whose stderr is the journal stream.
    wait_ready=False returns from start() right after the process is spawned.
    """

    def __init__(self, config=None, tls=False, env=None, journal=False, wait_ready=True,
                 **kw):
        super().__init__(config, tls=tls, **kw)
        self.env = dict(env or {})
        self.journal = journal
        self.wait_ready = wait_ready

    def start(self):
        if not os.path.exists(BIN):
            raise TestFailure("daemon binary not found: %s (set WSSIGND_BIN)" % BIN)
        env = dict(os.environ)
        # a JOURNAL_STREAM inherited from the test runner's own service must not leak in
        env.pop("JOURNAL_STREAM", None)
        env.pop("NOTIFY_SOCKET", None)
        env.pop("WATCHDOG_USEC", None)
        env.pop("WATCHDOG_PID", None)
        for k, v in self.env.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        self._log = open(self.log_path, "wb")
        if self.journal:
            st = os.fstat(self._log.fileno())
            env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        self.proc = subprocess.Popen(self.argv(), stdout=self._log, stderr=self._log,
                                     stdin=subprocess.DEVNULL, env=env)
        self.pid = self.proc.pid
        wssd_test._current["daemons"].append(self)
        wssd_test._current["started"].append(self)
        if self.wait_ready:
            self.wait_for_ready()
        return self

    def wait_log(self, pattern, timeout=5.0, count=1, since=0):
        """Waits until the log (from byte offset `since` of its text) holds at
        least `count` matches of the regex `pattern`; returns the matches."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            found = rx.findall(self.log_text()[since:])
            if len(found) >= count:
                return found
            rc = self.proc.poll()
            if rc is not None:
                self.returncode = rc
                raise TestFailure("daemon exited with %d while waiting for %r; log:\n%s"
                                  % (rc, pattern, self.log_text()))
            if time.monotonic() > deadline:
                raise TestFailure("no %r in the log within %.1f s (found %d of %d)"
                                  % (pattern, timeout, len(found), count))
            time.sleep(0.02)

    async def await_log(self, *args, **kw):
        return await asyncio.to_thread(self.wait_log, *args, **kw)

    def log_lines(self, since=0):
        return [l for l in self.log_text()[since:].splitlines() if l.strip()]

    def log_mark(self):
        """An offset into log_text() to pass as `since` later."""
        return len(self.log_text())

    def rewrite_config(self, cfg=None, text=None):
        """Replaces the config file with the dict cfg or the raw text."""
        tmp = self.config_path + ".new"
        with open(tmp, "w") as f:
            if text is not None:
                f.write(text)
            else:
                json.dump(cfg, f, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.config_path)

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def signal(self, signum):
        self.proc.send_signal(signum)


RELOAD_OK_RE = r"level=notice event=reload outcome=ok"
RELOAD_REFUSED_RE = r"level=err event=reload outcome=refused msg=.*"


async def reload_expect(d, outcome, since=None):
    """SIGHUP to the OpsDaemon d, then waits for one more event=reload line,
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
# Network helpers

def port_accepts(port, host="127.0.0.1", timeout=0.5):
    """True if a TCP connect to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def cert_fingerprint(port, host="127.0.0.1"):
    """SHA-256 (hex) of the DER certificate the TLS server on port presents."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
    return hashlib.sha256(der).hexdigest()


def pem_fingerprint(path):
    """SHA-256 (hex) of the first certificate in a PEM file."""
    with open(path) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    return hashlib.sha256(der).hexdigest()


async def raw_post(port, path, body, token=None, timeout=30.0):
    """
    One HTTP/1.1 request with Connection: close over asyncio streams.
    Returns (status, parsed JSON or None, headers dict with lower-case names).
    Raises OSError if the connection is refused or reset.
    """
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else (body or b"")
    head = ["POST %s HTTP/1.1" % path, "Host: 127.0.0.1", "Connection: close",
            "Content-Type: application/json", "Content-Length: %d" % len(data)]
    if token is not None:
        head.append("Authorization: Bearer " + token)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + data)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()
    if not raw:
        raise ConnectionResetError("empty HTTP answer")
    header, _, payload = raw.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        if ":" in l:
            k, v = l.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        payload = _dechunk(payload)
    try:
        parsed = json.loads(payload) if payload else None
    except ValueError:
        parsed = None
    return status, parsed, headers


def _dechunk(data):
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2:]
    return out


async def sign_raw(port, public_key, message, timeout_ms=None, token=None):
    """POST /v1/sign with raw_post; returns (status, body)."""
    body = {"public_key": b64(public_key), "message": b64(message)}
    if timeout_ms is not None:
        body["timeout_ms"] = timeout_ms
    status, parsed, _ = await raw_post(port, "/v1/sign", body, token=token,
                                       timeout=(timeout_ms or 60000) / 1000 + 30)
    return status, parsed


# ---------------------------------------------------------------------------
# A WebSocket client that ignores close frames

class RawSigner:
    """
    A signer on a blocking socket: opening handshake, challenge, introduction,
    then nothing. It reads frames only when asked and never sends a close
    frame back, so the daemon cannot finish the closing handshake with it.
    rcvbuf= shrinks its receive buffer, so that a peer that stops reading
    soon stalls the daemon's writes.
    """

    def __init__(self, port, seed=None, host="127.0.0.1", path="/v1/ws", rcvbuf=None):
        import nacl.signing
        self.port = port
        self.rcvbuf = rcvbuf
        self.host = host
        self.path = path
        self.sk = nacl.signing.SigningKey(seed if seed is not None else os.urandom(32))
        self.pk = bytes(self.sk.verify_key)
        self.sock = None
        self.buf = b""

    def connect(self, timeout=5.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if self.rcvbuf:
            # a small receive window, set before connecting so that it sticks
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", self.port))
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n"
               % (self.path, self.host, self.port, key, wssd_test.PROTOCOL))
        self.sock.sendall(req.encode())
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionResetError("closed during the opening handshake")
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        status = head.split(b"\r\n")[0]
        if b" 101 " not in status + b" ":
            raise ConnectionRefusedError("handshake refused: %r" % status)
        return self

    def send_text(self, text):
        payload = text.encode()
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            hdr = bytes([0x81, 0x80 | n])
        elif n < 65536:
            hdr = bytes([0x81, 0x80 | 126]) + struct.pack(">H", n)
        else:
            hdr = bytes([0x81, 0x80 | 127]) + struct.pack(">Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(hdr + mask + masked)

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("connection closed")
            self.buf += chunk

    def recv_frame(self, timeout=5.0):
        """Returns (opcode, payload bytes)."""
        self.sock.settimeout(timeout)
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        n = b1 & 0x7F
        off = 2
        if n == 126:
            self._need(4)
            n = struct.unpack(">H", self.buf[2:4])[0]
            off = 4
        elif n == 127:
            self._need(10)
            n = struct.unpack(">Q", self.buf[2:10])[0]
            off = 10
        self._need(off + n)
        payload = self.buf[off:off + n]
        self.buf = self.buf[off + n:]
        return b0 & 0x0F, payload

    def recv_json(self, timeout=5.0):
        while True:
            op, payload = self.recv_frame(timeout)
            if op == 1:
                return json.loads(payload)
            if op == 8:
                raise ConnectionResetError("close frame %r" % payload[:2])

    def introduce(self):
        ch = self.recv_json()
        check(ch.get("type") == "challenge", "expected a challenge, got %r" % ch)
        msg = (wssd_test.INTRO_DOMAIN + b"\n" + self.host.encode() + b"\n" +
               ch["nonce"].encode())
        self.send_text(json.dumps({"type": "introduction", "public_key": b64(self.pk),
                                   "host": self.host,
                                   "proof": b64(self.sk.sign(msg).signature)}))
        resp = self.recv_json()
        check(resp.get("type") == "introduced", "introduction refused: %r" % resp)
        return self

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass


async def stuck_signer(d, n=200, size=24000):
    """
    A RawSigner that stops reading after n sign_requests of size bytes (~6 MB
    in all, more than the socket buffers hold), so that frames stay queued in
    the daemon (limits.max_queued_bytes must allow it). Returns (signer,
    requester tasks).
    """
    raw = RawSigner(d.port, rcvbuf=4096)
    await asyncio.to_thread(lambda: raw.connect().introduce())
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


# ---------------------------------------------------------------------------
# Prometheus scrape

class Scrape:
    """One parsed /metrics answer: families by name, samples by (name, labels)."""

    def __init__(self, text, headers):
        from prometheus_client.parser import text_string_to_metric_families
        self.text = text
        self.headers = headers
        self.families = {}
        self.samples = {}
        for fam in text_string_to_metric_families(text):
            self.families[fam.name] = fam
            for s in fam.samples:
                self.samples[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def value(self, name, default=None, **labels):
        return self.samples.get((name, tuple(sorted(labels.items()))), default)

    def matching(self, name, **labels):
        """Samples of `name` whose labels include `labels`: [(labels dict, value)]."""
        out = []
        for (n, lbl), v in self.samples.items():
            d = dict(lbl)
            if n == name and all(d.get(k) == w for k, w in labels.items()):
                out.append((d, v))
        return out

    def total(self, name, **labels):
        return sum(v for _, v in self.matching(name, **labels))


def scrape(port, token=None):
    """GET /metrics; returns a Scrape. Fails unless the answer is 200."""
    status, _, raw, headers = wssd_test.http("GET", port, "/metrics", token=token, raw=True,
                                             timeout=10)
    if status != 200:
        raise TestFailure("GET /metrics: HTTP %r %r" % (status, raw[:200]))
    if not raw.startswith(b"#") and not raw[:1].isalpha():
        raise TestFailure("/metrics answer is not Prometheus text: %r" % raw[:200])
    return Scrape(raw.decode("utf-8"), {k.lower(): v for k, v in headers.items()})


async def ascrape(port, token=None):
    return await asyncio.to_thread(scrape, port, token)
