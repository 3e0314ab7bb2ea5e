"""The NetSuite client's wire format, retries and limiter use, against MockTransport handlers
that answer the way NetSuite does."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from netsuite.auth import TokenBasedAuth
from netsuite.client import (
    GovernanceLimits,
    NetSuiteClient,
    RetryPolicy,
    SalesRep,
    Term,
    appended_sublists,
    external_ref,
    record_ref,
)
from netsuite.config import NetSuiteConfig
from netsuite.errors import (
    NotFound,
    ProtocolError,
    RateLimited,
    ServerError,
    Timeout,
    TransportError,
    Unauthorized,
    UserError,
)
from netsuite.hosts import host_label, hosts_for, realm
from netsuite.limiter import Lease, SlotTimeout

HOST = "https://1234567-sb1.suitetalk.api.netsuite.com"
RECORD = HOST + "/services/rest/record/v1"
RESOURCE = "application/vnd.oracle.resource+json; type=singular"
ERROR = "application/vnd.oracle.resource+json; type=error"

Handler = Callable[[httpx.Request], httpx.Response]


class RecordingLimiter:
    """Logs acquire/release into the shared event log; counts slots held."""

    def __init__(self, log: list[str], fail: bool = False) -> None:
        self.log = log
        self.held = 0
        self.fail = fail

    @contextmanager
    def slot(self) -> Iterator[Lease]:
        if self.fail:
            raise SlotTimeout("no NetSuite request slot free within 0s")
        self.log.append("acquire")
        self.held += 1
        try:
            yield Lease("t")
        finally:
            self.held -= 1
            self.log.append("release")


class Harness:
    def __init__(self, handler: Handler, **config: Any) -> None:
        self.log: list[str] = []
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []
        self.limiter = RecordingLimiter(self.log)
        values: dict[str, Any] = {
            "account_id": "1234567_SB1",
            "auth_mode": "tba",
            "tba_consumer_key": "ck",
            "tba_consumer_secret": "cs",
            "tba_token_id": "tk",
            "tba_token_secret": "ts",
        }
        values.update(config)
        self.config = NetSuiteConfig(**values)

        def recording(request: httpx.Request) -> httpx.Response:
            assert self.limiter.held == 1, "every HTTP request must hold a limiter slot"
            self.requests.append(request)
            self.log.append(f"{request.method} {request.url.path}")
            return handler(request)

        def sleep(seconds: float) -> None:
            assert self.limiter.held == 0, "the slot must be released before sleeping"
            self.sleeps.append(seconds)
            self.log.append("sleep")

        self.http = httpx.Client(transport=httpx.MockTransport(recording))
        auth = (
            TokenBasedAuth.from_config(self.config, nonce=lambda: "n0nce", clock=lambda: 1700000000)
            if self.config.auth_mode == "tba"
            else None
        )
        self.client = NetSuiteClient(
            self.config,
            self.http,
            self.limiter,
            auth=auth,
            sleep=sleep,
            rng=random.Random(1),
        )


def ns_error(status: int, code: str, detail: str, path: str | None = None) -> httpx.Response:
    item = {"detail": detail, "o:errorCode": code}
    if path:
        item["o:errorPath"] = path
    body = {"type": "about:blank", "title": "Error", "status": status, "o:errorDetails": [item]}
    return httpx.Response(status, json=body, headers={"content-type": ERROR})


def no_content(location: str | None = None) -> httpx.Response:
    return httpx.Response(204, headers={"location": location} if location else {})


def sequence(*answers: httpx.Response | Exception) -> Handler:
    items = iter(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(items)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler


# ---- hosts and config -------------------------------------------------------------------------


def test_account_id_forms_for_host_and_realm() -> None:
    assert host_label("1234567_SB1") == "1234567-sb1"
    assert realm("1234567-sb1") == "1234567_SB1"
    assert realm("TSTDRV1236577") == "TSTDRV1236577"
    hosts = hosts_for("1234567_SB1")
    assert hosts.base_url == HOST
    assert hosts.token_url == HOST + "/services/rest/auth/oauth2/v1/token"
    assert hosts.suiteql_url == HOST + "/services/rest/query/v1/suiteql"
    assert hosts.record_url("customer", "eid:nuvo-1") == RECORD + "/customer/eid:nuvo-1"
    assert (
        hosts.record_url("customer", "12", "!attach", "contact", "34")
        == RECORD + "/customer/12/!attach/contact/34"
    )
    for bad in ("", "12 34", "123/../x", "_SB1"):
        with pytest.raises(ValueError):
            host_label(bad)
    with pytest.raises(ValueError):
        hosts.record_url("customer/../employee")


def test_base_url_override_keeps_the_service_paths_and_the_realm() -> None:
    hosts = hosts_for("1234567_SB1", "http://127.0.0.1:8089/")
    assert hosts.base_url == "http://127.0.0.1:8089"
    assert hosts.realm == "1234567_SB1"
    assert hosts.record_url("customer") == "http://127.0.0.1:8089/services/rest/record/v1/customer"
    assert hosts.token_url == "http://127.0.0.1:8089/services/rest/auth/oauth2/v1/token"
    for bad in ("ftp://127.0.0.1", "127.0.0.1:8089", "http://127.0.0.1:8089/?x=1"):
        with pytest.raises(ValueError):
            hosts_for("1", bad)


def test_config_checks_the_lease_against_the_timeouts() -> None:
    base = {
        "account_id": "1",
        "auth_mode": "tba",
        "tba_consumer_key": "a",
        "tba_consumer_secret": "b",
        "tba_token_id": "c",
        "tba_token_secret": "d",
    }
    with pytest.raises(ValueError, match="lease_seconds"):
        NetSuiteConfig(**base, read_timeout_seconds=60, connect_timeout_seconds=10, lease_seconds=70)
    config = NetSuiteConfig(**base, base_url="http://127.0.0.1:9000/")
    assert config.base_url == "http://127.0.0.1:9000"
    assert config.timeout.read == 60.0
    assert "d" not in repr(config.tba_token_secret)


# ---- wire format ------------------------------------------------------------------------------


def test_get_customer_wire_format() -> None:
    record = {"id": "647", "companyName": "Acme", "addressBook": {"items": []}}
    h = Harness(lambda r: httpx.Response(200, json=record, headers={"content-type": RESOURCE}))
    assert h.client.get_customer(647) == record
    request = h.requests[0]
    assert request.method == "GET"
    assert str(request.url) == RECORD + "/customer/647?expandSubResources=true"
    assert request.headers["X-NetSuite-PropertyNameValidation"] == "error"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"].startswith(
        'OAuth realm="1234567_SB1", oauth_token="tk", oauth_consumer_key="ck", '
        'oauth_nonce="n0nce", oauth_timestamp="1700000000", '
        'oauth_signature_method="HMAC-SHA256", oauth_version="1.0", oauth_signature="'
    )
    assert h.log == ["acquire", "GET /services/rest/record/v1/customer/647", "release"]

    h.client.get_customer("eid:nuvo-8841", expand_sub_resources=False)
    assert str(h.requests[1].url) == RECORD + "/customer/eid:nuvo-8841"


def test_create_customer_posts_json_and_reads_the_id_from_location() -> None:
    h = Harness(lambda r: no_content(RECORD + "/customer/647"))
    body = {"externalId": "nuvo-1", "companyName": "Acme", "subsidiary": {"id": "1"}}
    assert h.client.create_customer(body) == "647"
    request = h.requests[0]
    assert (request.method, str(request.url)) == ("POST", RECORD + "/customer")
    assert json.loads(request.content) == body


def test_create_without_location_is_a_protocol_error() -> None:
    h = Harness(sequence(no_content(), no_content(RECORD + "/customer/eid:x")))
    with pytest.raises(ProtocolError, match="Location"):
        h.client.create_customer({"companyName": "Acme"})
    with pytest.raises(ProtocolError, match="record id"):
        h.client.create_customer({"companyName": "Acme"})


def test_update_customer_patches_with_replace() -> None:
    h = Harness(lambda r: no_content(RECORD + "/customer/647"))
    body = {"creditLimit": 50000, "addressBook": {"items": [{"label": "Billing"}]}}
    h.client.update_customer("647", body, replace=["addressBook"])
    request = h.requests[0]
    assert request.method == "PATCH"
    assert request.url.path == "/services/rest/record/v1/customer/647"
    assert request.url.params["replace"] == "addressBook"
    assert json.loads(request.content) == body

    h.client.update_customer(647, {"creditLimit": 1}, replace=["addressBook", "contactRoles"])
    assert h.requests[1].url.params["replace"] == "addressBook,contactRoles"
    h.client.update_customer(647, {"creditLimit": 1})
    assert "replace" not in h.requests[2].url.params
    with pytest.raises(TypeError):
        h.client.update_customer(647, {}, replace="addressBook")
    with pytest.raises(ValueError):
        h.client.update_customer(647, {}, replace=["address&Book"])


def test_upsert_by_external_id_puts_to_eid_and_returns_the_internal_id() -> None:
    h = Harness(lambda r: no_content(RECORD + "/customer/651"))
    assert h.client.upsert_customer_by_external_id("nuvo-8841", {"companyName": "A"}) == "651"
    request = h.requests[0]
    assert (request.method, str(request.url)) == ("PUT", RECORD + "/customer/eid:nuvo-8841")
    assert json.loads(request.content) == {"companyName": "A"}


def test_upsert_reads_the_id_when_location_names_the_external_id() -> None:
    h = Harness(
        sequence(
            no_content(RECORD + "/customer/eid:nuvo-8841"),
            httpx.Response(200, json={"id": "651", "externalId": "nuvo-8841"}),
        )
    )
    assert h.client.upsert_customer_by_external_id("nuvo-8841", {"companyName": "A"}) == "651"
    assert [r.method for r in h.requests] == ["PUT", "GET"]
    assert str(h.requests[1].url) == RECORD + "/customer/eid:nuvo-8841"


def test_ids_that_cannot_go_in_a_url_are_refused_before_any_request() -> None:
    h = Harness(lambda r: no_content(RECORD + "/customer/1"))
    for bad in ("a|b", "a b", "", "x/y"):
        with pytest.raises(ValueError):
            h.client.upsert_customer_by_external_id(bad, {})
    for bad_id in ("12a", "../1", "eid:a|b"):
        with pytest.raises(ValueError):
            h.client.get_customer(bad_id)
    with pytest.raises(TypeError):
        record_ref(True)
    assert h.requests == []
    assert external_ref("Nuvo_app-1") == "eid:Nuvo_app-1"


def test_contacts_and_attach_wire_format() -> None:
    h = Harness(
        sequence(
            no_content(RECORD + "/contact/88"),
            no_content(RECORD + "/contact/88"),
            no_content(),
            no_content(),
        )
    )
    contact = {"company": {"id": "647"}, "firstName": "Pat", "email": "ap@acme.example"}
    assert h.client.create_contact(contact) == "88"
    h.client.update_contact(88, {"phone": "512-555-0134"})
    h.client.attach_contact(647, 88, role_id=-10)
    h.client.attach_contact("eid:nuvo-1", "88")
    post, patch, attach, bare = h.requests
    assert (post.method, post.url.path) == ("POST", "/services/rest/record/v1/contact")
    assert json.loads(post.content) == contact
    assert (patch.method, patch.url.path) == ("PATCH", "/services/rest/record/v1/contact/88")
    assert attach.method == "POST"
    assert str(attach.url) == RECORD + "/customer/647/!attach/contact/88"
    assert json.loads(attach.content) == {"role": {"id": "-10"}}
    assert str(bare.url) == RECORD + "/customer/eid:nuvo-1/!attach/contact/88"
    assert bare.content == b""


def test_governance_limits() -> None:
    h = Harness(
        lambda r: httpx.Response(
            200,
            json={
                "accountConcurrencyLimit": 15,
                "accountUnallocatedConcurrencyLimit": 10,
                "integrationLimitType": "accountLimit",
            },
        )
    )
    limits = h.client.governance_limits()
    assert limits == GovernanceLimits(
        account_concurrency_limit=15,
        account_unallocated_concurrency_limit=10,
        integration_concurrency_limit=None,
        integration_limit_type="accountLimit",
    )
    assert h.requests[0].url.path == "/services/rest/system/v1/governanceLimits"


def test_terms_and_sales_reps_come_from_suiteql() -> None:
    pages = {
        "term": {
            "items": [
                {"links": [], "ID": "1", "NAME": "Net 30", "ISINACTIVE": "F"},
                {"links": [], "id": "2", "name": "Net 60", "isinactive": "T"},
            ],
            "hasMore": False,
            "count": 2,
            "offset": 0,
            "totalResults": 2,
        },
        "employee": {
            "items": [
                {
                    "id": "7",
                    "entityid": "Jane Smith",
                    "firstname": "Jane",
                    "lastname": "Smith",
                    "email": "jane@example.com",
                    "isinactive": "F",
                },
                {"id": "9", "entityid": "Ray Rep", "isinactive": "F"},
            ],
            "hasMore": False,
        },
    }

    def handler(request: httpx.Request) -> httpx.Response:
        q = json.loads(request.content)["q"]
        return httpx.Response(200, json=pages["term" if "FROM term" in q else "employee"])

    h = Harness(handler)
    assert h.client.list_terms() == [
        Term(id="1", name="Net 30", inactive=False),
        Term(id="2", name="Net 60", inactive=True),
    ]
    assert h.client.list_sales_reps() == [
        SalesRep(id="7", name="Jane Smith", email="jane@example.com", inactive=False),
        SalesRep(id="9", name="Ray Rep", email=None, inactive=False),
    ]
    reps_query = json.loads(h.requests[1].content)["q"]
    assert "issalesrep = 'T'" in reps_query
    assert h.requests[1].headers["Prefer"] == "transient"


# ---- errors, retries and the limiter ----------------------------------------------------------


def test_429s_are_retried_with_the_slot_released_before_each_sleep() -> None:
    busy = ns_error(429, "CONCURRENCY_LIMIT_EXCEEDED", "Concurrent request limit exceeded.")
    h = Harness(sequence(busy, busy, httpx.Response(200, json={"id": "1"})))
    assert h.client.get_customer(1)["id"] == "1"
    get = "GET /services/rest/record/v1/customer/1"
    assert h.log == [
        "acquire",
        get,
        "release",
        "sleep",
        "acquire",
        get,
        "release",
        "sleep",
        "acquire",
        get,
        "release",
    ]


def test_retries_stop_after_max_attempts_with_the_last_error() -> None:
    h = Harness(lambda r: ns_error(503, "UNEXPECTED_ERROR", "down"), max_attempts=4)
    with pytest.raises(ServerError, match="down"):
        h.client.get_customer(1)
    assert len(h.requests) == 4
    assert len(h.sleeps) == 3


def test_backoff_doubles_with_jitter_up_to_the_cap() -> None:
    h = Harness(
        lambda r: httpx.Response(500),
        max_attempts=8,
        backoff_base_seconds=1.0,
        backoff_max_seconds=10.0,
    )
    with pytest.raises(ServerError):
        h.client.get_customer(1)
    caps = [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert len(h.sleeps) == len(caps)
    for delay, cap in zip(h.sleeps, caps, strict=True):
        assert cap / 2 <= delay <= cap
    assert len(set(h.sleeps)) == len(h.sleeps)


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    h = Harness(
        sequence(
            httpx.Response(429, headers={"retry-after": "7"}),
            httpx.Response(429, headers={"retry-after": "600"}),
            httpx.Response(200, json={"id": "1"}),
        ),
        backoff_max_seconds=30.0,
    )
    h.client.get_customer(1)
    assert h.sleeps == [7.0, 30.0]


def test_timeouts_and_transport_errors_retry_idempotent_requests() -> None:
    h = Harness(
        sequence(
            httpx.ReadTimeout("read timed out"),
            httpx.RemoteProtocolError("peer closed connection"),
            httpx.Response(200, json={"id": "5"}),
        )
    )
    assert h.client.get_customer(5)["id"] == "5"
    assert len(h.requests) == 3
    assert h.log.count("release") == 3


def test_create_is_not_retried_after_a_failure_that_may_hide_a_success() -> None:
    for failure, kind in (
        (ns_error(500, "UNEXPECTED_ERROR", "boom"), ServerError),
        (httpx.ReadTimeout("read timed out"), Timeout),
        (httpx.RemoteProtocolError("reset"), TransportError),
    ):
        h = Harness(sequence(failure, no_content(RECORD + "/customer/2")))
        with pytest.raises(kind):
            h.client.create_customer({"companyName": "Acme"})
        assert len(h.requests) == 1
        assert h.sleeps == []


def test_create_is_retried_when_netsuite_certainly_did_not_apply_it() -> None:
    h = Harness(
        sequence(
            ns_error(429, "CONCURRENCY_LIMIT_EXCEEDED", "blocked"),
            httpx.ConnectError("connection refused"),
            ns_error(401, "INVALID_LOGIN", "Invalid login attempt."),
            no_content(RECORD + "/customer/9"),
        )
    )
    assert h.client.create_customer({"companyName": "Acme"}) == "9"
    assert len(h.requests) == 4


def test_a_patch_that_appends_sublist_lines_is_not_retried_blindly() -> None:
    lines = {"addressBook": {"items": [{"label": "Ship 2", "addressBookAddress": {}}]}}
    h = Harness(sequence(httpx.Response(502), no_content()))
    with pytest.raises(ServerError):
        h.client.update_customer(1, lines)
    assert len(h.requests) == 1

    h = Harness(sequence(httpx.Response(502), no_content()))
    h.client.update_customer(1, lines, replace=["addressBook"])  # replace makes it idempotent
    assert len(h.requests) == 2

    h = Harness(sequence(httpx.Response(502), no_content(RECORD + "/customer/1")))
    h.client.upsert_customer_by_external_id("nuvo-1", {"companyName": "A"})
    assert len(h.requests) == 2


def test_appended_sublists() -> None:
    body = {"addressBook": {"items": []}, "contactRoles": {"items": []}, "terms": {"id": "1"}}
    assert appended_sublists(body, ["addressbook"]) == ["contactRoles"]
    assert appended_sublists({"companyName": "x"}, []) == []


def test_a_burst_of_401s_is_retried_a_bounded_number_of_times() -> None:
    login = ns_error(401, "INVALID_LOGIN", "Invalid login attempt.")
    h = Harness(sequence(login, login, httpx.Response(200, json={"id": "1"})))
    assert h.client.get_customer(1)["id"] == "1"

    h = Harness(lambda r: login, max_unauthorized_retries=2, max_attempts=7)
    with pytest.raises(Unauthorized):
        h.client.get_customer(1)
    assert len(h.requests) == 3  # the first try and two retries


def test_user_errors_and_not_found_are_not_retried() -> None:
    h = Harness(
        lambda r: ns_error(400, "USER_ERROR", "You must enter a value for Company Name.", "companyName")
    )
    with pytest.raises(UserError) as refused:
        h.client.upsert_customer_by_external_id("nuvo-1", {"companyName": ""})
    assert refused.value.user_message.endswith("(field: companyName)")
    assert len(h.requests) == 1

    h = Harness(lambda r: ns_error(404, "NONEXISTENT_ID", "Record does not exist."))
    with pytest.raises(NotFound):
        h.client.get_customer(404)
    assert len(h.requests) == 1


def test_no_free_slot_is_reported_as_rate_limited_without_a_request() -> None:
    h = Harness(lambda r: httpx.Response(200, json={}))
    h.client._limiter = RecordingLimiter(h.log, fail=True)
    with pytest.raises(RateLimited) as busy:
        h.client.get_customer(1)
    assert busy.value.code == "CONCURRENCY_SLOT_TIMEOUT"
    assert h.requests == []


def test_non_json_success_body_is_a_protocol_error() -> None:
    h = Harness(lambda r: httpx.Response(200, text="<html>login</html>"))
    with pytest.raises(ProtocolError, match="not JSON"):
        h.client.get_customer(1)


def test_request_with_explicit_policy() -> None:
    h = Harness(sequence(httpx.Response(500), httpx.Response(200, json={})))
    with pytest.raises(ServerError):
        h.client.request("POST", RECORD + "/customer", json={}, retry=RetryPolicy.NOT_APPLIED_ONLY)
    response = h.client.request("POST", RECORD + "/customer", json={}, retry=RetryPolicy.IDEMPOTENT)
    assert response.status_code == 200


# ---- OAuth 2.0 through the client -------------------------------------------------------------


def test_oauth2_client_fetches_one_token_inside_the_slot_and_refreshes_on_401() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    issued: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth2/v1/token"):
            form = parse_qs(request.content.decode())
            assert form["grant_type"] == ["client_credentials"]
            issued.append(f"tok-{len(issued) + 1}")
            return httpx.Response(200, json={"access_token": issued[-1], "expires_in": 3600})
        if request.headers["Authorization"] == "Bearer tok-1" and len(issued) == 1:
            return ns_error(401, "INVALID_LOGIN", "Invalid login attempt.")
        return httpx.Response(200, json={"id": "3"})

    h = Harness(
        handler,
        auth_mode="oauth2",
        oauth2_client_id="client",
        oauth2_certificate_id="cert",
        oauth2_private_key_pem=key_pem,
        oauth2_algorithm="ES256",
    )
    assert h.client.get_customer(3)["id"] == "3"
    assert h.client.get_customer(3)["id"] == "3"
    token = "POST /services/rest/auth/oauth2/v1/token"
    get = "GET /services/rest/record/v1/customer/3"
    assert h.log == [
        "acquire",
        token,
        get,
        token,
        get,
        "release",
        "acquire",
        get,
        "release",
    ]
    assert h.requests[-1].headers["Authorization"] == "Bearer tok-2"
