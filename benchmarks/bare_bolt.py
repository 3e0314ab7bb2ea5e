"""The baseline for benchmarks/slack_bench.py: a bare Bolt app whose listeners only ack.

Same stack as Credit Desk's web process (Flask + Bolt's adapter under gunicorn gthread), same routes and ids,
no work: the difference between the two is what Credit Desk's handlers cost.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, request
from slack_bolt import Ack, App
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_sdk import WebClient

from blocks.ids import ActionId, CallbackId


def create_app() -> Flask:
    bolt = App(
        client=WebClient(
            token="xoxb-bare",  # noqa: S106 - the mock Slack accepts any xoxb- token
            base_url=os.environ.get("SLACK_API_URL", "http://127.0.0.1:9/api/"),
        ),
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        token_verification_enabled=False,
    )

    def only_ack(ack: Ack, **_: Any) -> None:
        ack()

    for action in ActionId:
        bolt.action(action)(only_ack)
    for callback in CallbackId:
        bolt.view(callback)(only_ack)
    bolt.command("/credit")(only_ack)
    handler = SlackRequestHandler(bolt)
    flask = Flask("bare")

    @flask.post("/slack/events")
    def events() -> Any:
        return handler.handle(request)

    @flask.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return flask
