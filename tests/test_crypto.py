"""Credential encryption: AES-256-GCM bound to its row, tagged with a key id, refusing bad keys."""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from keygate.crypto import (
    Cipher,
    DecryptionError,
    KeyFile,
    generate_key,
    key_id,
    load_keys,
    load_master_key,
    write_key_file,
)
from keygate.errors import ConfigurationError
from keygate.settings import Settings

ROW = "4314bd0f-fd56-40ab-8c65-2676dd2c23c4"
PLAIN = b'{"access_token": "at-crypto-test"}'


def master() -> bytes:
    """A fresh 32-byte key."""
    return base64.b64decode(generate_key())


def test_round_trip_tags_the_key_id_and_hides_the_plaintext() -> None:
    key = master()
    cipher = Cipher(key)
    sealed = cipher.encrypt(PLAIN, bound_to=ROW)
    assert sealed.startswith(f"kg1.{key_id(key)}.")
    assert cipher.primary_key_id == key_id(key)
    assert b"at-crypto-test" not in sealed.encode()
    assert cipher.decrypt(sealed, bound_to=ROW) == PLAIN
    # A fresh nonce every time: the same plaintext never gives the same ciphertext.
    assert cipher.encrypt(PLAIN, bound_to=ROW) != sealed


def test_tampering_is_detected() -> None:
    cipher = Cipher(master())
    sealed = cipher.encrypt(PLAIN, bound_to=ROW)
    prefix, kid, blob = sealed.split(".")
    raw = bytearray(base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4)))
    for position in (0, 12, len(raw) - 1):  # nonce, ciphertext, tag
        flipped = bytearray(raw)
        flipped[position] ^= 0x01
        forged = base64.urlsafe_b64encode(bytes(flipped)).decode().rstrip("=")
        with pytest.raises(DecryptionError, match="failed authentication"):
            cipher.decrypt(f"{prefix}.{kid}.{forged}", bound_to=ROW)
    with pytest.raises(DecryptionError, match="malformed"):
        cipher.decrypt("not-a-ciphertext", bound_to=ROW)


def test_ciphertext_is_bound_to_its_row() -> None:
    cipher = Cipher(master())
    sealed = cipher.encrypt(PLAIN, bound_to=ROW)
    with pytest.raises(DecryptionError):
        cipher.decrypt(sealed, bound_to="11111111-2222-4333-8444-555555555555")
    assert cipher.decrypt(sealed, bound_to=ROW) == PLAIN


def test_unknown_key_id_is_refused() -> None:
    sealed = Cipher(master()).encrypt(PLAIN, bound_to=ROW)
    with pytest.raises(DecryptionError, match="unknown key id"):
        Cipher(master()).decrypt(sealed, bound_to=ROW)


def test_rotation_decrypts_old_ciphertexts_and_encrypts_with_the_new_key() -> None:
    old, new = master(), master()
    before = Cipher(old).encrypt(PLAIN, bound_to=ROW)
    rotated = Cipher(new, previous={key_id(old): old})
    assert rotated.decrypt(before, bound_to=ROW) == PLAIN
    after = rotated.encrypt(PLAIN, bound_to=ROW)
    assert after.split(".")[1] == key_id(new)
    with pytest.raises(DecryptionError, match="unknown key id"):
        Cipher(old).decrypt(after, bound_to=ROW)


def test_load_master_key_from_the_environment_or_the_key_file(tmp_path: Path) -> None:
    encoded = generate_key()
    assert load_master_key(Settings(data_dir=tmp_path, encryption_key=SecretStr(encoded))) == (
        base64.b64decode(encoded)
    )
    settings = Settings(data_dir=tmp_path / "data")
    write_key_file(settings.key_file)
    assert os.stat(settings.key_file).st_mode & 0o777 == 0o600
    assert len(load_master_key(settings)) == 32
    with pytest.raises(FileExistsError):
        write_key_file(settings.key_file)  # never overwrites a key


def test_load_master_key_refuses_a_missing_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="No encryption key: set KEYGATE_ENCRYPTION_KEY"):
        load_master_key(Settings(data_dir=tmp_path))


def test_load_master_key_refuses_a_world_readable_key_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    write_key_file(settings.key_file)
    settings.key_file.chmod(0o644)
    with pytest.raises(ConfigurationError, match="readable by group or others; chmod 600"):
        load_master_key(settings)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not base64!", "not valid base64"),
        (base64.b64encode(b"short").decode(), "must be 32 bytes"),
    ],
)
def test_load_master_key_refuses_a_bad_key(tmp_path: Path, value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=f"KEYGATE_ENCRYPTION_KEY: .*{message}"):
        load_master_key(Settings(data_dir=tmp_path, encryption_key=SecretStr(value)))
    key_file = tmp_path / "encryption.key"
    key_file.write_text(value)
    key_file.chmod(0o600)
    with pytest.raises(ConfigurationError, match=f"{key_file}: .*{message}"):
        load_master_key(Settings(data_dir=tmp_path))


def test_key_lists_current_first_from_the_variable_or_the_file(tmp_path: Path) -> None:
    new, old = master(), master()
    listed = ", ".join(base64.b64encode(k).decode() for k in (new, old))
    keys, source = load_keys(Settings(data_dir=tmp_path, encryption_key=SecretStr(listed)))
    assert (keys, source) == ([new, old], None)
    settings = Settings(data_dir=tmp_path)
    KeyFile(settings.key_file).write([new, old])
    assert os.stat(settings.key_file).st_mode & 0o777 == 0o600
    keys, source = load_keys(settings)
    assert keys == [new, old]
    assert source is not None
    twice = base64.b64encode(new).decode()
    with pytest.raises(ConfigurationError, match="listed twice"):
        load_keys(Settings(data_dir=tmp_path, encryption_key=SecretStr(f"{twice},{twice}")))


def test_a_cipher_over_the_key_file_takes_up_keys_added_by_another_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old, new = master(), master()
    key_file = KeyFile(tmp_path / "encryption.key")
    key_file.write([old])
    cipher = Cipher.from_keys(key_file.read(), reload=key_file.read_if_changed)
    link_tag = cipher.sign(b"connect link")
    # Another process rotates the file and writes a row under the new key.
    KeyFile(key_file.path).write([new, old])
    elsewhere = Cipher.from_keys([new, old]).encrypt(PLAIN, bound_to=ROW)
    # The first ciphertext naming a key it does not know makes the cipher read the file again.
    assert cipher.decrypt(elsewhere, bound_to=ROW) == PLAIN
    assert cipher.primary_key_id == key_id(new)
    assert cipher.encrypt(PLAIN, bound_to=ROW).split(".")[1] == key_id(new)
    # What the old key signed (a connect link) still verifies; new tags use the new key.
    assert cipher.verify(b"connect link", link_tag)
    assert cipher.sign(b"connect link") != link_tag
    # Unchanged file: no re-read; a file being edited by hand (or gone): the keys loaded stay,
    # and the problem is logged once, not on every poll.
    assert cipher.reload() is False
    key_file.path.write_text("not base64!\n")
    with caplog.at_level(logging.WARNING, logger="keygate.crypto"):
        assert cipher.reload() is False
        assert cipher.reload() is False
        key_file.path.unlink()
        assert cipher.reload() is False
        assert cipher.reload() is False
    logged = [record.getMessage() for record in caplog.records]
    assert len(logged) == 2, logged
    assert "not valid base64" in logged[0]
    assert "No encryption key" in logged[1]
    assert cipher.decrypt(elsewhere, bound_to=ROW) == PLAIN
