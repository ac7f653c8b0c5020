"""The signer side of wssign.v1: hold a connection to wssignd, prove the key
with a host-bound introduction, and answer each sign request through a
policy callback. Reconnects with capped, jittered backoff.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import json
import logging
import random
import ssl
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, Optional, Union

import nacl.signing
import websockets
import websockets.exceptions

from .errors import IntroductionRefused, ProtocolError, WssignError
from .keys import Key, KeyLike
from .protocol import (INTRODUCTION_PREFIX, PROTOCOL, b64decode, b64encode, introduction_frame,
                       introduction_host, introduction_transcript, reject_frame, response_frame)

__all__ = ["Signer", "SignRequest", "Reject", "Policy"]

log = logging.getLogger("wssign")

# Introduction refusals that no retry can fix: the key, the proof or the host is wrong.
FATAL_INTRODUCTION_CODES = frozenset({"bad_host", "bad_key", "bad_proof", "missing_proof"})
CLOSE_SUPERSEDED = 4001
ANSWERED_MEMORY = 1024
MAX_FRAME_BYTES = 16 * 1024 * 1024


class Reject(Exception):
    """Returned or raised by a policy to decline a request; ``reason`` (at
    most 256 bytes) reaches the daemon in ``sign_reject``."""

    def __init__(self, reason: str = "declined"):
        super().__init__(reason)
        self.reason = reason


@dataclass
class SignRequest:
    """One ``sign_request``, as the policy sees it.

    ``message`` holds the exact bytes to sign; ``expires_at`` is the
    daemon's deadline in unix ms (None if the frame had none); ``frame`` is
    the whole frame, so fields a newer daemon adds (``label``,
    ``requester``) are there too. ``cancel_reason`` is set when the daemon
    cancels the request (``timeout``, ``requester_cancelled``,
    ``shutting_down``) or the connection it came on is lost
    (``connection_closed``); the policy's task is then cancelled.
    """

    request_id: str
    message: bytes
    expires_at: Optional[int]
    frame: Dict[str, Any] = field(repr=False)
    cancel_reason: Optional[str] = None

    @property
    def label(self) -> Optional[str]:
        """The requester's label, when the daemon sends one."""
        v = self.frame.get("label")
        return v if isinstance(v, str) else None

    @property
    def requester(self) -> Optional[str]:
        """Who asks, when the daemon sends it."""
        v = self.frame.get("requester")
        return v if isinstance(v, str) else None

    def expires_in(self) -> Optional[float]:
        """Seconds left before the daemon gives up on the request (may be negative)."""
        if self.expires_at is None:
            return None
        return (self.expires_at - time.time() * 1000) / 1000.0


PolicyResult = Union[bool, Reject, None]
Policy = Callable[[SignRequest], Union[PolicyResult, Awaitable[PolicyResult]]]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _now_ms() -> int:
    return int(time.time() * 1000)


class _Retry(Exception):
    """An attempt failed in a way the next attempt may not repeat."""


class Signer:
    """Holds one Ed25519 key behind a wssignd daemon.

    ``url``: the signer endpoint, ``wss://host:port/v1/ws`` (``ws://`` only
    to loopback unless ``insecure=True``). ``key``: a Key, a PyNaCl
    SigningKey, or any object with ``public_key`` (32 bytes) and
    ``sign(data)`` (which may be a coroutine function). ``policy``: called
    with each SignRequest; it returns (or awaits to) True to sign, False to
    decline, or ``Reject(reason)`` (returned or raised) to decline with a
    reason. It may take its time: the daemon's ``cancel`` cancels it.

    Before the policy is asked, requests that are expired, repeated on the
    same connection, malformed, or that begin with ``wssign-introduction-v1``
    are declined (reasons ``expired``, ``duplicate_request``,
    ``malformed_request``, ``reserved_prefix``).

    Reconnection: after a lost connection or a failed attempt the next one
    waits a random delay in [0, min(backoff_max, backoff_initial * 2^n)]
    (n failures in a row; an introduction resets it); after a 4001
    (superseded: another connection proved the same key) it waits a full
    ``backoff_max``. A refusal no retry can fix (``bad_host``, ``bad_key``,
    ``bad_proof``, ``missing_proof``) stops the signer with
    IntroductionRefused, raised by wait_introduced() and wait_closed().

    Use ``async with Signer(...) as signer:`` or start()/close().
    """

    def __init__(self, url: str, key: Union[KeyLike, nacl.signing.SigningKey], *,
                 policy: Policy, ssl_context: Optional[ssl.SSLContext] = None,
                 cafile: Optional[str] = None, insecure: bool = False,
                 backoff_initial: float = 0.5, backoff_max: float = 30.0,
                 connect_timeout: float = 30.0, ping_interval: Optional[float] = 30.0):
        if isinstance(key, nacl.signing.SigningKey):
            key = Key(key)
        pk = getattr(key, "public_key", None)
        if not isinstance(pk, (bytes, bytearray)) or len(pk) != 32 or not callable(
                getattr(key, "sign", None)):
            raise TypeError("key must be a wssign.Key, a nacl SigningKey, or have a 32-byte "
                            "public_key and a sign() method")
        if not callable(policy):
            raise TypeError("policy must be callable")
        self.url = url
        self.host = introduction_host(url)
        scheme = url.split(":", 1)[0].lower()
        if scheme not in ("ws", "wss"):
            raise ValueError("the URL must start with ws:// or wss://")
        if scheme == "ws" and not insecure and not _is_loopback(self.host):
            raise ValueError("ws:// to %s authenticates no server: use wss://, or "
                             "insecure=True on a test setup" % self.host)
        if scheme == "wss" and ssl_context is None:
            ssl_context = ssl.create_default_context(cafile=cafile)
            if insecure:
                ssl_context.check_hostname = False
                ssl_context.verify_mode = ssl.CERT_NONE
        self._ssl = ssl_context if scheme == "wss" else None
        self._key = key
        self.public_key = bytes(pk)
        self.public_key_b64 = b64encode(self.public_key)
        self._policy = policy
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._connect_timeout = connect_timeout
        self._ping_interval = ping_interval
        self.state = "idle"
        self.session_id: Optional[str] = None
        self.close_code: Optional[int] = None
        self._ws: Optional[Any] = None
        self._task: Optional[asyncio.Task[None]] = None
        self._closing = False
        self._fatal: Optional[BaseException] = None
        self._introduced = asyncio.Event()
        self._closed = asyncio.Event()
        self._wake = asyncio.Event()
        self._inflight: Dict[str, tuple] = {}
        self._answered: "OrderedDict[str, None]" = OrderedDict()
        self.introductions = 0

    # -- lifecycle

    async def __aenter__(self) -> "Signer":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def start(self) -> None:
        """Starts connecting in the background; returns at once."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Declines what is in flight (``signer_stopping``), closes with 1000, stops."""
        self._closing = True
        self._wake.set()
        ws = self._ws
        for req_id, (req, task, conn) in list(self._inflight.items()):
            req.cancel_reason = "signer_stopping"
            task.cancel()
            if conn is ws and ws is not None:
                try:
                    await ws.send(reject_frame(req_id, "signer_stopping"))
                except Exception:
                    pass
        if ws is not None:
            try:
                await asyncio.wait_for(ws.close(1000, "signer closed"), 3)
            except Exception:
                pass
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 5)
            except Exception:
                self._task.cancel()
        self._set_state("closed")
        self._closed.set()

    async def wait_introduced(self, timeout: Optional[float] = None) -> str:
        """Waits until the key is introduced; returns the session id. Raises
        IntroductionRefused if the daemon refused it for good, WssignError if
        the signer was closed, asyncio.TimeoutError after ``timeout`` s."""
        async def wait() -> str:
            while True:
                if self._fatal is not None:
                    raise self._fatal
                if self._closed.is_set():
                    raise WssignError("the signer is closed")
                if self._introduced.is_set() and self.session_id:
                    return self.session_id
                waiters = [asyncio.ensure_future(self._introduced.wait()),
                           asyncio.ensure_future(self._closed.wait())]
                try:
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waiters:
                        w.cancel()
        return await asyncio.wait_for(wait(), timeout)

    async def wait_closed(self) -> None:
        """Waits until the signer stops (close(), or a refusal no retry can
        fix, which is raised here)."""
        await self._closed.wait()
        if self._fatal is not None:
            raise self._fatal

    @property
    def pending(self) -> Dict[str, SignRequest]:
        """The requests the policy is deciding, by request id."""
        return {k: v[0] for k, v in self._inflight.items()}

    # -- the connection loop

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            log.debug("event=state state=%s key=%s", state, self.public_key.hex()[:16])

    async def _run(self) -> None:
        failures = 0
        try:
            while not self._closing:
                code: Optional[int] = None
                before = self.introductions
                try:
                    code = await self._attempt()
                except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException,
                        ProtocolError, _Retry) as e:
                    log.info("event=connect_failed url=%s error=%r", self.url, e)
                if self._closing:
                    break
                if self.introductions != before:
                    failures = 0  # this attempt was introduced: start the backoff afresh
                if code == CLOSE_SUPERSEDED:
                    log.warning("event=superseded key=%s: another connection introduced this "
                                "key; waiting %.1f s", self.public_key.hex()[:16],
                                self._backoff_max)
                    delay = self._backoff_max
                else:
                    delay = random.uniform(0, min(self._backoff_max,
                                                  self._backoff_initial * 2 ** failures))
                    failures += 1
                self._set_state("waiting")
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), delay)
                except asyncio.TimeoutError:
                    pass
        except IntroductionRefused as e:
            log.error("event=introduction_refused code=%s close=%s", e.code, e.close_code)
            self._fatal = e
        finally:
            self._set_state("closed")
            self._closed.set()

    async def _attempt(self) -> Optional[int]:
        """One connection: connect, introduce, serve. Returns its close code."""
        self._set_state("connecting")
        kw: Dict[str, Any] = {"open_timeout": self._connect_timeout, "max_size": MAX_FRAME_BYTES,
                              "ping_interval": self._ping_interval, "close_timeout": 2}
        if self._ping_interval:
            kw["ping_timeout"] = self._ping_interval + 10
        if self._ssl is not None:
            kw["ssl"] = self._ssl
        ws = await websockets.connect(self.url, **kw)
        self._ws = ws
        try:
            await asyncio.wait_for(self._introduce(ws), self._connect_timeout)
            self._answered.clear()
            await self._serve(ws)
        except websockets.exceptions.ConnectionClosed:
            pass
        finally:
            self._ws = None
            self._introduced.clear()
            self._drop_inflight(ws, "connection_closed")
            try:
                await asyncio.wait_for(ws.close(), 3)
            except Exception:
                pass
            self.close_code = ws.close_code
            log.info("event=disconnected key=%s close=%s", self.public_key.hex()[:16],
                     ws.close_code)
        return ws.close_code

    async def _recv(self, ws: Any) -> Dict[str, Any]:
        raw = await ws.recv()
        if not isinstance(raw, str):
            raise ProtocolError("the daemon sent a binary frame")
        try:
            frame = json.loads(raw)
        except ValueError:
            raise ProtocolError("the daemon sent a frame that is not JSON") from None
        if not isinstance(frame, dict):
            raise ProtocolError("the daemon sent a frame that is not an object")
        return frame

    async def _refused(self, ws: Any, frame: Dict[str, Any]) -> None:
        code = str(frame.get("code"))
        message = str(frame.get("message", ""))
        if code in FATAL_INTRODUCTION_CODES:
            try:
                await asyncio.wait_for(ws.wait_closed(), 3)
            except asyncio.TimeoutError:
                pass
            raise IntroductionRefused(code, message, ws.close_code)
        raise _Retry("introduction refused: %s: %s" % (code, message))

    async def _introduce(self, ws: Any) -> None:
        self._set_state("introducing")
        frame = await self._recv(ws)
        if frame.get("type") == "error":
            await self._refused(ws, frame)
        if frame.get("type") != "challenge":
            raise ProtocolError("expected a challenge, got %r" % frame.get("type"))
        if frame.get("protocol") != PROTOCOL:
            raise ProtocolError("the daemon speaks %r, not %s" % (frame.get("protocol"), PROTOCOL))
        nonce = frame.get("nonce")
        try:
            b64decode(nonce, 32)
        except ValueError:
            raise ProtocolError("challenge nonce is not base64 of 32 bytes") from None
        proof = await self._sign(introduction_transcript(self.host, nonce))
        await ws.send(introduction_frame(self.public_key, self.host, proof))
        frame = await self._recv(ws)
        if frame.get("type") == "error":
            await self._refused(ws, frame)
        if frame.get("type") != "introduced":
            raise ProtocolError("expected introduced, got %r" % frame.get("type"))
        if frame.get("public_key") != self.public_key_b64:
            raise ProtocolError("the daemon confirmed another key")
        self.session_id = str(frame.get("session_id"))
        self.introductions += 1
        self._set_state("introduced")
        self._introduced.set()
        log.info("event=introduced key=%s session=%s", self.public_key.hex()[:16],
                 self.session_id)

    async def _serve(self, ws: Any) -> None:
        while True:
            frame = await self._recv(ws)
            kind = frame.get("type")
            if kind == "sign_request":
                await self._on_request(ws, frame)
            elif kind == "cancel":
                entry = self._inflight.get(str(frame.get("request_id")))
                if entry is not None and entry[2] is ws:
                    entry[0].cancel_reason = str(frame.get("reason") or "cancelled")
                    entry[1].cancel()
                log.info("event=cancel request_id=%s reason=%s", frame.get("request_id"),
                         frame.get("reason"))
            elif kind == "error":
                log.warning("event=server_error code=%s message=%r request_id=%s",
                            frame.get("code"), frame.get("message"), frame.get("request_id"))
            # Other types (a newer daemon's) are ignored.

    # -- requests

    async def _on_request(self, ws: Any, frame: Dict[str, Any]) -> None:
        req_id = frame.get("request_id")
        if not isinstance(req_id, str) or not req_id:
            log.warning("event=bad_request_frame reason=no_request_id")
            return
        if req_id in self._inflight:
            return  # a repeat of a request being decided gets no second answer
        try:
            message = b64decode(frame.get("message"))
        except ValueError:
            await self._answer(ws, req_id, reject_frame(req_id, "malformed_request"), "refused")
            return
        expires = frame.get("expires_at")
        expires_at = expires if isinstance(expires, int) and not isinstance(expires, bool) else None
        req = SignRequest(req_id, message, expires_at, frame)
        why = None
        if req_id in self._answered:
            why = "duplicate_request"
        elif expires_at is not None and _now_ms() > expires_at:
            why = "expired"
        elif message.startswith(INTRODUCTION_PREFIX):
            why = "reserved_prefix"
        if why:
            await self._answer(ws, req_id, reject_frame(req_id, why), "refused " + why)
            return
        task = asyncio.get_running_loop().create_task(self._decide(ws, req))
        self._inflight[req_id] = (req, task, ws)

    async def _decide(self, ws: Any, req: SignRequest) -> None:
        try:
            try:
                result: Any = self._policy(req)
                if inspect.isawaitable(result):
                    result = await result
            except Reject as r:
                result = r
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event=policy_failed request_id=%s", req.request_id)
                result = Reject("policy_error")
            if result is True:
                if req.expires_at is not None and _now_ms() > req.expires_at:
                    frame, what = reject_frame(req.request_id, "expired"), "refused expired"
                else:
                    try:
                        sig = await self._sign(req.message)
                        frame = response_frame(req.request_id, req.frame["message"], sig)
                        what = "signed"
                    except Exception:
                        log.exception("event=sign_failed request_id=%s", req.request_id)
                        frame, what = reject_frame(req.request_id, "signing_failed"), "rejected"
            elif isinstance(result, Reject):
                frame, what = reject_frame(req.request_id, result.reason), "rejected"
            elif result is False or result is None:
                frame, what = reject_frame(req.request_id, "declined"), "rejected"
            else:
                log.error("event=policy_failed request_id=%s result=%r (want True, False or "
                          "Reject)", req.request_id, result)
                frame, what = reject_frame(req.request_id, "policy_error"), "rejected"
            await self._answer(ws, req.request_id, frame, what)
        except asyncio.CancelledError:
            log.info("event=request_dropped request_id=%s reason=%s", req.request_id,
                     req.cancel_reason)
        finally:
            entry = self._inflight.get(req.request_id)
            if entry is not None and entry[0] is req:
                del self._inflight[req.request_id]

    async def _answer(self, ws: Any, req_id: str, frame: str, what: str) -> None:
        self._answered[req_id] = None
        while len(self._answered) > ANSWERED_MEMORY:
            self._answered.popitem(last=False)
        try:
            await ws.send(frame)
        except websockets.exceptions.ConnectionClosed:
            return
        log.info("event=decision request_id=%s decision=%s", req_id, what)

    def _drop_inflight(self, ws: Any, reason: str) -> None:
        for req_id, (req, task, conn) in list(self._inflight.items()):
            if conn is ws:
                req.cancel_reason = req.cancel_reason or reason
                task.cancel()

    async def _sign(self, data: bytes) -> bytes:
        sig = self._key.sign(data)
        if inspect.isawaitable(sig):
            sig = await sig
        if not isinstance(sig, (bytes, bytearray)) or len(sig) != 64:
            raise WssignError("the key's sign() did not return 64 bytes")
        return bytes(sig)
