"""Read applications from a file (JSON lines or CSV) into the shape `ApplicationIn` validates.

Parsing is separate from storing so that a bad line is reported with its line number and loses nothing: the
good lines are stored, the bad ones listed with one message per field.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.applications.schemas import ApplicationIn, field_errors
from bot.applications.service import ApplicationService, ReferenceConflict

CSV_COLUMNS = (
    "reference",
    "business_name",
    "dba",
    "federal_id",
    "billing_line1",
    "billing_line2",
    "billing_city",
    "billing_state",
    "billing_postal_code",
    "billing_country",
    "contact_name",
    "contact_email",
    "contact_phone",
    "requested_terms",
    "requested_credit_limit",
    "currency",
    "applicant_name",
    "applicant_email",
    "applicant_phone",
    "shipping_locations",
)
REQUIRED_CSV_COLUMNS = frozenset({"reference", "business_name", "federal_id"})


@dataclass(frozen=True)
class RawRecord:
    line: int
    data: dict[str, Any] | None
    error: str | None = None


def detect_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix == ".csv":
        return "csv"
    raise ValueError(f"cannot tell the format of {path.name}: use .jsonl or .csv, or pass --format")


def read_records(text: str, fmt: str) -> Iterator[RawRecord]:
    if fmt == "jsonl":
        yield from _read_jsonl(text)
    elif fmt == "csv":
        yield from _read_csv(text)
    else:
        raise ValueError(f"unknown format {fmt!r}: jsonl or csv")


def _read_jsonl(text: str) -> Iterator[RawRecord]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            yield RawRecord(number, None, f"not valid JSON: {exc}")
            continue
        except RecursionError:
            yield RawRecord(number, None, "not valid JSON: nested too deeply")
            continue
        if not isinstance(value, dict):
            yield RawRecord(number, None, "each line must be a JSON object")
            continue
        yield RawRecord(number, value)


def _blank_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _read_csv(text: str) -> Iterator[RawRecord]:
    reader = csv.DictReader(io.StringIO(text))
    header = set(reader.fieldnames or [])
    missing = REQUIRED_CSV_COLUMNS - header
    unknown = header - set(CSV_COLUMNS)
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"missing columns: {', '.join(sorted(missing))}")
        if unknown:
            problems.append(f"unknown columns: {', '.join(sorted(unknown))}")
        yield RawRecord(1, None, "; ".join(problems) + f" (expected: {', '.join(CSV_COLUMNS)})")
        return
    for row in reader:
        line = reader.line_num
        r = {k: _blank_to_none(v) for k, v in row.items() if k is not None}
        shipping_text = r.get("shipping_locations")
        try:
            shipping = json.loads(shipping_text) if shipping_text else []
        except ValueError as exc:
            yield RawRecord(line, None, f"shipping_locations is not a JSON array: {exc}")
            continue
        record: dict[str, Any] = {
            "reference": r.get("reference"),
            "business_name": r.get("business_name"),
            "dba": r.get("dba"),
            "federal_id": r.get("federal_id"),
            "billing_address": _drop_none(
                {
                    "line1": r.get("billing_line1"),
                    "line2": r.get("billing_line2"),
                    "city": r.get("billing_city"),
                    "state": r.get("billing_state"),
                    "postal_code": r.get("billing_postal_code"),
                    "country": r.get("billing_country"),
                }
            ),
            "statements_contact": _drop_none(
                {
                    "name": r.get("contact_name"),
                    "email": r.get("contact_email"),
                    "phone": r.get("contact_phone"),
                }
            ),
            "requested_terms": r.get("requested_terms"),
            "requested_credit_limit": _drop_none(
                {"amount": r.get("requested_credit_limit"), "currency": r.get("currency")}
            ),
            "shipping_locations": shipping,
            "applicant": _drop_none(
                {
                    "name": r.get("applicant_name"),
                    "email": r.get("applicant_email"),
                    "phone": r.get("applicant_phone"),
                }
            ),
        }
        yield RawRecord(line, _drop_none(record))


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


@dataclass(frozen=True)
class ImportOutcome:
    line: int
    status: str  # created, repeat, invalid, conflict
    reference: str | None = None
    application_id: int | None = None
    errors: tuple[str, ...] = ()


def import_records(
    service: ApplicationService, records: Iterator[RawRecord], *, actor: str
) -> Iterator[ImportOutcome]:
    """Validate and store each record on its own: one bad line never stops or spoils the others."""
    for rec in records:
        if rec.data is None:
            yield ImportOutcome(rec.line, "invalid", errors=(rec.error or "unreadable",))
            continue
        reference = rec.data.get("reference") if isinstance(rec.data.get("reference"), str) else None
        try:
            data = ApplicationIn.model_validate(rec.data)
        except ValidationError as exc:
            messages = tuple(f"{e.field}: {e.message}" for e in field_errors(exc))
            yield ImportOutcome(rec.line, "invalid", reference, errors=messages)
            continue
        try:
            result = service.submit(data, source="import", actor=actor)
        except ReferenceConflict as exc:
            yield ImportOutcome(rec.line, "conflict", reference, exc.existing_id, (str(exc),))
            continue
        yield ImportOutcome(
            rec.line, "created" if result.created else "repeat", reference, result.application.id
        )
