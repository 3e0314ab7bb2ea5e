"""The Federal ID Number (EIN): encrypted at rest, masked everywhere, readable only for the NetSuite write.

Encryption is Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`); several comma-separated keys may be
configured, newest first, so that keys can be rotated (`MultiFernet`). A keyed digest (HMAC-SHA256 under a
key derived from the newest Fernet key) lets us find "the same tax number" without decrypting anything.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

EIN_PATTERN = re.compile(r"^[0-9]{2}-[0-9]{7}$")


class FederalIdKeyError(RuntimeError):
    """The encryption key is missing or malformed: a configuration problem, said plainly."""


def digits(federal_id: str) -> str:
    return "".join(ch for ch in federal_id if ch in "0123456789")


def mask(last4: str) -> str:
    """`**-***6789`: the shape of an EIN with only the last four digits shown."""
    return f"**-***{last4}"


@dataclass(frozen=True)
class SealedFederalId:
    ciphertext: bytes
    last4: str
    digest: str

    @property
    def masked(self) -> str:
        return mask(self.last4)


class FederalIdCipher:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise FederalIdKeyError("no Federal ID key configured (FEDERAL_ID_KEY)")
        try:
            fernets = [Fernet(k.strip().encode()) for k in keys]
        except (ValueError, TypeError) as exc:
            raise FederalIdKeyError(
                "FEDERAL_ID_KEY must be Fernet keys (32 url-safe base64 bytes), comma-separated; "
                "make one with `credit-desk keygen`"
            ) from exc
        self._fernet = MultiFernet(fernets)
        self._digest_key = hashlib.sha256(b"credit-desk/federal-id-digest/" + keys[0].encode()).digest()

    @classmethod
    def from_setting(cls, value: str) -> FederalIdCipher:
        return cls([k for k in value.split(",") if k.strip()])

    def seal(self, federal_id: str) -> SealedFederalId:
        d = digits(federal_id)
        return SealedFederalId(
            ciphertext=self._fernet.encrypt(federal_id.encode()),
            last4=d[-4:],
            digest=self.digest(federal_id),
        )

    def digest(self, federal_id: str) -> str:
        """A keyed, deterministic fingerprint of the digits, for matching without decrypting."""
        return hmac.new(self._digest_key, digits(federal_id).encode(), hashlib.sha256).hexdigest()

    def reveal(self, ciphertext: bytes) -> str:
        """The clear value. Only the NetSuite write may call this."""
        try:
            return self._fernet.decrypt(ciphertext).decode()
        except InvalidToken as exc:
            raise FederalIdKeyError(
                "cannot decrypt a Federal ID: none of the configured FEDERAL_ID_KEY keys fits"
            ) from exc


def generate_key() -> str:
    return Fernet.generate_key().decode()


def load_or_create_key_file(path: Path) -> str:
    """The key file used on embedded defaults (SQLite, no FEDERAL_ID_KEY): made once, mode 0600."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_key()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, (key + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        # link() fails if another process won the race: then its key is the key.
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()
