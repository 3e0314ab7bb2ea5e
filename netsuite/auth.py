"""httpx ``Auth`` for NetSuite: OAuth 2.0 client credentials (preferred) and TBA (OAuth 1.0a).

Both are written here rather than taken from authlib: authlib's OAuth1 drops JSON bodies unless
forced, then adds an ``oauth_body_hash`` Oracle never documents, and it has no HMAC-SHA256 signer
built in; no Python library does NetSuite's OAuth 2.0 M2M flow (netsuite.md §5.2-5.3). Each is a
few dozen lines, checked against Oracle's published signature vector.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Generator, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote

import httpx
import jwt

from netsuite.config import NetSuiteConfig
from netsuite.errors import (
    ProtocolError,
    RateLimited,
    ServerError,
    Unauthorized,
    error_from_response,
)

Clock = Callable[[], float]

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# --------------------------------------------------------------------------------------------
# OAuth 2.0 client credentials (machine to machine), netsuite.md §4.2
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessToken:
    value: str
    expires_at: float  # same clock as the provider's


class TokenProvider:
    """Fetches and caches NetSuite OAuth 2.0 access tokens (client credentials + JWT assertion).

    Tokens live 60 minutes and the flow has no refresh token, so a new assertion is signed and
    exchanged shortly before expiry. Thread-safe: when many threads need a token at once, one of
    them fetches it and the others wait for that result instead of each hitting the endpoint.
    """

    def __init__(
        self,
        http: httpx.Client,
        *,
        token_url: str,
        client_id: str,
        certificate_id: str,
        private_key_pem: str,
        algorithm: str = "PS256",
        scope: Iterable[str] = ("rest_webservices",),
        scope_as_list: bool = True,
        assertion_lifetime_seconds: int = 300,
        refresh_margin_seconds: float = 120.0,
        clock: Clock = time.time,
    ) -> None:
        if algorithm not in ("PS256", "ES256"):
            raise ValueError(f"unsupported JWT algorithm {algorithm!r} (PS256 or ES256)")
        self._http = http
        self._token_url = token_url
        self._client_id = client_id
        self._certificate_id = certificate_id
        self._private_key_pem = private_key_pem
        self._algorithm = algorithm
        self._scope = tuple(scope)
        self._scope_as_list = scope_as_list
        self._assertion_lifetime = assertion_lifetime_seconds
        self._refresh_margin = refresh_margin_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._token: AccessToken | None = None
        self.fetch_count = 0  # observable for tests and metrics

    @classmethod
    def from_config(
        cls, config: NetSuiteConfig, http: httpx.Client, clock: Clock = time.time
    ) -> TokenProvider:
        if not (config.oauth2_client_id and config.oauth2_certificate_id and config.oauth2_private_key_pem):
            raise ValueError("OAuth 2.0 needs client id, certificate id and private key")
        return cls(
            http,
            token_url=config.hosts.token_url,
            client_id=config.oauth2_client_id,
            certificate_id=config.oauth2_certificate_id,
            private_key_pem=config.oauth2_private_key_pem.get_secret_value(),
            algorithm=config.oauth2_algorithm,
            scope=config.oauth2_scope,
            scope_as_list=config.oauth2_scope_as_list,
            assertion_lifetime_seconds=config.oauth2_assertion_lifetime_seconds,
            refresh_margin_seconds=config.oauth2_token_refresh_margin_seconds,
            clock=clock,
        )

    def client_assertion(self) -> str:
        """A signed JWT: header ``kid`` = certificate id; claims iss/scope/aud/iat/exp/jti."""
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self._client_id,
            "scope": list(self._scope) if self._scope_as_list else " ".join(self._scope),
            "aud": self._token_url,
            "iat": now,
            "exp": now + self._assertion_lifetime,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(
            claims,
            self._private_key_pem,
            algorithm=self._algorithm,
            headers={"kid": self._certificate_id, "typ": "JWT"},
        )

    def token(self) -> str:
        """A valid access token, fetching one if none is cached or it is about to expire."""
        current = self._token
        if current is not None and not self._expiring(current):
            return current.value
        with self._lock:
            current = self._token  # another thread may have fetched while we waited
            if current is None or self._expiring(current):
                current = self._fetch()
                self._token = current
            return current.value

    def invalidate(self, stale: str) -> None:
        """Forget ``stale`` after NetSuite rejected it; a newer token is kept."""
        with self._lock:
            if self._token is not None and self._token.value == stale:
                self._token = None

    def _expiring(self, token: AccessToken) -> bool:
        return self._clock() >= token.expires_at - self._refresh_margin

    def _fetch(self) -> AccessToken:
        issued = self._clock()
        response = self._http.post(
            self._token_url,
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": CLIENT_ASSERTION_TYPE,
                "client_assertion": self.client_assertion(),
            },
            headers={"Accept": "application/json"},
        )
        self.fetch_count += 1
        if response.status_code != 200:
            error = error_from_response(response)
            if isinstance(error, RateLimited | ServerError):
                raise error
            # invalid_grant, invalid_client, a bad kid...: the credentials are not accepted.
            raise Unauthorized(
                error.status,
                error.code,
                f"token endpoint refused the client assertion: {error.detail}",
                title=error.title,
                request_id=error.request_id,
                details=error.details,
            )
        try:
            payload = response.json()
            value = payload["access_token"]
            expires_in = float(payload.get("expires_in", 3600))
        except (ValueError, KeyError, TypeError) as exc:
            raise ProtocolError(
                response.status_code, None, f"token endpoint answered without a token ({exc})"
            ) from exc
        if not isinstance(value, str) or not value:
            raise ProtocolError(response.status_code, None, "token endpoint sent an empty token")
        return AccessToken(value=value, expires_at=issued + expires_in)


class OAuth2ClientCredentialsAuth(httpx.Auth):
    """``Authorization: Bearer <token>``; on a 401 the token is refreshed once and the request
    sent once more (a token revoked or expired early). Further 401s are the caller's to judge."""

    def __init__(self, provider: TokenProvider) -> None:
        self._provider = provider

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token = self._provider.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            self._provider.invalidate(token)
            request.headers["Authorization"] = f"Bearer {self._provider.token()}"
            yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        raise NotImplementedError("the NetSuite client is synchronous")
        yield request  # pragma: no cover  (makes this an async generator)


# --------------------------------------------------------------------------------------------
# Token-based authentication (OAuth 1.0a, HMAC-SHA256), netsuite.md §4.1
# --------------------------------------------------------------------------------------------

_NONCE_ALPHABET = string.ascii_letters + string.digits


def percent_encode(value: str) -> str:
    """RFC 5849 §3.6 encoding: everything but ALPHA / DIGIT / ``-._~``."""
    return quote(value, safe="-._~")


def random_nonce() -> str:
    return "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(20))


def signature_base_url(url: httpx.URL) -> str:
    """Scheme and host lower-cased, default port dropped, path kept, no query (RFC 5849 §3.4.1.2)."""
    scheme = url.scheme.lower()
    host = url.host.lower()
    port = url.port
    if port is not None and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{url.raw_path.split(b'?', 1)[0].decode('ascii')}"


def signature_base_string(
    method: str, url: httpx.URL, oauth_params: dict[str, str], extra: Iterable[tuple[str, str]]
) -> str:
    """``METHOD&enc(base URL)&enc(sorted params)``; ``extra`` are query (and form) parameters."""
    pairs = [(percent_encode(k), percent_encode(v)) for k, v in oauth_params.items()]
    pairs += [(percent_encode(k), percent_encode(v)) for k, v in extra]
    pairs.sort()
    normalised = "&".join(f"{k}={v}" for k, v in pairs)
    return "&".join((method.upper(), percent_encode(signature_base_url(url)), percent_encode(normalised)))


def hmac_sha256_signature(base_string: str, consumer_secret: str, token_secret: str) -> str:
    key = f"{percent_encode(consumer_secret)}&{percent_encode(token_secret)}"
    digest = hmac.new(key.encode(), base_string.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


class TokenBasedAuth(httpx.Auth):
    """OAuth 1.0a with HMAC-SHA256 the way NetSuite REST checks it.

    The realm (account id, upper-case ``_`` form) comes first in the header and is not signed;
    URL query parameters are signed; a JSON body is sent untouched and is not part of the base
    string (only form-encoded bodies are, per RFC 5849). Each attempt gets a fresh nonce and
    timestamp; both are injectable so tests can reproduce Oracle's vector.
    """

    def __init__(
        self,
        *,
        consumer_key: str,
        consumer_secret: str,
        token_id: str,
        token_secret: str,
        realm: str,
        nonce: Callable[[], str] = random_nonce,
        clock: Clock = time.time,
    ) -> None:
        self._consumer_key = consumer_key
        self._consumer_secret = consumer_secret
        self._token_id = token_id
        self._token_secret = token_secret
        self._realm = realm
        self._nonce = nonce
        self._clock = clock

    @classmethod
    def from_config(cls, config: NetSuiteConfig, **kwargs: Any) -> TokenBasedAuth:
        if not (
            config.tba_consumer_key
            and config.tba_consumer_secret
            and config.tba_token_id
            and config.tba_token_secret
        ):
            raise ValueError("TBA needs consumer key/secret and token id/secret")
        return cls(
            consumer_key=config.tba_consumer_key,
            consumer_secret=config.tba_consumer_secret.get_secret_value(),
            token_id=config.tba_token_id,
            token_secret=config.tba_token_secret.get_secret_value(),
            realm=config.hosts.realm,
            **kwargs,
        )

    def authorization_header(self, request: httpx.Request) -> str:
        oauth = {
            "oauth_consumer_key": self._consumer_key,
            "oauth_nonce": self._nonce(),
            "oauth_signature_method": "HMAC-SHA256",
            "oauth_timestamp": str(int(self._clock())),
            "oauth_token": self._token_id,
            "oauth_version": "1.0",
        }
        extra = list(request.url.params.multi_items())
        content_type = request.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded":
            extra += parse_qsl(request.read().decode(), keep_blank_values=True)
        base = signature_base_string(request.method, request.url, oauth, extra)
        signature = hmac_sha256_signature(base, self._consumer_secret, self._token_secret)
        ordered = [
            ("realm", self._realm),
            ("oauth_token", oauth["oauth_token"]),
            ("oauth_consumer_key", oauth["oauth_consumer_key"]),
            ("oauth_nonce", oauth["oauth_nonce"]),
            ("oauth_timestamp", oauth["oauth_timestamp"]),
            ("oauth_signature_method", oauth["oauth_signature_method"]),
            ("oauth_version", oauth["oauth_version"]),
            ("oauth_signature", signature),
        ]
        return "OAuth " + ", ".join(f'{k}="{percent_encode(v)}"' for k, v in ordered)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.authorization_header(request)
        yield request


def build_auth(
    config: NetSuiteConfig, http: httpx.Client, clock: Clock = time.time
) -> OAuth2ClientCredentialsAuth | TokenBasedAuth:
    """The auth the config asks for; OAuth 2.0 fetches its tokens through ``http``."""
    if config.auth_mode == "oauth2":
        return OAuth2ClientCredentialsAuth(TokenProvider.from_config(config, http, clock=clock))
    return TokenBasedAuth.from_config(config, clock=clock)


__all__ = [
    "AccessToken",
    "OAuth2ClientCredentialsAuth",
    "TokenBasedAuth",
    "TokenProvider",
    "build_auth",
    "hmac_sha256_signature",
    "percent_encode",
    "signature_base_string",
]
