"""Credential encryption at rest: AES-256-GCM, every ciphertext tagged with its key id.

Format: ``kg1.<key id>.<base64url(nonce || ciphertext || tag)>``. The associated data binds a
ciphertext to the row it belongs to, so a ciphertext copied onto another connection fails to
decrypt instead of leaking one connection's tokens through another.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keygate.errors import ConfigurationError
from keygate.settings import Settings

_PREFIX = "kg1"
_NONCE_BYTES = 12


class DecryptionError(Exception):
    """A ciphertext could not be decrypted (wrong key, tampered, or bound to another row)."""


def key_id(key: bytes) -> str:
    """A short, stable, non-secret identifier of a key."""
    return hashlib.sha256(b"keygate-key-id:" + key).hexdigest()[:12]


def parse_key(encoded: str, source: str) -> bytes:
    """Decode a base64 32-byte key, naming where it came from on error."""
    try:
        key = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigurationError(f"{source}: the encryption key is not valid base64") from exc
    if len(key) != 32:
        raise ConfigurationError(
            f"{source}: the encryption key must be 32 bytes (base64 of 32 random bytes), "
            f"got {len(key)}"
        )
    return key


def generate_key() -> str:
    """A fresh base64-encoded 32-byte key."""
    return base64.b64encode(os.urandom(32)).decode()


def write_key_file(path: Path) -> None:
    """Create the key file with mode 0600 (a new directory 0700); never overwrite one."""
    for directory in reversed([path.parent, *path.parent.parents]):
        if not directory.exists():
            directory.mkdir(mode=0o700, exist_ok=True)  # Path.mkdir(parents=…) ignores mode
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(generate_key() + "\n")


def load_master_key(settings: Settings) -> bytes:
    """The master key from KEYGATE_ENCRYPTION_KEY, else the key file; refuse to go on without."""
    if settings.encryption_key is not None:
        return parse_key(settings.encryption_key.get_secret_value(), "KEYGATE_ENCRYPTION_KEY")
    path = settings.key_file
    if not path.exists():
        raise ConfigurationError(
            f"No encryption key: set KEYGATE_ENCRYPTION_KEY or run 'keygate init' to create "
            f"{path}. Keygate never stores credentials unencrypted."
        )
    mode = path.stat().st_mode & 0o077
    if mode:
        raise ConfigurationError(f"{path} is readable by group or others; chmod 600 it.")
    return parse_key(path.read_text(), str(path))


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


class Cipher:
    """Encrypts with the primary key; decrypts with any key it knows, found by key id."""

    def __init__(self, master: bytes, previous: Mapping[str, bytes] | None = None) -> None:
        self._primary_id = key_id(master)
        self._keys = {self._primary_id: AESGCM(_derive(master, b"keygate credentials v1"))}
        for kid, old in (previous or {}).items():
            self._keys[kid] = AESGCM(_derive(old, b"keygate credentials v1"))
        self._mac_key = _derive(master, b"keygate session tokens v1")

    @property
    def primary_key_id(self) -> str:
        """The id new ciphertexts are tagged with."""
        return self._primary_id

    def encrypt(self, plaintext: bytes, *, bound_to: str) -> str:
        """Encrypt and tag with the primary key id; `bound_to` is the owning row's identity."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self._primary_id].encrypt(nonce, plaintext, bound_to.encode())
        blob = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{_PREFIX}.{self._primary_id}.{blob}"

    def decrypt(self, token: str, *, bound_to: str) -> bytes:
        """Decrypt a ciphertext made by `encrypt` for the same `bound_to`."""
        try:
            prefix, kid, blob = token.split(".", 2)
        except ValueError as exc:
            raise DecryptionError("malformed ciphertext") from exc
        if prefix != _PREFIX or kid not in self._keys:
            raise DecryptionError(f"ciphertext made with an unknown key id {kid!r}")
        try:
            raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
        except (binascii.Error, ValueError) as exc:
            raise DecryptionError("malformed ciphertext") from exc
        try:
            return self._keys[kid].decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], bound_to.encode()
            )
        except InvalidTag as exc:
            raise DecryptionError("ciphertext failed authentication") from exc

    def sign(self, message: bytes) -> bytes:
        """An HMAC-SHA256 tag (16 bytes) over `message`, for self-verifying tokens."""
        return hmac.new(self._mac_key, message, hashlib.sha256).digest()[:16]

    def verify(self, message: bytes, tag: bytes) -> bool:
        """Constant-time check of a tag made by `sign`."""
        return hmac.compare_digest(self.sign(message), tag)


def hash_api_key(key: str) -> str:
    """The stored form of an API key: SHA-256 hex (keys are high-entropy, so no slow hash)."""
    return hashlib.sha256(key.encode()).hexdigest()
