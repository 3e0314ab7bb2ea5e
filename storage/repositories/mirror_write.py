"""Fast, idempotent writes of the NetSuite mirror, the same on PostgreSQL and SQLite.

Every write is a set-based statement run as an executemany batch: ``INSERT ... ON CONFLICT DO
UPDATE`` keyed by NetSuite's internal id, so writing the same rows twice leaves the tables as
writing them once. ``only_if_changed`` adds ``WHERE <some column> IS DISTINCT FROM excluded...``
so that re-reading unchanged records (the incremental run's overlap window) touches no row at
all -- not even ``mirrored_at``.

Batches go to the driver directly (:class:`_Batch`): the statement is compiled once by SQLAlchemy,
and each row becomes a tuple through the columns' own bind processors (cents for money, the
dialect's datetime form), so the stored values are exactly what an ORM or Core insert stores,
without Core's per-row parameter machinery. On PostgreSQL a batch of at least
``COPY_MIN_ROWS`` rows travels by ``COPY``: child rows straight into their table, customers into
a session-local staging table and from there into ``ns_customers`` with one ``INSERT ... SELECT
... ON CONFLICT`` (same conflict rule as the executemany form).

``INSERT OR REPLACE`` is never used: SQLite implements it as delete + insert without firing delete
triggers, which would corrupt the external-content FTS index over ``ns_customers``
(migration 0002); ``ON CONFLICT DO UPDATE`` fires the update trigger as that index needs.

Functions take the caller's ``Session`` and never commit: the caller puts a batch of rows and its
checkpoint in one transaction, so a crash loses at most that batch and never the checkpoint alone.
"""

from __future__ import annotations

import hashlib
import operator
import sqlite3
import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Dialect, MetaData, Table, delete, insert, or_, select, update
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

COPY_MIN_ROWS = 32
"""PostgreSQL: batches of at least this many rows are sent with ``COPY`` (fewer: executemany)."""

SQLITE_ROWS_PER_STATEMENT = 500
"""SQLite: rows per multi-row ``INSERT`` (see :func:`_driver_executemany`)."""


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
    first = rows[0].keys()
    columns = list(first)
    unknown = set(columns) - set(table.c.keys())
    if unknown:
        raise ValueError(f"{table.name} has no column(s) {sorted(unknown)}")
    for row in rows:
        if row.keys() != first:
            raise ValueError(f"rows for {table.name} must all have the same columns")
    return columns


Processor = Callable[[Any], Any]


class _Batch:
    """Rows of one table as the driver's parameter tuples, columns in the table's order.

    Each value goes through its column's bind processor for the session's dialect -- the same
    function Core and the ORM apply -- so what is stored does not depend on the path taken.
    ``stamp`` columns get one value for every row.
    """

    def __init__(
        self,
        dialect: Dialect,
        table: Table,
        columns: Sequence[str],
        rows: Sequence[Row],
        stamp: Mapping[str, Any] | None = None,
    ) -> None:
        extra = dict(stamp or {})
        wanted = {*columns, *extra}
        self.columns: tuple[str, ...] = tuple(c.name for c in table.c if c.name in wanted)
        from_rows = tuple(c for c in self.columns if c not in extra)
        processors = _processors(dialect, table, from_rows)
        fixed = {name: _process(dialect, table, name, value) for name, value in extra.items()}
        slots = [(i, fixed[name]) for i, name in enumerate(self.columns) if name in fixed]
        processed = [(i, proc) for i, proc in enumerate(processors) if proc is not None]
        get = operator.itemgetter(*from_rows)
        tuples: list[tuple[Any, ...]] = []
        for row in rows:
            got = get(row)
            values = [got] if len(from_rows) == 1 else list(got)
            for i, proc in processed:
                values[i] = proc(values[i])
            for i, value in slots:  # in ascending order, so later positions stay right
                values.insert(i, value)
            tuples.append(tuple(values))
        self.tuples = tuples


_PROCESSORS: dict[tuple[Any, ...], tuple[Processor | None, ...]] = {}
_PROCESSORS_LOCK = threading.Lock()


def _dialect_key(dialect: Dialect) -> tuple[Any, ...]:
    """What compiled SQL and bind processors depend on: the dialect's class and paramstyle (not the
    instance: engines come and go, and ``id()`` values are reused)."""
    return (type(dialect), dialect.paramstyle)


def _processors(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> tuple[Processor | None, ...]:
    key = (*_dialect_key(dialect), table.name, columns)
    found = _PROCESSORS.get(key)
    if found is None:
        found = tuple(table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns)
        with _PROCESSORS_LOCK:
            _PROCESSORS[key] = found
    return found


def _process(dialect: Dialect, table: Table, name: str, value: Any) -> Any:
    (processor,) = _processors(dialect, table, (name,))
    return value if processor is None else processor(value)


def _driver_executemany(session: Session, sql: str, tuples: list[tuple[Any, ...]]) -> None:
    """Run the one-row statement ``sql`` for every tuple, on the session's own connection (inside
    its transaction).

    SQLite: the rows go in multi-row ``VALUES`` lists, up to ``SQLITE_ROWS_PER_STATEMENT`` rows
    (and the connection's bound-parameter limit) per statement. The effect is that of one
    statement per row -- conflicts and triggers are handled row by row -- but the sqlite3 module
    releases the GIL once per statement instead of once per row, so a batch is written while
    other threads of the process (the ingest's reader) run Python, instead of waiting for the
    GIL after every row. Elsewhere: ``executemany``.
    """
    connection: Any = session.connection().connection.driver_connection
    cursor = connection.cursor()
    try:
        if session.get_bind().dialect.name != "sqlite":
            cursor.executemany(sql, tuples)
            return
        width = len(tuples[0]) if tuples else 1
        group = f"({', '.join('?' * width)})"
        head, found, tail = sql.partition(f"VALUES {group}")
        if not found or group in tail:
            raise AssertionError(f"not a one-row INSERT of {width} values: {sql}")
        limit = connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        per_statement = max(1, min(SQLITE_ROWS_PER_STATEMENT, limit // width))
        for start in range(0, len(tuples), per_statement):
            chunk = tuples[start : start + per_statement]
            values = ", ".join([group] * len(chunk))
            cursor.execute(f"{head}VALUES {values}{tail}", [value for row in chunk for value in row])
    finally:
        cursor.close()


def _copy_rows(
    session: Session, table_name: str, columns: Sequence[str], tuples: list[tuple[Any, ...]]
) -> None:
    """PostgreSQL ``COPY table (columns) FROM STDIN`` of ``tuples`` on the session's connection."""
    quote = session.get_bind().dialect.identifier_preparer.quote
    target = f"{quote(table_name)} ({', '.join(quote(c) for c in columns)})"
    connection = session.connection().connection.driver_connection
    with connection.cursor() as cursor, cursor.copy(f"COPY {target} FROM STDIN") as copy:  # type: ignore[union-attr]
        for values in tuples:
            copy.write_row(values)


def _use_copy(session: Session, rows: Sequence[Row]) -> bool:
    return session.get_bind().dialect.name == "postgresql" and len(rows) >= COPY_MIN_ROWS


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
    if len(key) == 1:
        (name,) = key
        keys: list[Any] = [row[name] for row in rows]
    else:
        keys = [tuple(row[k] for k in key) for row in rows]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate keys in one batch for {table.name}")
    extra = dict(stamp or {})
    defaults = _defaults(table, [*columns, *extra])
    if defaults is None:  # a default only Core knows how to compute: let Core do it all
        stmt = _on_conflict(table, _insert(session, table), columns, key, only_if_changed, extra)
        session.execute(stmt, [{**row, **extra} for row in rows] if extra else list(rows))
        return len(rows)
    dialect = session.get_bind().dialect
    batch = _Batch(dialect, table, columns, rows, {**defaults, **extra})
    if _use_copy(session, rows):
        staging = _staging_table(session, table, batch.columns)
        _copy_rows(session, staging.name, batch.columns, batch.tuples)
        stmt = postgresql.insert(table).from_select(list(batch.columns), select(*staging.c))
        session.execute(_on_conflict(table, stmt, columns, key, only_if_changed, extra))
        return len(rows)
    sql = _upsert_sql(
        dialect, table, batch.columns, tuple(columns), tuple(key), only_if_changed, tuple(extra)
    )
    _driver_executemany(session, sql, batch.tuples)
    return len(rows)


def _defaults(table: Table, columns: Sequence[str]) -> dict[str, Any] | None:
    """The client-side defaults Core would insert for the columns the rows leave out (a plain
    value each), or None when one of them is computed (a callable, a sequence, SQL)."""
    found: dict[str, Any] = {}
    given = set(columns)
    for column in table.c:
        if column.name in given or column.default is None:
            continue
        if not getattr(column.default, "is_scalar", False):
            return None
        found[column.name] = column.default.arg  # type: ignore[attr-defined]
    return found


def _on_conflict(
    table: Table,
    stmt: Any,
    columns: Sequence[str],
    key: Sequence[str],
    only_if_changed: bool,
    extra: Mapping[str, Any],
) -> Any:
    compared = [c for c in columns if c not in key]
    set_ = {c: stmt.excluded[c] for c in [*compared, *extra]}
    where = None
    if only_if_changed and compared:
        where = or_(*(table.c[c].is_distinct_from(stmt.excluded[c]) for c in compared))
    if set_:
        return stmt.on_conflict_do_update(index_elements=list(key), set_=set_, where=where)
    return stmt.on_conflict_do_nothing(index_elements=list(key))


_SQL: dict[tuple[Any, ...], str] = {}


def _upsert_sql(
    dialect: Dialect,
    table: Table,
    columns: tuple[str, ...],
    updated: tuple[str, ...],
    key: tuple[str, ...],
    only_if_changed: bool,
    extra: tuple[str, ...],
) -> str:
    """The dialect's ``INSERT ... ON CONFLICT`` text, with positional parameters in ``columns``
    order (compiled once per shape). A conflict updates the ``updated`` columns (compared when
    ``only_if_changed``) and the ``extra`` ones; columns filled with their defaults are not."""
    cache_key = (*_dialect_key(dialect), table.name, columns, updated, key, only_if_changed, extra)
    found = _SQL.get(cache_key)
    if found is not None:
        return found
    if dialect.name == "postgresql":
        stmt: Any = postgresql.insert(table)
    elif dialect.name == "sqlite":
        stmt = sqlite.insert(table)
    else:
        raise NotImplementedError(f"the mirror supports PostgreSQL and SQLite, not {dialect.name}")
    stmt = _on_conflict(table, stmt, updated, key, only_if_changed, dict.fromkeys(extra))
    sql = _positional(dialect, stmt, columns)
    _SQL[cache_key] = sql
    return sql


def _insert_sql(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> str:
    cache_key = (*_dialect_key(dialect), table.name, columns)
    found = _SQL.get(cache_key)
    if found is None:
        found = _SQL[cache_key] = _positional(dialect, table.insert(), columns)
    return found


def _positional(dialect: Dialect, stmt: Any, columns: tuple[str, ...]) -> str:
    """``stmt`` (an INSERT of ``columns``) as driver SQL taking a tuple in ``columns`` order."""
    compiled = stmt.compile(dialect=dialect, column_keys=list(columns))
    if dialect.paramstyle == "qmark":
        order = tuple(compiled.positiontup or ())
        if order != columns:
            raise AssertionError(f"compiled parameter order {order} is not {columns}")
        return str(compiled)
    # pyformat (psycopg): %(name)s -> %s; the INSERT lists its columns in the table's order,
    # which is the order of ``columns``
    sql = str(compiled)
    for name in columns:
        sql = sql.replace(f"%({name})s", "%s", 1)
    if "%(" in sql:
        raise AssertionError(f"unexpected parameters left in {sql}")
    return sql


_STAGING_METADATA = MetaData()
_STAGING_LOCK = threading.Lock()


def _staging_table(session: Session, table: Table, columns: Sequence[str]) -> Table:
    """A temporary table with ``columns`` of ``table`` (types only, no constraints), emptied at
    every commit; created on first use by each connection."""
    digest = hashlib.sha1(",".join(columns).encode(), usedforsecurity=False).hexdigest()[:10]
    name = f"_mirror_in_{table.name}_{digest}"
    with _STAGING_LOCK:
        staging = _STAGING_METADATA.tables.get(name)
        if staging is None:
            staging = Table(
                name,
                _STAGING_METADATA,
                *(Column(c, table.c[c].type) for c in columns),
                prefixes=["TEMPORARY"],
            )
    quote = session.get_bind().dialect.identifier_preparer.quote
    select_list = ", ".join(quote(c) for c in columns)
    session.connection().exec_driver_sql(  # identifiers from the schema, quoted; no values
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {quote(name)} ON COMMIT DELETE ROWS AS "  # noqa: S608
        f"SELECT {select_list} FROM {quote(table.name)} WITH NO DATA"
    )
    return staging


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
    _delete_by_customer(session, table, sorted(wanted))
    if rows:
        columns = _check_columns(table, rows)
        defaults = _defaults(table, columns)
        if defaults is None:  # a default only Core knows how to compute
            session.execute(insert(table), list(rows))
            return len(rows)
        dialect = session.get_bind().dialect
        batch = _Batch(dialect, table, columns, rows, defaults)
        if _use_copy(session, rows):
            _copy_rows(session, table.name, batch.columns, batch.tuples)
        else:
            _driver_executemany(session, _insert_sql(dialect, table, batch.columns), batch.tuples)
    return len(rows)


def _delete_by_customer(session: Session, table: Table, customer_ids: Sequence[int]) -> None:
    """``DELETE FROM table WHERE customer_id IN (...)``, sent to the driver as one statement per
    ``ID_CHUNK`` ids (PostgreSQL: one array parameter) -- Core would render and the driver
    re-parse a fresh 500-placeholder statement for each chunk."""
    if not customer_ids:
        return
    dialect = session.get_bind().dialect
    quote = dialect.identifier_preparer.quote
    target = f"DELETE FROM {quote(table.name)} WHERE {quote(table.c.customer_id.name)}"  # noqa: S608
    connection: Any = session.connection().connection.driver_connection
    cursor = connection.cursor()
    try:
        for chunk in _chunks(customer_ids):
            if dialect.name == "postgresql":
                cursor.execute(f"{target} = ANY(CAST(%s AS BIGINT[]))", [list(chunk)])
            else:
                cursor.execute(f"{target} IN ({', '.join('?' * len(chunk))})", list(chunk))
    finally:
        cursor.close()


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
