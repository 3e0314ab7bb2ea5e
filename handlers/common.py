"""What every interactive listener needs: answer where the click happened, read our button values."""

from __future__ import annotations

from typing import Any

import structlog
from slack_bolt import Respond
from slack_sdk import WebClient

from blocks.metadata import MetadataError, load_ref

log = structlog.get_logger(__name__)
STALE_BUTTON = "That button no longer works. Try `/credit show <id>`."


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
