"""Ed25519 keys for signers: generated, from a 32-byte seed, or from a key
file in the formats `wssign` reads (PKCS#8 PEM as `wssign keygen` and
`openssl genpkey -algorithm ed25519` write it, or 64 hex digits of seed).
Key files must be readable by their owner only.
"""

from __future__ import annotations

import base64
import os
import stat
from typing import Awaitable, Protocol, Union, runtime_checkable

import nacl.signing

from .errors import KeyFileError
from .protocol import b64encode

__all__ = ["Key", "KeyLike", "load_key"]

_PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
_KEY_FILE_MAX = 16384


@runtime_checkable
class KeyLike(Protocol):
    """What a Signer needs from a key: its 32-byte public key and a signing
    function (which may be a coroutine function, e.g. for a hardware token)."""

    @property
    def public_key(self) -> bytes: ...

    def sign(self, data: bytes) -> Union[bytes, Awaitable[bytes]]: ...


class Key:
    """An Ed25519 private key held in memory (PyNaCl)."""

    def __init__(self, signing_key: nacl.signing.SigningKey):
        self._sk = signing_key

    @classmethod
    def generate(cls) -> "Key":
        """A new random key."""
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> "Key":
        """The key of a 32-byte seed (RFC 8032 secret key, libsodium's seed)."""
        if not isinstance(seed, (bytes, bytearray)) or len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        return cls(nacl.signing.SigningKey(bytes(seed)))

    @classmethod
    def load(cls, path: Union[str, "os.PathLike[str]"]) -> "Key":
        """Reads a key file; see load_key()."""
        return load_key(path)

    @property
    def public_key(self) -> bytes:
        """The 32-byte public key."""
        return bytes(self._sk.verify_key)

    @property
    def public_key_b64(self) -> str:
        """The public key in standard base64, as the daemon names keys."""
        return b64encode(self.public_key)

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of data."""
        return self._sk.sign(bytes(data)).signature

    def save(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Writes the key as PKCS#8 PEM to a new file of mode 0600 (never over an existing one)."""
        der = _PKCS8_PREFIX + bytes(self._sk)
        body = base64.encodebytes(der).decode("ascii").replace("\n", "")
        pem = "-----BEGIN PRIVATE KEY-----\n%s\n-----END PRIVATE KEY-----\n" % body
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(pem)

    def __repr__(self) -> str:
        return "Key(public_key=%s)" % self.public_key_b64


def load_key(path: Union[str, "os.PathLike[str]"]) -> Key:
    """Reads an Ed25519 key file: PKCS#8 PEM (unencrypted) or a 32-byte seed
    as 64 hex digits. Refuses, with KeyFileError, a file that is not a
    regular file, is larger than 16 KiB, or has any permission bit for group
    or others (use mode 0600 or 0400)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        raise KeyFileError("cannot open key file %s: %s" % (path, e.strerror)) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise KeyFileError("key file %s is not a regular file" % path)
    with os.fdopen(fd, "rb") as f:
        if st.st_mode & 0o077:
            raise KeyFileError("key file %s has mode %04o: it must be readable by its owner "
                               "only (chmod 600 %s)" % (path, st.st_mode & 0o7777, path))
        if st.st_size > _KEY_FILE_MAX:
            raise KeyFileError("key file %s is larger than %d bytes" % (path, _KEY_FILE_MAX))
        raw = f.read(_KEY_FILE_MAX + 1)
    text = raw.decode("ascii", "replace").strip()
    if "-----BEGIN" in text:
        if "-----BEGIN PRIVATE KEY-----" not in text:
            raise KeyFileError("key file %s: only an unencrypted PKCS#8 Ed25519 key "
                               "(BEGIN PRIVATE KEY) is read" % path)
        body = text.split("-----BEGIN PRIVATE KEY-----", 1)[1].split("-----END", 1)[0]
        try:
            der = base64.b64decode("".join(body.split()), validate=True)
        except ValueError:
            raise KeyFileError("key file %s: the PEM body is not base64" % path) from None
        if len(der) != len(_PKCS8_PREFIX) + 32 or not der.startswith(_PKCS8_PREFIX):
            raise KeyFileError("key file %s: not an Ed25519 private key" % path)
        return Key.from_seed(der[len(_PKCS8_PREFIX):])
    if len(text) == 64:
        try:
            return Key.from_seed(bytes.fromhex(text))
        except ValueError:
            pass
    raise KeyFileError("key file %s: neither PKCS#8 PEM nor 64 hex digits of seed" % path)
