"""Exceptions of the wssign client library.

Every error the daemon's control API documents (docs/openapi.yaml) has its
own class, named after its ``code``; all of them derive from ApiError, which
derives from WssignError. Failures to reach the daemon are TransportError,
answers that break the protocol ProtocolError, and a signer whose
introduction the daemon refuses for good gets IntroductionRefused.
"""

from __future__ import annotations

import builtins
from typing import Dict, Optional, Type

__all__ = [
    "WssignError", "TransportError", "ProtocolError", "IntroductionRefused", "KeyFileError",
    "ApiError", "BadRequestError", "UnauthorizedError", "ForbiddenError", "ForbiddenKeyError",
    "NotConnectedError", "NotFoundError",
    "MethodNotAllowedError", "RequestTimeoutError", "PayloadTooLargeError",
    "UnsupportedMediaTypeError",
    "RejectedError", "TooManyRequestsError", "InvalidSignatureError", "ConnectionClosedError",
    "ShuttingDownError", "OverloadedError", "ClusterUnavailableError", "TimeoutError",
    "error_for",
]


class WssignError(Exception):
    """Base class of every exception this library raises on purpose."""


class TransportError(WssignError):
    """The daemon could not be reached, or the connection broke before an answer."""


class ProtocolError(WssignError):
    """The peer's answer does not follow wssign.v1 or the control API."""


class KeyFileError(WssignError, ValueError):
    """A key file was refused: its mode, type, size or contents."""


class IntroductionRefused(WssignError):
    """The daemon refused the signer's introduction for a reason a retry cannot fix.

    ``code`` is the daemon's error code (``bad_host``, ``bad_key``,
    ``bad_proof``, ``missing_proof``), ``close_code`` the WebSocket close code.
    """

    def __init__(self, code: str, message: str = "", close_code: Optional[int] = None):
        super().__init__("introduction refused: %s%s" % (code, ": " + message if message else ""))
        self.code = code
        self.message = message
        self.close_code = close_code


class ApiError(WssignError):
    """An error answer of the control API.

    Attributes: ``status`` (HTTP status, or None for a check made by this
    library), ``code`` (the daemon's error code), ``message`` (text for
    people), ``request_id`` (set once the daemon had queued the request).
    ``retryable`` says whether the same request may succeed later.
    """

    code: str = ""
    retryable: bool = False

    def __init__(self, message: str = "", *, status: Optional[int] = None,
                 code: Optional[str] = None, request_id: Optional[str] = None):
        if code is not None:
            self.code = code
        super().__init__("%s%s" % (self.code or "error", ": " + message if message else ""))
        self.status = status
        self.message = message
        self.request_id = request_id


class BadRequestError(ApiError):
    """400: a malformed or forbidden request (also for ``label``/``wait`` on a daemon without them)."""
    code = "bad_request"


class UnauthorizedError(ApiError):
    """401: the bearer token is missing or wrong."""
    code = "unauthorized"


class ForbiddenError(ApiError):
    """403: the token lacks the scope of this endpoint (scopes= in the token file)."""
    code = "forbidden"


class ForbiddenKeyError(ApiError):
    """403: the token may not use this key (keys= in the token file)."""
    code = "forbidden_key"


class NotConnectedError(ApiError):
    """404: no signer holding the key is connected."""
    code = "not_connected"
    retryable = True


class NotFoundError(ApiError):
    """404: no such endpoint (a URL that is not the control API's)."""
    code = "not_found"


class MethodNotAllowedError(ApiError):
    """405: the endpoint does not take this method."""
    code = "method_not_allowed"


class RequestTimeoutError(ApiError):
    """408: the request's body did not arrive whole in time."""
    code = "request_timeout"
    retryable = True


class PayloadTooLargeError(ApiError):
    """413: the body or the message is over the daemon's limit."""
    code = "payload_too_large"


class UnsupportedMediaTypeError(ApiError):
    """415: the body was not sent as application/json."""
    code = "unsupported_media_type"


class RejectedError(ApiError):
    """422: the signer declined the request."""
    code = "rejected"


class TooManyRequestsError(ApiError):
    """429: too many failed authentications from this client, or the token is over its rate;
    retry later."""
    code = "too_many_requests"
    retryable = True


class InvalidSignatureError(ApiError):
    """502: the signer's answer did not verify (status None: this library's own check failed)."""
    code = "invalid_signature"


class ConnectionClosedError(ApiError):
    """502: the signer disconnected before answering."""
    code = "connection_closed"
    retryable = True


class ShuttingDownError(ApiError):
    """503: the daemon is stopping."""
    code = "shutting_down"
    retryable = True


class OverloadedError(ApiError):
    """503: the daemon's global or per-key in-flight cap is reached."""
    code = "overloaded"
    retryable = True


class ClusterUnavailableError(ApiError):
    """503: a cluster node that does not hold the key cannot reach the cluster."""
    code = "cluster_unavailable"
    retryable = True


class TimeoutError(ApiError, builtins.TimeoutError):  # noqa: A001 (as asyncio.TimeoutError)
    """504: the signer did not answer before the deadline."""
    code = "timeout"
    retryable = True


_BY_CODE: Dict[str, Type[ApiError]] = {
    cls.code: cls for cls in (
        BadRequestError, UnauthorizedError, ForbiddenError, ForbiddenKeyError,
        NotConnectedError, NotFoundError,
        MethodNotAllowedError, RequestTimeoutError, PayloadTooLargeError,
        UnsupportedMediaTypeError, RejectedError,
        TooManyRequestsError, InvalidSignatureError, ConnectionClosedError, ShuttingDownError,
        OverloadedError, ClusterUnavailableError, TimeoutError)
}


def error_for(status: Optional[int], code: Optional[str], message: str = "",
              request_id: Optional[str] = None) -> ApiError:
    """The exception for an error answer: its code's class, else ApiError."""
    cls = _BY_CODE.get(code or "", ApiError)
    return cls(message, status=status, code=code, request_id=request_id)
