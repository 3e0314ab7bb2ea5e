"""The NetSuite client against the emulator over real HTTP on loopback: records, SuiteQL, typed
errors, concurrency back-pressure and both authentication modes -- and its wiring from settings."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from netsuite import addressbook, queries
from netsuite.client import NetSuiteClient
from netsuite.config import NetSuiteConfig
from netsuite.emulator import AuthConfig, EmulatorServer, TbaCredentials
from netsuite.errors import NotFound, UserError
from netsuite.errors import Unauthorized as UnauthorizedError
from netsuite.factory import build_client, config_from_settings, limiter_key
from netsuite.limiter import LocalLimiter, RedisLeaseSemaphore
from netsuite.suiteql import ROW_CAP, run_query
from storage.redis import make_redis
from tests.conftest import make_settings

ACCOUNT = "1234567_SB1"
EPOCH = "2000-01-01 00:00:00"
TBA = TbaCredentials("ck-1", "cs-1", "tk-1", "ts-1")


def tba_config(url: str, creds: TbaCredentials = TBA, **overrides: Any) -> NetSuiteConfig:
    values: dict[str, Any] = {
        "account_id": ACCOUNT,
        "base_url": url,
        "auth_mode": "tba",
        "tba_consumer_key": creds.consumer_key,
        "tba_consumer_secret": creds.consumer_secret,
        "tba_token_id": creds.token_id,
        "tba_token_secret": creds.token_secret,
        "backoff_base_seconds": 0.01,
        "backoff_max_seconds": 0.05,
    }
    values.update(overrides)
    return NetSuiteConfig(**values)


@pytest.fixture(scope="module")
def ns() -> Iterator[EmulatorServer]:
    auth = AuthConfig(account_id=ACCOUNT, tba=[TBA])
    with EmulatorServer(seed=17, customers=300, auth=auth) as server:
        yield server


@pytest.fixture
def client(ns: EmulatorServer) -> Iterator[NetSuiteClient]:
    with NetSuiteClient(tba_config(ns.url), None, LocalLimiter(5)) as made:
        yield made


def address(addr1: str, city: str = "Austin") -> dict[str, Any]:
    return {"addr1": addr1, "city": city, "state": "TX", "zip": "78701", "country": {"id": "US"}}


# ---- records ------------------------------------------------------------------------------------


def test_customer_create_read_update_and_upsert(client: NetSuiteClient, ns: EmulatorServer) -> None:
    key = f"nuvo-{uuid.uuid4().hex[:10]}"
    created = client.create_customer(
        {
            "externalId": key,
            "companyName": "Client Test LLC",
            "terms": {"id": "2"},
            "creditLimit": 25000,
            "addressBook": {
                "items": [
                    {"label": "Billing", "defaultBilling": True, "addressBookAddress": address("1 Main")}
                ]
            },
        }
    )
    stored = ns.state.get_customer(int(created))
    assert stored is not None and stored.external_id == key and stored.credit_limit == Decimal("25000")
    record = client.get_customer(created)
    assert record["companyName"] == "Client Test LLC"
    assert record["addressBook"]["items"][0]["label"] == "Billing", "sub-resources expanded"
    assert client.get_customer_by_external_id(key, expand_sub_resources=False)["id"] == created

    client.update_customer(created, {"creditLimit": 30000.5})
    assert client.get_customer(created, expand_sub_resources=False)["creditLimit"] == 30000.5

    # The safe address-book write: read, merge, PATCH with replace=addressBook.
    existing = addressbook.existing_lines(client.get_customer(created))
    wanted = [addressbook.DesiredAddress("ship", "Dock", address("9 Dock"), default_shipping=True)]
    plan = addressbook.merge_address_book(existing, wanted)
    client.update_customer(created, plan.body(), replace=addressbook.REPLACE)
    client.update_customer(created, plan.body(), replace=addressbook.REPLACE)  # a retry is harmless
    lines = addressbook.existing_lines(client.get_customer(created))
    assert sorted(line["label"] for line in lines) == ["Billing", "Dock"]

    upserted = client.upsert_customer_by_external_id(
        key, {"companyName": "Client Test LLC", "terms": {"id": "7"}}
    )
    assert upserted == created
    fresh_key = f"nuvo-{uuid.uuid4().hex[:10]}"
    new_id = client.upsert_customer_by_external_id(fresh_key, {"companyName": "Fresh Upsert Inc."})
    assert new_id != created and client.get_customer_by_external_id(fresh_key)["id"] == new_id


def test_contact_operations(client: NetSuiteClient, ns: EmulatorServer) -> None:
    customer = client.create_customer({"companyName": "Contact Holder Co."})
    contact = client.create_contact(
        {"firstName": "Ada", "lastName": "Payable", "email": "ada@example.com", "company": {"id": customer}}
    )
    client.attach_contact(customer, contact, role_id=2)
    roles = client.get_customer(customer)["contactRoles"]["items"]
    assert [(r["contact"]["id"], r["role"]["id"]) for r in roles] == [(contact, "2")]
    client.update_contact(contact, {"title": "Controller"})
    assert client.get_contact(contact)["title"] == "Controller"
    key = f"ct-{uuid.uuid4().hex[:10]}"
    other = client.upsert_contact_by_external_id(
        key, {"firstName": "Bo", "lastName": "Receivable", "company": {"id": customer}}
    )
    assert client.upsert_contact_by_external_id(key, {"title": "AP"}) == other
    stored = ns.state.get_contact(int(other))
    assert stored is not None and stored.title == "AP" and stored.company_id == int(customer)


def test_terms_and_sales_reps(client: NetSuiteClient, ns: EmulatorServer) -> None:
    terms = client.list_terms()
    assert {(int(t.id), t.name, t.inactive) for t in terms} == {
        (t.id, t.name, t.is_inactive) for t in ns.state.base.terms
    }
    reps = client.list_sales_reps()
    expected = {e.id for e in ns.state.base.employees if e.is_sales_rep}
    assert {int(r.id) for r in reps} == expected
    assert any(r.inactive for r in reps)


# ---- SuiteQL ------------------------------------------------------------------------------------


def test_suiteql_offset_paging_returns_every_row_once(client: NetSuiteClient, ns: EmulatorServer) -> None:
    rows = list(run_query(client, queries.CUSTOMERS_MODIFIED_SINCE, [EPOCH, EPOCH, 0], page_size=70))
    ids = [int(row["id"]) for row in rows]
    expected = [key[1] for key, _ in ns.state.scan_customers()]
    assert ids == expected and len(set(ids)) == len(ids)
    page = client.suiteql_page(queries.CUSTOMERS_MODIFIED_SINCE, [EPOCH, EPOCH, 0], limit=70, offset=70)
    assert (len(page.items), page.has_more, page.total_results) == (70, True, len(expected))


def test_keyset_paging_goes_past_the_100k_cap() -> None:
    """Offset paging stops at 100,000 results; a keyset cursor carries on from there."""
    with (
        EmulatorServer(seed=2, customers=150_000) as server,
        NetSuiteClient(tba_config(server.url), None, LocalLimiter(2)) as client,
    ):
        q = queries.CUSTOMERS_MODIFIED_SINCE
        params: list[str | int] = [EPOCH, EPOCH, 0]
        last = client.suiteql_page(q, params, limit=1000, offset=ROW_CAP - 1000)
        assert (last.has_more, last.total_results) == (False, ROW_CAP), "the statement is capped"
        with pytest.raises(UserError, match="offset"):
            client.suiteql_page(q, params, limit=1000, offset=ROW_CAP)
        row = last.items[-1]
        cursor: list[str | int] = [row["lastmodified"], row["lastmodified"], int(row["id"])]
        beyond = client.suiteql_page(q, cursor, limit=1000, offset=0)
        base = server.state.base
        assert [int(r["id"]) for r in beyond.items] == [base.id_of(i) for i in range(ROW_CAP, ROW_CAP + 1000)]
        assert beyond.total_results == 150_000 - ROW_CAP and beyond.has_more


# ---- errors -------------------------------------------------------------------------------------


def test_errors_are_typed(client: NetSuiteClient) -> None:
    with pytest.raises(NotFound) as missing:
        client.get_customer(99_999_999)
    assert (missing.value.status, missing.value.code) == (404, "NONEXISTENT_ID")
    with pytest.raises(UserError) as refused:
        client.create_customer({"email": "nobody@example.com"})
    assert (refused.value.code, refused.value.error_path) == ("USER_ERROR", "companyName")
    with pytest.raises(UserError) as typo:
        client.create_customer({"companyName": "Typo Co", "creditLimt": 1})
    assert typo.value.error_path == "creditLimt", "property-name validation is strict"
    with pytest.raises(NotFound):
        client.governance_limits()  # not served here, as for a role that is not an administrator


def test_429s_under_the_concurrency_cap_are_retried(ns: EmulatorServer) -> None:
    with EmulatorServer(seed=5, customers=50, concurrency_cap=2, latency_ms=40) as capped:
        # The local limiter lets 6 through, the account takes 2: NetSuite's 429s are the back-pressure.
        config = tba_config(capped.url, max_attempts=20)
        with NetSuiteClient(config, None, LocalLimiter(6)) as client:
            results: dict[int, str] = {}
            errors: list[BaseException] = []

            def read(customer_id: int) -> None:
                try:
                    results[customer_id] = client.get_customer(customer_id, expand_sub_resources=False)["id"]
                except BaseException as exc:  # collected and asserted below
                    errors.append(exc)

            ids = [1000 + n for n in range(24) if capped.state.get_customer(1000 + n) is not None]
            threads = [threading.Thread(target=read, args=(cid,)) for cid in ids]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
        assert not errors
        assert results == {cid: str(cid) for cid in ids}
        stats = capped.stats.snapshot()
        assert stats.rejected_concurrency > 0 and stats.by_status.get(429, 0) == stats.rejected_concurrency
        assert stats.by_status[200] == len(ids)


def test_a_redis_limiter_at_the_cap_avoids_429s() -> None:
    with EmulatorServer(seed=5, customers=50, concurrency_cap=2, latency_ms=20) as capped:
        limiter = RedisLeaseSemaphore(make_redis(None), key="t:slots", limit=2, lease_seconds=120)
        with NetSuiteClient(tba_config(capped.url), None, limiter) as client:
            threads = [
                threading.Thread(
                    target=client.get_customer, args=(1000 + n,), kwargs={"expand_sub_resources": False}
                )
                for n in range(12)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
        stats = capped.stats.snapshot()
        assert stats.rejected_concurrency == 0 and stats.max_in_flight <= 2
        assert stats.by_status[200] == 12


# ---- authentication -----------------------------------------------------------------------------


def test_tba_signatures_are_accepted_and_bad_secrets_refused(ns: EmulatorServer) -> None:
    with NetSuiteClient(tba_config(ns.url), None, LocalLimiter(1)) as good:
        assert good.get_customer(1001, expand_sub_resources=False)["id"] == "1001"
    assert ns.log.entries()[-1].auth == "tba"
    wrong = TbaCredentials(TBA.consumer_key, TBA.consumer_secret, TBA.token_id, "not-the-secret")
    with (
        NetSuiteClient(tba_config(ns.url, wrong), None, LocalLimiter(1)) as bad,
        pytest.raises(UnauthorizedError),
    ):
        bad.get_customer(1001)
    refused = ns.log.entries()[-3:]
    assert [(e.status, e.auth) for e in refused] == [(401, "none")] * 3, "tried, then 2 bounded retries"


def test_oauth2_client_credentials() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    auth = AuthConfig(account_id=ACCOUNT, client_id="client-9", certificates={"cert-9": public})
    with EmulatorServer(seed=3, customers=20, auth=auth) as server:
        config = NetSuiteConfig(
            account_id=ACCOUNT,
            base_url=server.url,
            auth_mode="oauth2",
            oauth2_client_id="client-9",
            oauth2_certificate_id="cert-9",
            oauth2_private_key_pem=SecretStr(private),
            oauth2_algorithm="ES256",
        )
        with NetSuiteClient(config, None, LocalLimiter(2)) as client:
            assert client.get_customer(1002, expand_sub_resources=False)["id"] == "1002"
            assert [t.name for t in client.list_terms()]
        kinds = [entry.auth for entry in server.log.entries()]
        assert kinds == ["token", "bearer", "bearer"], "one token, then bearer requests"


# ---- wiring from settings -----------------------------------------------------------------------


def test_config_from_settings() -> None:
    assert config_from_settings(make_settings()) is None
    settings = make_settings(
        netsuite_account_id="1234567_sb1",
        netsuite_base_url="http://127.0.0.1:9/",
        netsuite_auth_mode="tba",
        netsuite_tba_consumer_key="ck",
        netsuite_tba_consumer_secret="cs",
        netsuite_tba_token_id="tk",
        netsuite_tba_token_secret="ts",
        netsuite_concurrency_limit=3,
        netsuite_read_timeout_seconds=300,
        netsuite_max_attempts=4,
    )
    config = config_from_settings(settings)
    assert config is not None
    assert (config.base_url, config.hosts.realm, config.concurrency_limit) == (
        "http://127.0.0.1:9",
        ACCOUNT,
        3,
    )
    assert (config.read_timeout_seconds, config.max_attempts) == (300, 4)
    assert config.lease_seconds > config.connect_timeout_seconds + config.read_timeout_seconds
    with pytest.raises(ValueError, match="NETSUITE_TBA_TOKEN_SECRET"):
        config_from_settings(settings.model_copy(update={"netsuite_tba_token_secret": None}))
    with pytest.raises(ValueError, match="NETSUITE_ACCOUNT_ID"):
        config_from_settings(make_settings(netsuite_base_url="http://127.0.0.1:9"))


def test_build_client_shares_the_account_limiter(ns: EmulatorServer) -> None:
    settings = make_settings(
        netsuite_account_id=ACCOUNT,
        netsuite_base_url=ns.url,
        netsuite_auth_mode="tba",
        netsuite_tba_consumer_key=TBA.consumer_key,
        netsuite_tba_consumer_secret=TBA.consumer_secret,
        netsuite_tba_token_id=TBA.token_id,
        netsuite_tba_token_secret=TBA.token_secret,
        netsuite_concurrency_limit=1,
    )
    redis = make_redis(None)
    assert build_client(make_settings(), redis) is None
    client = build_client(settings, redis)
    assert client is not None
    config = config_from_settings(settings)
    assert config is not None
    # Someone else holds the account's only slot: the client waits for it instead of sending.
    other = RedisLeaseSemaphore(redis, key=limiter_key(config), limit=1, lease_seconds=30)
    held = other.acquire()
    before = ns.stats.snapshot().requests
    found: list[str] = []
    with client:
        reader = threading.Thread(
            target=lambda: found.append(client.get_customer(1003, expand_sub_resources=False)["id"])
        )
        reader.start()
        reader.join(0.5)
        assert reader.is_alive() and ns.stats.snapshot().requests == before
        other.release(held)
        reader.join(30)
    assert found == ["1003"] and other.in_flight() == 0
