"""Shared fixtures: every storage test on SQLite and PostgreSQL, every Redis test on fakeredis and real Redis.

PostgreSQL: one throw-away database per test run (so parallel runs never collide), migrated once, emptied
between tests. SQLite: a fresh file per test, copied from one migrated template.

Real servers come from `TEST_POSTGRES_URL` (default `postgresql://postgres@127.0.0.1:5432/test`) and
`TEST_REDIS_URL` (default `redis://127.0.0.1:6379/9`). When a server is down its tests skip, unless
`CREDIT_DESK_REQUIRE_SERVICES=1` (set by `.ci/run`), in which case they fail.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.settings import Settings
from storage import migrate
from storage.db import make_engine
from storage.models import Base

PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
REQUIRE_SERVICES = os.environ.get("CREDIT_DESK_REQUIRE_SERVICES") == "1"

DB_BACKENDS = ["sqlite", "postgresql"]
REDIS_BACKENDS = ["fakeredis", "redis"]

# Settings must come from the test, never from the developer's environment or .env file.
_CLEARED_ENV = [name.upper() for name in Settings.model_fields]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in _CLEARED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env, and default SQLite files land in tmp


def service_unavailable(what: str, error: Exception) -> None:
    message = f"{what} is not reachable ({type(error).__name__}: {error})"
    if REQUIRE_SERVICES:
        pytest.fail(message + "; CREDIT_DESK_REQUIRE_SERVICES=1 makes this a failure")
    pytest.skip(message)


def _psycopg_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, migrated to head; dropped afterwards."""
    admin_url = _psycopg_url(PG_URL)
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        service_unavailable("PostgreSQL", exc)
    name = f"credit_desk_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()  # the last connection to close checkpoints the WAL into the file
    return path


def _empty_pg(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=DB_BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: an SQLite file, or the run's PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "credit-desk.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    if request.node.get_closest_marker("services") is None:
        request.node.add_marker(pytest.mark.services)
    url: str = request.getfixturevalue("pg_database")
    _empty_pg(url)
    return url


@pytest.fixture(params=REDIS_BACKENDS)
def redis_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None means the in-process fakeredis; otherwise an emptied database on the real server."""
    if request.param == "fakeredis":
        yield None
        return
    client = redis_lib.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except Exception as exc:
        service_unavailable("Redis", exc)
    client.flushdb()
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


TEST_FEDERAL_ID_KEY = "z0R8bB4wVxS4xJmQ9p2dIu6kP3yT7nLc1aE5fG8hJ0k="


def make_settings(**overrides: Any) -> Settings:
    """Settings for a test. PostgreSQL gets a fixed Federal ID key (SQLite makes its own key file)."""
    values: dict[str, Any] = {"log_format": "json", "log_level": "INFO"}
    if str(overrides.get("database_url", "")).startswith("postgresql") and "federal_id_key" not in overrides:
        values["federal_id_key"] = TEST_FEDERAL_ID_KEY
    values.update(overrides)
    return Settings(_env_file=None, **values)


INTAKE_TOKEN = "test-intake-token-0123456789"


@pytest.fixture
def container_factory() -> Iterator[Any]:
    """Build containers from settings overrides; all are closed at teardown."""
    from bot.container import Container, build_container

    built: list[Container] = []

    def build(**overrides: Any) -> Container:
        c = build_container(make_settings(**overrides))
        built.append(c)
        return c

    yield build
    for c in built:
        c.close()


@pytest.fixture
def intake(database_url: str, container_factory: Any) -> Any:
    """A Flask test client of the web app on `database_url`, with the intake API on."""
    from bot.web import create_app

    container = container_factory(database_url=database_url, intake_api_token=INTAKE_TOKEN)
    client = create_app(container).test_client()
    client.container = container  # type: ignore[attr-defined]
    return client


def valid_application(reference: str = "nuvo-1001", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "reference": reference,
        "business_name": "Acme Industrial Supply LLC",
        "dba": "Acme Supply",
        "federal_id": "12-3456789",
        "billing_address": {
            "line1": "100 Congress Ave",
            "line2": "Suite 400",
            "city": "Austin",
            "state": "TX",
            "postal_code": "78701",
        },
        "statements_contact": {"name": "Pat Payables", "email": "ap@acme.example", "phone": "512-555-0134"},
        "requested_terms": "Net 30",
        "requested_credit_limit": {"amount": "50000.00", "currency": "USD"},
        "shipping_locations": [
            {
                "label": "Main warehouse",
                "line1": "9 Dock Rd",
                "city": "Round Rock",
                "state": "TX",
                "postal_code": "78664",
            },
            {
                "label": "Toronto DC",
                "line1": "1 Front St W",
                "city": "Toronto",
                "state": "ON",
                "postal_code": "M5J 2X2",
                "country": "CA",
            },
        ],
        "applicant": {"name": "Jo Owner", "email": "jo@acme.example"},
    }
    body.update(overrides)
    return body


AUTH = {"Authorization": f"Bearer {INTAKE_TOKEN}"}


@pytest.fixture
def fresh_database() -> Iterator[Any]:
    """Make empty, unmigrated PostgreSQL databases on demand; dropped at teardown."""
    made: list[str] = []
    try:
        admin = create_engine(_psycopg_url(PG_URL), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        service_unavailable("PostgreSQL", exc)

    def make() -> str:
        name = f"credit_desk_fresh_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)

    yield make
    with admin.connect() as conn:
        for name in made:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
