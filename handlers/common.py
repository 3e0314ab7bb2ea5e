"""What every interactive listener needs: answer where the click happened, read our button values, open a
modal."""

from __future__ import annotations

import contextlib
from typing import Any

import structlog
from slack_bolt import Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from blocks.metadata import MetadataError, load_ref

log = structlog.get_logger(__name__)
STALE_BUTTON = "That button no longer works. Try `/credit show <id>`."
MODAL_NOT_OPENED = "Slack did not open that window (it is busy right now). Click again in a moment."


def tell(body: dict[str, Any], respond: Respond | None, client: WebClient, text: str) -> None:
    """An ephemeral answer where the click happened: the message's response_url, else a DM."""
    if respond is not None and body.get("response_url"):
        respond(text=text, response_type="ephemeral", replace_original=False)
    else:
        client.chat_postMessage(channel=body["user"]["id"], text=text)


def button_application_id(body: dict[str, Any], respond: Respond | None, client: WebClient) -> int | None:
    """The application a clicked button is about; None (the person told, the oddity logged) if unreadable."""
    try:
        return load_ref(body["actions"][0].get("value")).application_id
    except (MetadataError, KeyError, IndexError):
        log.warning("slack.bad_button_value", action=(body.get("actions") or [{}])[0].get("action_id"))
        tell(body, respond, client, STALE_BUTTON)
        return None


def open_modal(
    body: dict[str, Any], respond: Respond | None, client: WebClient, view: dict[str, Any]
) -> dict[str, Any] | None:
    """Open ``view`` for the click in ``body``: the opened view (its id and hash, for a later
    ``views.update``), or None if Slack refused (logged, and the person told if Slack lets us).

    A refused ``views.open`` is expected now and then: Slack answers 429 when the app opens too many modals,
    and a ``trigger_id`` dies 3 s after the click. Nothing is owed afterwards (the trigger cannot be used
    again; the person clicks again), so it is a warning, not a listener error.
    """
    try:
        opened = client.views_open(trigger_id=body["trigger_id"], view=view)
    except SlackApiError as exc:
        response = exc.response
        log.warning(
            "slack.modal_not_opened",
            callback_id=view.get("callback_id"),
            error=response.get("error") if response is not None else str(exc)[:200],
            status=response.status_code if response is not None else None,
        )
        with contextlib.suppress(SlackApiError):  # Slack may be refusing our messages too
            tell(body, respond, client, MODAL_NOT_OPENED)
        return None
    found = opened.get("view")
    return found if isinstance(found, dict) else {}
