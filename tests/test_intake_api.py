"""The intake API through the real WSGI path (Flask's test client), on SQLite and PostgreSQL.

What a caller of `POST /api/applications` and `GET /api/applications/<id>` can rely on: one application per
reference however often or concurrently it is sent, the Federal ID encrypted at rest and masked in every
answer, one plain message per invalid field, and a clear status for every kind of bad request.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy import func, select, text
from werkzeug.test import TestResponse

from bot.container import Container
from bot.federal_id import generate_key
from bot.web import create_app
from storage.models import AuditEvent, CreditApplication, ShippingLocation
from tests.conftest import AUTH, INTAKE_TOKEN, valid_application

CLEAR_EIN = "12-3456789"
EIN_TAIL = "3456789"  # the digits that must never leave the database in clear
MASKED_EIN = "**-***6789"
APPLICATIONS = "/api/applications"


@dataclass
class Intake:
    """One web app over one container, and a test client of it."""

    app: Flask
    container: Container
    client: FlaskClient

    def post(self, body: Any, headers: dict[str, str] | None = None) -> TestResponse:
        return self.client.post(APPLICATIONS, json=body, headers=AUTH if headers is None else headers)

    def post_raw(self, data: bytes | str, content_type: str | None = "application/json") -> TestResponse:
        headers = dict(AUTH)
        if content_type is not None:
            headers["Content-Type"] = content_type
        return self.client.post(APPLICATIONS, data=data, headers=headers)

    def count(self) -> int:
        with self.container.sessions() as session:
            return session.scalar(select(func.count()).select_from(CreditApplication)) or 0


def build_intake(container_factory: Callable[..., Container], database_url: str) -> Intake:
    container = container_factory(
        database_url=database_url, intake_api_token=INTAKE_TOKEN, federal_id_key=generate_key()
    )
    app = create_app(container)
    return Intake(app=app, container=container, client=app.test_client())


@pytest.fixture
def api(database_url: str, container_factory: Callable[..., Container]) -> Intake:
    """The intake API on each database, with a token and a fresh Federal ID key.

    Unlike conftest's `intake` client it keeps the app, so the race tests can make one client per thread.
    """
    return build_intake(container_factory, database_url)


@pytest.fixture
def sqlite_api(sqlite_template: Path, tmp_path: Path, container_factory: Callable[..., Container]) -> Intake:
    """The intake API on SQLite only, for tests of refusals (4xx) and of the published description.

    A refused body never reaches the database and the rules are the same code on either backend, so these
    run once (keeping the file quick); everything whose point is what gets stored runs on both through `api`.
    """
    path = tmp_path / "intake.db"
    shutil.copy(sqlite_template, path)
    return build_intake(container_factory, f"sqlite:///{path}")


def field_messages(response: TestResponse, case: object = None) -> dict[str, str]:
    """The 422 answer as {field: message}, checking it is one message per field.

    `case` (the value under test in a loop) goes into every failure message.
    """
    sent = "" if case is None else repr(case)
    assert response.status_code == 422, f"{response.get_data(as_text=True)} for {sent}"
    body = response.get_json()
    assert body["error"] == "invalid_application"
    fields = [e["field"] for e in body["errors"]]
    assert len(fields) == len(set(fields)), f"more than one message for a field: {body['errors']} for {sent}"
    assert all(isinstance(e["message"], str) and e["message"] for e in body["errors"])
    return {e["field"]: e["message"] for e in body["errors"]}


def assert_only_error(response: TestResponse, field: str, case: object = None) -> str:
    messages = field_messages(response, case)
    assert list(messages) == [field], f"{messages} for {case!r}"
    return messages[field]


def with_billing(**changes: Any) -> dict[str, Any]:
    address: dict[str, Any] = dict(valid_application()["billing_address"])
    for key, value in changes.items():
        if value is None:
            address.pop(key, None)
        else:
            address[key] = value
    return address


def with_amount(amount: Any, currency: str = "USD") -> dict[str, Any]:
    return {"amount": amount, "currency": currency}


# --- Created, repeated, conflicting ------------------------------------------------------------------


def test_created_with_location_and_masked_federal_id(api: Intake) -> None:
    response = api.post(valid_application())

    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["reference"] == "nuvo-1001"
    assert body["status"] == "submitted"
    assert body["source"] == "api"
    assert body["federal_id"] == MASKED_EIN
    assert body["requested_credit_limit"] == {"amount": "50000.00", "currency": "USD"}
    assert body["statements_contact"]["phone"] == "+15125550134"
    assert [s["label"] for s in body["shipping_locations"]] == ["Main warehouse", "Toronto DC"]
    assert response.headers["Location"].endswith(f"{APPLICATIONS}/{body['id']}")
    assert EIN_TAIL not in response.get_data(as_text=True)

    fetched = api.client.get(response.headers["Location"], headers=AUTH)
    assert fetched.status_code == 200
    assert fetched.get_json() == body


def test_federal_id_is_encrypted_at_rest_and_revealed_only_by_the_service(api: Intake) -> None:
    app_id = api.post(valid_application()).get_json()["id"]

    with api.container.sessions() as session:
        row = session.get(CreditApplication, app_id)
        assert row is not None
        assert EIN_TAIL.encode() not in row.federal_id_ciphertext
        assert CLEAR_EIN.encode() not in row.federal_id_ciphertext
        assert row.federal_id_last4 == "6789"
        assert EIN_TAIL not in row.federal_id_digest
    assert api.container.applications is not None
    assert api.container.applications.reveal_federal_id(app_id) == CLEAR_EIN

    # Nowhere in the written tables does the clear number appear (audit trail included).
    with api.container.engine.connect() as conn:
        for table in ("credit_applications", "shipping_locations", "audit_events"):
            for row_values in conn.execute(text(f"SELECT * FROM {table}")):  # noqa: S608 - fixed names
                for value in row_values:
                    if isinstance(value, str):
                        assert EIN_TAIL not in value, (table, value)


def test_repeat_of_the_same_reference_answers_200_with_the_first_application(api: Intake) -> None:
    first = api.post(valid_application())
    again = api.post(valid_application())

    assert first.status_code == 201
    assert again.status_code == 200, again.get_data(as_text=True)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.get_json()["federal_id"] == MASKED_EIN
    assert again.headers["Location"] == first.headers["Location"]
    assert EIN_TAIL not in again.get_data(as_text=True)
    assert api.count() == 1


def test_repeat_differing_only_in_formatting_is_still_a_repeat(api: Intake) -> None:
    first = api.post(valid_application())
    reformatted = valid_application(
        reference="  nuvo-1001 ",
        business_name="  Acme Industrial Supply LLC\t",
        federal_id=" 12-3456789 ",
        billing_address=with_billing(state="tx", city=" Austin ", country="us"),
        statements_contact={"name": "Pat Payables", "email": "ap@acme.example", "phone": "(512) 555-0134"},
        requested_credit_limit={"amount": 50000, "currency": "usd"},
    )
    reformatted["shipping_locations"][0]["state"] = "Texas"

    again = api.post(reformatted)

    assert again.status_code == 200, again.get_data(as_text=True)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert api.count() == 1


def test_same_reference_with_different_content_is_409_and_changes_nothing(api: Intake) -> None:
    first = api.post(valid_application()).get_json()

    changed = api.post(valid_application(requested_credit_limit=with_amount("75000.00")))

    assert changed.status_code == 409, changed.get_data(as_text=True)
    body = changed.get_json()
    assert body["error"] == "reference_conflict"
    assert body["application_id"] == first["id"]
    assert "nuvo-1001" in body["message"]
    assert EIN_TAIL not in changed.get_data(as_text=True)
    assert api.count() == 1
    stored = api.client.get(f"{APPLICATIONS}/{first['id']}", headers=AUTH).get_json()
    assert stored == first
    with api.container.sessions() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "application.submitted"))
        assert len(list(events)) == 1


def test_audit_event_for_a_created_application_only(api: Intake) -> None:
    app_id = api.post(valid_application()).get_json()["id"]
    assert api.post(valid_application()).status_code == 200

    with api.container.sessions() as session:
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    submitted = [e for e in events if e.action == "application.submitted"]
    assert len(submitted) == 1
    event = submitted[0]
    assert (event.entity_type, event.entity_id) == ("application", str(app_id))
    assert event.actor == "intake-api"
    assert event.before is None
    assert event.after is not None
    assert event.after["federal_id"] == MASKED_EIN
    assert event.after["reference"] == "nuvo-1001"
    assert EIN_TAIL not in json.dumps(event.after)


def test_get_answers_200_404_and_401(api: Intake) -> None:
    app_id = api.post(valid_application()).get_json()["id"]

    found = api.client.get(f"{APPLICATIONS}/{app_id}", headers=AUTH)
    assert found.status_code == 200
    assert found.get_json()["federal_id"] == MASKED_EIN
    assert EIN_TAIL not in found.get_data(as_text=True)

    missing = api.client.get(f"{APPLICATIONS}/{app_id + 1000}", headers=AUTH)
    assert missing.status_code == 404
    assert missing.get_json()["error"] == "not_found"

    assert api.client.get(f"{APPLICATIONS}/{app_id}").status_code == 401
    wrong = api.client.get(f"{APPLICATIONS}/{app_id}", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert EIN_TAIL not in wrong.get_data(as_text=True)


# --- One message per field, for each rule ---------------------------------------------------------------


BAD_FEDERAL_IDS = [
    "123456789",
    "12-345678",
    "12-34567890",
    "1-23456789",
    "123-456789",
    "12 3456789",
    "12_3456789",
    "ab-cdefghi",
    "12-3456789x",
    "",
    "00-1234567",
    "12-0000000",
]


def test_federal_id_format(sqlite_api: Intake) -> None:
    for federal_id in BAD_FEDERAL_IDS:
        response = sqlite_api.post(valid_application(federal_id=federal_id))

        assert "EIN" in assert_only_error(response, "federal_id", federal_id), federal_id
        digits = "".join(ch for ch in federal_id if ch.isdigit())
        if len(digits) >= 7:
            assert digits not in response.get_data(as_text=True), "a refused EIN must not be echoed"
    assert sqlite_api.count() == 0


def test_federal_id_of_another_type(sqlite_api: Intake) -> None:
    for value in (123456789, None, ["12-3456789"], {"ein": "12-3456789"}):
        assert_only_error(sqlite_api.post(valid_application(federal_id=value)), "federal_id", value)
    assert sqlite_api.count() == 0


def test_federal_id_with_non_ascii_digits_is_refused(sqlite_api: Intake) -> None:
    """Regression: `\\d` in `EIN_PATTERN` matched any Unicode digit, so fullwidth digits were stored."""
    fullwidth = "\uff11\uff12-\uff13\uff14\uff15\uff16\uff17\uff18\uff19"

    response = sqlite_api.post(valid_application(federal_id=fullwidth))

    assert_only_error(response, "federal_id")
    assert sqlite_api.count() == 0


def test_us_state(sqlite_api: Intake) -> None:
    for state in ("XX", "Texass", "T", "Ontario"):
        message = assert_only_error(
            sqlite_api.post(valid_application(billing_address=with_billing(state=state))),
            "billing_address.state",
            state,
        )
        assert "US state" in message
    missing = sqlite_api.post(valid_application(billing_address=with_billing(state=None)))
    assert "required" in assert_only_error(missing, "billing_address.state")
    bad_ship = valid_application()
    bad_ship["shipping_locations"][0]["state"] = "ZZ"
    assert_only_error(sqlite_api.post(bad_ship), "shipping_locations.0.state")
    assert sqlite_api.count() == 0


def test_us_state_name_or_lower_case_code_is_normalised(api: Intake) -> None:
    for n, given in enumerate(["New York", "new york", " NEW YORK ", "ny", "District of Columbia"]):
        response = api.post(valid_application(f"state-{n}", billing_address=with_billing(state=given)))

        assert response.status_code == 201, response.get_data(as_text=True)
        stored = response.get_json()["billing_address"]["state"]
        assert stored == ("DC" if given.startswith("District") else "NY"), given


def test_us_zip(api: Intake) -> None:
    for postal_code in ("1234", "123456", "12345-67", "12345-", "ABCDE", "12345 6789", "M5J 2X2"):
        message = assert_only_error(
            api.post(valid_application(billing_address=with_billing(postal_code=postal_code))),
            "billing_address.postal_code",
            postal_code,
        )
        assert "ZIP" in message
    assert api.count() == 0

    plus_four = api.post(valid_application(billing_address=with_billing(postal_code="78701-1234")))
    assert plus_four.status_code == 201, plus_four.get_data(as_text=True)
    assert plus_four.get_json()["billing_address"]["postal_code"] == "78701-1234"


def test_us_zip_with_non_ascii_digits_is_refused(sqlite_api: Intake) -> None:
    """Regression: `\\d` in `US_ZIP` let Arabic-Indic digits pass as a ZIP code."""
    arabic_indic = "\u0667\u0668\u0667\u0660\u0661"  # 78701 in Arabic-Indic digits

    response = sqlite_api.post(valid_application(billing_address=with_billing(postal_code=arabic_indic)))

    assert_only_error(response, "billing_address.postal_code")


def test_non_us_country_code(sqlite_api: Intake) -> None:
    for country in ("XX", "USA", "Canada", "C", "", "12"):
        message = assert_only_error(
            sqlite_api.post(valid_application(billing_address=with_billing(country=country))),
            "billing_address.country",
            country,
        )
        assert "ISO 3166" in message or "at least" in message
    assert sqlite_api.count() == 0


def test_valid_foreign_address_needs_no_us_state(api: Intake) -> None:
    for country, postal_code, city in [
        ("CA", "M5J 2X2", "Toronto"),
        ("GB", "SW1A 1AA", "London"),
        ("de", "10115", "Berlin"),
    ]:
        address = {"line1": "1 Main St", "city": city, "postal_code": postal_code, "country": country}

        response = api.post(valid_application(f"abroad-{country}", billing_address=address))

        assert response.status_code == 201, response.get_data(as_text=True)
        billing = response.get_json()["billing_address"]
        assert billing["country"] == country.upper()
        assert billing["state"] is None
        assert billing["postal_code"] == postal_code


def test_foreign_postal_code_rules(sqlite_api: Intake) -> None:
    for postal_code in ("M5J_2X2", "-M5J", "M5J-", "12345678901", "SW1A!1AA"):
        address = {"line1": "1 Front St", "city": "Toronto", "postal_code": postal_code, "country": "CA"}
        assert_only_error(
            sqlite_api.post(valid_application(billing_address=address)),
            "billing_address.postal_code",
            postal_code,
        )
    assert sqlite_api.count() == 0


def test_foreign_postal_code_of_one_character_matches_its_message(sqlite_api: Intake) -> None:
    """Regression: the message says "2 to 10 letters..." but `POSTAL_CODE` accepted a single character."""
    address = {"line1": "1 Front St", "city": "Toronto", "postal_code": "M", "country": "CA"}

    assert_only_error(
        sqlite_api.post(valid_application(billing_address=address)), "billing_address.postal_code"
    )


def test_email(sqlite_api: Intake) -> None:
    for email in ("not-an-email", "a@", "@acme.example", "a b@acme.example", "ap@@acme.example"):
        contact = {"name": "Pat", "email": email}
        assert "email" in assert_only_error(
            sqlite_api.post(valid_application(statements_contact=contact)), "statements_contact.email", email
        )
        applicant = {"name": "Jo", "email": email}
        assert_only_error(sqlite_api.post(valid_application(applicant=applicant)), "applicant.email", email)
    assert sqlite_api.count() == 0


def test_phone_invalid(sqlite_api: Intake) -> None:
    for phone in ("12345", "not a phone", "+1 555 0100", "+999 1234567", "555-555-55555"):
        contact = {"name": "Pat", "email": "ap@acme.example", "phone": phone}
        assert "phone" in assert_only_error(
            sqlite_api.post(valid_application(statements_contact=contact)), "statements_contact.phone", phone
        )
    assert sqlite_api.count() == 0


def test_phone_is_normalised_to_e164(api: Intake) -> None:
    body = valid_application(
        statements_contact={"name": "Pat", "email": "ap@acme.example", "phone": "(512) 555-0134"},
        applicant={"name": "Jo", "phone": "+44 20 7946 0018"},
    )

    response = api.post(body)

    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["statements_contact"]["phone"] == "+15125550134"
    assert response.get_json()["applicant"]["phone"] == "+442079460018"


BAD_AMOUNTS: list[Any] = [
    0,
    "0",
    "0.00",
    -1,
    "-50000",
    "1.005",
    0.001,
    "NaN",
    "nan",
    "Infinity",
    "-Infinity",
    "1000000000000.01",
    10**13,
    "1e20",
    "abc",
    "",
    True,
    None,
    [50000],
]


def test_credit_limit_must_be_a_positive_exact_amount(sqlite_api: Intake) -> None:
    for amount in BAD_AMOUNTS:
        response = sqlite_api.post(valid_application(requested_credit_limit=with_amount(amount)))

        assert_only_error(response, "requested_credit_limit.amount", amount)
    assert sqlite_api.count() == 0


def test_credit_limit_at_the_bounds_is_accepted(api: Intake) -> None:
    top = api.post(valid_application("top", requested_credit_limit=with_amount("1000000000000")))
    cent = api.post(valid_application("cent", requested_credit_limit=with_amount("0.01")))

    assert top.status_code == 201, top.get_data(as_text=True)
    assert top.get_json()["requested_credit_limit"]["amount"] == "1000000000000.00"
    assert cent.status_code == 201, cent.get_data(as_text=True)
    assert Decimal(cent.get_json()["requested_credit_limit"]["amount"]) == Decimal("0.01")


def test_currency_code(sqlite_api: Intake) -> None:
    for currency in ("XYZ", "US", "DOLLARS", "", "$"):
        message = assert_only_error(
            sqlite_api.post(valid_application(requested_credit_limit=with_amount("100.00", currency))),
            "requested_credit_limit.currency",
            currency,
        )
        assert "ISO 4217" in message
    assert sqlite_api.count() == 0
    lower = sqlite_api.post(valid_application(requested_credit_limit=with_amount("100.00", "cad")))
    assert lower.status_code == 201
    assert lower.get_json()["requested_credit_limit"] == {"amount": "100.00", "currency": "CAD"}


REQUIRED_PATHS: list[tuple[str | int, ...]] = [
    ("reference",),
    ("business_name",),
    ("federal_id",),
    ("billing_address",),
    ("statements_contact",),
    ("requested_credit_limit",),
    ("applicant",),
    ("billing_address", "line1"),
    ("billing_address", "city"),
    ("billing_address", "postal_code"),
    ("statements_contact", "name"),
    ("statements_contact", "email"),
    ("requested_credit_limit", "amount"),
    ("applicant", "name"),
    ("shipping_locations", 1, "line1"),
]


def test_each_missing_required_field_is_named(sqlite_api: Intake) -> None:
    for path in REQUIRED_PATHS:
        body = valid_application()
        parent: Any = body
        for key in path[:-1]:
            parent = parent[key]
        del parent[path[-1]]

        message = assert_only_error(sqlite_api.post(body), ".".join(str(p) for p in path), path)

        assert message == "is required", path
    assert sqlite_api.count() == 0


def test_blank_required_strings_are_refused(sqlite_api: Intake) -> None:
    for field in ("business_name", "reference"):
        assert_only_error(sqlite_api.post(valid_application(**{field: "   "})), field, field)
    assert sqlite_api.count() == 0


def test_unknown_fields_are_refused(sqlite_api: Intake) -> None:
    top = sqlite_api.post(valid_application(favourite_colour="blue"))
    assert assert_only_error(top, "favourite_colour") == "is not a known field"

    nested = valid_application(billing_address=with_billing(county="Travis"))
    assert assert_only_error(sqlite_api.post(nested), "billing_address.county") == "is not a known field"

    shipping = valid_application()
    shipping["shipping_locations"][1]["dock"] = "B"
    assert assert_only_error(sqlite_api.post(shipping), "shipping_locations.1.dock") == "is not a known field"
    assert sqlite_api.count() == 0


def test_each_unknown_field_gets_its_own_message(sqlite_api: Intake) -> None:
    """Regression: an unknown key "" was reported as "(body)", the label of the whole body, so
    `{"": 1, "(body)": 2}` gave two messages under one field name."""
    body = valid_application()
    body[""] = 1
    body["(body)"] = 2

    messages = field_messages(sqlite_api.post(body))

    assert len(messages) == 2
    assert sqlite_api.count() == 0


def test_too_many_shipping_locations(api: Intake) -> None:
    location = valid_application()["shipping_locations"][0]

    too_many = api.post(valid_application(shipping_locations=[location] * 51))
    assert "50" in assert_only_error(too_many, "shipping_locations")
    assert api.count() == 0

    fifty = api.post(valid_application(shipping_locations=[location] * 50))
    assert fifty.status_code == 201, fifty.get_data(as_text=True)
    assert len(fifty.get_json()["shipping_locations"]) == 50
    with api.container.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ShippingLocation)) == 50


def test_reference_format(sqlite_api: Intake) -> None:
    bad: list[Any] = ["", "-starts-with-dash", "has space", "x" * 101, "ref#1", "réf-1", "a\nb", 1001, None]
    for reference in bad:
        body = valid_application()
        body["reference"] = reference
        assert_only_error(sqlite_api.post(body), "reference", reference)
    assert sqlite_api.count() == 0
    odd_but_valid = sqlite_api.post(valid_application(reference="ACME:2024/01-a.b_c"))
    assert odd_but_valid.status_code == 201, odd_but_valid.get_data(as_text=True)


def test_several_bad_fields_give_several_messages(sqlite_api: Intake) -> None:
    body = valid_application(
        federal_id="12345",
        billing_address=with_billing(postal_code="ABCDE", state="QQ"),
        statements_contact={"name": "Pat", "email": "nope"},
        requested_credit_limit=with_amount("-1", "ZZZ"),
        extra="x",
    )
    del body["applicant"]

    messages = field_messages(sqlite_api.post(body))

    assert set(messages) == {
        "federal_id",
        "billing_address.postal_code",
        "billing_address.state",
        "statements_contact.email",
        "requested_credit_limit.amount",
        "requested_credit_limit.currency",
        "applicant",
        "extra",
    }
    assert sqlite_api.count() == 0


def test_nul_character_is_a_field_error_not_a_server_error(api: Intake) -> None:
    """Regression: a NUL was stored on SQLite and a 500 on PostgreSQL (psycopg DataError).

    The same body must get the same answer on both databases: a 422 naming the field.
    """
    response = api.post(valid_application(business_name="Acme\x00Supply"))

    assert response.status_code != 500
    assert_only_error(response, "business_name")
    assert api.count() == 0


# --- Malformed requests -------------------------------------------------------------------------------


def test_malformed_json_is_400(sqlite_api: Intake) -> None:
    for raw in (b"{", b"{'reference': 'x'}", b"", b"\xff\xfe\x00garbage", b'{"a": 1} {}', b"{" * 10):
        response = sqlite_api.post_raw(raw)

        assert response.status_code == 400, raw
        assert response.get_json()["error"] == "malformed_json"
    assert sqlite_api.count() == 0


def test_json_that_is_not_an_object_is_400(sqlite_api: Intake) -> None:
    for raw in (
        b"[]",
        b'["nuvo-1001"]',
        b"[" + json.dumps(valid_application()).encode() + b"]",
        b'"a string"',
    ):
        response = sqlite_api.post_raw(raw)

        assert response.status_code == 400, raw
        assert response.get_json() == {"error": "malformed_json", "message": "the body must be a JSON object"}
    for raw in (b"42", b"null", b"true"):
        assert sqlite_api.post_raw(raw).status_code == 400, raw
    assert sqlite_api.count() == 0


def test_deeply_nested_json_is_400_not_500(sqlite_api: Intake) -> None:
    """Regression: `json.loads` raises RecursionError (not ValueError) on deep nesting: it was a 500."""
    depth = 50_000
    array = sqlite_api.post_raw(b"[" * depth + b"]" * depth)
    inside = sqlite_api.post_raw(b'{"dba": ' + b"[" * depth + b"]" * depth + b"}")

    assert array.status_code == 400, array.get_data(as_text=True)
    assert inside.status_code in (400, 422), inside.get_data(as_text=True)


def test_non_json_content_type_is_415(sqlite_api: Intake) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None):
        response = sqlite_api.post_raw(json.dumps(valid_application()), content_type=content_type)

        assert response.status_code == 415, content_type
        assert response.get_json()["error"] == "unsupported_media_type"
    assert sqlite_api.count() == 0


def test_body_over_the_limit_is_413_and_at_the_limit_is_accepted(api: Intake) -> None:
    limit = api.container.settings.intake_max_body_bytes
    assert limit == 256 * 1024
    body = json.dumps(valid_application()).encode()
    padding = limit - len(body)  # whitespace after the object is still valid JSON

    over = api.post_raw(body + b" " * (padding + 1))
    assert over.status_code == 413
    assert over.get_json()["error"] == "too_large"
    assert api.count() == 0

    at_limit = api.post_raw(body + b" " * padding)
    assert at_limit.status_code == 201, at_limit.get_data(as_text=True)[:300]
    assert api.count() == 1


# --- Authentication and configuration -----------------------------------------------------------------


BAD_AUTH: list[dict[str, str]] = [
    {},
    {"Authorization": ""},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": f"Bearer {INTAKE_TOKEN}x"},
    {"Authorization": f"Bearer {INTAKE_TOKEN[:-1]}"},
    {"Authorization": f"Basic {INTAKE_TOKEN}"},
    {"Authorization": f"Token {INTAKE_TOKEN}"},
    {"Authorization": INTAKE_TOKEN},
    {"Authorization": "Bearer"},
    {"X-Api-Key": INTAKE_TOKEN},
]


def test_post_without_the_right_bearer_token_is_401(sqlite_api: Intake) -> None:
    for headers in BAD_AUTH:
        response = sqlite_api.post(valid_application(), headers=headers)

        assert response.status_code == 401, headers
        assert response.get_json()["error"] == "unauthorized"
    assert sqlite_api.count() == 0


def test_bearer_scheme_is_case_insensitive(sqlite_api: Intake) -> None:
    response = sqlite_api.post(valid_application(), headers={"Authorization": f"bearer {INTAKE_TOKEN}"})

    assert response.status_code == 201


def test_intake_is_503_without_a_token(
    database_url: str, container_factory: Callable[..., Container]
) -> None:
    container = container_factory(database_url=database_url, federal_id_key=generate_key())
    client = create_app(container).test_client()

    post = client.post(APPLICATIONS, json=valid_application(), headers=AUTH)
    get = client.get(f"{APPLICATIONS}/1", headers=AUTH)

    for response in (post, get):
        assert response.status_code == 503
        assert response.get_json()["error"] == "intake_disabled"
        assert "INTAKE_API_TOKEN" in response.get_json()["message"]


def test_intake_without_a_federal_id_key(
    database_url: str, container_factory: Callable[..., Container]
) -> None:
    """SQLite makes a key file beside the database; PostgreSQL has no fallback and names the setting."""
    container = container_factory(
        database_url=database_url, intake_api_token=INTAKE_TOKEN, federal_id_key=None
    )
    client = create_app(container).test_client()

    response = client.post(APPLICATIONS, json=valid_application(), headers=AUTH)

    if container.settings.is_sqlite:
        assert response.status_code == 201
    else:
        assert response.status_code == 503
        assert "FEDERAL_ID_KEY" in response.get_json()["message"]


# --- The published description ------------------------------------------------------------------------


@pytest.fixture
def spec(sqlite_api: Intake) -> dict[str, Any]:
    response = sqlite_api.client.get("/api/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.get_json()
    return document


def spec_validator(document: dict[str, Any], schema_name: str) -> Draft202012Validator:
    """A Draft 2020-12 validator for one component schema, its `$ref`s resolved within the document."""
    uri = "urn:credit-desk:openapi"
    registry: Registry[Any] = Registry().with_resource(
        uri, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    return Draft202012Validator({"$ref": f"{uri}#/components/schemas/{schema_name}"}, registry=registry)


def test_openapi_document_is_openapi_shaped(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")
    assert spec["info"]["title"] and spec["info"]["version"]
    post = spec["paths"]["/api/applications"]["post"]
    assert {"201", "200", "400", "401", "409", "413", "415", "422", "503"} <= set(post["responses"])
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ApplicationIn")
    assert set(spec["paths"]["/api/applications/{id}"]["get"]["responses"]) >= {"200", "401", "404"}
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    for name, schema in spec["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)  # each one is a valid JSON Schema
        assert name
    for chunk in json.dumps(spec).split('"$ref": "')[1:]:
        target = chunk.split('"', 1)[0]
        assert target.startswith("#/components/schemas/")
        assert target.removeprefix("#/components/schemas/") in spec["components"]["schemas"], target


def test_openapi_application_schema_matches_the_endpoint(spec: dict[str, Any]) -> None:
    validator = spec_validator(spec, "ApplicationIn")

    assert not list(validator.iter_errors(valid_application()))
    missing = valid_application()
    del missing["federal_id"]
    errors = list(validator.iter_errors(missing))
    assert errors and any("federal_id" in e.message for e in errors)
    assert list(validator.iter_errors(valid_application(unknown_field=1)))


def test_openapi_accepts_a_numeric_amount_like_the_endpoint_does(
    sqlite_api: Intake, spec: dict[str, Any]
) -> None:
    """Regression: serialization-mode `$defs` overwrote validation-mode ones, so `MoneyIn.amount` was
    published as string-only although the endpoint takes `{"amount": 50000}`."""
    body = valid_application(requested_credit_limit={"amount": 50000, "currency": "USD"})
    assert sqlite_api.post(body).status_code == 201

    assert not [e.message for e in spec_validator(spec, "ApplicationIn").iter_errors(body)]


def test_openapi_output_schema_describes_what_the_endpoint_returns(
    sqlite_api: Intake, spec: dict[str, Any]
) -> None:
    created = sqlite_api.post(valid_application()).get_json()

    assert not [e.message for e in spec_validator(spec, "ApplicationOut").iter_errors(created)]
    invalid = sqlite_api.post(valid_application(federal_id="x")).get_json()
    assert not [e.message for e in spec_validator(spec, "ValidationErrors").iter_errors(invalid)]


# --- Races ----------------------------------------------------------------------------------------------


def race(api: Intake, bodies: list[dict[str, Any]]) -> list[TestResponse]:
    """Post each body from its own thread and test client, all released at once by a barrier."""
    barrier = threading.Barrier(len(bodies))
    results: list[TestResponse | BaseException | None] = [None] * len(bodies)

    def post(index: int, client: FlaskClient) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = client.post(APPLICATIONS, json=bodies[index], headers=AUTH)
        except BaseException as exc:  # surfaced below, in the test's thread
            results[index] = exc

    threads = [
        threading.Thread(target=post, args=(i, api.app.test_client()), daemon=True)
        for i in range(len(bodies))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a request never finished"
    responses: list[TestResponse] = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        assert result is not None
        responses.append(result)
    return responses


@pytest.mark.parametrize("threads", [2, 8])
def test_identical_bodies_racing_make_one_application(api: Intake, threads: int) -> None:
    responses = race(api, [valid_application() for _ in range(threads)])

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * (threads - 1) + [201], [r.get_data(as_text=True)[:200] for r in responses]
    assert len({r.get_json()["id"] for r in responses}) == 1
    assert api.count() == 1
    with api.container.sessions() as session:
        assert session.scalar(select(func.count()).select_from(ShippingLocation)) == 2
        submitted = (
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "application.submitted")
        )
        assert session.scalar(submitted) == 1


def test_different_references_racing_make_two_applications(api: Intake) -> None:
    responses = race(api, [valid_application("race-a"), valid_application("race-b")])

    assert [r.status_code for r in responses] == [201, 201]
    assert {r.get_json()["reference"] for r in responses} == {"race-a", "race-b"}
    assert api.count() == 2


def test_same_reference_different_content_racing_gives_one_201_and_one_409(api: Intake) -> None:
    bodies = [valid_application(), valid_application(requested_credit_limit=with_amount("1.00"))]

    responses = race(api, bodies)

    assert sorted(r.status_code for r in responses) == [201, 409]
    assert api.count() == 1
