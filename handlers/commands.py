"""`/credit`: the queue, one application, help. Answered ephemerally in the ack itself (fast reads)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App

from blocks.applications import application_message, application_text
from blocks.queue import HELP_TEXT, MAX_ITEMS_MESSAGE, help_message, matches_message, pending_message
from blocks.sync import syncs_message
from bot.decisions.policy import Role

if TYPE_CHECKING:
    from bot.container import Container

CREDIT_COMMAND = "/credit"


def register(app: App, container: Container) -> None:
    decisions = container.decisions
    applications = container.applications
    roles = container.roles
    assert decisions is not None and applications is not None and roles is not None

    @app.command(CREDIT_COMMAND)
    def credit(ack: Ack, command: dict[str, Any]) -> None:
        text = (command.get("text") or "").strip()
        verb, _, rest = text.partition(" ")
        verb = verb.lower()
        if verb in ("", "help"):
            ack(text=HELP_TEXT, blocks=help_message(), response_type="ephemeral")
            return
        actor = roles.actor(command["user_id"])
        if not actor.has(Role.ANALYST, Role.MANAGER, Role.ADMIN):
            why = "`/credit` is for the credit team (analysts, managers and admins). Ask an admin to add you."
            decisions.record_refusal(actor, f"/credit {verb}", None, why)
            ack(text=why, response_type="ephemeral")
            return
        if verb == "pending":
            queues = applications.queues(("submitted", "awaiting_manager"), MAX_ITEMS_MESSAGE)
            (submitted, submitted_total), (awaiting, awaiting_total) = (
                queues["submitted"],
                queues["awaiting_manager"],
            )
            ack(
                text=f"{submitted_total} waiting for an analyst, {awaiting_total} for a manager",
                blocks=pending_message(
                    submitted=submitted,
                    submitted_total=submitted_total,
                    awaiting=awaiting,
                    awaiting_total=awaiting_total,
                    is_manager=actor.has(Role.MANAGER),
                ),
                response_type="ephemeral",
            )
            return
        if verb == "show":
            found = applications.find(rest)
            if len(found) == 1:
                state = decisions.get(found[0].id)
                ack(
                    text=application_text(state.application),
                    blocks=application_message(state.application, state.decisions),
                    response_type="ephemeral",
                )
            else:
                ack(
                    text=f"{len(found)} matches",
                    blocks=matches_message(rest, found),
                    response_type="ephemeral",
                )
            return
        if verb == "syncs" and container.sync is not None:
            syncs = container.sync.pending_and_failed(50)
            ack(
                text=f"{len(syncs)} pending or failed syncs",
                blocks=syncs_message(syncs),
                response_type="ephemeral",
            )
            return
        ack(text=f"I don't know `/credit {verb}`.\n{HELP_TEXT}", response_type="ephemeral")
