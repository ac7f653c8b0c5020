"""
The raw WebSocket client of the tests (RFC 6455 on a plain or TLS socket):
frames packed by hand (masking included, any length, any flag), the upgrade
request, reading frames, the close handshake and the introduction. It sends
what no library would, and never answers a close frame unless told to.

  frame(opcode, payload, ...)   one frame as bytes (masked unless mask=False)
  parse_frames(buf)             pops every complete frame off a bytearray
  close_payload(), close_code() the payload of a close frame and back
  upgrade_request(...)          a WebSocket upgrade request as bytes
  ws_accept(key)                the Sec-WebSocket-Accept for a key
  RawWS                         the client: handshake, frames in and out, the
                                close handshake, the introduction. Server-side
                                connections subclass it with masked = False.
"""

import base64
import hashlib
import json
import os
import struct
import time

import nacl.signing

from .base import PROTOCOL, TestFailure, b64, check, check_eq, intro_frame, unb64
from .httpc import NoData, PeerClosed, RawHTTP

# opcodes
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


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
    mask=False gives a server's unmasked frame; key fixes the masking key.
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


def close_code(payload):
    """The status code of a close frame's payload; None for an empty one."""
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None


def parse_frames(buf: bytearray):
    """Pops every complete frame off buf (masked or not):
    [(fin, rsv, opcode, unmasked payload)]."""
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
# The client

class RawWS(RawHTTP):
    """
    A WebSocket client on a plain socket. handshake() sends an upgrade
    request and returns the status; open() asserts 101 and reads the
    challenge. Frames are read with next_frame(); the close handshake with
    expect_close(). Nothing is answered unless a method says so.
    """

    masked = True     # a client masks what it sends; a server-side subclass does not

    def __init__(self, port=None, host="127.0.0.1", tls=None, source=None, timeout=5.0, **kw):
        super().__init__(port, host=host, tls=tls, source=source, timeout=timeout, **kw)
        self.challenge = None
        self.status = None
        self.resp_headers = {}
        self.frames = []      # every frame popped by next_frame, in order
        self.pending = []     # parsed frames not yet returned

    def handshake(self, timeout=5.0, **req):
        """Sends upgrade_request(**req); returns the status (101: the
        Sec-WebSocket-Accept was checked)."""
        key = req.pop("key", None) or b64(os.urandom(16))
        self.send(upgrade_request(key=key, **req))
        self.status, self.resp_headers = self.read_head(timeout)
        if self.status == 101:
            check_eq(self.resp_headers.get("sec-websocket-accept"), ws_accept(key),
                     "Sec-WebSocket-Accept")
        return self.status

    def open(self, timeout=5.0, read_challenge=True, **req):
        """The upgrade must succeed; then the challenge is read and checked."""
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
        kw.setdefault("mask", self.masked)
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
                raise TestFailure("connection closed with %r %r while a message was "
                                  "expected" % (close_code(payload), payload[2:]))
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
                return close_code(f[3]), f[3][2:], before
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
            self.try_send(frame(CLOSE, close_payload(1000 if code is None else code),
                                mask=self.masked))
        if got != 1006 and eof_within is not None:
            check(self.closed_within(eof_within),
                  "TCP connection still open %.1f s after close %r" % (eof_within, code))
        return before

    def is_open(self, within=0.2) -> bool:
        """True if a ping sent now is answered (within max(within, 2) s)
        before any close frame or EOF."""
        payload = os.urandom(8)
        if not self.try_send(frame(PING, payload, mask=self.masked)):
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
        signing key (also kept as .sk, its public key as .pk)."""
        sk = nacl.signing.SigningKey(seed if seed is not None else os.urandom(32))
        self.sk = sk
        self.pk = bytes(sk.verify_key)
        self.send_json(intro_frame(sk, self.challenge["nonce"], host))
        f = self.next_message(timeout)
        check_eq(f.get("type"), "introduced", "answer to an honest introduction (%r)" % (f,))
        return sk
