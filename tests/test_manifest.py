"""`app.yaml` is a valid Slack manifest and declares exactly what the code serves.

Slack rejects a manifest that breaks its schema, and a manifest that drifts from the code fails quietly:
a slash command the code does not register gets `dispatch_failed`, an event nobody handles is answered 404
and retried, a missing scope surfaces as `missing_scope` in production. So the manifest is checked against
Slack's published JSON schema (kept in ../shared/reference) and against `bot.slack_app`'s constants.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import fakeredis
import jsonschema
import pytest
import yaml
from sqlalchemy import create_engine

from bot import slack_app
from bot.slack_app import SlackConfig, build_bolt_app

REPO = Path(__file__).resolve().parents[1]
MANIFEST_PATH = REPO / "app.yaml"
SCHEMA_DIR = Path(__file__).resolve().parents[2] / "shared" / "reference" / "slack-manifest"
SCHEMA_PATH = SCHEMA_DIR / "manifest.schema.1.0.0.json"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    loaded = yaml.safe_load(MANIFEST_PATH.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), "app.yaml must be a YAML mapping"
    return loaded


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    if not SCHEMA_PATH.is_file():
        pytest.fail(
            f"Slack's manifest schema is missing: expected {SCHEMA_PATH}. CI checks out the shared "
            "reference material beside the repository (../shared/reference/slack-manifest)."
        )
    import json

    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


def test_manifest_is_valid_against_slacks_schema(manifest: dict[str, Any], schema: dict[str, Any]) -> None:
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    errors = sorted(validator_cls(schema).iter_errors(manifest), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)
    assert manifest["_metadata"]["major_version"] == 1


def test_schema_check_catches_a_broken_manifest(manifest: dict[str, Any], schema: dict[str, Any]) -> None:
    """The validation above must be able to fail: an over-long command and an unknown key are refused."""
    broken = yaml.safe_load(yaml.safe_dump(manifest))
    broken["features"]["slash_commands"][0]["command"] = "/" + "x" * 40
    broken["settings"]["not_a_setting"] = True
    validator = jsonschema.validators.validator_for(schema)(schema)
    messages = [e.message for e in validator.iter_errors(broken)]
    assert any("too long" in m for m in messages)
    assert any("not_a_setting" in m for m in messages)


def test_slash_commands_match_the_code(manifest: dict[str, Any]) -> None:
    declared = [c["command"] for c in manifest["features"]["slash_commands"]]
    assert len(declared) == len(set(declared)), "a slash command is declared twice"
    assert set(declared) == set(slack_app.SLASH_COMMANDS)


def test_usage_hints(manifest: dict[str, Any]) -> None:
    hints = {c["command"]: c["usage_hint"] for c in manifest["features"]["slash_commands"]}
    assert hints == {
        "/credit": "pending | show <id or name> | syncs | help",
        "/utilization": "[customer] | over 80 | overdue | @rep",
    }


def test_events_and_scopes_match_the_code(manifest: dict[str, Any]) -> None:
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert set(events) == set(slack_app.BOT_EVENTS)
    assert set(slack_app.LIFECYCLE_EVENTS) <= set(events)
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    assert len(scopes) == len(set(scopes))
    assert set(scopes) == set(slack_app.BOT_SCOPES)
    # The OAuth flow asks Slack for exactly the manifest's scopes by default.
    assert set(SlackConfig(signing_secret="s", client_id="1.2", client_secret="c").scopes) == set(scopes)


def _request_urls(manifest: dict[str, Any]) -> list[str]:
    settings = manifest["settings"]
    urls = [c["url"] for c in manifest["features"]["slash_commands"]]
    urls.append(settings["event_subscriptions"]["request_url"])
    urls.append(settings["interactivity"]["request_url"])
    urls.append(settings["interactivity"]["message_menu_options_url"])
    return urls


def test_every_request_url_is_the_one_events_path(manifest: dict[str, Any]) -> None:
    urls = _request_urls(manifest)
    parts = [urlsplit(u) for u in urls]
    assert {p.scheme for p in parts} == {"https"}
    assert len({p.netloc for p in parts}) == 1, f"Request URLs point at several hosts: {urls}"
    assert {p.path for p in parts} == {slack_app.EVENTS_PATH}


def test_redirect_url_matches_the_oauth_route(manifest: dict[str, Any]) -> None:
    redirects = manifest["oauth_config"]["redirect_urls"]
    events_host = urlsplit(_request_urls(manifest)[0]).netloc
    assert [urlsplit(u).path for u in redirects] == [slack_app.OAUTH_REDIRECT_PATH]
    assert {urlsplit(u).netloc for u in redirects} == {events_host}
    # ... and the Bolt app built for the install flow serves that very path.
    engine = create_engine("sqlite://")
    app = build_bolt_app(
        SlackConfig(signing_secret="s", client_id="1.2", client_secret="c", redirect_uri=redirects[0]),
        engine=engine,
        redis=fakeredis.FakeRedis(),
        client_base_url="http://127.0.0.1:9/api/",
    )
    assert app.oauth_flow is not None
    assert app.oauth_flow.redirect_uri_path == slack_app.OAUTH_REDIRECT_PATH
    assert app.oauth_flow.install_path == slack_app.INSTALL_PATH
    engine.dispose()


def test_http_mode_settings(manifest: dict[str, Any]) -> None:
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is False
    assert settings["token_rotation_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True
    home = manifest["features"]["app_home"]
    assert home["home_tab_enabled"] is True and home["messages_tab_enabled"] is True
    assert manifest["features"]["bot_user"]["display_name"]
