"""Settings: environment and .env, defaults, secrets masked everywhere, features explained."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.settings import Settings, describe, features, mask_url

SECRETS = {
    "SLACK_BOT_TOKEN": "xoxb-1111-2222-supersecretbot",
    "SLACK_SIGNING_SECRET": "signing-secret-abcdef123456",
    "SLACK_APP_TOKEN": "xapp-1-A111-secretapp",
    "INTAKE_API_TOKEN": "intake-token-zyxwvut98765",
    "FEDERAL_ID_KEY": "x" * 43 + "=",
    "REDIS_URL": "redis://:redispassword42@127.0.0.1:6379/0",
    "DATABASE_URL": "postgresql://credit:dbpassword42@db.internal:5432/credit",
}


def test_defaults_are_embedded() -> None:
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.database_dsn == "sqlite:///credit-desk.db"
    assert s.sqlite_path == Path("credit-desk.db")
    assert s.redis_url is None
    assert s.embedded and s.uses_fakeredis and s.run_embedded_worker and s.should_auto_migrate
    assert s.effective_web_workers == 1
    assert s.slack_api_url == "https://slack.com/api/"


def test_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SLACK_API_URL=http://127.0.0.1:9999/api\nPORT=9001\n")
    monkeypatch.setenv("PORT", "9002")  # the environment wins over .env
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/1")
    s = Settings()
    assert s.slack_api_url == "http://127.0.0.1:9999/api/"
    assert s.port == 9002
    assert not s.embedded and not s.run_embedded_worker
    assert s.effective_web_workers == 2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "not-a-port"),
        ("OUTBOX_LEASE_SECONDS", "10"),  # shorter than one delivery may take: two deliverers could post
        ("OUTBOX_REPAIR_SECONDS", "0"),
    ],
)
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["config"])
    assert result.exit_code == 2
    assert name in result.output


def test_secrets_never_shown(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    for k, v in SECRETS.items():
        monkeypatch.setenv(k, v)
    s = Settings()
    shown = repr(s) + str(s.model_dump()) + str(describe(s))
    result = CliRunner().invoke(app, ["config"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("settings %s", s)
    for secret in (
        "supersecretbot",
        "abcdef123456",
        "secretapp",
        "zyxwvut98765",
        "x" * 20,
        "redispassword42",
        "dbpassword42",
    ):
        assert secret not in shown
        assert secret not in result.output
        assert secret not in caplog.text
    assert "postgresql://credit:***@db.internal:5432/credit" in result.output
    assert "redis://:***@127.0.0.1:6379/0" in result.output


def test_config_on_a_fresh_machine_says_what_is_off() -> None:
    result = CliRunner().invoke(app, ["config"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "embedded defaults" in out
    assert "sqlite:///credit-desk.db" in out
    assert "off: set INTAKE_API_TOKEN" in out
    assert "off: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET" in out
    assert "off: set NETSUITE_ACCOUNT_ID" in out


def test_features_follow_settings() -> None:
    s = Settings(_env_file=None, database_url="postgresql://x@h/db", intake_api_token="t")  # type: ignore[call-arg]
    by_name = {f.name: f for f in features(s)}
    intake = by_name["Intake API (POST /api/applications)"]
    assert not intake.enabled and "FEDERAL_ID_KEY" in intake.why_off
    s2 = Settings(_env_file=None, slack_bot_token="xoxb-1", slack_signing_secret="s")  # type: ignore[call-arg]
    assert {f.name: f for f in features(s2)}["Slack events (/slack/events)"].enabled


def test_mask_url_without_password_is_unchanged() -> None:
    assert mask_url("sqlite:///credit-desk.db") == "sqlite:///credit-desk.db"
    assert mask_url("redis://user:pw@h:1/2") == "redis://user:***@h:1/2"


def test_readme_documents_every_setting() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"| `{name.upper()}` |" in readme, f"README's configuration table lacks {name.upper()}"
