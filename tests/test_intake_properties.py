"""Generated bodies against the intake endpoint: whatever arrives, the answer is a clear 2xx/4xx, never a 500,
and the database only ever holds whole applications, one per reference that was answered 201.

Each test builds its app once from the function-scoped database fixture and runs an inner `@given` function
against it, so state accumulates across examples on purpose (repeats and reused references happen) and the
test checks the database against its own record of what was created after every request.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.container import Container
from bot.federal_id import generate_key
from bot.web import create_app
from storage.models import CreditApplication, ShippingLocation
from tests.conftest import AUTH, INTAKE_TOKEN, valid_application

ALLOWED = {200, 201, 400, 409, 422}
SETTINGS = settings(
    max_examples=80,
    deadline=None,
    database=None,  # the working directory is a per-test tmp dir: nothing to replay from
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    # No shrinking: a 500 costs seconds (the traceback is logged), and the unshrunk body is in the failure
    # message anyway. Stop at the first kind of failure.
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
)

# A few shared references make repeats (200) and reused references with other content (409) common.
REFERENCE_POOL = ["prop-a", "prop-b", "prop-c", "nuvo-1001"]


# --- Strategies ---------------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**15, max_value=10**40) | st.integers(min_value=-(10**40), max_value=-(10**15)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["", " ", "\x00", "\u202e", "😀", "12-3456789", "TX", "US", "NaN", "1e999", "0.001"]),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every key path inside a valid body, so that a mutation can reach any field at any depth."""
    out: list[tuple[str | int, ...]] = []
    if isinstance(value, dict):
        for key, child in value.items():
            out.append((*prefix, key))
            out.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out.append((*prefix, index))
            out.extend(_paths(child, (*prefix, index)))
    return out


PATHS = _paths(valid_application())


def _parent(body: Any, path: tuple[str | int, ...]) -> Any:
    for key in path[:-1]:
        body = body[key]
    return body


@st.composite
def mutated_bodies(draw: st.DrawFn) -> bytes:
    """A valid body with one to four fields dropped, replaced, retyped or added, serialised as JSON."""
    reference = draw(st.sampled_from(REFERENCE_POOL) | st.text(min_size=1, max_size=12))
    body: Any = valid_application(reference)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(PATHS))
        try:
            parent: Any = _parent(body, path)
            key: Any = path[-1]
            parent[key]
        except (KeyError, IndexError, TypeError):
            continue
        if not isinstance(parent, dict | list):
            continue
        action = draw(st.sampled_from(["drop", "replace", "text", "unicode", "add", "nest"]))
        if action == "drop":
            del parent[key]
        elif action == "replace":
            parent[key] = draw(json_values)
        elif action == "text":
            parent[key] = draw(st.text(max_size=300))
        elif action == "unicode":
            original = parent[key]
            noise = draw(st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=5))
            parent[key] = f"{original}{noise}" if isinstance(original, str) else noise
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = draw(json_values)
        else:
            parent[key] = {"nested": [parent[key], draw(json_values)]}
    return json.dumps(body, allow_nan=True).encode()


@st.composite
def reformatted_bodies(draw: st.DrawFn) -> bytes:
    """A valid body with only its formatting changed, or one field's content changed, under a shared
    reference: the repeat (200) and reused-reference (409) paths, not just validation."""
    body: Any = valid_application(draw(st.sampled_from(REFERENCE_POOL)))

    def pad(value: str) -> str:
        return draw(st.sampled_from(["", " ", "\t", "  "])) + value + draw(st.sampled_from(["", " ", "\n"]))

    body["business_name"] = pad(body["business_name"])
    body["federal_id"] = pad(body["federal_id"])
    body["billing_address"]["state"] = draw(st.sampled_from(["TX", "tx", "Tx", "Texas", " texas "]))
    body["requested_credit_limit"] = {
        "amount": draw(st.sampled_from([50000, "50000", "50000.00", 50000.0, "5E+4"])),
        "currency": draw(st.sampled_from(["USD", "usd", " USD "])),
    }
    if draw(st.booleans()):
        body["billing_address"]["country"] = draw(st.sampled_from(["US", "us"]))
    if draw(st.integers(min_value=0, max_value=3)) == 0:  # now and then, different content
        body["dba"] = draw(st.sampled_from(["Acme Two", "Acme Three", None]))
    return json.dumps(body).encode()


# Any text, with the characters that trip databases and terminals drawn far more often than by chance
# (`st.text` over a union of character strategies flattens it and draws uniformly, so join pieces instead).
TRICKY = ["\x00", "\x7f", "\u0085", "\u2028", "\ufeff", "\u202e", "\u200b", "\t", "\r", "[/b]", "'", "\\"]
any_text = st.lists(st.text(max_size=6) | st.sampled_from(TRICKY), min_size=1, max_size=8).map("".join)
FREE_TEXT_PATHS: list[tuple[str | int, ...]] = [
    ("business_name",),
    ("dba",),
    ("requested_terms",),
    ("billing_address", "line1"),
    ("billing_address", "line2"),
    ("billing_address", "city"),
    ("statements_contact", "name"),
    ("applicant", "name"),
    ("shipping_locations", 0, "label"),
    ("shipping_locations", 1, "line1"),
]


_FRESH = itertools.count(1)


@st.composite
def free_text_bodies(draw: st.DrawFn) -> bytes:
    """A valid body, under a new reference, with one free-text field set to any Unicode text at all."""
    # A fresh reference each time: a reused one is answered 409 before the text ever reaches the database,
    # and Hypothesis repeats drawn values on purpose, so the uniqueness comes from a counter.
    body: Any = valid_application(f"txt-{next(_FRESH)}")
    path = draw(st.sampled_from(FREE_TEXT_PATHS))
    _parent(body, path)[path[-1]] = draw(any_text)
    return json.dumps(body).encode()


random_json = json_values.map(lambda v: json.dumps(v, allow_nan=True).encode())
random_objects = st.dictionaries(
    st.sampled_from([*valid_application(), "unknown"]) | st.text(max_size=8), json_values, max_size=8
).map(lambda v: json.dumps(v, allow_nan=True).encode())


# --- The harness --------------------------------------------------------------------------------------


@dataclass
class Harness:
    """Posts bodies and checks, after each one, that the database matches the 201s seen so far."""

    container: Container
    client: FlaskClient
    created: dict[str, int] = field(default_factory=dict)  # reference -> id
    locations: dict[int, int] = field(default_factory=dict)  # id -> shipping locations in the 201
    statuses: Counter[int] = field(default_factory=Counter)

    def post(self, raw: bytes) -> None:
        response = self.client.post(
            "/api/applications", data=raw, headers={**AUTH, "Content-Type": "application/json"}
        )
        status = response.status_code
        self.statuses[status] += 1
        answer = response.get_data(as_text=True)
        assert status in ALLOWED, f"{status} for {raw[:500]!r}: {answer[:500]}"
        body = response.get_json()
        assert isinstance(body, dict)
        if status == 201:
            assert body["reference"] not in self.created, "a second 201 for one reference"
            self.created[body["reference"]] = body["id"]
            self.locations[body["id"]] = len(body["shipping_locations"])
        elif status == 200:
            assert self.created.get(body["reference"]) == body["id"], "a repeat of an unknown application"
        elif status == 409:
            assert body["application_id"] in self.created.values()
        elif status == 422:
            fields = [e["field"] for e in body["errors"]]
            assert fields and len(fields) == len(set(fields)), body["errors"]
        if status in (200, 201):
            request = json.loads(raw)
            sent = request.pop("federal_id").strip()
            assert body["federal_id"] == f"**-***{sent[-4:]}"
            if sent[3:] not in json.dumps(request):  # unless the caller put those digits in another field
                assert sent[3:] not in answer, "the clear Federal ID in an answer"
        self.check_database()

    def check_database(self) -> None:
        """Exactly the created applications are stored, each with all its shipping locations in order."""
        with self.container.sessions() as session:
            stored = {
                reference: app_id
                for reference, app_id in session.execute(
                    select(CreditApplication.reference, CreditApplication.id)
                )
            }
            per_application = select(ShippingLocation.application_id, func.count()).group_by(
                ShippingLocation.application_id
            )
            counts = {app_id: n for app_id, n in session.execute(per_application)}
            bad_positions = session.execute(
                select(ShippingLocation.application_id)
                .group_by(ShippingLocation.application_id)
                .having(func.max(ShippingLocation.position) != func.count() - 1)
            ).all()
        assert stored == self.created
        assert {i: n for i, n in counts.items() if n} == {i: n for i, n in self.locations.items() if n}
        assert not bad_positions


def build_harness(database_url: str, container_factory: Callable[..., Container]) -> Harness:
    container = container_factory(
        database_url=database_url, intake_api_token=INTAKE_TOKEN, federal_id_key=generate_key()
    )
    return Harness(container=container, client=create_app(container).test_client())


# --- The properties -----------------------------------------------------------------------------------


def test_mutated_bodies_never_break_the_endpoint_or_the_data(
    database_url: str, container_factory: Callable[..., Container]
) -> None:
    harness = build_harness(database_url, container_factory)

    @SETTINGS
    @given(raw=mutated_bodies() | reformatted_bodies() | free_text_bodies())
    def run(raw: bytes) -> None:
        harness.post(raw)

    run()
    # Guard against a vacuous run: the generators reached both the refusals and the stores.
    assert harness.statuses[422] and harness.statuses[201], harness.statuses
    harness.post(json.dumps(valid_application("prop-final")).encode())  # the endpoint still works
    assert "prop-final" in harness.created


def test_random_json_never_breaks_the_endpoint_or_the_data(
    database_url: str, container_factory: Callable[..., Container]
) -> None:
    harness = build_harness(database_url, container_factory)

    @SETTINGS
    @given(raw=random_json | random_objects | st.binary(max_size=200))
    def run(raw: bytes) -> None:
        harness.post(raw)

    run()
    assert harness.statuses[400] and harness.statuses[422], harness.statuses
    harness.post(json.dumps(valid_application("prop-final")).encode())  # the endpoint still works
    assert "prop-final" in harness.created


def test_valid_bodies_round_trip(database_url: str, container_factory: Callable[..., Container]) -> None:
    """Generated valid variations are stored once and read back as sent (after normalisation)."""
    harness = build_harness(database_url, container_factory)
    location = valid_application()["shipping_locations"][0]

    @settings(max_examples=30, deadline=None, database=None)
    @given(
        reference=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,20}", fullmatch=True),
        name=st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1)
        .map(str.strip)
        .filter(lambda s: 0 < len(s) <= 200),
        cents=st.integers(min_value=1, max_value=10**14),
        n_locations=st.integers(min_value=0, max_value=5),
    )
    def run(reference: str, name: str, cents: int, n_locations: int) -> None:
        body = valid_application(
            reference,
            business_name=name,
            requested_credit_limit={"amount": f"{cents // 100}.{cents % 100:02d}"},
            shipping_locations=[copy.deepcopy(location) for _ in range(n_locations)],
        )
        known = reference in harness.created
        harness.post(json.dumps(body).encode())
        got = harness.client.get(f"/api/applications/{harness.created[reference]}", headers=AUTH).get_json()
        if not known:
            assert got["business_name"] == name
            assert got["requested_credit_limit"]["amount"] == f"{cents // 100}.{cents % 100:02d}"
            assert len(got["shipping_locations"]) == n_locations

    run()
