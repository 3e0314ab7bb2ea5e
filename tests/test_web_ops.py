"""The web app's operational surface: health, readiness, metrics, request ids, logs, /slack/events wiring."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import text

from bot.observability import configure_logging
from bot.web import create_app
from tests.conftest import AUTH, INTAKE_TOKEN, valid_application

SIGNING_SECRET = "test-signing-secret-42"


def _client(container_factory: Any, **overrides: Any) -> Any:
    container = container_factory(**overrides)
    client = create_app(container).test_client()
    client.container = container
    return client


def test_healthz_and_readyz(database_url: str, redis_url: str | None, container_factory: Any) -> None:
    client = _client(container_factory, database_url=database_url, redis_url=redis_url)
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.json
    assert ready.json["checks"] == {"database": "ok", "migrations": "ok", "redis": "ok"}


def test_readyz_reports_a_dead_redis(container_factory: Any, tmp_path: Any) -> None:
    client = _client(
        container_factory, database_url=f"sqlite:///{tmp_path / 'r.db'}", redis_url="redis://127.0.0.1:1/0"
    )
    client.container.redis.connection_pool.connection_kwargs["socket_connect_timeout"] = 0.5
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json["checks"]["redis"].startswith("unreachable")
    assert ready.json["checks"]["database"] == "ok"


def test_readyz_reports_migrations_behind(container_factory: Any, tmp_path: Any) -> None:
    client = _client(container_factory, database_url=f"sqlite:///{tmp_path / 'm.db'}")
    with client.container.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'older'"))
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert "credit-desk db upgrade" in ready.json["checks"]["migrations"]


def test_metrics_count_requests(container_factory: Any, tmp_path: Any) -> None:
    client = _client(
        container_factory, database_url=f"sqlite:///{tmp_path / 'x.db'}", intake_api_token=INTAKE_TOKEN
    )
    for _ in range(3):
        client.get("/healthz")
    client.post("/api/applications", json=valid_application(), headers=AUTH)
    client.post("/api/applications", json={"reference": "bad"}, headers=AUTH)
    body = client.get("/metrics").get_data(as_text=True)
    assert 'credit_desk_http_requests_total{method="GET",route="/healthz",status="200"} 3.0' in body
    assert 'credit_desk_applications_submitted_total{outcome="created",source="api"} 1.0' in body
    assert 'credit_desk_applications_submitted_total{outcome="invalid",source="api"} 1.0' in body
    assert "credit_desk_http_request_duration_seconds_bucket" in body


def test_request_id_is_echoed_and_logged(
    container_factory: Any, tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", "json")
    try:
        client = _client(
            container_factory, database_url=f"sqlite:///{tmp_path / 'x.db'}", intake_api_token=INTAKE_TOKEN
        )
        given = client.get("/readyz", headers={"X-Request-Id": "req-abc-123"})
        assert given.headers["X-Request-Id"] == "req-abc-123"
        made = client.get("/readyz")
        assert len(made.headers["X-Request-Id"]) == 32
        client.post("/api/applications", json=valid_application(), headers=AUTH)
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    finally:
        logging.getLogger().handlers.clear()
    requests = [e for e in lines if e.get("event") == "http.request"]
    assert {"req-abc-123", made.headers["X-Request-Id"]} <= {e["request_id"] for e in requests}
    assert all({"timestamp", "level", "route", "status"} <= set(e) for e in requests)
    dump = json.dumps(lines)
    assert INTAKE_TOKEN not in dump
    assert "3456789" not in dump  # the Federal ID never reaches the logs


def test_unexpected_errors_answer_json_500(container_factory: Any, tmp_path: Any) -> None:
    client = _client(
        container_factory, database_url=f"sqlite:///{tmp_path / 'x.db'}", intake_api_token=INTAKE_TOKEN
    )

    def boom(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("database on fire")

    client.container.applications.get = boom
    r = client.get("/api/applications/1", headers=AUTH)
    assert r.status_code == 500
    assert r.json["error"] == "internal_error"
    assert "fire" not in r.get_data(as_text=True)
    assert client.get("/healthz").status_code == 200  # the process carries on


def _signed(body: str, timestamp: int | None = None) -> dict[str, str]:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    sig = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=ts, body=body)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig, "Content-Type": "application/json"}


def test_slack_events_off_without_settings(container_factory: Any, tmp_path: Any) -> None:
    client = _client(container_factory, database_url=f"sqlite:///{tmp_path / 'x.db'}")
    r = client.post("/slack/events", data="{}")
    assert r.status_code == 503
    assert "SLACK_SIGNING_SECRET" in r.json["message"]


def test_slack_events_verify_signatures(container_factory: Any, tmp_path: Any) -> None:
    client = _client(
        container_factory,
        database_url=f"sqlite:///{tmp_path / 'x.db'}",
        slack_bot_token="xoxb-test-token",
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url="http://127.0.0.1:9/api/",  # nothing listens: no Slack call may be needed here
    )
    body = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "t"})
    ok = client.post("/slack/events", data=body, headers=_signed(body))
    assert ok.status_code == 200
    assert ok.json == {"challenge": "c-123"}
    assert client.post("/slack/events", data=body).status_code == 401
    tampered = body.replace("c-123", "c-999")
    assert client.post("/slack/events", data=tampered, headers=_signed(body)).status_code == 401
    stale = _signed(body, timestamp=int(time.time()) - 600)
    assert client.post("/slack/events", data=body, headers=stale).status_code == 401
