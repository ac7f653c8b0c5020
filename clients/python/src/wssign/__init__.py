"""wssign: Python client library for wssignd (protocol wssign.v1).

Signer: hold an Ed25519 key behind the daemon and answer sign requests::

    async with wssign.Signer(url, wssign.load_key("signer.key"), policy=approve) as signer:
        await signer.wait_closed()

Client / AsyncClient: ask the daemon's HTTP control API for signatures::

    sig = wssign.Client("http://127.0.0.1:8081", token).sign(public_key, b"invoice:42")

See docs/CLIENTS.md in the wssignd repository.
"""

from .client import AsyncClient, Client, KeyStatus, Signature
from .errors import (ApiError, BadRequestError, ClusterUnavailableError, ConnectionClosedError,
                     ForbiddenError, ForbiddenKeyError, IntroductionRefused, InvalidSignatureError, KeyFileError,
                     MethodNotAllowedError, NotConnectedError, NotFoundError, OverloadedError,
                     PayloadTooLargeError, ProtocolError, RejectedError, RequestTimeoutError,
                     ShuttingDownError,
                     TimeoutError, TooManyRequestsError, TransportError, UnauthorizedError,
                     UnsupportedMediaTypeError, WssignError, error_for)
from .keys import Key, KeyLike, load_key
from .protocol import PROTOCOL
from .signer import Policy, Reject, Signer, SignRequest

__version__ = "0.1.0"

__all__ = [
    "AsyncClient", "Client", "KeyStatus", "Signature", "Signer", "SignRequest", "Reject",
    "Policy", "Key", "KeyLike", "load_key", "PROTOCOL", "error_for",
    "WssignError", "ApiError", "TransportError", "ProtocolError", "IntroductionRefused",
    "KeyFileError", "BadRequestError", "UnauthorizedError", "ForbiddenError",
    "ForbiddenKeyError", "NotConnectedError",
    "NotFoundError", "MethodNotAllowedError", "RequestTimeoutError", "PayloadTooLargeError",
    "UnsupportedMediaTypeError", "RejectedError", "TooManyRequestsError",
    "InvalidSignatureError", "ConnectionClosedError", "ShuttingDownError", "OverloadedError",
    "ClusterUnavailableError", "TimeoutError",
]
