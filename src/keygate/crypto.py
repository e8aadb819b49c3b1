"""Credential encryption at rest: AES-256-GCM, every ciphertext tagged with its key id.

Format: ``kg1.<key id>.<base64url(nonce || ciphertext || tag)>``. The associated data binds a
ciphertext to the row it belongs to, so a ciphertext copied onto another connection fails to
decrypt instead of leaking one connection's tokens through another.

The keys come from KEYGATE_ENCRYPTION_KEY or the key file, each a list with the current key
first: the first key encrypts, every key listed decrypts. The key file has one base64 key a line
(a line starting with `#` is a comment); the variable has the same keys separated by commas. A
single key — what `keygate init` writes — is a list of one.

`keygate encryption` edits the key file, never the variable. It replaces the file whole (a new
file, mode 0600, renamed over the old one), so a server reading it meanwhile sees the old list
or the new, never half; servers re-read it when it changes (`Cipher.reload`): on the cache poll,
and when a ciphertext names a key they do not know.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keygate.errors import ConfigurationError
from keygate.settings import Settings

log = logging.getLogger("keygate.crypto")

_PREFIX = "kg1"
_NONCE_BYTES = 12
_KEY_FILE_HEADER = (
    "# Keygate encryption keys, one a line: the first encrypts, every one decrypts.\n"
    "# Edit with 'keygate encryption'; the same file on every replica.\n"
)


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


def parse_keys(text: str, source: str, *, separator: str | None = None) -> list[bytes]:
    """The keys in `text`, one a line (or split at `separator`), current first; refuse an
    empty list or a key listed twice, naming `source`."""
    parts = text.split(separator) if separator else text.splitlines()
    keys = [
        parse_key(part, source)
        for part in (part.strip() for part in parts)
        if part and not part.startswith("#")
    ]
    if not keys:
        raise ConfigurationError(f"{source}: no encryption key in it")
    ids = [key_id(key) for key in keys]
    if len(set(ids)) != len(ids):
        raise ConfigurationError(f"{source}: a key is listed twice")
    return keys


class KeyFile:
    """The key file: read (refusing one that others may read), re-read when it changes, and
    replaced whole."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def read(self) -> list[bytes]:
        """The keys in the file, current first."""
        if not self.path.exists():
            raise ConfigurationError(
                f"No encryption key: set KEYGATE_ENCRYPTION_KEY or run 'keygate init' to create "
                f"{self.path}. Keygate never stores credentials unencrypted."
            )
        stamp = self._stat()
        if self.path.stat().st_mode & 0o077:
            raise ConfigurationError(f"{self.path} is readable by group or others; chmod 600 it.")
        keys = parse_keys(self.path.read_text(), str(self.path))
        self._stamp = stamp
        return keys

    def read_if_changed(self) -> list[bytes] | None:
        """The keys if the file changed since it was last read (a stat, nothing more, when it
        did not); None if it did not."""
        if self._stat() == self._stamp:
            return None
        return self.read()

    def write(self, keys: Sequence[bytes]) -> None:
        """Replace the file with `keys`, current first: a new file renamed over it, mode 0600."""
        text = _KEY_FILE_HEADER + "".join(base64.b64encode(key).decode() + "\n" for key in keys)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.new")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise


def load_keys(settings: Settings) -> tuple[list[bytes], KeyFile | None]:
    """The deployment's keys, current first, and the key file they came from (None: from
    KEYGATE_ENCRYPTION_KEY, which a running process cannot see change)."""
    if settings.encryption_key is not None:
        text = settings.encryption_key.get_secret_value()
        return parse_keys(text, "KEYGATE_ENCRYPTION_KEY", separator=","), None
    key_file = KeyFile(settings.key_file)
    return key_file.read(), key_file


def load_master_key(settings: Settings) -> bytes:
    """The current key from KEYGATE_ENCRYPTION_KEY, else the key file; refuse to go on without."""
    return load_keys(settings)[0][0]


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(master)


class _Keys(NamedTuple):
    """What a Cipher holds, replaced in one assignment when the keys are re-read."""

    primary_id: str
    aeads: dict[str, AESGCM]
    mac_keys: tuple[bytes, ...]  # the primary's first: it signs, any verifies


def _keys(current: bytes, others: Sequence[bytes]) -> _Keys:
    every = [current, *(key for key in others if key_id(key) != key_id(current))]
    return _Keys(
        key_id(current),
        {key_id(key): AESGCM(_derive(key, b"keygate credentials v1")) for key in every},
        tuple(_derive(key, b"keygate session tokens v1") for key in every),
    )


class Cipher:
    """Encrypts with the primary key; decrypts with any key it knows, found by key id.

    `reload`, when given, returns the keys (current first) if their source changed, else None:
    `Cipher.reload` calls it on the cache poll, and `decrypt` when a ciphertext names a key
    this process does not know yet (another replica re-encrypted it under a new one).
    """

    def __init__(
        self,
        master: bytes,
        previous: Mapping[str, bytes] | None = None,
        *,
        reload: Callable[[], list[bytes] | None] | None = None,
    ) -> None:
        self._keys = _keys(master, list((previous or {}).values()))
        self._reload = reload
        self._problem: str | None = None

    @classmethod
    def from_keys(
        cls, keys: Sequence[bytes], reload: Callable[[], list[bytes] | None] | None = None
    ) -> Cipher:
        """A cipher over a key list, current first."""
        return cls(keys[0], {key_id(key): key for key in keys[1:]}, reload=reload)

    @property
    def primary_key_id(self) -> str:
        """The id new ciphertexts are tagged with."""
        return self._keys.primary_id

    @property
    def key_ids(self) -> list[str]:
        """The ids of every key this cipher decrypts with, the primary first."""
        return list(self._keys.aeads)

    def reload(self) -> bool:
        """Take up the keys again if their source changed; whether they did. A source that
        cannot be read now (being edited by hand, say) leaves the keys as they were."""
        if self._reload is None:
            return False
        try:
            keys = self._reload()
        except (ConfigurationError, OSError) as exc:
            if str(exc) != self._problem:  # once, not on every poll while it lasts
                self._problem = str(exc)
                log.warning("encryption keys not re-read, keeping the ones loaded: %s", exc)
            return False
        if keys is None:
            return False
        self._problem = None
        before = self._keys.primary_id
        self._keys = _keys(keys[0], keys[1:])
        if self._keys.primary_id != before:
            log.info("encryption key %s is now current", self._keys.primary_id)
        return True

    def encrypt(self, plaintext: bytes, *, bound_to: str) -> str:
        """Encrypt and tag with the primary key id; `bound_to` is the owning row's identity."""
        keys = self._keys
        nonce = os.urandom(_NONCE_BYTES)
        sealed = keys.aeads[keys.primary_id].encrypt(nonce, plaintext, bound_to.encode())
        blob = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
        return f"{_PREFIX}.{keys.primary_id}.{blob}"

    def decrypt(self, token: str, *, bound_to: str) -> bytes:
        """Decrypt a ciphertext made by `encrypt` for the same `bound_to`."""
        try:
            prefix, kid, blob = token.split(".", 2)
        except ValueError as exc:
            raise DecryptionError("malformed ciphertext") from exc
        if prefix != _PREFIX:
            raise DecryptionError("malformed ciphertext")
        aead = self._keys.aeads.get(kid)
        if aead is None and self.reload():
            aead = self._keys.aeads.get(kid)
        if aead is None:
            raise DecryptionError(f"ciphertext made with an unknown key id {kid!r}")
        try:
            raw = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
        except (binascii.Error, ValueError) as exc:
            raise DecryptionError("malformed ciphertext") from exc
        try:
            return aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], bound_to.encode())
        except InvalidTag as exc:
            raise DecryptionError("ciphertext failed authentication") from exc

    def sign(self, message: bytes) -> bytes:
        """An HMAC-SHA256 tag (16 bytes) over `message` with the primary key, for
        self-verifying tokens."""
        return _tag(self._keys.mac_keys[0], message)

    def verify(self, message: bytes, tag: bytes) -> bool:
        """Constant-time check of a tag made by `sign` with any key this cipher knows (a
        connect link made before a rotation still opens)."""
        return any(hmac.compare_digest(_tag(key, message), tag) for key in self._keys.mac_keys)


def _tag(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()[:16]


def hash_api_key(key: str) -> str:
    """The stored form of an API key: SHA-256 hex (keys are high-entropy, so no slow hash)."""
    return hashlib.sha256(key.encode()).hexdigest()
