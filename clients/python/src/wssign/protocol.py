"""The wire format of wssign.v1 (docs/PROTOCOL.md): strict base64, the
introduction transcript, the host a proof names, and the client frames.
Pure functions, no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Dict, Optional
from urllib.parse import urlsplit

__all__ = [
    "PROTOCOL", "INTRODUCTION_PREFIX", "b64encode", "b64decode", "b64url_nopad",
    "introduction_host", "introduction_transcript", "introduction_frame", "response_frame",
    "reject_frame", "REASON_MAX_BYTES",
]

PROTOCOL = "wssign.v1"
INTRODUCTION_PREFIX = b"wssign-introduction-v1"
REASON_MAX_BYTES = 256

_B64_RE = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")


def b64encode(data: bytes) -> str:
    """Standard base64 with padding, as on the wire."""
    return base64.b64encode(data).decode("ascii")


def b64decode(text: Any, length: Optional[int] = None) -> bytes:
    """Strict standard base64 with padding; ValueError for anything else
    (URL-safe characters, whitespace, missing padding, a wrong length)."""
    if not isinstance(text, str) or not _B64_RE.match(text):
        raise ValueError("not standard padded base64")
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as e:
        raise ValueError("not standard padded base64: %s" % e) from None
    if length is not None and len(data) != length:
        raise ValueError("expected %d bytes, got %d" % (length, len(data)))
    return data


def b64url_nopad(data: bytes) -> str:
    """Base64url without padding, as key paths of the control API take it."""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def introduction_host(url: str) -> str:
    """The host a proof names for a signer URL: lowercase, no port, no IPv6 brackets."""
    host = urlsplit(url).hostname
    if not host:
        raise ValueError("URL has no host: %r" % url)
    return host.lower()


def introduction_transcript(host: str, nonce: str) -> bytes:
    """The bytes the introduction proof signs:
    ``"wssign-introduction-v1" LF host LF nonce`` (the nonce's base64 text as received)."""
    return INTRODUCTION_PREFIX + b"\n" + host.encode("utf-8") + b"\n" + nonce.encode("ascii")


def _dump(frame: Dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def introduction_frame(public_key: bytes, host: str, proof: bytes) -> str:
    """The ``introduction`` frame."""
    return _dump({"type": "introduction", "public_key": b64encode(public_key), "host": host,
                  "proof": b64encode(proof)})


def response_frame(request_id: str, message_b64: str, signature: bytes) -> str:
    """The ``sign_response`` frame; ``message_b64`` is echoed as received."""
    return _dump({"type": "sign_response", "request_id": request_id, "message": message_b64,
                  "signature": b64encode(signature)})


def reject_frame(request_id: str, reason: Optional[str]) -> str:
    """The ``sign_reject`` frame; the reason is cut to 256 bytes of UTF-8."""
    frame: Dict[str, Any] = {"type": "sign_reject", "request_id": request_id}
    if reason:
        raw = reason.encode("utf-8")[:REASON_MAX_BYTES]
        frame["reason"] = raw.decode("utf-8", "ignore")
    return _dump(frame)
