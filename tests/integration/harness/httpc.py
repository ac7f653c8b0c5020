"""
The HTTP client of the tests: one request builder (http_request), one
response parser (parse_head, take_body), and two ways to drive them:

  RawHTTP       a blocking TCP (or TLS) connection that sends any bytes and
                reads what comes back: response heads and bodies, EOF, resets.
                The raw WebSocket client (wsraw.RawWS) is built on it.
  AsyncHttp     a keep-alive connection over asyncio streams (hundreds can
                be in flight without threads); stray() tells whether the
                server sent bytes it was not asked for
  http(), ahttp()
                one request on a fresh connection, blocking or awaited:
                (status, parsed JSON or None)

A response is a Response(status, headers, body, json): headers by lower-case
name, body as bytes, json the parsed body or None.
"""

import asyncio
import collections
import json
import re
import select
import socket
import ssl
import time

from .base import TestFailure


class PeerClosed(ConnectionError):
    """The TCP connection ended (EOF or reset) before the awaited data."""


class NoData(Exception):
    """Nothing (complete) arrived within the time allowed."""


Response = collections.namedtuple("Response", "status headers body json")
NO_RESPONSE = Response(None, {}, b"", None)


# ---------------------------------------------------------------------------
# Requests

def _body_bytes(body):
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, (dict, list)):
        return json.dumps(body).encode()
    return body.encode()


def http_request(method, path, body=None, headers=(), omit=(), host="127.0.0.1",
                 http="HTTP/1.1", content_type="application/json", token=None):
    """
    An HTTP request as bytes. body: dict/list (sent as JSON), str or bytes.
    Host, Content-Type (when there is a body) and Content-Length are added
    unless named in omit; headers is a dict, or a list of (name, value) or
    raw lines, written as given; token adds Authorization: Bearer.
    """
    data = _body_bytes(body)
    skip = {o.lower() for o in omit}
    hdrs = [("Host", host)]
    if data is not None:
        if content_type is not None:
            hdrs.append(("Content-Type", content_type))
        hdrs.append(("Content-Length", str(len(data))))
    extra = list(headers.items()) if isinstance(headers, dict) else list(headers)
    if token is not None:
        extra.append(("Authorization", "Bearer " + token))
    lines = ["%s %s %s" % (method, path, http)]
    lines += ["%s: %s" % (k, v) for k, v in hdrs if k.lower() not in skip]
    lines += [h if isinstance(h, str) else "%s: %s" % h for h in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (data or b"")


def _api_request(method, path, body, token, headers, port):
    """The request http() and ahttp() send: JSON bodies, and an empty body
    (Content-Length: 0) for a POST, PUT or PATCH without one."""
    hdrs = dict(headers or {})
    ctype = "application/json"
    if any(k.lower() == "content-type" for k in hdrs):
        ctype = None
    if body is None and method.upper() in ("POST", "PUT", "PATCH"):
        body, ctype = b"", None
    return http_request(method, path, body, headers=hdrs, token=token,
                        host="127.0.0.1:%d" % port, content_type=ctype)


# ---------------------------------------------------------------------------
# Responses

def parse_head(buf):
    """
    Pops a complete response head off the bytearray buf: (status, {lower-case
    name: value} (the first of repeated names), status line). None while the
    head is incomplete.
    """
    i = buf.find(b"\r\n\r\n")
    if i < 0:
        return None
    lines = bytes(buf[:i]).decode("latin-1").split("\r\n")
    del buf[:i + 4]
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        raise TestFailure("not an HTTP status line: %r" % lines[0])
    hdrs = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            hdrs.setdefault(k.strip().lower(), v.strip())
    return int(m.group(1)), hdrs, lines[0]


def _chunks(buf):
    """(body so far, bytes it spans, complete) of a chunked body at the start of buf."""
    out = bytearray()
    pos = 0
    while True:
        j = buf.find(b"\r\n", pos)
        if j < 0:
            return bytes(out), pos, False
        try:
            n = int(bytes(buf[pos:j]).split(b";")[0], 16)
        except ValueError:
            return bytes(out), pos, False
        if n == 0:
            end = j + 2
            while True:                       # trailer lines, then an empty one
                k = buf.find(b"\r\n", end)
                if k < 0:
                    return bytes(out), pos, False
                if k == end:
                    return bytes(out), k + 2, True
                end = k + 2
        start = j + 2
        out += buf[start:start + n]
        if len(buf) < start + n + 2:
            return bytes(out), pos, False
        pos = start + n + 2


def take_body(buf, headers, status=None, final=False, head_request=False):
    """
    Pops the body that follows a response head off the bytearray buf, framed
    by Content-Length, chunked encoding or the end of the connection. Returns
    (body, complete); while the body is incomplete and more data may come
    (final false), returns None and leaves buf alone. With final (EOF or time
    out), returns what there is.
    """
    if head_request or status in (204, 304) or (status is not None and status < 200):
        return b"", True
    if "content-length" in headers:
        n = int(headers["content-length"])
        if len(buf) < n and not final:
            return None
        body = bytes(buf[:n])
        del buf[:n]
        return body, len(body) == n
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body, used, complete = _chunks(buf)
        if not complete and not final:
            return None
        del buf[:used if complete else len(buf)]
        return body, complete
    if not final:
        return None
    body = bytes(buf)
    buf.clear()
    return body, False


def _parsed(body):
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


# ---------------------------------------------------------------------------
# A blocking connection

class _Received:
    """What both connections keep of what came in: buf, and eof once it ended."""

    def _took(self, data) -> bool:
        """Appends data; an empty read marks the end. True if data came."""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True


class RawHTTP(_Received):
    """One TCP (optionally TLS) connection that sends raw bytes and parses what
    comes back. source binds the client side (e.g. "127.0.0.2"); rcvbuf sets
    SO_RCVBUF before connecting; sock, instead of connecting, takes an
    accepted socket."""

    def __init__(self, port=None, host="127.0.0.1", tls=None, source=None, timeout=5.0,
                 rcvbuf=None, family=socket.AF_INET, sock=None):
        self.port = port
        self.host = host
        self.buf = bytearray()
        self.eof = False
        self.status_line = None   # of the last response head read
        if sock is None:
            sock = socket.socket(family, socket.SOCK_STREAM)
            if rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            if source:
                sock.bind((source, 0))
            sock.settimeout(timeout)
            sock.connect((host, port))
            if tls is not None:
                sock = tls.wrap_socket(sock, server_hostname="localhost")
        self.sock = sock
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

    def request(self, method, path, body=None, timeout=5.0, **kw):
        """Sends http_request(method, path, body, **kw) and reads the Response."""
        self.send(http_request(method, path, body, **kw))
        return self.response(timeout, head_request=method.upper() == "HEAD")

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
        return self._took(data)

    def read_head(self, timeout=5.0):
        """
        Reads a response head. Returns (status, {lower-name: value}), or
        (None, {}) when the peer closed without sending a complete head.
        Raises NoData if nothing ended within timeout.
        """
        deadline = time.monotonic() + timeout
        while True:
            head = parse_head(self.buf)
            if head is not None:
                self.status_line = head[2]
                return head[:2]
            if not self._fill(deadline):
                if self.eof:
                    return None, {}
                if time.monotonic() >= deadline:
                    raise NoData("no response head within %.1f s (got %r)"
                                 % (timeout, bytes(self.buf[:200])))

    def read_body(self, hdrs, timeout=5.0, status=None, head_request=False):
        """The body after a head read by read_head(): complete, or what came
        before EOF or the timeout."""
        deadline = time.monotonic() + timeout
        while True:
            got = take_body(self.buf, hdrs, status, head_request=head_request)
            if got is not None:
                return got[0]
            if not self._fill(deadline):
                return take_body(self.buf, hdrs, status, final=True)[0]

    def response(self, timeout=5.0, head_request=False):
        """A Response (status, headers, body bytes, parsed JSON or None);
        status None when the peer closed without answering."""
        status, hdrs = self.read_head(timeout)
        if status is None:
            return NO_RESPONSE
        body = self.read_body(hdrs, timeout, status, head_request)
        return Response(status, hdrs, body, _parsed(body))

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


def http_exchange(port, request: bytes, timeout=5.0, **kw):
    """Sends request on a new connection; returns (status, headers, body, parsed,
    closed_after) where closed_after tells whether the peer closed within 2 s of
    the answer."""
    with RawHTTP(port, **kw) as c:
        c.send(request)
        status, hdrs, body, parsed = c.response(timeout)
        closed = True if status is None else c.closed_within(2.0)
        return status, hdrs, body, parsed, closed


def _complete(r, what):
    if r.status is None:
        raise PeerClosed("%s: the connection closed without a response" % what)
    n = r.headers.get("content-length")
    if n is not None and len(r.body) != int(n):
        raise PeerClosed("%s: the connection closed %d bytes into a %s-byte body"
                         % (what, len(r.body), n))
    return r


def _api_result(r, raw):
    if raw:
        return r.status, r.json, r.body, r.headers
    return r.status, r.json


def http(method, port, path, body=None, token=None, timeout=70, headers=None, raw=False,
         tls=None):
    """
    One request to 127.0.0.1:port on a fresh connection (over TLS with the
    ssl.SSLContext tls). body: dict/list (sent as JSON), str or bytes (sent
    as is), or None. Returns (status, parsed JSON or None), or (status,
    parsed, raw bytes, headers) with raw=True. Raises PeerClosed when the
    answer is missing or cut short, NoData when none came within timeout.
    """
    with RawHTTP(port, timeout=timeout, tls=tls) as c:
        c.send(_api_request(method, path, body, token, headers, port))
        r = c.response(timeout, head_request=method.upper() == "HEAD")
    return _api_result(_complete(r, "%s %s" % (method, path)), raw)


# ---------------------------------------------------------------------------
# An asyncio connection

class AsyncHttp(_Received):
    """
    One keep-alive HTTP/1.1 connection to host:port over asyncio streams.
    request() sends one request and reads exactly one response; the
    connection is reopened when the server closed it. send() and response()
    do the two halves for hand-made requests. stray() tells whether the
    server sent anything after the last response, which would be a second
    answer to one request.
    """

    def __init__(self, port, host="127.0.0.1", source=None, tls=None):
        self.port = port
        self.host = host
        self.source = source
        self.tls = tls
        self.reader = None
        self.writer = None
        self.buf = bytearray()
        self.eof = False
        self.opened = 0
        self.status_line = None   # of the last response head read

    async def connect(self):
        kw = {"local_addr": (self.source, 0)} if self.source else {}
        if self.tls is not None:
            kw.update(ssl=self.tls, server_hostname="localhost")
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, **kw)
        self.buf.clear()
        self.eof = False
        self.opened += 1
        return self

    async def close(self):
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        self.reader = self.writer = None

    async def send(self, data: bytes):
        if self.writer is None:
            await self.connect()
        self.writer.write(data)
        await self.writer.drain()

    async def _fill(self):
        try:
            data = await self.reader.read(65536)
        except (ConnectionError, OSError):
            data = b""
        return self._took(data)

    async def _response(self, head_request):
        while True:
            head = parse_head(self.buf)
            if head is not None:
                break
            if not await self._fill():
                raise PeerClosed("connection closed before a response")
        status, hdrs, self.status_line = head
        while True:
            got = take_body(self.buf, hdrs, status, final=self.eof, head_request=head_request)
            if got is not None:
                break
            await self._fill()
        body, complete = got
        if not complete and "content-length" in hdrs:
            raise PeerClosed("connection closed %d bytes into a %s-byte body"
                             % (len(body), hdrs["content-length"]))
        if hdrs.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, hdrs, body, _parsed(body))

    async def response(self, timeout=30.0, head_request=False):
        """Reads one Response. Raises PeerClosed if the connection ends first."""
        return await asyncio.wait_for(self._response(head_request), timeout)

    async def request(self, method, path, body=None, token=None, headers=(), timeout=30.0,
                      **kw):
        """Sends http_request(method, path, body, ...) (reconnecting if the
        server closed the connection) and returns the Response."""
        if self.writer is None or self.eof or self.reader.at_eof():
            await self.close()
            await self.connect()
        await self.send(http_request(method, path, body, headers=headers, token=token, **kw))
        return await self.response(timeout, head_request=method.upper() == "HEAD")

    async def stray(self, within=0.2):
        """Bytes the server sent after the last response (b"" if none or closed)."""
        if self.reader is None:
            return b""
        if not self.buf and not self.eof:
            try:
                await asyncio.wait_for(self._fill(), within)
            except asyncio.TimeoutError:
                pass
        data = bytes(self.buf)
        self.buf.clear()
        return data

    async def __aenter__(self):
        return await self.connect()

    async def __aexit__(self, *exc):
        await self.close()
        return False


async def ahttp(method, port, path, body=None, token=None, timeout=70, headers=None, raw=False,
                tls=None):
    """http() over asyncio streams: the event loop keeps serving signers, and
    any number of requests can be in flight."""
    async def one():
        async with AsyncHttp(port, tls=tls) as c:
            await c.send(_api_request(method, path, body, token, headers, port))
            return await c._response(method.upper() == "HEAD")
    r = await asyncio.wait_for(one(), timeout)
    return _api_result(r, raw)
