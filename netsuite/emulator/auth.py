"""Authentication as NetSuite checks it (netsuite.md §4), written from the specs, no OAuth library.

* OAuth 2.0 client credentials: ``POST /services/rest/auth/oauth2/v1/token`` with a JWT assertion
  whose header ``kid`` names a registered certificate id and whose signature (PS256/384/512,
  ES256/384/512) verifies with that certificate's public key; the answer is a bearer token valid for
  3600 seconds.
* Token-based authentication (OAuth 1.0a, HMAC-SHA256): the ``Authorization: OAuth realm=...``
  header is verified by recomputing the RFC 5849 signature — method, base URL, and the sorted
  ``oauth_*`` plus query parameters; a JSON body is not part of the base string.

Everything returns a reason string on failure so the request log can say *why* a login failed
(NetSuite's Login Audit Trail), while the client only ever sees ``INVALID_LOGIN``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"  # noqa: S105 - a URL path
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_LIFETIME_SECONDS = 3600

_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_EC_SIZES = {"256": 32, "384": 48, "512": 66}


@dataclass
class TbaCredentials:
    """One integration record + access token pair accepted for TBA."""

    consumer_key: str
    consumer_secret: str
    token_id: str
    token_secret: str


@dataclass
class AuthConfig:
    """Who may call the emulator. ``enabled=False`` is the "auth: off" mode for quick tests.

    ``account_id`` is the TBA realm, compared exactly (``1234567_SB1``: upper case, underscore).
    ``certificates`` maps certificate ids (the JWT ``kid``) to PEM public keys or certificates.
    ``client_id`` (JWT ``iss``) is checked when set. ``strict_audience`` requires the JWT ``aud``
    to equal the token URL the client called; otherwise any URL ending with the token path is
    accepted (UNCONFIRMED which variants NetSuite accepts, §4.2).
    """

    enabled: bool = True
    account_id: str = "1234567_SB1"
    client_id: str | None = None
    certificates: dict[str, bytes] = field(default_factory=dict)
    tba: list[TbaCredentials] = field(default_factory=list)
    strict_audience: bool = False
    timestamp_tolerance_seconds: int = 300
    required_scope: str = "rest_webservices"

    @classmethod
    def off(cls) -> AuthConfig:
        return cls(enabled=False)


class AuthFailure(Exception):
    """Authentication failed; ``reason`` is for logs and tests, never for the client."""

    def __init__(self, reason: str, *, oauth_error: str = "invalid_client") -> None:
        super().__init__(reason)
        self.reason = reason
        self.oauth_error = oauth_error


# --- OAuth 2.0 ---------------------------------------------------------------------------------


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _load_public_key(pem: bytes) -> Any:
    if b"BEGIN CERTIFICATE" in pem:
        from cryptography import x509

        return x509.load_pem_x509_certificate(pem).public_key()
    return serialization.load_pem_public_key(pem)


def verify_jwt(token: str, keys: dict[str, bytes]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify a compact JWS against the key named by its ``kid``; returns (header, claims)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise AuthFailure("client_assertion is not a compact JWT", oauth_error="invalid_request")
    try:
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
        signature = _b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError) as exc:
        raise AuthFailure(f"undecodable JWT: {exc}", oauth_error="invalid_request") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise AuthFailure("JWT header and payload must be objects", oauth_error="invalid_request")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg[:2] not in ("PS", "ES") or alg[2:] not in _HASHES:
        raise AuthFailure(f"unsupported JWT alg {alg!r}")
    kid = header.get("kid")
    if not isinstance(kid, str) or kid not in keys:
        raise AuthFailure(f"unknown certificate id (kid) {kid!r}")
    key = _load_public_key(keys[kid])
    signed = f"{parts[0]}.{parts[1]}".encode()
    digest = _HASHES[alg[2:]]()
    try:
        if alg.startswith("PS"):
            if not isinstance(key, rsa.RSAPublicKey):
                raise AuthFailure(f"{alg} needs an RSA certificate, kid {kid} is not RSA")
            key.verify(
                signature,
                signed,
                padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size),
                digest,
            )
        else:
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise AuthFailure(f"{alg} needs an EC certificate, kid {kid} is not EC")
            size = _EC_SIZES[alg[2:]]
            if len(signature) != 2 * size:
                raise AuthFailure("ES signature has the wrong length (expected raw r||s)")
            r = int.from_bytes(signature[:size], "big")
            s = int.from_bytes(signature[size:], "big")
            key.verify(encode_dss_signature(r, s), signed, ec.ECDSA(digest))
    except InvalidSignature:
        raise AuthFailure("JWT signature does not verify") from None
    return header, claims


class TokenIssuer:
    """Issues and checks bearer tokens (thread-safe; expired tokens are refused)."""

    def __init__(self, config: AuthConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self, form: dict[str, str], token_url: str) -> dict[str, Any]:
        """Handle a token request's form fields; raises :class:`AuthFailure`."""
        if form.get("grant_type") != "client_credentials":
            raise AuthFailure("grant_type must be client_credentials",
                              oauth_error="unsupported_grant_type")  # fmt: skip
        if form.get("client_assertion_type") != JWT_BEARER:
            raise AuthFailure("client_assertion_type must be jwt-bearer",
                              oauth_error="invalid_request")  # fmt: skip
        assertion = form.get("client_assertion")
        if not assertion:
            raise AuthFailure("client_assertion missing", oauth_error="invalid_request")
        _, claims = verify_jwt(assertion, self.config.certificates)
        now = self.clock()
        self._check_claims(claims, now, token_url)
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
            self._tokens[token] = now + TOKEN_LIFETIME_SECONDS
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": TOKEN_LIFETIME_SECONDS,
        }

    def _check_claims(self, claims: dict[str, Any], now: float, token_url: str) -> None:
        if self.config.client_id is not None and claims.get("iss") != self.config.client_id:
            raise AuthFailure(f"iss {claims.get('iss')!r} is not the integration's client id")
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if self.config.strict_audience:
            ok = token_url in audiences
        else:
            ok = any(isinstance(a, str) and a.endswith(TOKEN_PATH) for a in audiences)
        if not ok:
            raise AuthFailure(f"aud {aud!r} is not the token endpoint")
        scope = claims.get("scope")
        scopes = scope if isinstance(scope, list) else str(scope or "").replace(",", " ").split()
        if self.config.required_scope not in scopes:
            raise AuthFailure(f"scope {scope!r} lacks {self.config.required_scope}")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int | float) or not isinstance(exp, int | float):
            raise AuthFailure("iat and exp must be numbers", oauth_error="invalid_request")
        skew = self.config.timestamp_tolerance_seconds
        if exp <= now:
            raise AuthFailure("assertion expired", oauth_error="invalid_grant")
        if iat > now + skew:
            raise AuthFailure("assertion issued in the future", oauth_error="invalid_grant")
        if exp - iat > 3600:
            raise AuthFailure("exp must be at most 60 minutes after iat",
                              oauth_error="invalid_grant")  # fmt: skip

    def check_bearer(self, token: str) -> None:
        with self._lock:
            expires = self._tokens.get(token)
        if expires is None:
            raise AuthFailure("unknown bearer token")
        if expires <= self.clock():
            raise AuthFailure("bearer token expired")

    def expire_all(self) -> None:
        """Make every issued token stale (tests of the client's re-authentication)."""
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, 0.0)


# --- TBA (OAuth 1.0a, HMAC-SHA256) -------------------------------------------------------------


def _enc(value: str) -> str:
    return quote(value, safe="~-._")


def parse_oauth_header(header: str) -> dict[str, str]:
    """Parse ``OAuth realm="...", oauth_x="..."`` into decoded key/value pairs."""
    if not header.startswith("OAuth "):
        raise AuthFailure("Authorization is not an OAuth header")
    params: dict[str, str] = {}
    for part in header[6:].split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, raw = part.partition("=")
        if not sep or len(raw) < 2 or raw[0] != '"' or raw[-1] != '"':
            raise AuthFailure(f"malformed OAuth parameter {part!r}")
        params[unquote(key.strip())] = unquote(raw[1:-1])
    return params


def signature_base_string(
    method: str, base_url: str, oauth: dict[str, str], query: list[tuple[str, str]]
) -> str:
    """RFC 5849 §3.4.1: realm and the signature itself are excluded; query params included."""
    pairs = [(k, v) for k, v in oauth.items() if k not in ("realm", "oauth_signature")]
    pairs += query
    encoded = sorted((_enc(k), _enc(v)) for k, v in pairs)
    normalized = "&".join(f"{k}={v}" for k, v in encoded)
    return "&".join((method.upper(), _enc(base_url), _enc(normalized)))


def hmac_sha256_signature(base_string: str, consumer_secret: str, token_secret: str) -> str:
    key = f"{_enc(consumer_secret)}&{_enc(token_secret)}".encode()
    return base64.b64encode(hmac.new(key, base_string.encode(), hashlib.sha256).digest()).decode()


class TbaVerifier:
    """Verifies TBA headers against configured credentials; rejects replayed nonces."""

    def __init__(self, config: AuthConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self._nonces: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, header: str, method: str, base_url: str, query: list[tuple[str, str]]) -> None:
        params = parse_oauth_header(header)
        if params.get("realm") != self.config.account_id:
            raise AuthFailure(f"realm {params.get('realm')!r} is not {self.config.account_id!r}")
        if params.get("oauth_signature_method") != "HMAC-SHA256":
            raise AuthFailure(f"signature method {params.get('oauth_signature_method')!r} (only HMAC-SHA256)")
        if params.get("oauth_version", "1.0") != "1.0":
            raise AuthFailure("oauth_version must be 1.0")
        creds = next(
            (
                c
                for c in self.config.tba
                if c.consumer_key == params.get("oauth_consumer_key")
                and c.token_id == params.get("oauth_token")
            ),
            None,
        )
        if creds is None:
            raise AuthFailure("unknown consumer key / token pair")
        try:
            stamp = int(params.get("oauth_timestamp", ""))
        except ValueError:
            raise AuthFailure("oauth_timestamp is not an integer") from None
        now = self.clock()
        if abs(now - stamp) > self.config.timestamp_tolerance_seconds:
            raise AuthFailure("oauth_timestamp outside the allowed clock skew")
        nonce = params.get("oauth_nonce")
        if not nonce:
            raise AuthFailure("oauth_nonce missing")
        expected = hmac_sha256_signature(
            signature_base_string(method, base_url, params, query),
            creds.consumer_secret,
            creds.token_secret,
        )
        if not hmac.compare_digest(expected, params.get("oauth_signature", "")):
            raise AuthFailure("InvalidSignature")
        with self._lock:
            horizon = now - 2 * self.config.timestamp_tolerance_seconds
            while self._nonces and next(iter(self._nonces.values())) < horizon:
                self._nonces.popitem(last=False)
            marker = (creds.token_id, nonce)
            if marker in self._nonces:
                raise AuthFailure("nonce already used")
            self._nonces[marker] = now
