"""Build and sign requests exactly as Slack sends them to an app's Request URL.

Our web app rejects anything whose ``X-Slack-Signature`` does not verify, so tests and the
demo must speak Slack's v0 scheme byte for byte: HMAC-SHA256 over ``v0:{timestamp}:{raw
body}`` keyed with the signing secret, hex-encoded and prefixed ``v0=``. The body builders
produce the wire formats Slack uses (see shared/reference/slack.md §3): slash commands are
flat form fields, interactivity is a form field ``payload=<json>``, and the Events API is a
JSON envelope. :class:`SignedSlackClient` posts them through an ``httpx.Client`` pointed at
our app (a real loopback server or ``httpx.WSGITransport``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import httpx

from bot.sandbox import DEFAULT_WORKSPACE, SandboxWorkspace

__all__ = [
    "RETRY_NUM_HEADER",
    "RETRY_REASONS",
    "RETRY_REASON_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SignedSlackClient",
    "block_actions_payload",
    "block_suggestion_payload",
    "button_action",
    "compute_signature",
    "event_envelope",
    "interaction_body",
    "new_trigger_id",
    "sign",
    "slash_command_body",
    "view_submission_payload",
]

TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SIGNATURE_HEADER = "X-Slack-Signature"
RETRY_NUM_HEADER = "X-Slack-Retry-Num"
RETRY_REASON_HEADER = "X-Slack-Retry-Reason"
#: The reasons Slack gives when it re-delivers an event (slack.md §1.7).
RETRY_REASONS = frozenset(
    {
        "http_timeout",
        "too_many_redirects",
        "connection_failed",
        "ssl_error",
        "http_error",
        "unknown_error",
    }
)

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"
_SIGNATURE_VERSION = "v0"


# --------------------------------------------------------------------------- signing


def compute_signature(secret: str, timestamp: int, body: bytes | str) -> str:
    """Return Slack's v0 signature (``v0=<hex>``) for ``body`` sent at ``timestamp``.

    The body is signed as raw bytes; a ``str`` is encoded as UTF-8 first, which is what
    goes over the wire for every Slack payload.
    """
    if not secret.strip():
        raise ValueError("signing secret must not be empty or blank")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError(f"timestamp must be a non-negative int of Unix seconds, got {timestamp!r}")
    raw = body.encode("utf-8") if isinstance(body, str) else body
    base = f"{_SIGNATURE_VERSION}:{timestamp}:".encode() + raw
    digest = hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()
    return f"{_SIGNATURE_VERSION}={digest}"


def sign(secret: str, body: bytes | str, timestamp: int | None = None) -> dict[str, str]:
    """Return the two headers Slack attaches to a request: timestamp and signature.

    ``timestamp`` defaults to now; pass an old one to exercise the 5-minute replay window.
    """
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: compute_signature(secret, ts, body),
    }


# --------------------------------------------------------------------------- IDs


def new_trigger_id() -> str:
    """A fresh trigger ID in Slack's ``<digits>.<digits>.<32 hex>`` shape."""
    return f"{secrets.randbelow(10**12)}.{secrets.randbelow(10**11)}.{secrets.token_hex(16)}"


def _new_event_id() -> str:
    return "Ev" + secrets.token_hex(5).upper()


def _new_view_id() -> str:
    return "V" + secrets.token_hex(5).upper()


def _new_view_hash() -> str:
    return f"{int(time.time())}.{secrets.token_hex(4)}"


def _now_ts() -> str:
    """A Slack-style ``seconds.micros`` timestamp for ``action_ts``."""
    return f"{time.time():.6f}"


def _default_response_url(workspace: SandboxWorkspace, kind: str) -> str:
    """A realistic-looking response_url; pass a mock server's ``response_url()`` to use one."""
    return (
        f"https://hooks.slack.com/{kind}/{workspace.team_id}/"
        f"{secrets.randbelow(10**12)}/{secrets.token_urlsafe(18)}"
    )


def _user_block(user_id: str, user_name: str | None, workspace: SandboxWorkspace) -> dict[str, Any]:
    _require_id(user_id, ("U", "W"), "user_id")
    name = user_name or user_id.lower()
    return {"id": user_id, "username": name, "name": name, "team_id": workspace.team_id}


def _team_block(workspace: SandboxWorkspace) -> dict[str, Any]:
    return {"id": workspace.team_id, "domain": workspace.team_domain}


def _require_id(value: str, prefixes: Sequence[str], name: str) -> None:
    if not isinstance(value, str) or not value or value[0] not in prefixes:
        raise ValueError(f"{name}={value!r} must be a Slack ID starting with one of {prefixes}")


def _channel_name(channel_id: str, workspace: SandboxWorkspace) -> str:
    if channel_id == workspace.channel_id:
        return workspace.channel_name
    if channel_id.startswith("D"):
        return "directmessage"
    return channel_id.lower()


# --------------------------------------------------------------------------- bodies


def slash_command_body(
    command: str,
    text: str,
    user_id: str,
    *,
    user_name: str | None = None,
    channel_id: str | None = None,
    channel_name: str | None = None,
    response_url: str | None = None,
    trigger_id: str | None = None,
    workspace: SandboxWorkspace = DEFAULT_WORKSPACE,
) -> str:
    """Form-encoded slash-command body with the flat fields, in the order Slack sends them.

    ``response_url`` defaults to a hooks.slack.com-shaped URL that nothing answers; pass
    ``MockSlackServer.response_url()`` when the handler under test will ``respond()``.
    """
    if not command.startswith("/") or len(command) < 2 or " " in command:
        raise ValueError(f"command must look like '/name', got {command!r}")
    _require_id(user_id, ("U", "W"), "user_id")
    channel = channel_id or workspace.channel_id
    fields = [
        ("token", workspace.verification_token),
        ("team_id", workspace.team_id),
        ("team_domain", workspace.team_domain),
        ("channel_id", channel),
        ("channel_name", channel_name or _channel_name(channel, workspace)),
        ("user_id", user_id),
        ("user_name", user_name or user_id.lower()),
        ("command", command),
        ("text", text),
        ("api_app_id", workspace.api_app_id),
        ("is_enterprise_install", "false"),
        ("response_url", response_url or _default_response_url(workspace, "commands")),
        ("trigger_id", trigger_id or new_trigger_id()),
    ]
    return urlencode(fields)


def interaction_body(payload: Mapping[str, Any]) -> str:
    """Form body ``payload=<json>`` as Slack posts every interactivity payload."""
    if not isinstance(payload.get("type"), str):
        raise ValueError("an interaction payload needs a string 'type'")
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))})


def button_action(
    action_id: str,
    value: str,
    *,
    block_id: str = "actions",
    text: str | None = None,
) -> dict[str, Any]:
    """One ``actions[]`` entry for a clicked button."""
    if not action_id:
        raise ValueError("action_id must not be empty")
    return {
        "type": "button",
        "action_id": action_id,
        "block_id": block_id,
        "text": {"type": "plain_text", "text": text or action_id, "emoji": True},
        "value": value,
        "action_ts": _now_ts(),
    }


def block_actions_payload(
    actions: Sequence[Mapping[str, Any]],
    *,
    user_id: str,
    user_name: str | None = None,
    message: Mapping[str, Any] | None = None,
    channel_id: str | None = None,
    is_ephemeral: bool = False,
    view: Mapping[str, Any] | None = None,
    response_url: str | None = None,
    trigger_id: str | None = None,
    workspace: SandboxWorkspace = DEFAULT_WORKSPACE,
) -> dict[str, Any]:
    """A ``block_actions`` payload for a click in a message or in a view (modal/Home).

    Give either ``message`` (a dict with at least ``ts``; ``channel_id`` defaults to the
    workspace channel) or ``view`` (a dict with ``id``), never both: Slack sends a message
    container with ``channel``/``message``/``response_url``, or a view container with the
    live ``view`` and its ``state``. Bolt routes on ``actions[0].action_id``.
    """
    if not actions:
        raise ValueError("block_actions needs at least one action")
    normalised: list[dict[str, Any]] = []
    for action in actions:
        if not action.get("action_id") or not action.get("type"):
            raise ValueError(f"each action needs 'action_id' and 'type', got {dict(action)!r}")
        entry = dict(action)
        entry.setdefault("block_id", "actions")
        entry.setdefault("action_ts", _now_ts())
        normalised.append(entry)
    if (message is None) == (view is None):
        raise ValueError("give exactly one of message= or view=")

    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user_block(user_id, user_name, workspace),
        "api_app_id": workspace.api_app_id,
        "token": workspace.verification_token,
        "trigger_id": trigger_id or new_trigger_id(),
        "team": _team_block(workspace),
        "enterprise": None,
        "is_enterprise_install": False,
    }
    if message is not None:
        message_ts = message.get("ts")
        if not isinstance(message_ts, str) or not message_ts:
            raise ValueError("message must carry its 'ts'")
        channel = channel_id or workspace.channel_id
        payload.update(
            {
                "container": {
                    "type": "message",
                    "message_ts": message_ts,
                    "channel_id": channel,
                    "is_ephemeral": is_ephemeral,
                },
                "channel": {"id": channel, "name": _channel_name(channel, workspace)},
                "message": dict(message),
                "state": {"values": {}},
                "response_url": response_url or _default_response_url(workspace, "actions"),
            }
        )
    elif view is not None:
        view_id = view.get("id")
        if not isinstance(view_id, str) or not view_id:
            raise ValueError("view must carry its 'id'")
        live_view = dict(view)
        live_view.setdefault("state", {"values": {}})
        payload.update(
            {
                "container": {"type": "view", "view_id": view_id},
                "view": live_view,
                "state": live_view["state"],
            }
        )
    payload["actions"] = normalised
    return payload


def _check_state_values(values: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> None:
    for block_id, by_action in values.items():
        if not isinstance(by_action, Mapping) or not by_action:
            raise ValueError(f"state block {block_id!r} must map action_id -> state value")
        for action_id, state_value in by_action.items():
            if not isinstance(state_value, Mapping) or not isinstance(state_value.get("type"), str):
                raise ValueError(
                    f"state value {block_id}.{action_id} needs a 'type' "
                    "(e.g. plain_text_input, static_select, checkboxes)"
                )


def view_submission_payload(
    view: Mapping[str, Any],
    values: Mapping[str, Mapping[str, Mapping[str, Any]]],
    *,
    user_id: str,
    user_name: str | None = None,
    response_urls: Sequence[Mapping[str, str]] = (),
    trigger_id: str | None = None,
    workspace: SandboxWorkspace = DEFAULT_WORKSPACE,
) -> dict[str, Any]:
    """A ``view_submission`` payload for ``view`` with ``state.values`` set to ``values``.

    ``values`` uses Slack's layout ``{block_id: {action_id: {"type": ..., <value keys>}}}``.
    ``view`` may be what ``views.open`` returned (e.g. ``MockSlackServer.view(id)``) or a
    builder's output: a missing ``id``/``hash`` is filled in the way Slack would have.
    """
    if view.get("type") != "modal":
        raise ValueError("only modal views can be submitted")
    callback_id = view.get("callback_id")
    if not isinstance(callback_id, str) or not callback_id:
        raise ValueError("the submitted view needs a callback_id (Bolt routes on it)")
    _check_state_values(values)
    submitted = dict(view)
    view_id = submitted.setdefault("id", _new_view_id())
    submitted.setdefault("hash", _new_view_hash())
    submitted.setdefault("team_id", workspace.team_id)
    submitted.setdefault("app_id", workspace.api_app_id)
    submitted.setdefault("app_installed_team_id", workspace.team_id)
    submitted.setdefault("bot_id", workspace.bot_id)
    submitted.setdefault("private_metadata", "")
    submitted.setdefault("external_id", "")
    submitted.setdefault("root_view_id", view_id)
    submitted.setdefault("previous_view_id", None)
    submitted["state"] = {"values": {k: dict(v) for k, v in values.items()}}
    return {
        "type": "view_submission",
        "team": _team_block(workspace),
        "user": _user_block(user_id, user_name, workspace),
        "api_app_id": workspace.api_app_id,
        "token": workspace.verification_token,
        "trigger_id": trigger_id or new_trigger_id(),
        "view": submitted,
        "response_urls": [dict(item) for item in response_urls],
        "enterprise": None,
        "is_enterprise_install": False,
    }


def block_suggestion_payload(
    action_id: str,
    value: str,
    *,
    block_id: str,
    user_id: str,
    user_name: str | None = None,
    view: Mapping[str, Any] | None = None,
    channel_id: str | None = None,
    message_ts: str | None = None,
    workspace: SandboxWorkspace = DEFAULT_WORKSPACE,
) -> dict[str, Any]:
    """A ``block_suggestion`` (external-select options load) for the typed ``value``.

    Inside a modal pass ``view`` (with ``id``); in a message pass ``channel_id`` and
    ``message_ts``. Bolt's ``@app.options(action_id)`` matches on ``action_id``.
    """
    if not action_id or not block_id:
        raise ValueError("action_id and block_id must not be empty")
    payload: dict[str, Any] = {
        "type": "block_suggestion",
        "user": _user_block(user_id, user_name, workspace),
        "team": _team_block(workspace),
        "api_app_id": workspace.api_app_id,
        "token": workspace.verification_token,
        "action_id": action_id,
        "block_id": block_id,
        "value": value,
        "enterprise": None,
        "is_enterprise_install": False,
    }
    if view is not None:
        view_id = view.get("id")
        if not isinstance(view_id, str) or not view_id:
            raise ValueError("view must carry its 'id'")
        payload["container"] = {"type": "view", "view_id": view_id}
        payload["view"] = dict(view)
    elif channel_id is not None and message_ts is not None:
        payload["container"] = {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": False,
        }
        payload["channel"] = {"id": channel_id, "name": _channel_name(channel_id, workspace)}
    else:
        raise ValueError("give view= (modal) or channel_id= and message_ts= (message)")
    return payload


def event_envelope(
    event: Mapping[str, Any],
    *,
    event_id: str | None = None,
    event_time: int | None = None,
    workspace: SandboxWorkspace = DEFAULT_WORKSPACE,
) -> str:
    """JSON Events API ``event_callback`` envelope around ``event``.

    Reuse ``event_id`` to simulate Slack re-delivering the same event (it stays identical
    across retries, which is what dedupe keys on).
    """
    if not isinstance(event.get("type"), str) or not event["type"]:
        raise ValueError("an event needs a string 'type'")
    envelope = {
        "token": workspace.verification_token,
        "team_id": workspace.team_id,
        "context_team_id": workspace.team_id,
        "context_enterprise_id": None,
        "api_app_id": workspace.api_app_id,
        "event": dict(event),
        "type": "event_callback",
        "event_id": event_id or _new_event_id(),
        "event_time": int(time.time()) if event_time is None else event_time,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": workspace.team_id,
                "user_id": workspace.bot_user_id,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
    }
    return json.dumps(envelope, separators=(",", ":"))


# --------------------------------------------------------------------------- client


class SignedSlackClient:
    """Posts Slack-shaped, freshly signed requests to our web app.

    ``http`` carries the app's base URL (``httpx.Client(base_url=...)``, or
    ``transport=httpx.WSGITransport(app=flask_app)`` for an in-process app). Every post is
    signed at send time with ``clock()`` so the timestamp is always inside Slack's window,
    unless a test passes an explicit ``timestamp``.
    """

    def __init__(
        self,
        http: httpx.Client,
        signing_secret: str,
        *,
        path: str = "/slack/events",
        workspace: SandboxWorkspace = DEFAULT_WORKSPACE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not signing_secret.strip():
            raise ValueError("signing_secret must not be empty or blank")
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        self._http = http
        self._secret = signing_secret
        self._path = path
        self._clock = clock
        self.workspace = workspace

    def post(
        self,
        body: str | bytes,
        *,
        content_type: str,
        timestamp: int | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        path: str | None = None,
    ) -> httpx.Response:
        """Sign ``body`` and POST it; retry headers are added when ``retry_num`` is given."""
        raw = body.encode("utf-8") if isinstance(body, str) else body
        ts = int(self._clock()) if timestamp is None else timestamp
        headers = {"Content-Type": content_type, **sign(self._secret, raw, ts)}
        headers.update(_retry_headers(retry_num, retry_reason))
        if extra_headers:
            headers.update(extra_headers)
        return self._http.post(path or self._path, content=raw, headers=headers)

    def command(
        self,
        command: str,
        text: str,
        user_id: str,
        **fields: Any,
    ) -> httpx.Response:
        """POST a slash command; ``fields`` go to :func:`slash_command_body`."""
        fields.setdefault("workspace", self.workspace)
        body = slash_command_body(command, text, user_id, **fields)
        return self.post(body, content_type=FORM_CONTENT_TYPE)

    def interaction(self, payload: Mapping[str, Any]) -> httpx.Response:
        """POST an interactivity payload (block_actions, view_submission, block_suggestion...)."""
        return self.post(interaction_body(payload), content_type=FORM_CONTENT_TYPE)

    def event(
        self,
        event: Mapping[str, Any],
        *,
        event_id: str | None = None,
        event_time: int | None = None,
        retry_num: int | None = None,
        retry_reason: str | None = None,
    ) -> httpx.Response:
        """POST an Events API delivery; pass the same ``event_id`` plus ``retry_num`` to replay."""
        body = event_envelope(event, event_id=event_id, event_time=event_time, workspace=self.workspace)
        return self.post(
            body,
            content_type=JSON_CONTENT_TYPE,
            retry_num=retry_num,
            retry_reason=retry_reason,
        )


def _retry_headers(retry_num: int | None, retry_reason: str | None) -> dict[str, str]:
    if retry_num is None:
        if retry_reason is not None:
            raise ValueError("retry_reason needs retry_num")
        return {}
    if isinstance(retry_num, bool) or not isinstance(retry_num, int) or retry_num < 1:
        raise ValueError(f"retry_num must be an int >= 1, got {retry_num!r}")
    reason = retry_reason or "http_timeout"
    if reason not in RETRY_REASONS:
        raise ValueError(f"retry_reason must be one of {sorted(RETRY_REASONS)}, got {reason!r}")
    return {RETRY_NUM_HEADER: str(retry_num), RETRY_REASON_HEADER: reason}
