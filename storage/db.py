"""Engine and session factories. Built once at start-up and passed in; nothing here is global."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, TypeVar

import structlog
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 10_000
READONLY_OPTION = "credit_desk_readonly"

log = structlog.get_logger(__name__)
_T = TypeVar("_T")


def make_engine(url: str, *, echo: bool = False, pool_size: int = 10) -> Engine:
    """An engine for PostgreSQL or an SQLite file, tuned for several threads.

    SQLite: WAL, `synchronous=NORMAL`, foreign keys on, a busy timeout, and `BEGIN IMMEDIATE` for every
    transaction so that writers queue at BEGIN instead of failing on lock upgrade (SQLite ignores
    `FOR UPDATE`).
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        _configure_sqlite(engine)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    elif url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgres://")
    return create_engine(url, echo=echo, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from the sqlite3 module so that BEGIN IMMEDIATE is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the lock at BEGIN; readers (WAL) neither wait for nor block a writer.
        readonly = conn.get_execution_options().get(READONLY_OPTION, False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def ping(engine: Engine) -> None:
    """Raise if the database does not answer a trivial query (readiness checks)."""
    with engine.execution_options(**{READONLY_OPTION: True}).connect() as conn:
        conn.exec_driver_sql("SELECT 1")


@contextmanager
def transaction(factory: sessionmaker[Session], *, readonly: bool = False) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error.

    `readonly=True` for reads: on SQLite it starts a deferred transaction, so that reads run beside a writer
    instead of queueing for the write lock (PostgreSQL needs no such help).
    """
    if readonly:
        with factory(bind=_readonly_bind(factory)) as session, session.begin():
            yield session
        return
    lock = _writer_lock(factory)
    with lock or nullcontext(), factory() as session, session.begin():
        yield session


def _writer_lock(factory: sessionmaker[Session]) -> threading.RLock | None:
    """SQLite allows one writer: threads of this process queue on a lock instead of on SQLite's busy
    handler, which sleeps in steps of up to 100 ms and turns contention into long tail latencies.
    (Other processes still meet the busy timeout.)"""
    engine = factory.kw["bind"]
    if engine.dialect.name != "sqlite":
        return None
    lock = engine.__dict__.get("_credit_desk_writer_lock")
    if lock is None:
        lock = engine.__dict__.setdefault("_credit_desk_writer_lock", threading.RLock())
    return lock  # type: ignore[no-any-return]


def _readonly_bind(factory: sessionmaker[Session]) -> Engine:
    engine = factory.kw["bind"]
    cached = engine.__dict__.get("_credit_desk_readonly")
    if cached is None:
        cached = engine.execution_options(**{READONLY_OPTION: True})
        engine.__dict__["_credit_desk_readonly"] = cached
    return cached  # type: ignore[no-any-return]


def is_transient(exc: BaseException) -> bool:
    """A database error that passes by itself: the server restarting or unreachable, a connection
    dropped mid-transaction, a lock or serialization conflict. Running the whole transaction again
    later is the remedy."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError)


def retry_transient(
    work: Callable[[], _T],
    *,
    seconds: float,
    first_delay: float = 0.25,
    max_delay: float = 5.0,
    what: str = "transaction",
    sleep: Callable[[float], None] = time.sleep,
) -> _T:
    """Run ``work`` (whole transactions: it must be safe to run again after a failure that rolled it
    back) until it succeeds, retrying :func:`is_transient` errors with doubling delays for up to
    ``seconds``; then, or on any other error, the error is raised."""
    deadline = time.monotonic() + seconds
    delay = first_delay
    while True:
        try:
            return work()
        except Exception as exc:
            if not is_transient(exc) or time.monotonic() + delay > deadline:
                raise
            log.warning("db.retrying", what=what, in_seconds=delay, error=str(exc).splitlines()[0][:200])
            sleep(delay)
            delay = min(delay * 2, max_delay)
