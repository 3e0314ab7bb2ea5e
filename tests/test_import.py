"""`credit-desk applications import FILE`, through Typer's runner, on SQLite and PostgreSQL.

A file import must keep every good line, list every bad one with its line number and field messages, know
repeats by reference on a second run, and refuse a file it cannot read with a clear message.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from bot.applications.importer import CSV_COLUMNS
from bot.cli import app
from bot.container import Container
from bot.federal_id import generate_key
from storage.models import AuditEvent, CreditApplication
from tests.conftest import valid_application


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI points the root logger at the runner's stderr, which is closed after the run: put it back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@dataclass
class Importer:
    """Runs the import command against one database and reads back what it stored."""

    env: dict[str, str]
    open_container: Callable[[], Container]
    folder: Path

    def run(self, file: Path, *args: str) -> Result:
        result = CliRunner().invoke(app, ["applications", "import", str(file), *args], env=self.env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception  # a crash, not an answer: show its traceback
        return result

    def write_jsonl(self, name: str, lines: list[Any]) -> Path:
        """`lines`: dicts become JSON; strings are written as they are (blank or broken lines)."""
        path = self.folder / name
        text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)
        path.write_text(text + "\n", encoding="utf-8")
        return path

    def stored(self) -> dict[str, CreditApplication]:
        with self.open_container().sessions() as session:
            rows = session.scalars(select(CreditApplication).order_by(CreditApplication.id)).all()
            return {row.reference: row for row in rows}


@pytest.fixture
def importer(database_url: str, container_factory: Callable[..., Container], tmp_path: Path) -> Importer:
    env = {"DATABASE_URL": database_url}
    if not database_url.startswith("sqlite"):
        env["FEDERAL_ID_KEY"] = generate_key()  # SQLite makes its own key file beside the database

    def open_container() -> Container:
        return container_factory(database_url=database_url, federal_id_key=env.get("FEDERAL_ID_KEY"))

    folder = tmp_path / "files"
    folder.mkdir()
    return Importer(env=env, open_container=open_container, folder=folder)


def flat(text: str) -> str:
    """Rich wraps long lines at the terminal width; compare text with its whitespace collapsed."""
    return " ".join(text.split())


def summary(created: int, repeat: int, invalid: int, conflict: int) -> str:
    return f"{created} created, {repeat} already present, {invalid} invalid, {conflict} conflicting."


def bad_application(reference: str) -> dict[str, Any]:
    address = dict(valid_application()["billing_address"], postal_code="ABCDE")
    return valid_application(reference, federal_id="123", billing_address=address)


def canadian(reference: str) -> dict[str, Any]:
    address = {"line1": "1 Front St W", "city": "Toronto", "postal_code": "M5J 2X2", "country": "CA"}
    return valid_application(reference, billing_address=address, requested_credit_limit={"amount": 1234.5})


# --- JSON lines ---------------------------------------------------------------------------------------


def test_jsonl_keeps_good_lines_and_lists_bad_ones(importer: Importer) -> None:
    path = importer.write_jsonl(
        "apps.jsonl",
        [
            valid_application("imp-1"),
            "",
            bad_application("imp-bad"),
            '{"reference": "imp-broken",',
            "[1, 2]",
            canadian("imp-2"),
        ],
    )

    result = importer.run(path)

    assert result.exit_code == 1, result.output
    assert summary(2, 0, 3, 0) in flat(result.stdout)
    errors = flat(result.stderr)
    assert "line 3 (imp-bad): invalid" in errors
    assert "federal_id: must be an EIN in the form NN-NNNNNNN" in errors
    assert "billing_address.postal_code: must be a US ZIP code" in errors
    assert "line 4: invalid" in errors and "not valid JSON" in errors
    assert "line 5: invalid" in errors and "each line must be a JSON object" in errors
    for good_line in ("line 1", "line 2", "line 6"):
        assert f"{good_line}:" not in errors and f"{good_line} (" not in errors

    stored = importer.stored()
    assert set(stored) == {"imp-1", "imp-2"}
    assert all(row.source == "import" for row in stored.values())
    assert [len(row.shipping_locations) for row in stored.values()] == [2, 2]
    assert stored["imp-2"].billing_country == "CA" and stored["imp-2"].billing_region is None
    assert stored["imp-2"].requested_credit_limit == Decimal("1234.50")
    container = importer.open_container()
    assert container.applications is not None
    assert container.applications.reveal_federal_id(stored["imp-1"].id) == "12-3456789"
    with container.sessions() as session:
        submitted = select(AuditEvent.actor).where(AuditEvent.action == "application.submitted")
        actors = set(session.scalars(submitted))
    assert actors == {"cli:import:apps.jsonl"}


def test_second_run_reports_already_present_and_stores_nothing(importer: Importer) -> None:
    path = importer.write_jsonl("apps.jsonl", [valid_application("imp-1"), canadian("imp-2")])

    first = importer.run(path)
    ids = {ref: row.id for ref, row in importer.stored().items()}
    second = importer.run(path)

    assert first.exit_code == 0, first.output
    assert summary(2, 0, 0, 0) in flat(first.stdout)
    assert second.exit_code == 0, second.output
    assert summary(0, 2, 0, 0) in flat(second.stdout)
    assert {ref: row.id for ref, row in importer.stored().items()} == ids


def test_second_run_of_a_file_with_bad_lines_still_fails_and_adds_nothing(importer: Importer) -> None:
    path = importer.write_jsonl("apps.jsonl", [valid_application("imp-1"), bad_application("imp-bad")])

    importer.run(path)
    again = importer.run(path)

    assert again.exit_code == 1
    assert summary(0, 1, 1, 0) in flat(again.stdout)
    assert set(importer.stored()) == {"imp-1"}


def test_reused_reference_with_other_content_is_a_conflict(importer: Importer) -> None:
    importer.run(importer.write_jsonl("first.jsonl", [valid_application("imp-1")]))
    changed = importer.write_jsonl(
        "second.jsonl", [valid_application("imp-1", business_name="Another Business Inc"), canadian("imp-2")]
    )

    result = importer.run(changed)

    assert result.exit_code == 1
    assert summary(1, 0, 0, 1) in flat(result.stdout)
    assert "line 1 (imp-1): conflict" in flat(result.stderr)
    assert "already names application" in flat(result.stderr)
    stored = importer.stored()
    assert set(stored) == {"imp-1", "imp-2"}
    assert stored["imp-1"].business_legal_name == "Acme Industrial Supply LLC"


def test_unknown_suffix_without_format_is_exit_2(importer: Importer) -> None:
    path = importer.write_jsonl("apps.txt", [valid_application("imp-1")])

    result = importer.run(path)

    assert result.exit_code == 2
    assert "cannot tell the format of apps.txt" in flat(result.stderr)
    assert "--format" in flat(result.stderr)
    assert importer.stored() == {}

    with_format = importer.run(path, "--format", "jsonl")
    assert with_format.exit_code == 0, with_format.output
    assert set(importer.stored()) == {"imp-1"}


def test_unknown_format_option_is_exit_2(importer: Importer) -> None:
    path = importer.write_jsonl("apps.jsonl", [valid_application("imp-1")])

    result = importer.run(path, "--format", "xml")

    assert result.exit_code == 2
    assert "unknown format 'xml'" in flat(result.stderr)
    assert importer.stored() == {}


def test_missing_file_is_a_usage_error(importer: Importer) -> None:
    result = importer.run(importer.folder / "nope.jsonl")

    assert result.exit_code == 2
    assert "does not exist" in flat(result.output)


def test_reference_that_looks_like_markup_is_reported_not_a_crash(importer: Importer) -> None:
    """BUG: `bot/cli.py` prints the raw reference and field messages through rich markup; a reference such
    as `[/x]` raises MarkupError and the import stops half-way (later lines never imported)."""
    path = importer.write_jsonl(
        "apps.jsonl",
        [
            valid_application("[/x]"),
            valid_application("imp-1", billing_address={"state": "[/b]"}),
            valid_application("imp-2"),
        ],
    )

    result = importer.run(path)

    assert result.exit_code == 1
    assert summary(1, 0, 2, 0) in flat(result.stdout)
    assert "line 1 ([/x]): invalid" in flat(result.stderr)
    assert set(importer.stored()) == {"imp-2"}


def test_deeply_nested_json_line_is_reported_not_a_crash(importer: Importer) -> None:
    """BUG: `importer._read_jsonl` catches ValueError only; deep nesting raises RecursionError, the command
    dies with a traceback and the lines after it are never imported."""
    depth = 50_000
    path = importer.write_jsonl("apps.jsonl", ["[" * depth + "]" * depth, valid_application("imp-1")])

    result = importer.run(path)

    assert result.exit_code == 1
    assert "line 1: invalid" in flat(result.stderr)
    assert set(importer.stored()) == {"imp-1"}


def test_nul_character_is_an_invalid_line_on_every_database(importer: Importer) -> None:
    """Regression: a NUL was stored on SQLite and crashed the import on PostgreSQL (DataError)."""
    path = importer.write_jsonl(
        "apps.jsonl", [valid_application("imp-nul", business_name="Acme\x00Co"), valid_application("imp-1")]
    )

    result = importer.run(path)

    assert result.exit_code == 1
    assert "line 1 (imp-nul): invalid" in flat(result.stderr)
    assert "business_name" in flat(result.stderr)
    assert set(importer.stored()) == {"imp-1"}


# --- CSV ----------------------------------------------------------------------------------------------


def csv_row(body: dict[str, Any]) -> dict[str, str]:
    """A valid API body flattened into the import's CSV columns."""
    bill, contact, amount = (
        body["billing_address"],
        body["statements_contact"],
        body["requested_credit_limit"],
    )
    return {
        "reference": body["reference"],
        "business_name": body["business_name"],
        "dba": body.get("dba") or "",
        "federal_id": body["federal_id"],
        "billing_line1": bill["line1"],
        "billing_line2": bill.get("line2") or "",
        "billing_city": bill["city"],
        "billing_state": bill.get("state") or "",
        "billing_postal_code": bill["postal_code"],
        "billing_country": bill.get("country", ""),
        "contact_name": contact["name"],
        "contact_email": contact["email"],
        "contact_phone": contact.get("phone") or "",
        "requested_terms": body.get("requested_terms") or "",
        "requested_credit_limit": str(amount["amount"]),
        "currency": amount.get("currency", ""),
        "applicant_name": body["applicant"]["name"],
        "applicant_email": body["applicant"].get("email") or "",
        "applicant_phone": "",
        "shipping_locations": json.dumps(body["shipping_locations"]) if body["shipping_locations"] else "",
    }


def write_csv(
    path: Path, rows: list[dict[str, str]], columns: list[str] | tuple[str, ...] = CSV_COLUMNS
) -> Path:
    with path.open("w", newline="", encoding="utf-8-sig") as handle:  # with a BOM, as Excel writes it
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_csv_keeps_good_rows_and_lists_bad_ones_by_line(importer: Importer) -> None:
    bad_fields = csv_row(valid_application("csv-bad"))
    bad_fields.update(billing_postal_code="7870", contact_email="not-an-email")
    bad_json = csv_row(valid_application("csv-json"))
    bad_json["shipping_locations"] = '[{"line1": '
    no_shipping = csv_row(canadian("csv-2") | {"shipping_locations": []})
    path = write_csv(
        importer.folder / "apps.csv",
        [csv_row(valid_application("csv-1")), bad_fields, no_shipping, bad_json],
    )

    result = importer.run(path)

    assert result.exit_code == 1, result.output
    assert summary(2, 0, 2, 0) in flat(result.stdout)
    errors = flat(result.stderr)
    assert "line 3 (csv-bad): invalid" in errors  # line 1 is the header
    assert "billing_address.postal_code: must be a US ZIP code" in errors
    assert "statements_contact.email:" in errors
    assert "line 5: invalid" in errors and "shipping_locations is not a JSON array" in errors
    stored = importer.stored()
    assert set(stored) == {"csv-1", "csv-2"}
    assert len(stored["csv-1"].shipping_locations) == 2
    assert stored["csv-1"].contact_phone == "+15125550134"
    assert stored["csv-2"].shipping_locations == []
    assert stored["csv-2"].billing_country == "CA"

    again = importer.run(path)
    assert summary(0, 2, 2, 0) in flat(again.stdout)
    assert set(importer.stored()) == {"csv-1", "csv-2"}


def test_csv_with_missing_or_unknown_columns_is_refused(importer: Importer) -> None:
    columns = [c for c in CSV_COLUMNS if c != "federal_id"] + ["tax_id"]
    row = csv_row(valid_application("csv-1")) | {"tax_id": "12-3456789"}
    path = write_csv(importer.folder / "apps.csv", [row], columns)

    result = importer.run(path)

    assert result.exit_code != 0
    errors = flat(result.stderr)
    assert "missing columns: federal_id" in errors
    assert "unknown columns: tax_id" in errors
    assert "reference" in errors  # the expected columns are listed
    assert importer.stored() == {}


def test_csv_without_optional_columns_is_read(importer: Importer) -> None:
    columns = [
        c for c in CSV_COLUMNS if c not in ("dba", "billing_line2", "shipping_locations", "applicant_phone")
    ]
    path = write_csv(importer.folder / "apps.csv", [csv_row(valid_application("csv-1"))], columns)

    result = importer.run(path)

    assert result.exit_code == 0, result.output
    stored = importer.stored()["csv-1"]
    assert stored.business_dba is None and stored.shipping_locations == []
