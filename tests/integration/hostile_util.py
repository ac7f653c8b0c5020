#!/usr/bin/python3
"""
Helpers for the hostile-input end-to-end tests (40-49). They speak raw bytes
to the real daemon: HTTP requests written by hand, WebSocket frames packed
with struct (masking included), TLS through Python's ssl or `openssl
s_client`. Built on wssd_test.py.

Pieces:
  frame(opcode, payload, ...)   one WebSocket frame as bytes (client side:
                                masked unless mask=False)
  close_payload(code, reason)   the payload of a close frame
  upgrade_request(...)          a WebSocket upgrade request as bytes
  RawHTTP                       one TCP (or TLS) connection: send bytes, read
                                a response head/body, see whether the peer
                                closed
  RawWS                         a WebSocket client on a plain socket: the
                                handshake, frames in and out, the close
                                handshake, the introduction
  CaseRunner                    runs named cases, counts them, collects every
                                failure of a group before failing the test
                                (WSSIGND_TEST_VERBOSE=1 lists passed cases too)
  refused_upgrade(), accepted_upgrade()
                                an upgrade that must get no 101 / must get
                                101 and the challenge
  roundtrip(d), aroundtrip(d)   a fresh honest signer: introduce + POST
                                /v1/sign + independent verification
  raw_roundtrip(d, **req)       the same over RawWS (custom upgrade headers,
                                TLS)
  apost(), asign()              POST over asyncio streams (many in flight)
  metric(d, name, **labels)     one value from GET /metrics
  listening(port)               the listening sockets of a port as seen in
                                /proc/net/tcp and /proc/net/tcp6
  rss_kb(pid)                   VmRSS of a process
  connect_refused(), log_count(), error_code()
"""

import asyncio
import atexit
import base64
import hashlib
import json
import os
import re
import select
import socket
import ssl
import struct
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import nacl.signing

from wssd_test import (INTRO_DOMAIN, PROTOCOL, TestFailure, b64, check, check_eq, unb64,
                       verify)

# opcodes
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class PeerClosed(Exception):
    """The TCP connection ended (EOF or reset) before the awaited data."""


class NoData(Exception):
    """Nothing (complete) arrived within the time allowed."""


# ---------------------------------------------------------------------------
# Frames

def mask_bytes(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return b""
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, key=None, length=None):
    """
    One frame. rsv is the 3-bit RSV1..RSV3 field (4 = RSV1). length, when
    given, is the declared payload length (it may differ from len(payload)).
    """
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    b0 = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    n = len(payload) if length is None else length
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if mask:
        key = key if key is not None else os.urandom(4)
        return head + key + mask_bytes(payload, key)
    return head + payload


def close_payload(code=None, reason=b""):
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    if code is None:
        return reason
    return struct.pack("!H", code) + reason


def parse_frames(buf: bytearray):
    """Pops every complete server frame off buf: [(fin, rsv, opcode, payload)]."""
    out = []
    while True:
        if len(buf) < 2:
            return out
        b0, b1 = buf[0], buf[1]
        n = b1 & 0x7F
        off = 2
        if n == 126:
            if len(buf) < 4:
                return out
            n = struct.unpack("!H", bytes(buf[2:4]))[0]
            off = 4
        elif n == 127:
            if len(buf) < 10:
                return out
            n = struct.unpack("!Q", bytes(buf[2:10]))[0]
            off = 10
        key = None
        if b1 & 0x80:
            if len(buf) < off + 4:
                return out
            key = bytes(buf[off:off + 4])
            off += 4
        if len(buf) < off + n:
            return out
        payload = bytes(buf[off:off + n])
        if key:
            payload = mask_bytes(payload, key)
        del buf[:off + n]
        out.append((bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, payload))


def ws_accept(key_b64: str) -> str:
    return base64.b64encode(hashlib.sha1(key_b64.encode() + WS_GUID).digest()).decode()


def upgrade_request(path="/v1/ws", host="127.0.0.1", key=None, version="13",
                    method="GET", http="HTTP/1.1", protocol=None, origin=None, extra=(),
                    omit=(), upgrade="websocket", connection="Upgrade"):
    """
    A WebSocket upgrade request. Any standard header can be left out by
    naming it in omit (case-insensitive); extra is a list of (name, value)
    or raw header lines (str) appended as they are.
    """
    key = key if key is not None else b64(os.urandom(16))
    hdrs = [("Host", host), ("Upgrade", upgrade), ("Connection", connection),
            ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", version)]
    if protocol is not None:
        hdrs.append(("Sec-WebSocket-Protocol", protocol))
    if origin is not None:
        hdrs.append(("Origin", origin))
    skip = {o.lower() for o in omit}
    lines = ["%s %s %s" % (method, path, http)]
    lines += ["%s: %s" % (k, v) for k, v in hdrs if k.lower() not in skip]
    for e in extra:
        lines.append(e if isinstance(e, str) else "%s: %s" % e)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# ---------------------------------------------------------------------------
# A raw connection

def tls_client_context(cafile=None, alpn=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cafile:
        ctx.load_verify_locations(cafile)
    else:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


class RawHTTP:
    """One TCP (optionally TLS) connection that sends raw bytes and parses what
    comes back. source binds the client side (e.g. "127.0.0.2")."""

    def __init__(self, port, host="127.0.0.1", tls=None, source=None, timeout=5.0,
                 rcvbuf=None, family=socket.AF_INET):
        self.port = port
        self.host = host
        self.buf = bytearray()
        self.eof = False
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if source:
            self.sock.bind((source, 0))
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname="localhost")
        self.sock.settimeout(None)

    # -- sending

    def send(self, data: bytes):
        self.sock.sendall(data)

    def send_slowly(self, data: bytes, chunk=1, pause=0.0):
        """Writes data in pieces of `chunk` bytes (TCP_NODELAY), so the daemon
        sees it split at every boundary."""
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(data), chunk):
            if not self.try_send(data[i:i + chunk]):
                return False      # the peer closed; what it sent stays readable
            if pause:
                time.sleep(pause)
        return True

    def try_send(self, data: bytes) -> bool:
        """sendall that reports a reset/broken pipe as False instead of raising."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            return False

    # -- receiving

    def _fill(self, deadline) -> bool:
        """Reads once; False on timeout. Sets eof on EOF or reset."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            ready = True
        else:
            ready = select.select([self.sock], [], [], left)[0]
        if not ready:
            return False
        try:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ssl.SSLWantReadError:
            return True
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            data = b""
        finally:
            try:
                self.sock.settimeout(None)
            except OSError:
                pass
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_head(self, timeout=5.0):
        """
        Reads a response head. Returns (status, {lower-name: value}), or
        (None, {}) when the peer closed without sending a complete head.
        Raises NoData if nothing ended within timeout.
        """
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                if self.eof:
                    return None, {}
                if time.monotonic() >= deadline:
                    raise NoData("no response head within %.1f s (got %r)"
                                 % (timeout, bytes(self.buf[:200])))
        i = self.buf.index(b"\r\n\r\n")
        head = bytes(self.buf[:i]).decode("latin-1")
        del self.buf[:i + 4]
        lines = head.split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
        if not m:
            raise TestFailure("not an HTTP status line: %r" % lines[0])
        hdrs = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                hdrs.setdefault(k.strip().lower(), v.strip())
        return int(m.group(1)), hdrs

    def read_body(self, hdrs, timeout=5.0):
        deadline = time.monotonic() + timeout
        if "content-length" in hdrs:
            n = int(hdrs["content-length"])
            while len(self.buf) < n and self._fill(deadline):
                pass
            body = bytes(self.buf[:n])
            del self.buf[:n]
            return body
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            while not self.buf.endswith(b"0\r\n\r\n") and self._fill(deadline):
                pass
            return dechunk(bytes(self.buf))
        while self._fill(deadline):
            pass
        body = bytes(self.buf)
        self.buf.clear()
        return body

    def response(self, timeout=5.0):
        """(status, headers, body bytes, parsed JSON or None); status None when
        the peer closed without answering."""
        status, hdrs = self.read_head(timeout)
        if status is None:
            return None, {}, b"", None
        body = self.read_body(hdrs, timeout)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        return status, hdrs, body, parsed

    def read_some(self, timeout=2.0):
        """Whatever arrives within timeout (until EOF or a quiet timeout)."""
        deadline = time.monotonic() + timeout
        while self._fill(deadline):
            pass
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def closed_within(self, timeout) -> bool:
        """True if the peer closed (EOF/reset) within timeout; data read
        meanwhile is kept in buf."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            if not self._fill(deadline) and not self.eof and time.monotonic() >= deadline:
                return False
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        line, _, rest = data.partition(b"\r\n")
        try:
            n = int(line.split(b";")[0], 16)
        except ValueError:
            break
        if n == 0:
            break
        out += rest[:n]
        data = rest[n + 2:]
    return bytes(out)


def http_exchange(port, request: bytes, timeout=5.0, **kw):
    """Sends request on a new connection; returns (status, headers, body, parsed,
    closed_after) where closed_after tells whether the peer closed within 2 s of
    the answer."""
    with RawHTTP(port, **kw) as c:
        c.send(request)
        status, hdrs, body, parsed = c.response(timeout)
        closed = True if status is None else c.closed_within(2.0)
        return status, hdrs, body, parsed, closed


def http_request(method, path, body=None, headers=(), omit=(), host="127.0.0.1",
                 http="HTTP/1.1", content_type="application/json"):
    """
    An HTTP request as bytes. body: dict/list (sent as JSON), str or bytes.
    Host, Content-Type (when there is a body) and Content-Length are added
    unless named in omit; headers is a list of (name, value) or raw lines.
    """
    data = None
    if body is not None:
        data = json.dumps(body).encode() if isinstance(body, (dict, list)) else \
            (body if isinstance(body, bytes) else body.encode())
    skip = {o.lower() for o in omit}
    hdrs = [("Host", host)]
    if data is not None:
        if content_type is not None:
            hdrs.append(("Content-Type", content_type))
        hdrs.append(("Content-Length", str(len(data))))
    lines = ["%s %s %s" % (method, path, http)]
    lines += ["%s: %s" % (k, v) for k, v in hdrs if k.lower() not in skip]
    lines += [h if isinstance(h, str) else "%s: %s" % h for h in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (data or b"")


# ---------------------------------------------------------------------------
# A raw WebSocket client

class RawWS(RawHTTP):
    """
    A WebSocket client on a plain socket. handshake() sends an upgrade
    request and returns the status; open() asserts 101 and reads the
    challenge. Frames are read with next_frame(); the close handshake with
    expect_close().
    """

    def __init__(self, port, host="127.0.0.1", tls=None, source=None, timeout=5.0, **kw):
        super().__init__(port, host=host, tls=tls, source=source, timeout=timeout, **kw)
        self.challenge = None
        self.status = None
        self.resp_headers = {}
        self.frames = []      # every frame popped by next_frame, in order
        self.pending = []     # parsed frames not yet returned

    def handshake(self, timeout=5.0, **req):
        key = req.pop("key", None) or b64(os.urandom(16))
        self.send(upgrade_request(key=key, **req))
        self.status, self.resp_headers = self.read_head(timeout)
        if self.status == 101:
            check_eq(self.resp_headers.get("sec-websocket-accept"), ws_accept(key),
                     "Sec-WebSocket-Accept")
        return self.status

    def open(self, timeout=5.0, read_challenge=True, **req):
        st = self.handshake(timeout, **req)
        if st != 101:
            raise TestFailure("upgrade refused: status %r %r" % (st, self.resp_headers))
        if read_challenge:
            f = self.next_message(timeout)
            check_eq(f.get("type"), "challenge", "first frame (%r)" % (f,))
            check_eq(f.get("protocol"), PROTOCOL, "challenge protocol")
            check_eq(len(unb64(f["nonce"])), 32, "challenge nonce length")
            self.challenge = f
        return self

    # -- frames out

    def send_frame(self, opcode, payload=b"", **kw):
        self.send(frame(opcode, payload, **kw))

    def send_text(self, text, **kw):
        self.send_frame(TEXT, text, **kw)

    def send_json(self, obj, **kw):
        self.send_text(json.dumps(obj), **kw)

    def send_close(self, code=1000, reason=b"", **kw):
        self.send_frame(CLOSE, close_payload(code, reason), **kw)

    # -- frames in

    def next_frame(self, timeout=5.0):
        """Next frame (fin, rsv, opcode, payload). Raises PeerClosed on EOF,
        NoData on timeout."""
        deadline = time.monotonic() + timeout
        while not self.pending:
            self.pending += parse_frames(self.buf)
            if self.pending:
                break
            if not self._fill(deadline):
                if self.eof:
                    self.pending += parse_frames(self.buf)
                    if self.pending:
                        break
                    raise PeerClosed("connection ended (no frame; %d bytes left)"
                                     % len(self.buf))
                if time.monotonic() >= deadline:
                    raise NoData("no frame within %.1f s" % timeout)
        f = self.pending.pop(0)
        self.frames.append(f)
        return f

    def next_message(self, timeout=5.0, answer_pings=False):
        """Next text frame as JSON (control frames skipped; pings answered when
        answer_pings). A close frame raises TestFailure naming its code."""
        deadline = time.monotonic() + timeout
        while True:
            fin, rsv, op, payload = self.next_frame(max(0.01, deadline - time.monotonic()))
            if op == TEXT:
                try:
                    return json.loads(payload)
                except ValueError:
                    raise TestFailure("text frame is not JSON: %r" % payload[:200])
            if op == CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                raise TestFailure("connection closed with %r %r while a message was "
                                  "expected" % (code, payload[2:]))
            if op == PING and answer_pings:
                self.send_frame(PONG, payload)

    def expect_error(self, code, timeout=5.0):
        f = self.next_message(timeout)
        if f.get("type") != "error" or f.get("code") != code:
            raise TestFailure("expected error frame %r, got %r" % (code, f))
        check(isinstance(f.get("message"), str), "error frame without message: %r" % f)
        return f

    def read_close(self, timeout=5.0, max_before=None):
        """
        Reads until a close frame; returns (code, reason bytes, frames before).
        code is None for an empty close payload; 1006 when the TCP connection
        ended without a close frame. With max_before, more data frames than
        that before the close fail at once (instead of waiting for a close
        that will not come).
        """
        before = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                f = self.next_frame(max(0.01, deadline - time.monotonic()))
            except PeerClosed:
                return 1006, b"", before
            except NoData:
                raise TestFailure("no close within %.1f s (frames %r)"
                                  % (timeout, [(x[2], x[3][:100]) for x in before]))
            if f[2] == CLOSE:
                p = f[3]
                code = struct.unpack("!H", p[:2])[0] if len(p) >= 2 else None
                return code, p[2:], before
            before.append(f)
            data = [x for x in before if x[2] in (TEXT, BINARY, CONT)]
            if max_before is not None and len(data) > max_before:
                raise TestFailure("expected a close, got data frame(s) %r"
                                  % [x[3][:120] for x in data])

    def expect_close(self, code, timeout=5.0, eof_within=None, reply=True, max_before=0):
        """
        Expects a close frame with code (after at most max_before data
        frames; control frames are tolerated) and answers it; with
        eof_within, also expects the TCP connection to end within that many
        seconds. Returns the frames seen before the close.
        """
        got, reason, before = self.read_close(timeout, max_before)
        if got != code:
            raise TestFailure("expected close %r, got %r (reason %r; frames before %r)"
                              % (code, got, reason, [(f[2], f[3][:80]) for f in before]))
        if reply and got != 1006:
            self.try_send(frame(CLOSE, close_payload(1000 if code is None else code)))
        if got != 1006 and eof_within is not None:
            check(self.closed_within(eof_within),
                  "TCP connection still open %.1f s after close %r" % (eof_within, code))
        return before

    def is_open(self, within=0.2) -> bool:
        """True if a ping sent now is answered (within max(within, 2) s)
        before any close frame or EOF."""
        payload = os.urandom(8)
        if not self.try_send(frame(PING, payload)):
            return False
        deadline = time.monotonic() + max(within, 2.0)
        while True:
            try:
                f = self.next_frame(max(0.01, deadline - time.monotonic()))
            except (PeerClosed, NoData):
                return False
            if f[2] == CLOSE:
                return False
            if f[2] == PONG and f[3] == payload:
                return True

    # -- the introduction

    def introduce(self, seed=None, host="127.0.0.1", timeout=5.0):
        """Sends an honest introduction and expects "introduced"; returns the
        signing key."""
        sk = nacl.signing.SigningKey(seed if seed is not None else os.urandom(32))
        self.sk = sk
        self.pk = bytes(sk.verify_key)
        self.send_json(intro_frame(sk, self.challenge["nonce"], host))
        f = self.next_message(timeout)
        check_eq(f.get("type"), "introduced", "answer to an honest introduction (%r)" % (f,))
        return sk


def intro_proof(sk, nonce_b64, host="127.0.0.1") -> bytes:
    return sk.sign(INTRO_DOMAIN + b"\n" + host.encode() + b"\n" + nonce_b64.encode()).signature


def intro_frame(sk, nonce_b64, host="127.0.0.1", **override):
    f = {"type": "introduction", "public_key": b64(bytes(sk.verify_key)), "host": host,
         "proof": b64(intro_proof(sk, nonce_b64, host))}
    for k, v in override.items():
        if v is None:
            f.pop(k, None)
        else:
            f[k] = v
    return f


# ---------------------------------------------------------------------------
# Cases

_totals = {"run": 0, "passed": 0}


def _print_totals():
    name = os.path.basename(sys.argv[0])
    print("%s: %d hostile cases run, %d passed" % (name, _totals["run"], _totals["passed"]),
          flush=True)


atexit.register(_print_totals)


class CaseRunner:
    """
    Runs named cases of one group. A failing case is recorded and the group
    goes on; finish() raises one TestFailure listing every failed case.

        cases = CaseRunner("T-W2")
        with cases("opcode 3"):
            ...
        cases.finish()
    """

    def __init__(self, group):
        self.group = group
        self.failures = []
        self._name = None

    def __call__(self, name):
        self._name = name
        return self

    def __enter__(self):
        _totals["run"] += 1
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            _totals["passed"] += 1
            if os.environ.get("WSSIGND_TEST_VERBOSE") == "1":
                print("  case ok: %s / %s" % (self.group, self._name), flush=True)
            return False
        if issubclass(exc_type, (KeyboardInterrupt, SystemExit)):
            return False
        self.failures.append("%s / %s: %s: %s" % (self.group, self._name, exc_type.__name__,
                                                  exc))
        print("  case FAILED: %s / %s: %s" % (self.group, self._name, exc), flush=True)
        return True

    def finish(self):
        if self.failures:
            raise TestFailure("%d case(s) failed:\n  %s"
                              % (len(self.failures), "\n  ".join(self.failures)))


def case_count():
    return dict(_totals)


# ---------------------------------------------------------------------------
# Round trips, metrics, sockets

async def aroundtrip(d, seed=None):
    """A fresh honest signer introduces itself and signs one message end to end."""
    async with d.signer(seed=seed) as s:
        msg = b"honest round trip " + os.urandom(8)
        status, body, _ = await d.sign(s.pk, msg, timeout_ms=15000)
        check_eq(status, 200, "honest round trip (body %r)" % (body,))
        check(verify(s.pk, msg, unb64(body["signature"])), "honest signature verifies")


def roundtrip(d, seed=None):
    """aroundtrip() from synchronous code."""
    asyncio.run(aroundtrip(d, seed))


def metrics_text(d, token=None):
    from wssd_test import http
    hdrs = {"Authorization": "Bearer " + token} if token else {}
    status, _, raw, _ = http("GET", d.control_port, "/metrics", headers=hdrs, raw=True,
                             timeout=10)
    check_eq(status, 200, "GET /metrics")
    return raw.decode()


def metric(d, name, token=None, **labels):
    """Sum of the samples of `name` whose labels include `labels` (0 if none)."""
    total = 0.0
    for line in metrics_text(d, token).splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(got.get(k) == v for k, v in labels.items()):
            total += float(m.group(3))
    return total


def listening(port):
    """[(proto, local address text)] of LISTEN sockets on port, from
    /proc/net/tcp and /proc/net/tcp6."""
    out = []
    for proto, path in (("tcp", "/proc/net/tcp"), ("tcp6", "/proc/net/tcp6")):
        try:
            lines = open(path).read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            parts = line.split()
            local, state = parts[1], parts[3]
            if state != "0A":
                continue
            addr_hex, port_hex = local.split(":")
            if int(port_hex, 16) != port:
                continue
            raw = bytes.fromhex(addr_hex)
            if proto == "tcp":
                addr = socket.inet_ntop(socket.AF_INET, raw[::-1])
            else:
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                addr = socket.inet_ntop(socket.AF_INET6, words)
            out.append((proto, "%s:%d" % (addr, port)))
    return out


def rss_kb(pid) -> int:
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def connect_refused(host, port, family=socket.AF_INET, timeout=3.0) -> bool:
    """True if a TCP connect to host:port is refused (or fails)."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def log_count(d, pattern) -> int:
    return len(re.findall(pattern, d.log_text()))


REFUSED = (None, 400, 403, 404, 426)


def refused_upgrade(port, statuses=REFUSED, timeout=5.0, tls=None, source=None, **req):
    """
    Sends an upgrade request that must be refused: no 101, a status in
    `statuses` (None = the connection was closed without an answer), and
    no WebSocket frame afterwards. Returns the status.
    """
    with RawWS(port, tls=tls, source=source) as w:
        st = w.handshake(timeout=timeout, **req)
        if st == 101:
            first = w.read_some(0.3)[:80]
            raise TestFailure("upgrade accepted with 101 (then %r)" % first)
        if st not in statuses:
            raise TestFailure("expected one of %r, got HTTP %r" % (statuses, st))
        if st is not None:
            body = w.read_body(w.resp_headers, 2.0)
            check(not body.startswith(b"\x81"), "WebSocket frame after a refusal: %r"
                  % body[:40])
        return st


def accepted_upgrade(port, tls=None, **req):
    """The upgrade must get 101 and the challenge; returns the response headers."""
    with RawWS(port, tls=tls) as w:
        w.open(**req)
        return w.resp_headers


def raw_roundtrip(d, tls=None, source=None, timeout=10.0, **req):
    """
    An honest round trip over RawWS (so the upgrade request can carry e.g.
    an Origin): introduce, POST /v1/sign from a thread, answer the
    sign_request, expect 200 with a signature that verifies.
    """
    import threading
    from wssd_test import http
    with RawWS(d.port, tls=tls, source=source) as w:
        w.open(**req)
        sk = w.introduce()
        msg = b"raw round trip " + os.urandom(8)
        out = {}

        def post():
            out["r"] = http("POST", d.control_port, "/v1/sign",
                            {"public_key": b64(w.pk), "message": b64(msg),
                             "timeout_ms": int(timeout * 1000)}, timeout=timeout + 5)
        t = threading.Thread(target=post, daemon=True)
        t.start()
        f = w.next_message(timeout, answer_pings=True)
        check_eq(f.get("type"), "sign_request", "frame after POST /v1/sign (%r)" % (f,))
        check_eq(unb64(f["message"]), msg, "sign_request.message")
        w.send_json({"type": "sign_response", "request_id": f["request_id"],
                     "message": f["message"], "signature": b64(sk.sign(msg).signature)})
        t.join(timeout + 6)
        status, body = out.get("r", (None, None))
        check_eq(status, 200, "raw round trip (body %r)" % (body,))
        check(verify(w.pk, msg, unb64(body["signature"])), "raw round trip signature verifies")
        w.try_send(frame(CLOSE, close_payload(1000)))


async def apost(d, body, path="/v1/sign", token=None, timeout=70.0, headers=()):
    """
    One POST over asyncio streams (no thread pool, so hundreds can be in
    flight). body: dict (JSON) or bytes. Returns (status, parsed JSON or None).
    """
    import asyncio as _asyncio
    data = json.dumps(body).encode() if isinstance(body, (dict, list)) else body
    hdrs = list(headers)
    if token:
        hdrs.append(("Authorization", "Bearer " + token))
    req = http_request("POST", path, data, headers=hdrs)
    reader, writer = await _asyncio.wait_for(
        _asyncio.open_connection("127.0.0.1", d.control_port), timeout)
    try:
        writer.write(req)
        await writer.drain()
        head = await _asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hd = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                hd[k.strip().lower()] = v.strip()
        if "content-length" in hd:
            payload = await _asyncio.wait_for(reader.readexactly(int(hd["content-length"])),
                                              timeout)
        elif hd.get("transfer-encoding", "").lower() == "chunked":
            raw = b""
            while not raw.endswith(b"0\r\n\r\n"):
                chunk = await _asyncio.wait_for(reader.read(65536), timeout)
                if not chunk:
                    break
                raw += chunk
            payload = dechunk(raw)
        else:
            payload = await _asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    try:
        parsed = json.loads(payload) if payload else None
    except ValueError:
        parsed = None
    return status, parsed


async def asign(d, public_key: bytes, message: bytes, timeout_ms=None, token=None):
    """POST /v1/sign through apost(); returns (status, body)."""
    body = {"public_key": b64(public_key), "message": b64(message)}
    if timeout_ms is not None:
        body["timeout_ms"] = timeout_ms
    return await apost(d, body, token=token)


def error_code(body):
    return (body or {}).get("error", {}).get("code") if isinstance(body, dict) else None
