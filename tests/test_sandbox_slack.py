"""The sandbox's Slack stand-ins, checked against the real slack_sdk / slack_bolt code paths.

The signer is held to Slack's published test vector and to slack_sdk's own verifier; the mock
Web API is driven only through ``slack_sdk.WebClient`` (and plain httpx for the wire formats
WebClient does not use), so a difference from Slack's documented behaviour shows up as the
same exception application code would see.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from flask import Flask, request
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_bolt import Ack, App, BoltRequest
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import Clock, SignatureVerifier
from slack_sdk.webhook import WebhookClient

from bot.sandbox import DEFAULT_WORKSPACE
from bot.sandbox.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignedSlackClient,
    block_actions_payload,
    block_suggestion_payload,
    button_action,
    compute_signature,
    event_envelope,
    interaction_body,
    sign,
    slash_command_body,
    view_submission_payload,
)
from bot.sandbox.slack_api import MockSlackServer, SlackChannel, SlackUser

SECRET = "test-signing-secret"

# Slack's documented example (docs.slack.dev/authentication/verifying-requests-from-slack).
VECTOR_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
VECTOR_TIMESTAMP = 1531420618
VECTOR_BODY = (
    "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
    "&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
    "&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands"
    "%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
VECTOR_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

ANALYST = SlackUser(id="U0ANALYST1", real_name="Ana Lyst", email="ana@example.com")
MANAGER = SlackUser(id="U0MANAGER1", real_name="Max Manager", email="Max.Manager@example.com")

MODAL = {
    "type": "modal",
    "callback_id": "link_customer",
    "title": {"type": "plain_text", "text": "Link customer"},
    "submit": {"type": "plain_text", "text": "Link"},
    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Loading..."}}],
}
HOME = {"type": "home", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Hi"}}]}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


@pytest.fixture
def slack() -> Iterator[MockSlackServer]:
    with MockSlackServer(users=[ANALYST, MANAGER], usergroups={"S0CREDIT01": [MANAGER.id]}) as srv:
        yield srv


@pytest.fixture
def client(slack: MockSlackServer) -> WebClient:
    return WebClient(token="xoxb-test", base_url=slack.url)


def api_error(call: Callable[[], object]) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        call()
    return caught.value


# =========================================================================== signing


def test_sign_reproduces_slacks_published_test_vector() -> None:
    for body in (VECTOR_BODY, VECTOR_BODY.encode()):
        headers = sign(VECTOR_SECRET, body, timestamp=VECTOR_TIMESTAMP)
        assert headers == {
            TIMESTAMP_HEADER: str(VECTOR_TIMESTAMP),
            SIGNATURE_HEADER: VECTOR_SIGNATURE,
        }


def test_slack_sdk_verifier_accepts_the_vector_at_its_own_time() -> None:
    class FrozenClock(Clock):
        def now(self) -> float:
            return float(VECTOR_TIMESTAMP)

    verifier = SignatureVerifier(VECTOR_SECRET, clock=FrozenClock())
    headers = sign(VECTOR_SECRET, VECTOR_BODY, timestamp=VECTOR_TIMESTAMP)
    assert verifier.is_valid_request(VECTOR_BODY, headers)
    # With the real clock the same request is years old and must be refused as a replay.
    assert not SignatureVerifier(VECTOR_SECRET).is_valid_request(VECTOR_BODY, headers)


@settings(max_examples=60, deadline=None)
@given(
    secret=st.text(min_size=1, max_size=40).filter(str.strip),
    body=st.text(max_size=300),
    timestamp=st.integers(min_value=0, max_value=2**40),
)
def test_signature_agrees_with_slack_sdk_for_any_body(secret: str, body: str, timestamp: int) -> None:
    expected = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    assert compute_signature(secret, timestamp, body) == expected


def test_slack_sdk_verifier_rejects_tampered_body_and_stale_timestamp() -> None:
    verifier = SignatureVerifier(SECRET)
    body = slash_command_body("/utilization", "acme", ANALYST.id)
    fresh = sign(SECRET, body)
    assert verifier.is_valid_request(body, fresh)
    assert not verifier.is_valid_request(body.replace("acme", "evil"), fresh)
    assert not verifier.is_valid_request(body, sign("another-secret", body))
    stale = sign(SECRET, body, timestamp=int(time.time()) - 301)
    assert not verifier.is_valid_request(body, stale)


@pytest.mark.parametrize("secret", ["", "  "])
def test_sign_rejects_an_empty_secret(secret: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        sign(secret, "body")


@pytest.mark.parametrize("timestamp", [-1, True, 1.5])
def test_sign_rejects_bad_timestamps(timestamp: Any) -> None:
    with pytest.raises(ValueError, match="timestamp"):
        sign(SECRET, "body", timestamp=timestamp)


def test_slash_command_body_has_slacks_flat_fields_in_order() -> None:
    body = slash_command_body(
        "/utilization", "Acme Corp & Co", ANALYST.id, user_name="ana", trigger_id="1.2.abc"
    )
    fields = parse_qsl(body, keep_blank_values=True)
    assert [name for name, _ in fields] == [
        "token",
        "team_id",
        "team_domain",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "api_app_id",
        "is_enterprise_install",
        "response_url",
        "trigger_id",
    ]
    values = dict(fields)
    assert values["command"] == "/utilization"
    assert values["text"] == "Acme Corp & Co"
    assert values["team_id"] == DEFAULT_WORKSPACE.team_id
    assert values["channel_id"] == DEFAULT_WORKSPACE.channel_id
    assert values["user_name"] == "ana"
    assert values["trigger_id"] == "1.2.abc"
    assert "command=%2Futilization" in body  # encoded exactly as in Slack's own example


@pytest.mark.parametrize("command", ["utilization", "/", "/two words"])
def test_slash_command_body_rejects_malformed_commands(command: str) -> None:
    with pytest.raises(ValueError, match="command"):
        slash_command_body(command, "", ANALYST.id)


def test_interaction_body_round_trips_the_payload() -> None:
    payload = block_actions_payload(
        [button_action("approve", '{"id": 7, "v": 2}')],
        user_id=ANALYST.id,
        message={"ts": "1700000000.000100", "text": "Application #7"},
    )
    (name, value), *rest = parse_qsl(interaction_body(payload))
    assert (name, rest) == ("payload", [])
    assert json.loads(value) == payload


def test_block_actions_payload_for_message_and_for_view() -> None:
    in_message = block_actions_payload(
        [button_action("approve", "7")],
        user_id=ANALYST.id,
        message={"ts": "1700000000.000100"},
        channel_id="C0OTHER001",
        response_url="http://127.0.0.1:1/response/H1",
    )
    assert in_message["container"] == {
        "type": "message",
        "message_ts": "1700000000.000100",
        "channel_id": "C0OTHER001",
        "is_ephemeral": False,
    }
    assert in_message["channel"]["id"] == "C0OTHER001"
    assert in_message["response_url"] == "http://127.0.0.1:1/response/H1"
    assert in_message["actions"][0]["value"] == "7"

    in_view = block_actions_payload(
        [{"type": "checkboxes", "action_id": "fields", "selected_options": []}],
        user_id=ANALYST.id,
        view={"id": "V0000001", "type": "modal"},
    )
    assert in_view["container"] == {"type": "view", "view_id": "V0000001"}
    assert "response_url" not in in_view and "message" not in in_view
    assert in_view["view"]["state"] == {"values": {}}
    assert in_view["actions"][0]["block_id"] == "actions"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: block_actions_payload([], user_id=ANALYST.id, view={"id": "V1"}), "at least one"),
        (
            lambda: block_actions_payload([{"type": "button"}], user_id=ANALYST.id, view={"id": "V1"}),
            "action_id",
        ),
        (lambda: block_actions_payload([button_action("a", "1")], user_id=ANALYST.id), "exactly one"),
        (
            lambda: block_actions_payload(
                [button_action("a", "1")], user_id=ANALYST.id, message={"text": "no ts"}
            ),
            "ts",
        ),
        (
            lambda: block_actions_payload(
                [button_action("a", "1")], user_id="ana@example.com", view={"id": "V1"}
            ),
            "user_id",
        ),
        (lambda: view_submission_payload(HOME, {}, user_id=ANALYST.id), "modal"),
        (
            lambda: view_submission_payload({**MODAL, "callback_id": ""}, {}, user_id=ANALYST.id),
            "callback_id",
        ),
        (
            lambda: view_submission_payload(
                MODAL, {"amount": {"value": {"value": "10"}}}, user_id=ANALYST.id
            ),
            "type",
        ),
        (
            lambda: block_suggestion_payload("search", "acm", block_id="b", user_id=ANALYST.id),
            "view=",
        ),
        (lambda: event_envelope({"user": ANALYST.id}), "type"),
        (lambda: interaction_body({"no": "type"}), "type"),
        (lambda: button_action("", "1"), "action_id"),
    ],
)
def test_payload_builders_reject_bad_input(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_view_submission_payload_fills_what_slack_would() -> None:
    values = {"amount": {"amount_input": {"type": "plain_text_input", "value": "25000"}}}
    payload = view_submission_payload(MODAL, values, user_id=ANALYST.id)
    view = payload["view"]
    assert payload["type"] == "view_submission"
    assert view["id"].startswith("V") and view["hash"]
    assert view["root_view_id"] == view["id"]
    assert view["state"] == {"values": values}
    assert view["callback_id"] == "link_customer"
    assert MODAL.get("state") is None  # the caller's dict is not mutated


def test_event_envelope_is_an_event_callback() -> None:
    envelope = json.loads(event_envelope({"type": "app_home_opened", "user": ANALYST.id}, event_id="Ev0001"))
    assert envelope["type"] == "event_callback"
    assert envelope["event_id"] == "Ev0001"
    assert envelope["team_id"] == DEFAULT_WORKSPACE.team_id
    assert envelope["api_app_id"] == DEFAULT_WORKSPACE.api_app_id
    assert isinstance(envelope["event_time"], int)
    assert envelope["authorizations"][0]["user_id"] == DEFAULT_WORKSPACE.bot_user_id


@pytest.mark.parametrize(
    ("retry_num", "retry_reason", "message"),
    [(0, None, "retry_num"), (None, "http_timeout", "needs retry_num"), (1, "bored", "retry_reason")],
)
def test_signed_client_rejects_bad_retry_headers(
    retry_num: int | None, retry_reason: str | None, message: str
) -> None:
    with httpx.Client(base_url="http://127.0.0.1:9") as http:
        signed = SignedSlackClient(http, SECRET)
        with pytest.raises(ValueError, match=message):
            signed.event({"type": "app_mention"}, retry_num=retry_num, retry_reason=retry_reason)


# =========================================================================== Bolt accepts it


def test_bolt_dispatch_accepts_signed_request_and_rejects_tampered_or_stale(
    slack: MockSlackServer,
) -> None:
    app = App(client=WebClient(token="xoxb-test", base_url=slack.url), signing_secret=SECRET)

    @app.command("/utilization")
    def utilization(ack: Ack, command: dict[str, Any]) -> None:
        ack(f"utilization for {command['text']}")

    def bolt_request(body: str, signed_body: str, timestamp: int | None = None) -> BoltRequest:
        headers: dict[str, str | Sequence[str]] = {**sign(SECRET, signed_body, timestamp)}
        return BoltRequest(body=body, headers=headers)

    body = slash_command_body("/utilization", "acme", ANALYST.id)
    accepted = app.dispatch(bolt_request(body, body))
    assert (accepted.status, accepted.body) == (200, "utilization for acme")

    tampered = app.dispatch(bolt_request(body.replace("acme", "evil"), body))
    assert tampered.status == 401
    stale = app.dispatch(bolt_request(body, body, timestamp=int(time.time()) - 600))
    assert stale.status == 401
    # Bolt verified the token against the mock once, at start-up.
    assert [c.method for c in slack.calls()] == ["auth.test"]


@dataclass
class BoltEnv:
    app: App
    flask_app: Flask
    signed: SignedSlackClient
    slack: MockSlackServer
    client: WebClient


@pytest.fixture
def bolt_env(slack: MockSlackServer) -> Iterator[BoltEnv]:
    """Our signer -> httpx -> Flask -> Bolt, with Bolt's WebClient pointed at the mock."""
    client = WebClient(token="xoxb-test", base_url=slack.url)
    app = App(client=client, signing_secret=SECRET)
    handler = SlackRequestHandler(app)
    flask_app = Flask("sandbox-test")

    @flask_app.post("/slack/events")
    def slack_events() -> Any:
        return handler.handle(request)

    with httpx.Client(transport=httpx.WSGITransport(app=flask_app), base_url="http://127.0.0.1") as http:
        yield BoltEnv(app, flask_app, SignedSlackClient(http, SECRET), slack, client)


def test_flask_adapter_rejects_a_wrong_signature(bolt_env: BoltEnv) -> None:
    @bolt_env.app.command("/utilization")
    def utilization(ack: Ack) -> None:
        ack("never")

    with httpx.Client(
        transport=httpx.WSGITransport(app=bolt_env.flask_app), base_url="http://127.0.0.1"
    ) as http:
        wrong = SignedSlackClient(http, "not-the-secret")
        assert wrong.command("/utilization", "", ANALYST.id).status_code == 401
    assert bolt_env.signed.command("/utilization", "", ANALYST.id).text == "never"


def test_bolt_routes_button_click_and_listener_updates_message_on_mock(bolt_env: BoltEnv) -> None:
    slack = bolt_env.slack
    posted = bolt_env.client.chat_postMessage(
        channel=DEFAULT_WORKSPACE.channel_id, text="Application #7", blocks=[section("#7")]
    )

    @bolt_env.app.action("approve")
    def approve(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        client.chat_update(
            channel=body["container"]["channel_id"],
            ts=body["container"]["message_ts"],
            text=f"Approved #{body['actions'][0]['value']}",
            blocks=[],
        )

    message = slack.message(posted["channel"], posted["ts"]).to_dict()
    payload = block_actions_payload([button_action("approve", "7")], user_id=ANALYST.id, message=message)
    assert bolt_env.signed.interaction(payload).status_code == 200
    slack.wait_for("chat.update")
    updated = slack.message(posted["channel"], posted["ts"])
    assert (updated.text, updated.blocks, updated.edited) == ("Approved #7", [], True)


def test_bolt_routes_view_submission_and_block_suggestion(bolt_env: BoltEnv) -> None:
    opened = bolt_env.client.views_open(trigger_id="1.2.abc", view=MODAL)["view"]

    @bolt_env.app.view("link_customer")
    def submit(ack: Ack, view: dict[str, Any]) -> None:
        amount = view["state"]["values"]["amount"]["amount_input"]["value"]
        ack(response_action="errors", errors={"amount": f"{amount} is over the limit"})

    @bolt_env.app.options("customer_search")
    def search(ack: Ack, payload: dict[str, Any]) -> None:
        ack(options=[{"text": {"type": "plain_text", "text": "Acme"}, "value": payload["value"]}])

    submission = view_submission_payload(
        bolt_env.slack.view(opened["id"]),
        {"amount": {"amount_input": {"type": "plain_text_input", "value": "25000"}}},
        user_id=ANALYST.id,
    )
    answered = bolt_env.signed.interaction(submission)
    assert answered.json() == {
        "response_action": "errors",
        "errors": {"amount": "25000 is over the limit"},
    }

    suggestion = block_suggestion_payload(
        "customer_search", "acm", block_id="customer", user_id=ANALYST.id, view=opened
    )
    options = bolt_env.signed.interaction(suggestion).json()["options"]
    assert [o["value"] for o in options] == ["acm"]


def test_bolt_sees_event_retry_headers(bolt_env: BoltEnv) -> None:
    seen: list[tuple[str | None, str | None]] = []
    done = threading.Event()

    @bolt_env.app.event("app_home_opened")
    def home(event: dict[str, Any], client: WebClient, request: BoltRequest) -> None:
        client.views_publish(user_id=event["user"], view=HOME)
        seen.append(
            (
                request.headers.get("x-slack-retry-num", [None])[0],
                request.headers.get("x-slack-retry-reason", [None])[0],
            )
        )
        done.set()

    event = {"type": "app_home_opened", "user": ANALYST.id, "tab": "home", "channel": "D0001"}
    response = bolt_env.signed.event(event, event_id="Ev0042", retry_num=2, retry_reason="http_error")
    assert response.status_code == 200
    assert done.wait(timeout=5.0)
    assert seen == [("2", "http_error")]
    assert bolt_env.slack.wait_for("views.publish")[0].args["user_id"] == ANALYST.id
    assert bolt_env.slack.home_view(ANALYST.id)["type"] == "home"


# =========================================================================== mock Web API


def test_auth_test_describes_the_sandbox_bot_and_user_tokens(
    slack: MockSlackServer, client: WebClient
) -> None:
    bot = client.auth_test()
    assert bot["team_id"] == DEFAULT_WORKSPACE.team_id
    assert bot["user_id"] == DEFAULT_WORKSPACE.bot_user_id
    assert bot["bot_id"] == DEFAULT_WORKSPACE.bot_id
    assert bot["url"] == "https://credit-desk-sandbox.slack.com/"
    assert bot["team"] == DEFAULT_WORKSPACE.team_name
    user = WebClient(token="xoxp-user", base_url=slack.url).auth_test()
    assert user["user_id"] == DEFAULT_WORKSPACE.installer_user_id
    assert "bot_id" not in user


def test_post_update_permalink_delete_flow(slack: MockSlackServer, client: WebClient) -> None:
    channel = DEFAULT_WORKSPACE.channel_id
    posts = [
        client.chat_postMessage(channel=channel, text=f"m{i}", blocks=[section(f"m{i}")]) for i in range(3)
    ]
    stamps = [p["ts"] for p in posts]
    assert all(len(ts.split(".")[1]) == 6 and ts.replace(".", "").isdigit() for ts in stamps)
    assert stamps == sorted(stamps, key=float) and len(set(stamps)) == 3
    assert posts[0]["message"]["text"] == "m0"
    assert posts[0]["message"]["bot_id"] == DEFAULT_WORKSPACE.bot_id

    updated = client.chat_update(channel=channel, ts=stamps[0], text="m0 edited")
    assert (updated["ts"], updated["text"]) == (stamps[0], "m0 edited")
    # Omitting blocks keeps the old ones, as on Slack.
    assert slack.message(channel, stamps[0]).blocks == [section("m0")]

    link = client.chat_getPermalink(channel=channel, message_ts=stamps[1])["permalink"]
    assert link.endswith(f"/archives/{channel}/p{stamps[1].replace('.', '')}")

    client.chat_delete(channel=channel, ts=stamps[2])
    assert [m.ts for m in slack.messages(channel)] == stamps[:2]
    gone = api_error(lambda: client.chat_update(channel=channel, ts=stamps[2], text="x"))
    assert gone.response["error"] == "message_not_found"


def test_conversations_replies_pages_a_thread_with_metadata_on_request(client: WebClient) -> None:
    channel = DEFAULT_WORKSPACE.channel_id
    parent = client.chat_postMessage(channel=channel, text="parent")["ts"]
    client.chat_postMessage(channel=channel, text="elsewhere")  # not in the thread
    for i in range(3):
        client.chat_postMessage(
            channel=channel,
            thread_ts=parent,
            text=f"r{i}",
            metadata={"event_type": "line", "event_payload": {"n": i}},
        )
    first = client.conversations_replies(channel=channel, ts=parent, limit=2, include_all_metadata=True)
    assert [m["text"] for m in first["messages"]] == ["parent", "r0"]
    assert first["messages"][0]["reply_count"] == 3
    assert first["messages"][1]["metadata"] == {"event_type": "line", "event_payload": {"n": 0}}
    assert first["has_more"] is True
    cursor = first["response_metadata"]["next_cursor"]
    rest = client.conversations_replies(channel=channel, ts=parent, limit=2, cursor=cursor)
    assert [m["text"] for m in rest["messages"]] == ["r1", "r2"]
    assert rest["has_more"] is False and "metadata" not in rest["messages"][0]  # only when asked for
    missing = api_error(lambda: client.conversations_replies(channel=channel, ts="1.000001"))
    assert missing.response["error"] == "thread_not_found"


def test_post_message_errors_match_slack(slack: MockSlackServer, client: WebClient) -> None:
    def error_of(**json_args: Any) -> str:
        failure = api_error(lambda: client.api_call("chat.postMessage", json=json_args))
        assert failure.response.status_code == 200
        return str(failure.response["error"])

    assert error_of(text="no channel") == "channel_not_found"
    assert error_of(channel="C0CREDITQ1") == "no_text"
    assert error_of(channel="C0CREDITQ1", blocks=[section("x")] * 51) == "invalid_blocks"
    assert error_of(channel="C0CREDITQ1", blocks=[{"text": "typeless"}]) == "invalid_blocks"
    assert error_of(channel="U0NOBODY01", text="hi") == "channel_not_found"
    assert error_of(channel="#no-such-channel", text="hi") == "channel_not_found"
    # Channels referred to by name resolve to their ID.
    by_name = client.chat_postMessage(channel="#credit-desk", text="hi")
    assert by_name["channel"] == DEFAULT_WORKSPACE.channel_id


def test_strict_channels_refuse_unregistered_ids() -> None:
    with MockSlackServer(strict_channels=True) as strict:
        client = WebClient(token="xoxb-test", base_url=strict.url)
        failure = api_error(lambda: client.chat_postMessage(channel="C0UNKNOWN1", text="hi"))
        assert failure.response["error"] == "channel_not_found"
    with MockSlackServer() as lenient:
        client = WebClient(token="xoxb-test", base_url=lenient.url)
        assert client.chat_postMessage(channel="C0UNKNOWN1", text="hi")["channel"] == "C0UNKNOWN1"


def test_post_message_to_a_user_lands_in_their_dm(slack: MockSlackServer, client: WebClient) -> None:
    posted = client.chat_postMessage(channel=MANAGER.id, text="Approval needed")
    opened = client.conversations_open(users=MANAGER.id)
    assert posted["channel"] == opened["channel"]["id"] == slack.dm_channel(MANAGER.id)
    assert posted["channel"].startswith("D")
    assert opened["already_open"] is True
    info = client.conversations_info(channel=posted["channel"])["channel"]
    assert (info["is_im"], info["user"]) == (True, MANAGER.id)


def test_views_open_update_push_flow(slack: MockSlackServer, client: WebClient) -> None:
    no_trigger = api_error(lambda: client.api_call("views.open", json={"view": MODAL}))
    assert no_trigger.response["error"] == "invalid_arguments"
    not_modal = api_error(lambda: client.views_open(trigger_id="t-0", view=HOME))
    assert not_modal.response["error"] == "invalid_arguments"

    view = client.views_open(trigger_id="t-1", view=MODAL)["view"]
    assert view["id"].startswith("V") and view["hash"]
    assert (view["callback_id"], view["root_view_id"]) == ("link_customer", view["id"])
    reused = api_error(lambda: client.views_open(trigger_id="t-1", view=MODAL))
    assert reused.response["error"] == "exchanged_trigger_id"

    loaded = {**MODAL, "blocks": [section("Pick a customer")]}
    second = client.views_update(view_id=view["id"], hash=view["hash"], view=loaded)["view"]
    assert second["id"] == view["id"] and second["hash"] != view["hash"]
    assert slack.view(view["id"])["blocks"] == [section("Pick a customer")]

    stale = api_error(lambda: client.views_update(view_id=view["id"], hash=view["hash"], view=MODAL))
    assert stale.response["error"] == "hash_conflict"
    assert client.views_update(view_id=view["id"], view=MODAL)["ok"]  # no hash: unguarded
    missing = api_error(lambda: client.views_update(view_id="V0NOTHERE", view=MODAL))
    assert missing.response["error"] == "not_found"

    pushed = [client.views_push(trigger_id=f"p-{i}", view=MODAL)["view"] for i in range(2)]
    assert pushed[0]["previous_view_id"] == view["id"]
    assert pushed[1]["previous_view_id"] == pushed[0]["id"]
    assert {p["root_view_id"] for p in pushed} == {view["id"]}
    full = api_error(lambda: client.views_push(trigger_id="p-3", view=MODAL))
    assert full.response["error"] == "push_limit_reached"


def test_views_publish_home_tab_with_hash_guard(slack: MockSlackServer, client: WebClient) -> None:
    first = client.views_publish(user_id=ANALYST.id, view=HOME)["view"]
    again = client.views_publish(user_id=ANALYST.id, view=HOME, hash=first["hash"])["view"]
    assert again["id"] == first["id"] and again["hash"] != first["hash"]
    stale = api_error(lambda: client.views_publish(user_id=ANALYST.id, view=HOME, hash=first["hash"]))
    assert stale.response["error"] == "hash_conflict"
    assert slack.home_view(ANALYST.id)["hash"] == again["hash"]


def test_rate_limit_is_http_429_with_retry_after(slack: MockSlackServer, client: WebClient) -> None:
    slack.fail_next("chat.postMessage", retry_after=7)
    limited = api_error(lambda: client.chat_postMessage(channel="C0CREDITQ1", text="hi"))
    assert limited.response.status_code == 429
    assert limited.response.headers["Retry-After"] == "7"
    assert limited.response["error"] == "ratelimited"
    # Only the next call was limited.
    assert client.chat_postMessage(channel="C0CREDITQ1", text="hi")["ok"]
    assert [c.status for c in slack.calls("chat.postMessage")] == [429, 200]
    assert len(slack.messages()) == 1


def test_rate_limit_retry_handler_retries_once_and_succeeds(slack: MockSlackServer) -> None:
    client = WebClient(
        token="xoxb-test",
        base_url=slack.url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    slack.fail_next("chat.postMessage", retry_after=0)
    assert client.chat_postMessage(channel="C0CREDITQ1", text="hi")["ok"]
    assert [c.status for c in slack.calls("chat.postMessage")] == [429, 200]

    slack.fail_next("chat.postMessage", retry_after=0, times=2)
    exhausted = api_error(lambda: client.chat_postMessage(channel="C0CREDITQ1", text="hi"))
    assert exhausted.response.status_code == 429


def test_fail_next_injects_any_error_for_n_calls(slack: MockSlackServer, client: WebClient) -> None:
    slack.fail_next("users.info", "user_not_visible", times=2)
    for _ in range(2):
        failure = api_error(lambda: client.users_info(user=ANALYST.id))
        assert (failure.response.status_code, failure.response["error"]) == (200, "user_not_visible")
    assert client.users_info(user=ANALYST.id)["user"]["id"] == ANALYST.id

    slack.fail_next("auth.test", "service_unavailable", status=503)
    unavailable = api_error(client.auth_test)
    assert unavailable.response.status_code == 503
    assert "Retry-After" not in unavailable.response.headers


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": ""},
        {"method": "auth.test", "times": 0},
        {"method": "auth.test", "retry_after": -1},
        {"method": "auth.test", "status": 99},
    ],
)
def test_fail_next_rejects_bad_arguments(slack: MockSlackServer, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        slack.fail_next(**kwargs)


def test_tokens_are_checked(slack: MockSlackServer) -> None:
    bogus = api_error(WebClient(token="bogus", base_url=slack.url).auth_test)
    assert bogus.response["error"] == "invalid_auth"
    anonymous = api_error(WebClient(base_url=slack.url).auth_test)
    assert anonymous.response["error"] == "not_authed"
    assert [c.status for c in slack.calls("auth.test")] == [200, 200]  # Slack answers 200

    with MockSlackServer(valid_tokens={"xoxb-only-this"}) as picky:
        good = WebClient(token="xoxb-only-this", base_url=picky.url)
        assert good.auth_test()["ok"]
        other = api_error(WebClient(token="xoxb-another", base_url=picky.url).auth_test)
        assert other.response["error"] == "invalid_auth"


def test_unknown_method(slack: MockSlackServer, client: WebClient) -> None:
    failure = api_error(lambda: client.api_call("credit.approve", json={"id": 7}))
    assert failure.response["error"] == "unknown_method"
    assert slack.last("credit.approve").error == "unknown_method"


def test_calls_are_recorded_with_headers_args_and_results(slack: MockSlackServer, client: WebClient) -> None:
    client.chat_postMessage(channel="C0CREDITQ1", text="hi", blocks=[section("hi")])
    call = slack.last("chat.postMessage")
    assert call.headers["authorization"] == "Bearer xoxb-test"
    assert call.token == "xoxb-test" and call.http_method == "POST"
    assert call.args["blocks"] == [section("hi")]
    assert call.ok and call.response["ts"] == slack.messages()[0].ts
    with pytest.raises(LookupError, match=r"chat\.postMessage"):
        slack.last("views.open")


def test_form_encoded_json_args_and_get_requests_are_understood(slack: MockSlackServer) -> None:
    form = httpx.post(
        slack.url + "chat.postMessage",
        data={"channel": "C0CREDITQ1", "blocks": json.dumps([section("form")])},
        headers={"Authorization": "Bearer xoxb-test"},
    )
    assert form.json()["ok"] is True
    recorded = slack.last("chat.postMessage")
    assert recorded.args["blocks"] == [section("form")]
    assert isinstance(recorded.raw_args["blocks"], str)

    broken = httpx.post(
        slack.url + "chat.postMessage",
        data={"channel": "C0CREDITQ1", "blocks": "[not json"},
        headers={"Authorization": "Bearer xoxb-test"},
    )
    assert broken.json()["error"] == "invalid_blocks_format"

    got = httpx.get(slack.url + "auth.test", params={"token": "xoxb-query"})
    assert got.json()["user_id"] == DEFAULT_WORKSPACE.bot_user_id
    assert slack.last("auth.test").http_method == "GET"

    bad_json = httpx.post(
        slack.url + "auth.test",
        content=b"{nope",
        headers={"Authorization": "Bearer xoxb-test", "Content-Type": "application/json"},
    )
    assert bad_json.json()["error"] == "invalid_json"


def test_wait_for_sees_calls_from_other_threads_and_is_bounded(
    slack: MockSlackServer, client: WebClient
) -> None:
    worker = threading.Thread(
        target=lambda: [client.chat_postMessage(channel="C0CREDITQ1", text=str(i)) for i in range(3)]
    )
    worker.start()
    calls = slack.wait_for("chat.postMessage", count=3)
    worker.join(timeout=5.0)
    assert [c.args["text"] for c in calls] == ["0", "1", "2"]
    with pytest.raises(TimeoutError, match=r"views\.open.*chat\.postMessage"):
        slack.wait_for("views.open", timeout=0.2)
    with pytest.raises(ValueError):
        slack.wait_for("views.open", count=0)


def test_reset_forgets_records_but_keeps_slack_state(slack: MockSlackServer, client: WebClient) -> None:
    posted = client.chat_postMessage(channel="C0CREDITQ1", text="kept")
    slack.fail_next("auth.test", "invalid_auth")
    slack.reset()
    assert slack.calls() == []
    assert client.auth_test()["ok"]  # the pending failure was dropped too
    assert slack.message("C0CREDITQ1", posted["ts"]).text == "kept"


def test_directory_lookups(slack: MockSlackServer, client: WebClient) -> None:
    info = client.users_info(user=ANALYST.id)["user"]
    assert info["profile"]["email"] == ANALYST.email
    assert info["real_name"] == ANALYST.real_name
    assert api_error(lambda: client.users_info(user="U0NOBODY01")).response["error"] == ("user_not_found")
    found = client.users_lookupByEmail(email="max.manager@EXAMPLE.com")["user"]
    assert found["id"] == MANAGER.id
    assert (
        api_error(lambda: client.users_lookupByEmail(email="no@example.com")).response["error"]
        == "users_not_found"
    )

    assert client.usergroups_users_list(usergroup="S0CREDIT01")["users"] == [MANAGER.id]
    assert (
        api_error(lambda: client.usergroups_users_list(usergroup="S0NOPE")).response["error"]
        == "no_such_subteam"
    )

    channel = client.conversations_info(channel=DEFAULT_WORKSPACE.channel_id)["channel"]
    assert channel["name"] == DEFAULT_WORKSPACE.channel_name
    assert api_error(lambda: client.conversations_info(channel="C0NOPE")).response["error"] == (
        "channel_not_found"
    )

    group = client.conversations_open(users=[ANALYST.id, MANAGER.id])["channel"]["id"]
    assert group.startswith("G")
    assert client.conversations_open(users=f"{MANAGER.id},{ANALYST.id}")["channel"]["id"] == group
    unknown = api_error(lambda: client.conversations_open(users="U0NOBODY01"))
    assert unknown.response["error"] == "user_not_found"
    with pytest.raises(ValueError):
        SlackUser(id="ana@example.com", real_name="Ana")


def test_post_ephemeral_respects_modelled_membership(slack: MockSlackServer, client: WebClient) -> None:
    slack.add_channel(SlackChannel(id="G0PRIVATE1", name="approvals", members=(MANAGER.id,)))
    sent = client.chat_postEphemeral(channel="G0PRIVATE1", user=MANAGER.id, text="only you")
    assert sent["message_ts"]
    outsider = api_error(lambda: client.chat_postEphemeral(channel="G0PRIVATE1", user=ANALYST.id, text="x"))
    assert outsider.response["error"] == "user_not_in_channel"
    assert slack.messages("G0PRIVATE1") == []  # ephemeral messages are not channel history


def test_files_upload_v2_goes_through_all_three_steps(slack: MockSlackServer, client: WebClient) -> None:
    content = "customer,limit\nAcme,25000\n"
    result = client.files_upload_v2(
        channel=DEFAULT_WORKSPACE.channel_id,
        content=content,
        filename="limits.csv",
        title="Credit limits",
        initial_comment="Today's limits",
    )
    assert result["file"]["title"] == "Credit limits"
    assert [c.method for c in slack.calls()] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    (uploaded,) = slack.files()
    assert uploaded.id == result["file"]["id"]
    assert uploaded.content == content.encode()
    assert (uploaded.channel_id, uploaded.initial_comment) == (
        DEFAULT_WORKSPACE.channel_id,
        "Today's limits",
    )
    assert uploaded.completed


def test_files_complete_without_upload_is_file_not_found(slack: MockSlackServer, client: WebClient) -> None:
    ticket = client.files_getUploadURLExternal(filename="x.csv", length=3)
    failure = api_error(
        lambda: client.files_completeUploadExternal(files=[{"id": ticket["file_id"], "title": "x"}])
    )
    assert failure.response["error"] == "file_not_found"
    zero = api_error(lambda: client.files_getUploadURLExternal(filename="x.csv", length=0))
    assert zero.response["error"] == "missing_argument"


def test_response_url_posts_are_recorded(slack: MockSlackServer) -> None:
    url = slack.response_url()
    other = slack.response_url()
    sent = WebhookClient(url).send(text="Approved", replace_original=True)
    assert sent.status_code == 200
    (post,) = slack.wait_for_response(url)
    assert post.body["text"] == "Approved" and post.body["replace_original"] is True
    assert slack.responses(other) == []
    assert httpx.post(url.rsplit("/", 1)[0] + "/H0NOTMINTED", json={}).status_code == 404
    assert httpx.post(url, content=b"not json").status_code == 400


def test_server_lifecycle_and_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback"):
        MockSlackServer(host="0.0.0.0")  # noqa: S104 - must be refused
    server = MockSlackServer()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url
    with server:
        url = server.url
        assert url.startswith("http://127.0.0.1:") and url.endswith("/api/")
        assert httpx.get(server.root_url + "/elsewhere").status_code == 404
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "auth.test", timeout=2.0)
