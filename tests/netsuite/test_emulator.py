"""The NetSuite emulator, exercised through real HTTP on loopback with httpx."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from netsuite import queries
from netsuite.emulator import AuthConfig, EmulatorServer, EmulatorState, TbaCredentials
from netsuite.emulator.auth import hmac_sha256_signature, signature_base_string

RECORD = "/services/rest/record/v1"
SUITEQL = "/services/rest/query/v1/suiteql"
TOKEN = "/services/rest/auth/oauth2/v1/token"
TRANSIENT = {"Prefer": "transient"}
STRICT = {"X-NetSuite-PropertyNameValidation": "error"}
EPOCH = "2000-01-01 00:00:00"


@pytest.fixture(scope="module")
def ns() -> Iterator[EmulatorServer]:
    with EmulatorServer(seed=11, customers=300) as server:
        yield server


@pytest.fixture
def client(ns: EmulatorServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ns.url, timeout=10) as http:
        yield http


def suiteql(
    http: httpx.Client, q: str, params: list[Any], *, limit: int = 1000, offset: int = 0
) -> httpx.Response:
    return http.post(
        f"{SUITEQL}?limit={limit}&offset={offset}",
        json={"q": q, "params": params},
        headers=TRANSIENT,
    )


def error_of(response: httpx.Response) -> dict[str, Any]:
    """Assert NetSuite's error shape and return the single error detail."""
    assert response.headers["content-type"].startswith("application/vnd.oracle.resource+json; type=error")
    body = response.json()
    assert set(body) == {"type", "title", "status", "o:errorDetails"}
    assert body["status"] == response.status_code
    assert body["type"].startswith("https://")
    (detail,) = body["o:errorDetails"]
    assert detail["detail"]
    detail["title"] = body["title"]
    return dict(detail)


def new_customer_id(response: httpx.Response) -> int:
    assert response.status_code == 204, response.text
    location = response.headers["Location"]
    assert location.startswith("http://127.0.0.1:")
    assert f"{RECORD}/" in location
    return int(location.rsplit("/", 1)[1])


def address(addr1: str, city: str = "Austin") -> dict[str, Any]:
    return {"addr1": addr1, "city": city, "state": "TX", "zip": "78701", "country": {"id": "US"}}


# --- error shapes ------------------------------------------------------------------------------


def test_missing_record_is_404_nonexistent_id(client: httpx.Client) -> None:
    response = client.get(f"{RECORD}/customer/99999999")
    assert response.status_code == 404
    detail = error_of(response)
    assert detail["o:errorCode"] == "NONEXISTENT_ID"
    assert client.get(f"{RECORD}/customer/eid:no-such-key").status_code == 404
    assert client.get(f"{RECORD}/contact/5").status_code == 404


def test_deleted_seed_customers_are_gone_and_listed_in_deletedrecord(client: httpx.Client) -> None:
    rows = suiteql(client, queries.DELETED_CUSTOMERS_SINCE, [EPOCH, EPOCH, 0]).json()["items"]
    assert rows, "a 300-customer seed has deleted customers"
    for row in rows:
        assert client.get(f"{RECORD}/customer/{row['recordid']}").status_code == 404


def test_create_without_company_name_is_user_error(client: httpx.Client) -> None:
    response = client.post(f"{RECORD}/customer", json={"email": "ap@example.com"})
    assert response.status_code == 400
    detail = error_of(response)
    assert detail["o:errorCode"] == "USER_ERROR"
    assert detail["o:errorPath"] == "companyName"


def test_unknown_terms_id_is_user_error(client: httpx.Client) -> None:
    response = client.post(
        f"{RECORD}/customer", json={"companyName": "Bad Terms LLC", "terms": {"id": "999"}}
    )
    assert response.status_code == 400
    detail = error_of(response)
    assert (detail["o:errorCode"], detail["o:errorPath"]) == ("USER_ERROR", "terms")


def test_wrong_value_type_is_invalid_content_with_path(client: httpx.Client) -> None:
    response = client.post(f"{RECORD}/customer", json={"companyName": "Typo Co", "creditLimit": "lots"})
    assert response.status_code == 400
    detail = error_of(response)
    assert (detail["o:errorCode"], detail["o:errorPath"]) == ("INVALID_CONTENT", "creditLimit")


# --- create, read, update ----------------------------------------------------------------------


def test_create_returns_204_and_location_then_reads_back(client: httpx.Client) -> None:
    body = {
        "externalId": f"nuvo-{uuid.uuid4().hex[:12]}",
        "companyName": "Acme Widgets LLC",
        "email": "ap@acme.example",
        "terms": {"id": "2"},
        "creditLimit": 50000,
        "salesRep": {"id": "101"},
        "addressBook": {
            "items": [
                {"label": "Billing", "defaultBilling": True, "addressBookAddress": address("1 Main")},
                {"label": "Dock", "defaultShipping": True, "addressBookAddress": address("9 Dock")},
            ]
        },
    }
    response = client.post(f"{RECORD}/customer", json=body, headers=STRICT)
    assert response.content == b""
    customer_id = new_customer_id(response)

    record = client.get(f"{RECORD}/customer/{customer_id}?expandSubResources=true").json()
    assert record["id"] == str(customer_id)
    assert record["companyName"] == "Acme Widgets LLC"
    assert record["terms"]["id"] == "2" and record["terms"]["refName"] == "Net 30"
    assert record["creditLimit"] == 50000
    lines = record["addressBook"]["items"]
    assert [line["label"] for line in lines] == ["Billing", "Dock"]
    assert [line["defaultBilling"] for line in lines] == [True, False]
    assert lines[1]["addressBookAddress"]["country"]["id"] == "US"
    by_eid = client.get(f"{RECORD}/customer/eid:{body['externalId']}").json()
    assert by_eid["id"] == str(customer_id)
    assert "items" not in by_eid["addressBook"], "sublists are links unless expanded"

    standing = suiteql(client, queries.CUSTOMER_CREDIT_STANDING, [customer_id]).json()["items"]
    assert standing[0]["creditlimit"] == "50000"
    assert standing[0]["termsname"] == "Net 30"


def _lines(http: httpx.Client, customer_id: int) -> list[dict[str, Any]]:
    record = http.get(f"{RECORD}/customer/{customer_id}?expandSubResources=true").json()
    return list(record["addressBook"]["items"])


def test_patch_merges_address_lines_but_replace_removes_unsent_ones(client: httpx.Client) -> None:
    customer_id = new_customer_id(
        client.post(
            f"{RECORD}/customer",
            json={
                "companyName": "Sublist Test Inc.",
                "addressBook": {
                    "items": [
                        {"label": "HQ", "defaultBilling": True, "defaultShipping": True,
                         "addressBookAddress": address("1 HQ Way")},
                        {"label": "Yard", "addressBookAddress": address("2 Yard Rd")},
                    ]
                },
            },
        )
    )  # fmt: skip
    hq, yard = _lines(client, customer_id)

    # PATCH without replace: the keyed line is updated in place, the unkeyed one is added.
    merge = {
        "addressBook": {
            "items": [
                {"internalId": hq["internalId"], "addressBookAddress": {"addr2": "Floor 3"}},
                {"label": "Annex", "defaultShipping": True, "addressBookAddress": address("3 Ax")},
            ]
        }
    }
    assert client.patch(f"{RECORD}/customer/{customer_id}", json=merge).status_code == 204
    lines = _lines(client, customer_id)
    assert [line["label"] for line in lines] == ["HQ", "Yard", "Annex"]
    assert lines[0]["id"] == hq["id"]
    assert lines[0]["addressBookAddress"]["addr1"] == "1 HQ Way"
    assert lines[0]["addressBookAddress"]["addr2"] == "Floor 3"
    # Only one default shipping line survives: the one set by this request.
    assert [line["defaultShipping"] for line in lines] == [False, False, True]
    assert [line["defaultBilling"] for line in lines] == [True, False, False]

    # A blind retry of the same merge PATCH duplicates the new line (netsuite.md §6.1).
    client.patch(f"{RECORD}/customer/{customer_id}", json=merge)
    assert [line["label"] for line in _lines(client, customer_id)] == ["HQ", "Yard", "Annex", "Annex"]

    # ?replace=addressBook keeps only the lines sent: matching keys updated, others removed.
    replace = {"addressBook": {"items": [{"id": yard["id"], "label": "Main Yard",
                                          "defaultBilling": True}]}}  # fmt: skip
    response = client.patch(f"{RECORD}/customer/{customer_id}?replace=addressBook", json=replace)
    assert response.status_code == 204
    (only,) = _lines(client, customer_id)
    assert (only["id"], only["label"], only["defaultBilling"]) == (yard["id"], "Main Yard", True)
    assert only["addressBookAddress"]["addr1"] == "2 Yard Rd"

    # An unknown line key is refused rather than silently creating a line.
    bad = {"addressBook": {"items": [{"internalId": 1, "label": "?"}]}}
    response = client.patch(f"{RECORD}/customer/{customer_id}", json=bad)
    assert response.status_code == 400
    assert error_of(response)["o:errorPath"] == "addressBook.items[0].id"


def test_patch_changes_only_sent_fields_and_null_clears(client: httpx.Client, ns: EmulatorServer) -> None:
    before = ns.state.get_customer(1010)
    assert before is not None
    response = client.patch(f"{RECORD}/customer/1010", json={"creditLimit": 1234.5, "phone": None})
    assert response.status_code == 204
    assert response.headers["Location"].endswith(f"{RECORD}/customer/1010")
    after = ns.state.get_customer(1010)
    assert after is not None
    assert after.credit_limit == Decimal("1234.50")
    assert after.phone is None
    assert after.company_name == before.company_name
    assert after.address_book == before.address_book
    assert after.last_modified > before.last_modified


def test_eid_upsert_creates_then_updates_the_same_record(client: httpx.Client) -> None:
    key = f"nuvo-app-{uuid.uuid4().hex[:10]}"
    first = client.put(f"{RECORD}/customer/eid:{key}", json={"companyName": "Upsert LLC"})
    created_id = new_customer_id(first)
    second = client.put(
        f"{RECORD}/customer/eid:{key}", json={"companyName": "Upsert LLC", "terms": {"id": "7"}}
    )
    assert new_customer_id(second) == created_id
    record = client.get(f"{RECORD}/customer/eid:{key}").json()
    assert (record["id"], record["externalId"], record["terms"]["refName"]) == (
        str(created_id), key, "Net 45",
    )  # fmt: skip
    assert client.put(f"{RECORD}/customer/{created_id}", json={}).status_code == 400

    assert client.delete(f"{RECORD}/customer/eid:{key}").status_code == 204
    assert client.get(f"{RECORD}/customer/{created_id}").status_code == 404
    assert client.patch(f"{RECORD}/customer/{created_id}", json={}).status_code == 404
    recreated = client.put(f"{RECORD}/customer/eid:{key}", json={"companyName": "Upsert LLC"})
    assert new_customer_id(recreated) != created_id, "an upsert after a delete creates anew"


def test_duplicate_external_id_on_create_is_refused(client: httpx.Client) -> None:
    key = f"dup-{uuid.uuid4().hex[:10]}"
    new_customer_id(client.post(f"{RECORD}/customer", json={"companyName": "A", "externalId": key}))
    again = client.post(f"{RECORD}/customer", json={"companyName": "B", "externalId": key})
    assert again.status_code == 400
    assert error_of(again)["o:errorCode"] == "USER_ERROR"


def test_property_name_validation_header(client: httpx.Client, ns: EmulatorServer) -> None:
    typo = {"companyName": "Typo Fixers", "creditLimt": 5000}
    strict = client.post(f"{RECORD}/customer", json=typo, headers=STRICT)
    assert strict.status_code == 400
    assert error_of(strict)["o:errorPath"] == "creditLimt"
    # Without the header NetSuite only warns: the record is created, the field silently dropped.
    lenient = client.post(f"{RECORD}/customer", json=typo)
    created = ns.state.get_customer(new_customer_id(lenient))
    assert created is not None and created.credit_limit is None
    nested = {"addressBook": {"items": [{"label": "x", "addressBookAddress": {"adr1": "typo"}}]}}
    response = client.patch(f"{RECORD}/customer/{created.id}", json=nested, headers=STRICT)
    assert error_of(response)["o:errorPath"] == "addressBook.items[0].addressBookAddress.adr1"


def test_address_book_sub_resources(client: httpx.Client, ns: EmulatorServer) -> None:
    customer = ns.state.get_customer(1020)
    assert customer is not None and customer.address_book
    line = customer.address_book[0]
    listing = client.get(f"{RECORD}/customer/1020/addressBook").json()
    assert [item["links"][0]["href"].rsplit("/", 1)[1] for item in listing["items"]] == [
        str(ln.internal_id) for ln in customer.address_book
    ]
    one = client.get(f"{RECORD}/customer/1020/addressBook/{line.internal_id}").json()
    assert one["label"] == line.label
    sub = client.get(f"{RECORD}/customer/1020/addressBook/{line.internal_id}/addressBookAddress")
    assert sub.json()["addr1"] == line.address.addr1
    assert client.get(f"{RECORD}/customer/1020/addressBook/1").status_code == 404


def test_contact_create_attach_with_role_and_read_back(client: httpx.Client) -> None:
    customer_id = new_customer_id(client.post(f"{RECORD}/customer", json={"companyName": "Contacts R Us"}))
    response = client.post(
        f"{RECORD}/contact",
        json={"firstName": "Ada", "lastName": "Payable", "email": "ada@example.com",
              "company": {"id": str(customer_id)}},
        headers=STRICT,
    )  # fmt: skip
    assert response.status_code == 204
    contact_id = int(response.headers["Location"].rsplit("/", 1)[1])
    attach = f"{RECORD}/customer/{customer_id}/!attach/contact/{contact_id}"
    assert client.post(attach, json={"role": {"id": "2"}}).status_code == 204
    roles = client.get(f"{RECORD}/customer/{customer_id}?expandSubResources=true").json()
    (role,) = roles["contactRoles"]["items"]
    assert (role["contact"]["id"], role["role"]["id"]) == (str(contact_id), "2")
    bad = client.post(attach, json={"role": {"id": "777"}})
    assert bad.status_code == 400 and error_of(bad)["o:errorPath"] == "role"
    patched = client.patch(f"{RECORD}/contact/{contact_id}", json={"title": "Controller"})
    assert patched.status_code == 204
    contact = client.get(f"{RECORD}/contact/{contact_id}").json()
    assert (contact["title"], contact["company"]["id"]) == ("Controller", str(customer_id))
    rows = suiteql(client, queries.with_id_list(queries.CUSTOMER_CONTACTS, 1), [customer_id])
    assert [row["id"] for row in rows.json()["items"]] == [str(contact_id)]


def test_term_list_and_record(client: httpx.Client) -> None:
    listing = client.get(f"{RECORD}/term").json()
    ids = [item["id"] for item in listing["items"]]
    assert listing["totalResults"] == len(ids) >= 6
    names = {client.get(f"{RECORD}/term/{i}").json()["name"] for i in ids}
    assert {"Net 15", "Net 30", "Net 45", "Net 60", "Due on receipt", "2% 10 Net 30"} <= names


# --- concurrency and faults --------------------------------------------------------------------


def _wait_until(predicate: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


def test_concurrency_cap_answers_429() -> None:
    with EmulatorServer(seed=1, customers=20, concurrency_cap=2) as server:
        server.faults.delay(2.0, times=2, path="/customer/1001$")
        results: list[int] = []

        def slow_get() -> None:
            with httpx.Client(base_url=server.url, timeout=10) as http:
                results.append(http.get(f"{RECORD}/customer/1001").status_code)

        threads = [threading.Thread(target=slow_get) for _ in range(2)]
        for thread in threads:
            thread.start()
        _wait_until(lambda: server.stats.snapshot().in_flight == 2)
        with httpx.Client(base_url=server.url, timeout=10) as http:
            refused = http.get(f"{RECORD}/customer/1002")
        assert refused.status_code == 429
        detail = error_of(refused)
        assert detail["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"
        for thread in threads:
            thread.join(timeout=10)
        assert results == [200, 200]
        stats = server.stats.snapshot()
        assert stats.max_in_flight == 3
        assert stats.rejected_concurrency == 1


def test_injected_faults(client: httpx.Client, ns: EmulatorServer) -> None:
    ns.faults.fail(500, times=2, path="/customer/1030$")
    codes = [client.get(f"{RECORD}/customer/1030").status_code for _ in range(3)]
    assert codes == [500, 500, 200]

    ns.faults.storm_429(2, path="/customer/1031$")
    responses = [client.get(f"{RECORD}/customer/1031") for _ in range(3)]
    assert [r.status_code for r in responses] == [429, 429, 200]
    assert error_of(responses[0])["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"

    ns.faults.drop(times=1, path="/customer/1032$")
    with pytest.raises(httpx.TransportError):
        client.get(f"{RECORD}/customer/1032")
    assert client.get(f"{RECORD}/customer/1032").status_code == 200

    ns.faults.delay(3.0, times=1, path="/customer/1033$")
    with pytest.raises(httpx.ReadTimeout):
        client.get(f"{RECORD}/customer/1033", timeout=0.3)

    rule = ns.faults.login_errors_under_load(min_in_flight=1, times=1)
    unauthorized = client.get(f"{RECORD}/customer/1034")
    assert unauthorized.status_code == 401
    assert error_of(unauthorized)["o:errorCode"] == "INVALID_LOGIN"
    assert rule.exhausted
    logged = [e for e in ns.log.entries() if e.path.endswith("/customer/1032")]
    assert [e.status for e in logged] == [0, 200]


# --- SuiteQL -----------------------------------------------------------------------------------


def test_suiteql_paging_rules(client: httpx.Client) -> None:
    q, params = queries.CUSTOMERS_MODIFIED_SINCE, [EPOCH, EPOCH, 0]
    too_big = suiteql(client, q, params, limit=1001)
    assert too_big.status_code == 400
    assert error_of(too_big)["o:errorCode"] == "INVALID_PARAMETER"
    misaligned = suiteql(client, q, params, limit=10, offset=15)
    assert misaligned.status_code == 400
    no_prefer = client.post(SUITEQL, json={"q": q, "params": params})
    assert no_prefer.status_code == 400

    first = suiteql(client, q, params, limit=10).json()
    second = suiteql(client, q, params, limit=10, offset=10).json()
    assert (first["count"], first["offset"], first["hasMore"]) == (10, 0, True)
    assert second["offset"] == 10
    assert first["totalResults"] == second["totalResults"] > 20
    ids = [row["id"] for row in first["items"] + second["items"]]
    assert len(set(ids)) == 20
    row = first["items"][0]
    assert row["links"] == []
    assert all(isinstance(value, str) for key, value in row.items() if key != "links")
    assert row["isinactive"] in ("T", "F")


def test_suiteql_rejects_what_netsuite_rejects(client: httpx.Client) -> None:
    cases: list[tuple[str, list[Any]]] = [
        ("SELECT c.nosuchcolumn FROM customer c", []),
        ("SELECT x.id FROM nosuchtable x", []),
        ("SELEC id FROM customer", []),
        ("SELECT c.id FROM customer c WHERE c.id = ?", []),  # unbound placeholder
        ("SELECT c.id FROM customer c WHERE c.lastmodifieddate > ?", ["2024-01-01"]),
        (queries.CUSTOMERS_MODIFIED_SINCE, ["01/02/2024", "01/02/2024", 0]),
    ]
    for q, params in cases:
        response = suiteql(client, q, params)
        assert response.status_code == 400, q
        detail = error_of(response)
        assert (detail["title"], detail["o:errorCode"]) == ("Invalid search query.", "USER_ERROR")


def test_suiteql_values_come_from_params(client: httpx.Client, ns: EmulatorServer) -> None:
    for customer_id in (1005, 1006):
        expected = ns.state.get_customer(customer_id)
        assert expected is not None
        (row,) = suiteql(client, queries.CUSTOMER_CREDIT_STANDING, [str(customer_id)]).json()["items"]
        assert row["companyname"] == expected.company_name
        assert Decimal(row["balancesearch"]) == expected.balance
    assert suiteql(client, queries.CUSTOMER_CREDIT_STANDING, [1049]).json()["items"] == []


def test_addresses_join_matches_records(client: httpx.Client, ns: EmulatorServer) -> None:
    ids = [1040, 1041, 1042, 1043]
    rows = suiteql(client, queries.with_id_list(queries.CUSTOMER_ADDRESSES, 4), ids).json()
    expected = []
    for customer_id in ids:
        customer = ns.state.get_customer(customer_id)
        assert customer is not None
        expected += [(str(customer_id), str(ln.internal_id), ln.address.addr1, str(ln.nkey))
                     for ln in customer.address_book]  # fmt: skip
    got = [(r["customer"], r["lineid"], r.get("addr1"), r["nkey"]) for r in rows["items"]]
    assert got == expected
    standing = suiteql(
        client, "SELECT c.defaultbillingaddress AS b FROM customer c WHERE c.id = ?", [1040]
    ).json()["items"]
    billing = [r for r in rows["items"] if r["customer"] == "1040" and r["defaultbilling"] == "T"]
    # The customer's defaultbillingaddress is the nkey of its default billing line.
    assert [r["nkey"] for r in billing] == [row["b"] for row in standing if "b" in row]


def _brute_force(state: EmulatorState, since: datetime) -> list[tuple[str, str]]:
    """Every live customer at or after ``since``, ordered by (lastmodified, id), found the slow way."""
    candidates = [state.base.id_of(i) for i in range(state.base.count)]
    candidates += range(state.base.max_base_customer_id + 1, state.base.max_base_customer_id + 50)
    rows = []
    for customer_id in candidates:
        customer = state.get_customer(customer_id)
        if customer is not None and customer.last_modified >= since:
            rows.append((customer.last_modified, customer.id))
    rows.sort()
    return [(str(cid), moment.strftime("%Y-%m-%d %H:%M:%S")) for moment, cid in rows]


def test_keyset_paging_matches_brute_force() -> None:
    with EmulatorServer(seed=5, customers=137) as server, httpx.Client(base_url=server.url) as http:
        state = server.state
        # Changes "in NetSuite" meanwhile: edits move customers to the end, deletes drop them,
        # creates add new ones; several share one second, so the keyset must break ties by id.
        stamp = datetime.now(UTC).replace(microsecond=0)
        for customer_id in (1003, 1010, 1077, 1100):
            customer = state.get_customer(customer_id)
            assert customer is not None
            customer.last_modified = stamp
            state.save_customer(customer, touch=False)
        state.delete_customer(1020)
        state.delete_customer(1003)
        http.post(f"{RECORD}/customer", json={"companyName": "Brand New LLC"})

        since = state.base.last_modified(40)
        cursor = (since.strftime("%Y-%m-%d %H:%M:%S"), 0)
        seen: list[tuple[str, str]] = []
        totals = []
        for _ in range(100):
            page = suiteql(http, queries.CUSTOMERS_MODIFIED_SINCE,
                           [cursor[0], cursor[0], cursor[1]], limit=7).json()  # fmt: skip
            totals.append(page["totalResults"])
            seen += [(row["id"], row["lastmodified"]) for row in page["items"]]
            if not page["hasMore"]:
                break
            last = page["items"][-1]
            cursor = (last["lastmodified"], int(last["id"]))
        expected = _brute_force(state, since)
        assert seen == expected
        assert totals[0] == len(expected)
        assert "1020" not in {cid for cid, _ in seen}

        deleted = suiteql(http, queries.DELETED_CUSTOMERS_SINCE,
                          [cursor[0], cursor[0], 0]).json()["items"]  # fmt: skip
        assert {row["recordid"] for row in deleted} >= {"1020", "1003"}


def test_results_stop_at_100k() -> None:
    with EmulatorServer(seed=2, customers=120_000) as server, httpx.Client(base_url=server.url) as http:
        q, params = queries.CUSTOMERS_MODIFIED_SINCE, [EPOCH, EPOCH, 0]
        last = suiteql(http, q, params, limit=1000, offset=99_000).json()
        assert (last["count"], last["hasMore"], last["totalResults"]) == (1000, False, 100_000)
        beyond = suiteql(http, q, params, limit=1000, offset=100_000)
        assert beyond.status_code == 400
        # Keyset paging reaches past the cap: continue after the 100,000th row.
        row = last["items"][-1]
        more = suiteql(http, q, [row["lastmodified"], row["lastmodified"], int(row["id"])])
        assert more.json()["items"][0]["id"] != row["id"]
        assert more.json()["totalResults"] == 20_000


def test_same_seed_same_data_other_seed_other_data() -> None:
    def sample(seed: int) -> list[dict[str, Any]]:
        with EmulatorServer(seed=seed, customers=50) as server, httpx.Client(base_url=server.url) as http:
            rows = suiteql(http, queries.CUSTOMERS_MODIFIED_SINCE, [EPOCH, EPOCH, 0]).json()
            addresses = suiteql(
                http, queries.with_id_list(queries.CUSTOMER_ADDRESSES, 3), [1000, 1001, 1002]
            ).json()
            return list(rows["items"]) + list(addresses["items"])

    first = sample(21)
    assert len(first) > 50
    assert sample(21) == first
    assert sample(22) != first


def test_million_customers_answer_a_page_lazily() -> None:
    tracemalloc.start()
    try:
        with (
            EmulatorServer(seed=3, customers=1_000_000) as server,
            httpx.Client(base_url=server.url, timeout=60) as http,
        ):
            page = suiteql(http, queries.CUSTOMERS_MODIFIED_SINCE,
                           ["2024-03-01 00:00:00", "2024-03-01 00:00:00", 0]).json()  # fmt: skip
            assert page["count"] == 1000
            assert page["items"][0]["lastmodified"] >= "2024-03-01 00:00:00"
            assert page["totalResults"] == 100_000  # far more match; the query service caps
            last_id = http.get(f"{RECORD}/customer/{server.state.base.max_base_customer_id - 1}")
            assert last_id.status_code == 200
            _, peak = tracemalloc.get_traced_memory()
        assert server.state.overlay_size == 0
        assert peak < 64 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB: the seed must stay lazy"
    finally:
        tracemalloc.stop()


# --- authentication ----------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(alg: str, kid: str, key: Any, claims: dict[str, Any]) -> str:
    header = _b64url(json.dumps({"typ": "JWT", "alg": alg, "kid": kid}).encode())
    payload = _b64url(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    if alg == "ES256":
        r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    else:
        signature = key.sign(
            signing_input,
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
            hashes.SHA256(),
        )
    return f"{header}.{payload}.{_b64url(signature)}"


def _public_pem(key: Any) -> bytes:
    return bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ))  # fmt: skip


def test_oauth2_token_endpoint_verifies_jwt_assertions() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    auth = AuthConfig(
        client_id="client-123",
        certificates={"cert-ec": _public_pem(ec_key), "cert-rsa": _public_pem(rsa_key)},
    )
    with EmulatorServer(customers=10, auth=auth) as server, httpx.Client(base_url=server.url) as http:
        now = int(time.time())
        claims = {"iss": "client-123", "scope": ["restlets", "rest_webservices"],
                  "aud": f"{server.url}{TOKEN}", "iat": now, "exp": now + 1800}  # fmt: skip

        def token_request(assertion: str) -> httpx.Response:
            return http.post(TOKEN, data={
                "grant_type": "client_credentials",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion,
            })  # fmt: skip

        assert http.get(f"{RECORD}/customer/1001").status_code == 401
        for alg, kid, key in (("ES256", "cert-ec", ec_key), ("PS256", "cert-rsa", rsa_key)):
            answer = token_request(_jwt(alg, kid, key, claims))
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert (body["token_type"], body["expires_in"]) == ("bearer", 3600)
            bearer = {"Authorization": f"Bearer {body['access_token']}"}
            assert http.get(f"{RECORD}/customer/1001", headers=bearer).status_code == 200

        assert token_request(_jwt("ES256", "cert-unknown", ec_key, claims)).status_code == 401
        assert token_request(_jwt("ES256", "cert-rsa", ec_key, claims)).status_code == 401
        forged = _jwt("ES256", "cert-ec", ec.generate_private_key(ec.SECP256R1()), claims)
        assert token_request(forged).status_code == 401
        expired = {**claims, "iat": now - 7200, "exp": now - 3700}
        refused = token_request(_jwt("ES256", "cert-ec", ec_key, expired))
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
        wrong_scope = {**claims, "scope": "restlets"}
        assert token_request(_jwt("ES256", "cert-ec", ec_key, wrong_scope)).status_code == 401

        server.tokens.expire_all()
        stale = http.get(f"{RECORD}/customer/1001", headers=bearer)
        assert stale.status_code == 401
        assert error_of(stale)["o:errorCode"] == "INVALID_LOGIN"


def test_tba_verifier_reproduces_oracle_vector() -> None:
    oauth = {
        "realm": "123456",
        "oauth_consumer_key": "ef40afdd8abaac111b13825dd5e5e2ddddb44f86d5a0dd6dcf38c20aae6b67e4",
        "oauth_token": "2b0ce516420110bcbd36b69e99196d1b7f6de3c6234c5afb799b73d87569f5cc",
        "oauth_nonce": "fjaLirsIcCGVZWzBX0pg",
        "oauth_timestamp": "1508242306",
        "oauth_signature_method": "HMAC-SHA256",
        "oauth_version": "1.0",
    }
    base = signature_base_string(
        "GET", "https://123456.suitetalk.api.netsuite.com/services/rest/record/v1/employee/40",
        oauth, [],
    )  # fmt: skip
    signature = hmac_sha256_signature(
        base,
        "d26ad321a4b2f23b0741c8d38392ce01c3e23e109df6c96eac6d099e9ab9e8b5",
        "c29a677df7d5439a458c063654187e3d678d73aca8e3c9d8bea1478a3eb0d295",
    )
    assert signature == "B5OIWznZ2YP0OB7VrJrGkYsTh+8H+5T9Hag+o92q0zY="


def _tba_header(
    method: str, url: str, query: dict[str, str], creds: TbaCredentials, realm: str, nonce: str
) -> str:
    """A TBA header signed independently of the emulator's code (RFC 5849 by hand)."""

    def enc(value: str) -> str:
        return quote(value, safe="~-._")

    oauth = {
        "oauth_consumer_key": creds.consumer_key,
        "oauth_token": creds.token_id,
        "oauth_nonce": nonce,
        "oauth_timestamp": str(int(time.time())),
        "oauth_signature_method": "HMAC-SHA256",
        "oauth_version": "1.0",
    }
    pairs = sorted((enc(k), enc(v)) for k, v in [*oauth.items(), *query.items()])
    base = "&".join([method, enc(url), enc("&".join(f"{k}={v}" for k, v in pairs))])
    key = f"{enc(creds.consumer_secret)}&{enc(creds.token_secret)}".encode()
    oauth["oauth_signature"] = base64.b64encode(
        hmac.new(key, base.encode(), hashlib.sha256).digest()
    ).decode()
    fields = ", ".join(f'{k}="{enc(v)}"' for k, v in oauth.items())
    return f'OAuth realm="{realm}", {fields}'


def test_tba_signature_check_good_and_bad() -> None:
    creds = TbaCredentials("ck-1", "consumer-secret", "tok-1", "token-secret")
    auth = AuthConfig(account_id="1234567_SB1", tba=[creds])
    with EmulatorServer(customers=10, auth=auth) as server, httpx.Client(base_url=server.url) as http:
        path = f"{RECORD}/customer/1001"

        def get(header: str, query: dict[str, str] | None = None) -> httpx.Response:
            return http.get(path, params=query, headers={"Authorization": header})

        good = _tba_header("GET", f"{server.url}{path}", {"expandSubResources": "true"},
                           creds, "1234567_SB1", "n1")  # fmt: skip
        assert get(good, {"expandSubResources": "true"}).status_code == 200
        assert get(good, {"expandSubResources": "true"}).status_code == 401, "nonce replay"
        signed_other_query = _tba_header("GET", f"{server.url}{path}", {"fields": "email"},
                                         creds, "1234567_SB1", "n2")  # fmt: skip
        assert get(signed_other_query, {"fields": "companyName"}).status_code == 401
        wrong_secret = TbaCredentials("ck-1", "consumer-secret", "tok-1", "not-the-secret")
        bad = _tba_header("GET", f"{server.url}{path}", {}, wrong_secret, "1234567_SB1", "n3")
        refused = get(bad)
        assert refused.status_code == 401
        assert error_of(refused)["o:errorCode"] == "INVALID_LOGIN"
        lower_realm = _tba_header("GET", f"{server.url}{path}", {}, creds, "1234567-sb1", "n4")
        assert get(lower_realm).status_code == 401
        body_post = _tba_header("POST", f"{server.url}{SUITEQL}", {"limit": "5"}, creds,
                                "1234567_SB1", "n5")  # fmt: skip
        posted = http.post(f"{SUITEQL}?limit=5", json={"q": queries.TERMS},
                           headers={"Authorization": body_post, **TRANSIENT})  # fmt: skip
        assert posted.status_code == 200, "the JSON body is not part of the signature"
        assert [entry.auth for entry in server.log.entries()][-1] == "tba"


def test_state_edits_show_through_both_doors(client: httpx.Client, ns: EmulatorServer) -> None:
    ns.state.edit_customer(1050, credit_hold="ON", credit_limit=Decimal("777.00"))
    record = client.get(f"{RECORD}/customer/1050").json()
    assert record["creditHoldOverride"]["id"] == "ON"
    (row,) = suiteql(client, queries.CUSTOMER_CREDIT_STANDING, [1050]).json()["items"]
    assert (row["oncredithold"], row["creditlimit"]) == ("ON", "777")
    since = (datetime.now(UTC) - timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S")
    changed = suiteql(client, queries.CUSTOMERS_MODIFIED_SINCE, [since, since, 0]).json()
    assert "1050" in {r["id"] for r in changed["items"]}
