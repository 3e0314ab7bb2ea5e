"""Fast, idempotent writes of the NetSuite mirror, the same on PostgreSQL and SQLite.

Every write is a set-based statement run as an executemany batch: ``INSERT ... ON CONFLICT DO
UPDATE`` keyed by NetSuite's internal id, so writing the same rows twice leaves the tables as
writing them once. ``only_if_changed`` adds ``WHERE <some column> IS DISTINCT FROM excluded...``
so that re-reading unchanged records (the incremental run's overlap window) touches no row at
all -- not even ``mirrored_at``.

``INSERT OR REPLACE`` is never used: SQLite implements it as delete + insert without firing delete
triggers, which would corrupt the external-content FTS index over ``ns_customers``
(migration 0002); ``ON CONFLICT DO UPDATE`` fires the update trigger as that index needs.

Functions take the caller's ``Session`` and never commit: the caller puts a batch of rows and its
checkpoint in one transaction, so a crash loses at most that batch and never the checkpoint alone.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import (
    MirrorCheckpoint,
    NsCustomer,
    NsCustomerAddress,
    NsCustomerContact,
    NsSalesRep,
    NsTerm,
)
from storage.types import utcnow

Row = Mapping[str, Any]

CUSTOMERS: Table = NsCustomer.__table__  # type: ignore[assignment]
ADDRESSES: Table = NsCustomerAddress.__table__  # type: ignore[assignment]
CONTACTS: Table = NsCustomerContact.__table__  # type: ignore[assignment]
TERMS: Table = NsTerm.__table__  # type: ignore[assignment]
SALES_REPS: Table = NsSalesRep.__table__  # type: ignore[assignment]

ID_CHUNK = 500
"""Ids per ``IN (...)`` list: far below SQLite's and PostgreSQL's bound-parameter limits."""


@dataclass(frozen=True)
class Checkpoint:
    """A stored position of a mirror scan (see :class:`storage.models.MirrorCheckpoint`)."""

    name: str
    watermark: str | None
    last_key: int | None
    run_started_at: datetime | None
    updated_at: datetime | None = None


def _insert(session: Session, table: Table) -> Any:
    """The dialect's INSERT, which knows ``ON CONFLICT``."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"the mirror supports PostgreSQL and SQLite, not {dialect}")


def _chunks(values: Sequence[Any], size: int = ID_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _check_columns(table: Table, rows: Sequence[Row]) -> list[str]:
    """The rows' common column list; every row must have the same known columns."""
    columns = list(rows[0])
    unknown = set(columns) - set(table.c.keys())
    if unknown:
        raise ValueError(f"{table.name} has no column(s) {sorted(unknown)}")
    for row in rows:
        if len(row) != len(columns) or any(name not in row for name in columns):
            raise ValueError(f"rows for {table.name} must all have the same columns")
    return columns


def upsert(
    session: Session,
    table: Table,
    rows: Sequence[Row],
    *,
    key: Sequence[str],
    only_if_changed: bool,
    stamp: Mapping[str, Any] | None = None,
) -> int:
    """Insert ``rows`` or update the existing row with the same ``key``; returns rows sent.

    ``stamp`` columns (``mirrored_at``) are written on insert and update but are not compared.
    Keys must be unique within ``rows`` (PostgreSQL refuses to update one row twice per statement).
    """
    if not rows:
        return 0
    columns = _check_columns(table, rows)
    keys = [tuple(row[k] for k in key) for row in rows]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate keys in one batch for {table.name}")
    extra = dict(stamp or {})
    payload = [{**row, **extra} for row in rows] if extra else list(rows)
    stmt = _insert(session, table)
    compared = [c for c in columns if c not in key]
    set_ = {c: stmt.excluded[c] for c in [*compared, *extra]}
    where = None
    if only_if_changed and compared:
        where = or_(*(table.c[c].is_distinct_from(stmt.excluded[c]) for c in compared))
    if set_:
        stmt = stmt.on_conflict_do_update(index_elements=list(key), set_=set_, where=where)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
    session.execute(stmt, payload)
    return len(payload)


def upsert_customers(
    session: Session, rows: Sequence[Row], *, mirrored_at: datetime, only_if_changed: bool = True
) -> int:
    """Customers by internal id. Columns the rows do not carry (a tax number written by someone
    else) are left as they are."""
    return upsert(
        session,
        CUSTOMERS,
        rows,
        key=["internal_id"],
        only_if_changed=only_if_changed,
        stamp={"mirrored_at": mirrored_at},
    )


def replace_children(
    session: Session, table: Table, customer_ids: Collection[int], rows: Sequence[Row]
) -> int:
    """Make ``rows`` the complete set of ``table`` rows (addresses or contacts) of ``customer_ids``.

    Every row's ``customer_id`` must be one of ``customer_ids``; customers with no rows end up
    with none. Delete-then-insert inside the caller's transaction, so readers never see a half set.
    """
    wanted = set(customer_ids)
    stray = {row["customer_id"] for row in rows} - wanted
    if stray:
        raise ValueError(f"{table.name} rows for customers outside the batch: {sorted(stray)[:5]}")
    ordered = sorted(wanted)
    for chunk in _chunks(ordered):
        session.execute(delete(table).where(table.c.customer_id.in_(chunk)))
    if rows:
        _check_columns(table, rows)
        session.execute(insert(table), list(rows))
    return len(rows)


def replace_addresses(session: Session, customer_ids: Collection[int], rows: Sequence[Row]) -> int:
    return replace_children(session, ADDRESSES, customer_ids, rows)


def replace_contacts(session: Session, customer_ids: Collection[int], rows: Sequence[Row]) -> int:
    return replace_children(session, CONTACTS, customer_ids, rows)


def stored_versions(session: Session, customer_ids: Collection[int]) -> dict[int, datetime | None]:
    """``{internal id: last_modified}`` of the mirrored customers among ``customer_ids``."""
    found: dict[int, datetime | None] = {}
    ordered = sorted(set(customer_ids))
    for chunk in _chunks(ordered):
        stmt = select(NsCustomer.internal_id, NsCustomer.last_modified).where(
            NsCustomer.internal_id.in_(chunk)
        )
        for internal_id, last_modified in session.execute(stmt):
            found[internal_id] = last_modified
    return found


def delete_customers(session: Session, customer_ids: Collection[int]) -> int:
    """Remove customers (their addresses and contacts go by ``ON DELETE CASCADE``); returns how
    many were mirrored. Ids never mirrored are ignored."""
    removed = 0
    ordered = sorted(set(customer_ids))
    for chunk in _chunks(ordered):
        for table in (ADDRESSES, CONTACTS):  # explicit, so no reliance on SQLite's FK pragma
            session.execute(delete(table).where(table.c.customer_id.in_(chunk)))
        result = session.execute(delete(CUSTOMERS).where(CUSTOMERS.c.internal_id.in_(chunk)))
        removed += int(getattr(result, "rowcount", 0) or 0)
    return removed


def prune_customers_not_mirrored_since(session: Session, moment: datetime, batch: int = ID_CHUNK) -> int:
    """Delete customers a full re-read did not see (``mirrored_at`` before it started)."""
    removed = 0
    stmt = select(NsCustomer.internal_id).where(NsCustomer.mirrored_at < moment)
    stale = list(session.scalars(stmt))
    for chunk in _chunks(stale, batch):
        removed += delete_customers(session, chunk)
    return removed


def replace_list(
    session: Session, table: Table, rows: Sequence[Row], *, mirrored_at: datetime
) -> tuple[int, int]:
    """Make ``rows`` the whole of a small list table (terms, sales reps): upsert what changed,
    delete ids NetSuite no longer lists. Returns (rows sent, rows deleted)."""
    sent = upsert(
        session,
        table,
        rows,
        key=["internal_id"],
        only_if_changed=True,
        stamp={"mirrored_at": mirrored_at},
    )
    keep = [row["internal_id"] for row in rows]
    stmt = delete(table)
    if keep:
        stmt = stmt.where(table.c.internal_id.not_in(keep))
    result = session.execute(stmt)
    return sent, int(getattr(result, "rowcount", 0) or 0)


def replace_terms(session: Session, rows: Sequence[Row], *, mirrored_at: datetime) -> tuple[int, int]:
    return replace_list(session, TERMS, rows, mirrored_at=mirrored_at)


def replace_sales_reps(session: Session, rows: Sequence[Row], *, mirrored_at: datetime) -> tuple[int, int]:
    return replace_list(session, SALES_REPS, rows, mirrored_at=mirrored_at)


# ---- checkpoints --------------------------------------------------------------------------------


def get_checkpoint(session: Session, name: str) -> Checkpoint | None:
    found = session.get(MirrorCheckpoint, name, populate_existing=True)
    if found is None:
        return None
    return Checkpoint(found.name, found.watermark, found.last_key, found.run_started_at, found.updated_at)


def save_checkpoint(
    session: Session,
    name: str,
    *,
    watermark: str | None,
    last_key: int | None,
    run_started_at: datetime | None,
) -> None:
    """Create or overwrite checkpoint ``name`` (in the caller's transaction)."""
    table: Table = MirrorCheckpoint.__table__  # type: ignore[assignment]
    values = {
        "watermark": watermark,
        "last_key": last_key,
        "run_started_at": run_started_at,
        "updated_at": utcnow(),
    }
    stmt = _insert(session, table)
    session.execute(
        stmt.on_conflict_do_update(index_elements=["name"], set_=values),
        {"name": name, **values},
    )


def delete_checkpoint(session: Session, name: str) -> None:
    table: Table = MirrorCheckpoint.__table__  # type: ignore[assignment]
    session.execute(delete(table).where(table.c.name == name))


def touch_checkpoint(session: Session, name: str, run_started_at: datetime | None) -> None:
    """Set only ``run_started_at`` (marks a run as started or finished)."""
    table: Table = MirrorCheckpoint.__table__  # type: ignore[assignment]
    session.execute(
        update(table).where(table.c.name == name).values(run_started_at=run_started_at, updated_at=utcnow())
    )
