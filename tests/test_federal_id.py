"""The Federal ID: encrypted at rest, masked, rotatable keys, a clear error for a bad key."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from bot.container import federal_id_cipher
from bot.federal_id import FederalIdCipher, FederalIdKeyError, generate_key, load_or_create_key_file, mask
from tests.conftest import make_settings


def test_seal_and_reveal() -> None:
    cipher = FederalIdCipher([generate_key()])
    sealed = cipher.seal("12-3456789")
    assert b"3456789" not in sealed.ciphertext
    assert sealed.masked == "**-***6789" == mask("6789")
    assert cipher.reveal(sealed.ciphertext) == "12-3456789"
    # Fernet is randomised; the digest is not.
    again = cipher.seal("12-3456789")
    assert again.ciphertext != sealed.ciphertext
    assert again.digest == sealed.digest == cipher.digest("123456789")
    assert cipher.digest("98-7654321") != sealed.digest


def test_key_rotation_reads_old_values() -> None:
    old, new = generate_key(), generate_key()
    sealed = FederalIdCipher([old]).seal("12-3456789")
    rotated = FederalIdCipher.from_setting(f"{new},{old}")
    assert rotated.reveal(sealed.ciphertext) == "12-3456789"
    with pytest.raises(FederalIdKeyError, match="none of the configured"):
        FederalIdCipher([new]).reveal(sealed.ciphertext)


@pytest.mark.parametrize("bad", ["", "short", "x" * 44])
def test_bad_keys_are_refused_clearly(bad: str) -> None:
    with pytest.raises(FederalIdKeyError):
        FederalIdCipher.from_setting(bad)


def test_embedded_key_file_is_made_once(tmp_path: Path) -> None:
    path = tmp_path / "credit-desk.key"
    keys: list[str] = []
    barrier = threading.Barrier(6)

    def make() -> None:
        barrier.wait()
        keys.append(load_or_create_key_file(path))

    threads = [threading.Thread(target=make) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(keys)) == 1
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_key_file(path) == keys[0]


def test_container_key_choice(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    cipher = federal_id_cipher(make_settings(database_url=f"sqlite:///{db}"))
    assert cipher is not None and (tmp_path / "x.key").exists()
    assert federal_id_cipher(make_settings(database_url="postgresql://u@h/db", federal_id_key=None)) is None
    key = generate_key()
    configured = federal_id_cipher(make_settings(database_url="postgresql://u@h/db", federal_id_key=key))
    assert configured is not None
    assert FederalIdCipher([key]).reveal(configured.seal("12-3456789").ciphertext) == "12-3456789"
