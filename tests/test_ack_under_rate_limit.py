"""A listener that has acked keeps its answer, even when it fails right after (``bot.slack_app.AckOnce``).

Bolt's sync ``App`` runs a listener on the listener pool while the request thread polls ``ack.response``
every 10 ms for up to 3 s. When the listener raised *after* ``ack()``, Bolt's runner set ``ack.response``
back to None (slack_bolt/listener/thread_runner.py, the "already acknowledged" branch); a request thread
that had not looked in between then waited out the 3 s, logged "<listener> didn't call ack()" and Bolt
answered 404. That is what Details clicks got while Slack answered ``views.open`` with 429: the refusal
comes back within milliseconds, inside one polling interval.

The race is made certain here: :class:`InlineExecutor` runs the listener to completion inside ``submit``,
so it has acked and failed before the request thread first looks (the order that loses the ack, every
time). Requests are signed and go through the Flask app, to Bolt, to the listeners; Web API calls go to
``MockSlackServer``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

import fakeredis
import httpx
import pytest
import sqlalchemy as sa
from flask import Flask, Response, request
from slack_bolt import Ack, App
from slack_bolt.adapter.flask import SlackRequestHandler
from sqlalchemy.exc import OperationalError

from blocks.ids import ActionId
from bot.container import Container
from bot.sandbox.signing import (
    SignedSlackClient,
    block_actions_payload,
    button_action,
    interaction_body,
    new_trigger_id,
)
from bot.sandbox.slack_api import MockSlackServer, SlackUser
from bot.slack_app import EVENTS_PATH, SlackConfig, build_bolt_app
from bot.web import create_app
from handlers.common import MODAL_NOT_OPENED
from tests.harness import (
    ANALYST_ID,
    BOT_TOKEN,
    SIGNING_SECRET,
    details_body,
    signed_headers,
    slack_settings,
    submit_application,
)

P = ParamSpec("P")
T = TypeVar("T")


class InlineExecutor(Executor):
    """Runs each task inside ``submit``: the listener is done before Bolt's request thread polls."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # Bolt's wrapper catches listener errors; keep anything else
            future.set_exception(exc)
        return future


@pytest.fixture
def slack() -> Iterator[MockSlackServer]:
    with MockSlackServer(users=[SlackUser(ANALYST_ID, "Ana", "ana@credit.example")]) as server:
        yield server


# ---- the Bolt wiring alone --------------------------------------------------------------------------


def bolt_client(bolt: App) -> SignedSlackClient:
    flask_app = Flask("ack-test")
    handler = SlackRequestHandler(bolt)

    def events() -> Response:
        return handler.handle(request)

    flask_app.add_url_rule(EVENTS_PATH, "slack_events", events, methods=["POST"])
    http = httpx.Client(transport=httpx.WSGITransport(app=flask_app), base_url="http://testserver")
    return SignedSlackClient(http, SIGNING_SECRET)


def click(client: SignedSlackClient, action_id: str) -> httpx.Response:
    payload = block_actions_payload(
        [button_action(action_id, "{}")],
        user_id=ANALYST_ID,
        view={"id": "V0ACKTEST1", "type": "home", "blocks": [], "state": {"values": {}}},
        trigger_id=new_trigger_id(),
    )
    return client.interaction(payload)


def test_an_ack_followed_by_a_failure_is_still_the_answer(slack: MockSlackServer) -> None:
    bolt = build_bolt_app(
        SlackConfig(signing_secret=SIGNING_SECRET, bot_token=BOT_TOKEN),
        engine=sa.create_engine("sqlite://"),
        redis=fakeredis.FakeRedis(),
        client_base_url=slack.url,
        listener_executor=InlineExecutor(),
    )
    errors: list[str] = []

    @bolt.error
    def _errors(error: Exception) -> None:
        errors.append(str(error))

    @bolt.action("acks_then_fails")
    def _acks_then_fails(ack: Ack) -> None:
        ack()
        raise RuntimeError("views.open refused")

    @bolt.command("/credit")
    def _answers_then_fails(ack: Ack) -> None:
        ack("Looking it up...")
        raise RuntimeError("database gone")

    @bolt.action("fails_first")
    def _fails_first(ack: Ack) -> None:
        raise RuntimeError("before any ack")

    client = bolt_client(bolt)
    clicked = click(client, "acks_then_fails")
    assert clicked.status_code == 200
    command = client.command("/credit", "pending", ANALYST_ID)
    assert (command.status_code, command.text) == (200, "Looking it up...")
    # A failure before ack() is still an error for Slack: only an answer already given is kept.
    assert click(client, "fails_first").status_code == 500
    # ... and no failure is hidden: the error handler saw all three.
    assert errors == ["views.open refused", "database gone", "before any ack"]


# ---- the product: Details and Approve clicks ---------------------------------------------------------


def desk(container_factory: Any, database_url: str, slack: MockSlackServer) -> tuple[Container, httpx.Client]:
    container: Container = container_factory(database_url=database_url, **slack_settings(slack.url))
    assert container.bolt is not None
    container.bolt.listener_runner.listener_executor = InlineExecutor()
    http = httpx.Client(transport=httpx.WSGITransport(app=create_app(container)), base_url="http://desk.test")
    return container, http


def submitted(container: Container, reference: str) -> int:
    return submit_application(container, reference, business_name=f"Ack {reference} Supply LLC")


def post(http: httpx.Client, body: bytes) -> httpx.Response:
    return http.post("/slack/events", content=body, headers=signed_headers(body))


def dms_to_analyst(slack: MockSlackServer) -> list[str]:
    return [
        str(c.args.get("text"))
        for c in slack.calls("chat.postMessage")
        if c.ok and c.args.get("channel") == ANALYST_ID
    ]


def test_details_click_is_answered_while_slack_refuses_views_open(
    database_url: str, container_factory: Any, slack: MockSlackServer
) -> None:
    container, http = desk(container_factory, database_url, slack)
    app_id = submitted(container, "ack-1")
    slack.rate_limit(["views.open"], 60, retry_after=1)

    assert post(http, details_body(app_id)).status_code == 200
    assert post(http, details_body(app_id)).status_code == 200
    assert slack.rate_limited() == 2  # both modals were refused ...
    assert dms_to_analyst(slack) == [MODAL_NOT_OPENED] * 2  # ... and the analyst was told so


def test_details_click_is_answered_when_the_listener_fails_after_its_ack(
    database_url: str, container_factory: Any, slack: MockSlackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    container, http = desk(container_factory, database_url, slack)
    app_id = submitted(container, "ack-2")

    def database_away(application_id: int) -> Any:
        raise OperationalError("SELECT ...", {}, Exception("server closed the connection unexpectedly"))

    assert container.decisions is not None
    monkeypatch.setattr(container.decisions, "get", database_away)
    assert post(http, details_body(app_id)).status_code == 200
    assert slack.calls("views.open") == []  # the listener did fail after its ack


def test_approve_click_is_answered_while_slack_refuses_views_open(
    database_url: str, container_factory: Any, slack: MockSlackServer
) -> None:
    container, http = desk(container_factory, database_url, slack)
    app_id = submitted(container, "ack-3")
    slack.rate_limit(["views.open"], 60, retry_after=1)
    payload = block_actions_payload(
        [button_action(ActionId.APPROVE, json.dumps({"a": app_id}))],
        user_id=ANALYST_ID,
        view={"id": "V0ACKTEST2", "type": "home", "blocks": [], "state": {"values": {}}},
        trigger_id=new_trigger_id(),
    )
    body = interaction_body(payload).encode()
    assert post(http, body).status_code == 200
    assert slack.rate_limited() == 1
    assert dms_to_analyst(slack) == [MODAL_NOT_OPENED]


def home_click(action_id: str, app_id: int) -> bytes:
    payload = block_actions_payload(
        [button_action(action_id, json.dumps({"a": app_id}))],
        user_id=ANALYST_ID,
        view={"id": "V0ACKTEST3", "type": "home", "blocks": [], "state": {"values": {}}},
        trigger_id=new_trigger_id(),
    )
    return interaction_body(payload).encode()


def test_link_click_is_answered_while_slack_refuses_views_open(
    database_url: str, container_factory: Any, slack: MockSlackServer
) -> None:
    """Every modal the handlers open goes through one path: Link to NetSuite Record too."""
    container, http = desk(container_factory, database_url, slack)
    app_id = submitted(container, "ack-4")
    assert container.decisions is not None and container.roles is not None
    container.decisions.reject(app_id, container.roles.actor(ANALYST_ID), reason="no references")
    slack.rate_limit(["views.open"], 60, retry_after=1)
    assert post(http, home_click(ActionId.LINK, app_id)).status_code == 200
    assert slack.rate_limited() == 1
    assert dms_to_analyst(slack) == [MODAL_NOT_OPENED]
    assert slack.calls("views.update") == []  # nothing to add suggestions to
