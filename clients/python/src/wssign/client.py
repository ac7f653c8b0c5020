"""The requester side: ask wssignd's HTTP control API (docs/openapi.yaml) for
signatures. Client is synchronous (http.client), AsyncClient is its asyncio
twin; both turn every documented error into its exception (errors.py) and
verify each signature they return.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import ssl
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple, Union
from urllib.parse import urlsplit

import nacl.exceptions
import nacl.signing

from .errors import (InvalidSignatureError, NotConnectedError, ProtocolError, TransportError,
                     error_for)
from .protocol import b64decode, b64encode, b64url_nopad

__all__ = ["Client", "AsyncClient", "Signature", "KeyStatus"]

PublicKey = Union[bytes, str]
Message = Union[bytes, bytearray, memoryview, str]
USER_AGENT = "wssign-python/0.1"
# Beyond the request's own deadline, how long the HTTP exchange may take.
HTTP_SLACK_S = 15.0
DEFAULT_DEADLINE_S = 60.0


@dataclass(frozen=True)
class Signature:
    """A signature the daemon returned and this library verified."""

    request_id: str
    public_key: bytes
    message: bytes
    signature: bytes

    @property
    def signature_b64(self) -> str:
        """The signature in standard base64."""
        return b64encode(self.signature)


@dataclass(frozen=True)
class KeyStatus:
    """``GET /v1/keys/{key}``: a connected key."""

    public_key: bytes
    connected: bool
    connected_at: int
    session_id: str
    pending: int


def _key_bytes(public_key: PublicKey) -> bytes:
    if isinstance(public_key, str):
        return b64decode(public_key, 32)
    if isinstance(public_key, (bytes, bytearray)) and len(public_key) == 32:
        return bytes(public_key)
    raise ValueError("public_key must be 32 bytes or their standard base64")


def _message_bytes(message: Message) -> bytes:
    if isinstance(message, str):
        return message.encode("utf-8")
    if isinstance(message, (bytes, bytearray, memoryview)):
        return bytes(message)
    raise TypeError("message must be bytes or str")


def sign_body(public_key: PublicKey, message: Message, timeout: Optional[float] = None,
              label: Optional[str] = None, wait: Optional[float] = None) -> bytes:
    """The JSON body of ``POST /v1/sign``. ``timeout`` and ``wait`` are in
    seconds; ``label`` and ``wait`` are sent only when given."""
    body: Dict[str, Any] = {"public_key": b64encode(_key_bytes(public_key)),
                            "message": b64encode(_message_bytes(message))}
    if timeout is not None:
        ms = int(round(timeout * 1000))
        if not 1 <= ms <= 60000:
            raise ValueError("timeout must be between 0.001 and 60 seconds")
        body["timeout_ms"] = ms
    if label is not None:
        body["label"] = label
    if wait is not None:
        ms = int(round(wait * 1000))
        if ms < 0:
            raise ValueError("wait must not be negative")
        body["wait_ms"] = ms
    return json.dumps(body, separators=(",", ":")).encode()


def _deadline(timeout: Optional[float], wait: Optional[float]) -> float:
    return (timeout if timeout is not None else DEFAULT_DEADLINE_S) + (wait or 0) + HTTP_SLACK_S


def _decode(status: int, raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        if status >= 400:
            raise error_for(status, None, "HTTP %d with a body that is not JSON" % status)
        raise ProtocolError("HTTP %d with a body that is not JSON" % status) from None


def _check(status: int, raw: bytes) -> Any:
    """The parsed body of a 200; raises the documented error of anything else."""
    body = _decode(status, raw)
    if status == 200:
        return body
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        raise error_for(status, None, "HTTP %d" % status)
    rid = err.get("request_id")
    raise error_for(status, str(err.get("code")), str(err.get("message", "")),
                    rid if isinstance(rid, str) else None)


def _signature(body: Any, public_key: bytes, message: bytes) -> Signature:
    """Checks a 200 answer of POST /v1/sign and verifies its signature."""
    try:
        rid = body["request_id"]
        pk = b64decode(body["public_key"], 32)
        msg = b64decode(body["message"])
        sig = b64decode(body["signature"], 64)
    except (KeyError, TypeError, ValueError) as e:
        raise ProtocolError("unexpected answer to POST /v1/sign: %s" % e) from None
    if not isinstance(rid, str) or pk != public_key or msg != message:
        raise ProtocolError("the answer names another key, message or request")
    try:
        nacl.signing.VerifyKey(pk).verify(msg, sig)
    except (nacl.exceptions.BadSignatureError, ValueError):
        raise InvalidSignatureError("the returned signature does not verify",
                                    request_id=rid) from None
    return Signature(rid, pk, msg, sig)


def _key_status(body: Any) -> KeyStatus:
    try:
        return KeyStatus(b64decode(body["public_key"], 32), bool(body["connected"]),
                         int(body["connected_at"]), str(body["session_id"]),
                         int(body["pending"]))
    except (KeyError, TypeError, ValueError) as e:
        raise ProtocolError("unexpected answer to GET /v1/keys: %s" % e) from None


class _Endpoint:
    """Where the control API is and how to authenticate to it."""

    def __init__(self, url: str, token: Optional[str], ssl_context: Optional[ssl.SSLContext],
                 cafile: Optional[str]):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the control URL must be http:// or https://host[:port]")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.ssl = (ssl_context or ssl.create_default_context(cafile=cafile)) if self.https \
            else None
        self.token = token

    def headers(self, body: Optional[bytes]) -> Dict[str, str]:
        h = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        if body is not None:
            h["Content-Type"] = "application/json"
        return h

    def key_path(self, public_key: PublicKey) -> str:
        return "%s/v1/keys/%s" % (self.prefix, b64url_nopad(_key_bytes(public_key)))


class Client:
    """Synchronous requester.

    ``Client(url, token).sign(public_key, message, timeout=5)`` returns a
    verified Signature or raises the error's exception (``RejectedError``,
    ``NotConnectedError``, ``TimeoutError``, ... all ``ApiError``), or
    ``TransportError`` when the daemon cannot be reached. ``url`` is the
    control listener (default ``http://127.0.0.1:8081``), ``token`` the
    bearer token when the daemon has a token file.
    """

    def __init__(self, url: str = "http://127.0.0.1:8081", token: Optional[str] = None, *,
                 ssl_context: Optional[ssl.SSLContext] = None, cafile: Optional[str] = None):
        self._ep = _Endpoint(url, token, ssl_context, cafile)

    def _request(self, method: str, path: str, body: Optional[bytes],
                 timeout: float) -> Tuple[int, bytes]:
        ep = self._ep
        if ep.https:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                ep.host, ep.port, timeout=timeout, context=ep.ssl)
        else:
            conn = http.client.HTTPConnection(ep.host, ep.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=ep.headers(body))
            resp = conn.getresponse()
            return resp.status, resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise TransportError("%s %s: %s" % (method, path, e)) from e
        finally:
            conn.close()

    def sign(self, public_key: PublicKey, message: Message, *, timeout: Optional[float] = None,
             label: Optional[str] = None, wait: Optional[float] = None) -> Signature:
        """Asks the key to sign message (bytes, or str sent as UTF-8).

        ``timeout``: seconds the daemon waits for the signer (0.001 to 60;
        default the daemon's, 60). ``label`` and ``wait`` (seconds to wait
        for the key to connect) are sent as ``label`` and ``wait_ms`` only
        when given, and need a daemon that supports them: one without them
        answers BadRequestError.
        """
        pk = _key_bytes(public_key)
        msg = _message_bytes(message)
        body = sign_body(pk, msg, timeout, label, wait)
        status, raw = self._request("POST", self._ep.prefix + "/v1/sign", body,
                                    _deadline(timeout, wait))
        return _signature(_check(status, raw), pk, msg)

    def key_status(self, public_key: PublicKey) -> KeyStatus:
        """Whether a key is connected; raises NotConnectedError when it is not."""
        status, raw = self._request("GET", self._ep.key_path(public_key), None, HTTP_SLACK_S)
        return _key_status(_check(status, raw))

    def is_connected(self, public_key: PublicKey) -> bool:
        """True when a signer holding the key is connected."""
        try:
            self.key_status(public_key)
            return True
        except NotConnectedError:
            return False

    def health(self) -> bool:
        """True when ``GET /healthz`` answers ``{"status":"ok"}``."""
        status, raw = self._request("GET", self._ep.prefix + "/healthz", None, HTTP_SLACK_S)
        return _check(status, raw) == {"status": "ok"}


class AsyncClient:
    """The asyncio twin of Client: the same methods, as coroutines.

    Cancelling a ``sign()`` closes its HTTP connection, which makes the
    daemon cancel the request and send the signer ``cancel``.
    """

    def __init__(self, url: str = "http://127.0.0.1:8081", token: Optional[str] = None, *,
                 ssl_context: Optional[ssl.SSLContext] = None, cafile: Optional[str] = None):
        self._ep = _Endpoint(url, token, ssl_context, cafile)

    async def _request(self, method: str, path: str, body: Optional[bytes],
                       timeout: float) -> Tuple[int, bytes]:
        try:
            return await asyncio.wait_for(self._exchange(method, path, body), timeout)
        except asyncio.TimeoutError:
            raise TransportError("%s %s: no answer within %.0f s" % (method, path, timeout)) \
                from None
        except (OSError, asyncio.IncompleteReadError, ValueError) as e:
            raise TransportError("%s %s: %s" % (method, path, e)) from e

    async def _exchange(self, method: str, path: str, body: Optional[bytes]) -> Tuple[int, bytes]:
        ep = self._ep
        reader, writer = await asyncio.open_connection(
            ep.host, ep.port, ssl=ep.ssl, server_hostname=ep.host if ep.ssl else None)
        try:
            head = ["%s %s HTTP/1.1" % (method, path), "Host: %s:%d" % (ep.host, ep.port),
                    "Connection: close"]
            head += ["%s: %s" % kv for kv in ep.headers(body).items()]
            if body is not None:
                head.append("Content-Length: %d" % len(body))
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body or b""))
            await writer.drain()
            status_line = await reader.readline()
            parts = status_line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
                raise ValueError("not an HTTP answer: %r" % status_line[:80])
            headers: Dict[str, str] = {}
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            if "content-length" in headers:
                data = await reader.readexactly(int(headers["content-length"]))
            elif headers.get("transfer-encoding", "").lower() == "chunked":
                data = b""
                while True:
                    size = int((await reader.readline()).split(b";")[0], 16)
                    if size == 0:
                        break
                    data += await reader.readexactly(size)
                    await reader.readline()
            else:
                data = await reader.read()
            return int(parts[1]), data
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, ssl.SSLError):
                pass

    async def sign(self, public_key: PublicKey, message: Message, *,
                   timeout: Optional[float] = None, label: Optional[str] = None,
                   wait: Optional[float] = None) -> Signature:
        """As Client.sign()."""
        pk = _key_bytes(public_key)
        msg = _message_bytes(message)
        body = sign_body(pk, msg, timeout, label, wait)
        status, raw = await self._request("POST", self._ep.prefix + "/v1/sign", body,
                                          _deadline(timeout, wait))
        return _signature(_check(status, raw), pk, msg)

    async def key_status(self, public_key: PublicKey) -> KeyStatus:
        """As Client.key_status()."""
        status, raw = await self._request("GET", self._ep.key_path(public_key), None,
                                          HTTP_SLACK_S)
        return _key_status(_check(status, raw))

    async def is_connected(self, public_key: PublicKey) -> bool:
        """As Client.is_connected()."""
        try:
            await self.key_status(public_key)
            return True
        except NotConnectedError:
            return False

    async def health(self) -> bool:
        """As Client.health()."""
        status, raw = await self._request("GET", self._ep.prefix + "/healthz", None,
                                          HTTP_SLACK_S)
        return _check(status, raw) == {"status": "ok"}
