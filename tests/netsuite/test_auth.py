"""NetSuite authentication: TBA against Oracle's published vector, OAuth 2.0 M2M token flow."""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from netsuite.auth import (
    CLIENT_ASSERTION_TYPE,
    OAuth2ClientCredentialsAuth,
    TokenBasedAuth,
    TokenProvider,
    build_auth,
)
from netsuite.config import NetSuiteConfig
from netsuite.errors import ServerError, Unauthorized

# Oracle's test vector, "The Signature for Token-Based Authentication" (netsuite.md §4.1).
CONSUMER_KEY = "ef40afdd8abaac111b13825dd5e5e2ddddb44f86d5a0dd6dcf38c20aae6b67e4"
CONSUMER_SECRET = "d26ad321a4b2f23b0741c8d38392ce01c3e23e109df6c96eac6d099e9ab9e8b5"
TOKEN_ID = "2b0ce516420110bcbd36b69e99196d1b7f6de3c6234c5afb799b73d87569f5cc"
TOKEN_SECRET = "c29a677df7d5439a458c063654187e3d678d73aca8e3c9d8bea1478a3eb0d295"
NONCE = "fjaLirsIcCGVZWzBX0pg"
TIMESTAMP = 1508242306


def vector_auth(realm: str = "123456") -> TokenBasedAuth:
    return TokenBasedAuth(
        consumer_key=CONSUMER_KEY,
        consumer_secret=CONSUMER_SECRET,
        token_id=TOKEN_ID,
        token_secret=TOKEN_SECRET,
        realm=realm,
        nonce=lambda: NONCE,
        clock=lambda: TIMESTAMP,
    )


def header_params(header: str) -> dict[str, str]:
    assert header.startswith("OAuth ")
    params = {}
    for part in header[len("OAuth ") :].split(", "):
        name, _, quoted = part.partition("=")
        assert quoted.startswith('"') and quoted.endswith('"'), part
        params[name] = quoted[1:-1]
    return params


# ---- TBA --------------------------------------------------------------------------------------


def test_tba_matches_oracles_rest_get_vector_exactly() -> None:
    request = httpx.Request(
        "GET", "https://123456.suitetalk.api.netsuite.com/services/rest/record/v1/employee/40"
    )
    assert vector_auth().authorization_header(request) == (
        'OAuth realm="123456", '
        f'oauth_token="{TOKEN_ID}", '
        f'oauth_consumer_key="{CONSUMER_KEY}", '
        f'oauth_nonce="{NONCE}", '
        f'oauth_timestamp="{TIMESTAMP}", '
        'oauth_signature_method="HMAC-SHA256", '
        'oauth_version="1.0", '
        'oauth_signature="B5OIWznZ2YP0OB7VrJrGkYsTh%2B8H%2B5T9Hag%2Bo92q0zY%3D"'
    )


def test_tba_signs_query_parameters_but_not_the_json_body_and_sends_the_body() -> None:
    # Oracle's RESTlet vector: POST with four query parameters (true value has a leading '+').
    url = (
        "https://123456.restlets.api.netsuite.com/app/site/hosting/restlet.nl"
        "?script=6&deploy=1&customParam=someValue&testParam=someOtherValue"
    )
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    body = {"companyName": "Acme Widgets LLC", "creditLimit": 50000}
    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        http.post(url, json=body, auth=vector_auth())
        http.post(url, json={"other": "body"}, auth=vector_auth())
        http.post(url.replace("someValue", "changed"), json=body, auth=vector_auth())

    signatures = [header_params(r.headers["Authorization"])["oauth_signature"] for r in seen]
    assert signatures[0] == "%2BKK4SKNgz4ZiILGLwOMtfYlgcXSy1eis8ldE9X90azQ%3D"
    assert signatures[1] == signatures[0]  # a different JSON body signs the same
    assert signatures[2] != signatures[0]  # a different query parameter does not
    assert json.loads(seen[0].content) == body
    assert "oauth_body_hash" not in seen[0].headers["Authorization"]


def test_tba_signs_form_encoded_bodies_as_rfc_5849_requires() -> None:
    url = "https://123456.suitetalk.api.netsuite.com/services/rest/x"
    json_req = httpx.Request("POST", url, json={"a": "1"})
    form_req = httpx.Request("POST", url, data={"a": "1"})
    query_req = httpx.Request("POST", url + "?a=1", json={"a": "1"})
    auth = vector_auth()
    sig = {
        name: header_params(auth.authorization_header(req))["oauth_signature"]
        for name, req in (("json", json_req), ("form", form_req), ("query", query_req))
    }
    assert sig["form"] != sig["json"]
    assert sig["form"] == sig["query"]  # a form parameter counts like a query parameter


def test_tba_realm_comes_first_in_upper_case_for_a_sandbox() -> None:
    config = NetSuiteConfig(
        account_id="1234567_sb1",
        auth_mode="tba",
        tba_consumer_key="ck",
        tba_consumer_secret="cs",
        tba_token_id="tk",
        tba_token_secret="ts",
    )
    auth = TokenBasedAuth.from_config(config, nonce=lambda: NONCE, clock=lambda: TIMESTAMP)
    request = httpx.Request("GET", config.hosts.record_url("customer", "1"))
    header = auth.authorization_header(request)
    assert header.startswith('OAuth realm="1234567_SB1", oauth_token="tk", ')
    assert request.url.host == "1234567-sb1.suitetalk.api.netsuite.com"


def test_tba_uses_a_fresh_nonce_for_every_request() -> None:
    auth = TokenBasedAuth(
        consumer_key="ck",
        consumer_secret="cs",
        token_id="tk",
        token_secret="ts",
        realm="123456",
        clock=lambda: TIMESTAMP,
    )
    request = httpx.Request("GET", "https://123456.suitetalk.api.netsuite.com/x")
    nonces = {header_params(auth.authorization_header(request))["oauth_nonce"] for _ in range(5)}
    assert len(nonces) == 5
    assert all(len(n) == 20 and n.isalnum() for n in nonces)


# ---- OAuth 2.0 client credentials -------------------------------------------------------------

TOKEN_URL = "https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/auth/oauth2/v1/token"


def pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify_jws_independently(token: str, public_key: Any, alg: str) -> None:
    """Check the signature with cryptography directly, per RFC 7518 (not via PyJWT)."""
    header_b64, payload_b64, sig_b64 = token.split(".")
    signing_input = f"{header_b64}.{payload_b64}".encode()
    signature = b64url_decode(sig_b64)
    if alg == "PS256":
        public_key.verify(
            signature,
            signing_input,
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
            hashes.SHA256(),
        )
    else:
        assert len(signature) == 64  # raw r||s, not DER
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        public_key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))


class FakeClock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class TokenEndpoint:
    """Answers the token endpoint like NetSuite; records the assertions it got."""

    def __init__(self, expires_in: int = 3600) -> None:
        self.assertions: list[str] = []
        self.issued: list[str] = []
        self.expires_in = expires_in
        self.lock = threading.Lock()
        self.delay = 0.0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert str(request.url) == TOKEN_URL
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        assert "authorization" not in request.headers
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        assert form["grant_type"] == "client_credentials"
        assert form["client_assertion_type"] == CLIENT_ASSERTION_TYPE
        if self.delay:
            time.sleep(self.delay)  # widens the window in which threads race for a token
        with self.lock:
            self.assertions.append(form["client_assertion"])
            token = f"access-{len(self.assertions)}"
            self.issued.append(token)
        return httpx.Response(
            200, json={"access_token": token, "expires_in": self.expires_in, "token_type": "bearer"}
        )


def oauth2_config(key_pem: str, alg: str = "PS256", **overrides: Any) -> NetSuiteConfig:
    values: dict[str, Any] = {
        "account_id": "1234567_SB1",
        "auth_mode": "oauth2",
        "oauth2_client_id": "client-abc",
        "oauth2_certificate_id": "cert-xyz",
        "oauth2_private_key_pem": key_pem,
        "oauth2_algorithm": alg,
    }
    values.update(overrides)
    return NetSuiteConfig(**values)


@pytest.mark.parametrize("alg", ["PS256", "ES256"])
def test_oauth2_assertion_header_claims_and_signature(
    alg: str, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    key = rsa_key if alg == "PS256" else ec_key
    endpoint = TokenEndpoint()
    clock = FakeClock()
    with httpx.Client(transport=httpx.MockTransport(endpoint)) as http:
        provider = TokenProvider.from_config(oauth2_config(pem(key), alg), http, clock=clock)
        assert provider.token() == "access-1"

    assertion = endpoint.assertions[0]
    header = json.loads(b64url_decode(assertion.split(".")[0]))
    assert header == {"alg": alg, "kid": "cert-xyz", "typ": "JWT"}
    verify_jws_independently(assertion, key.public_key(), alg)
    claims = jwt.decode(
        assertion,
        key.public_key(),
        algorithms=[alg],
        audience=TOKEN_URL,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["iss"] == "client-abc"
    assert claims["aud"] == TOKEN_URL
    assert claims["scope"] == ["rest_webservices"]
    assert claims["iat"] == int(clock.now)
    assert claims["exp"] == int(clock.now) + 300
    assert claims["jti"]


def test_oauth2_scope_can_be_sent_as_a_space_separated_string(rsa_key: rsa.RSAPrivateKey) -> None:
    endpoint = TokenEndpoint()
    config = oauth2_config(
        pem(rsa_key), oauth2_scope=("rest_webservices", "restlets"), oauth2_scope_as_list=False
    )
    with httpx.Client(transport=httpx.MockTransport(endpoint)) as http:
        TokenProvider.from_config(config, http).token()
    claims = json.loads(b64url_decode(endpoint.assertions[0].split(".")[1]))
    assert claims["scope"] == "rest_webservices restlets"


def test_an_assertion_tampered_with_fails_verification(rsa_key: rsa.RSAPrivateKey) -> None:
    endpoint = TokenEndpoint()
    with httpx.Client(transport=httpx.MockTransport(endpoint)) as http:
        TokenProvider.from_config(oauth2_config(pem(rsa_key)), http).token()
    h, p, s = endpoint.assertions[0].split(".")
    forged_claims = json.loads(b64url_decode(p)) | {"iss": "someone-else"}
    forged = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidSignature):
        verify_jws_independently(f"{h}.{forged}.{s}", rsa_key.public_key(), "PS256")


def test_token_is_cached_until_shortly_before_it_expires(rsa_key: rsa.RSAPrivateKey) -> None:
    endpoint = TokenEndpoint(expires_in=3600)
    clock = FakeClock()
    with httpx.Client(transport=httpx.MockTransport(endpoint)) as http:
        provider = TokenProvider.from_config(
            oauth2_config(pem(rsa_key), oauth2_token_refresh_margin_seconds=120), http, clock=clock
        )
        assert provider.token() == "access-1"
        clock.now += 3600 - 121
        assert provider.token() == "access-1"
        clock.now += 2  # now within the margin
        assert provider.token() == "access-2"
    assert provider.fetch_count == 2


def test_many_threads_needing_a_token_cause_one_fetch(rsa_key: rsa.RSAPrivateKey) -> None:
    endpoint = TokenEndpoint()
    endpoint.delay = 0.05
    threads_n = 8
    barrier = threading.Barrier(threads_n)
    results: list[str] = []
    with httpx.Client(transport=httpx.MockTransport(endpoint)) as http:
        provider = TokenProvider.from_config(oauth2_config(pem(rsa_key)), http)

        def worker() -> None:
            barrier.wait(timeout=10)
            results.append(provider.token())

        threads = [threading.Thread(target=worker) for _ in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    assert results == ["access-1"] * threads_n
    assert provider.fetch_count == 1


def test_invalidate_only_drops_the_token_that_was_rejected(rsa_key: rsa.RSAPrivateKey) -> None:
    endpoint = TokenEndpoint()
    with httpx.Client(transport=httpx.MockTransport(endpoint)) as http:
        provider = TokenProvider.from_config(oauth2_config(pem(rsa_key)), http)
        first = provider.token()
        provider.invalidate(first)
        second = provider.token()
        provider.invalidate(first)  # a late thread reporting the old token changes nothing
        assert provider.token() == second == "access-2"
    assert provider.fetch_count == 2


def test_bearer_is_sent_and_a_401_refreshes_the_token_and_retries_once(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    endpoint = TokenEndpoint()
    api_calls: list[str] = []
    rejected = {"access-1"}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/token"):
            return endpoint(request)
        api_calls.append(request.headers["Authorization"])
        token = request.headers["Authorization"].removeprefix("Bearer ")
        if token in rejected:
            return httpx.Response(401, json={"o:errorDetails": [{"o:errorCode": "INVALID_LOGIN"}]})
        return httpx.Response(200, json={"ok": True})

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        auth = build_auth(oauth2_config(pem(rsa_key)), http)
        assert isinstance(auth, OAuth2ClientCredentialsAuth)
        url = "https://1234567-sb1.suitetalk.api.netsuite.com/services/rest/record/v1/customer/1"
        assert http.get(url, auth=auth).status_code == 200
        assert api_calls == ["Bearer access-1", "Bearer access-2"]

        rejected.add("access-2")  # a token refused even when fresh: only one more try
        rejected.add("access-3")
        assert http.get(url, auth=auth).status_code == 401
        assert api_calls[2:] == ["Bearer access-2", "Bearer access-3"]


def test_token_endpoint_refusal_is_unauthorized_and_its_outage_a_server_error(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    answers = iter(
        [
            httpx.Response(400, json={"error": "invalid_grant", "error_description": "bad kid"}),
            httpx.Response(503, text="<html>Service Unavailable</html>"),
        ]
    )
    with httpx.Client(transport=httpx.MockTransport(lambda r: next(answers))) as http:
        provider = TokenProvider.from_config(oauth2_config(pem(rsa_key)), http)
        with pytest.raises(Unauthorized) as refused:
            provider.token()
        assert refused.value.code == "invalid_grant"
        assert "bad kid" in refused.value.detail
        with pytest.raises(ServerError):
            provider.token()


def test_config_refuses_incomplete_credentials() -> None:
    with pytest.raises(ValueError, match="oauth2_certificate_id"):
        NetSuiteConfig(account_id="123", oauth2_client_id="c", oauth2_private_key_pem="k")
    with pytest.raises(ValueError, match="tba_token_secret"):
        NetSuiteConfig(
            account_id="123",
            auth_mode="tba",
            tba_consumer_key="ck",
            tba_consumer_secret="cs",
            tba_token_id="t",
            tba_token_secret="  ",
        )
