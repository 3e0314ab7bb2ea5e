"""Listeners for deciding on applications: Approve, Reject, Details, and the managers' buttons.

Each listener parses the payload, resolves the actor's roles, answers Slack within its 3 s (opening a modal
first where there is one) and calls the decision service; the notifier then updates Slack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from blocks.applications import approve_modal, details_modal, notice_modal, reject_modal
from blocks.ids import ActionId, BlockId, CallbackId
from blocks.metadata import MetadataError, load_modal
from blocks.text import user, when
from bot.decisions.policy import Actor, Role
from bot.decisions.service import Decided, DecisionView, InvalidDecision, NotAllowed, NotFound, Outcome
from handlers.common import button_application_id, open_modal, tell

if TYPE_CHECKING:
    from bot.container import Container

log = structlog.get_logger(__name__)

VIEWER_ROLES = (Role.ANALYST, Role.MANAGER, Role.ADMIN)


def already_decided_text(application_id: int, status: str, last: DecisionView | None) -> str:
    status = status.replace("_", " ")
    if last is None:
        return f"Application #{application_id} is {status}."
    return f"Application #{application_id} is already {status}: {user(last.actor)}, {when(last.decided_at)}."


def register(app: App, container: Container) -> None:
    decisions = container.decisions
    roles = container.roles
    notifier = container.notifier
    settings = container.settings
    assert decisions is not None and roles is not None

    def actor_of(body: dict[str, Any]) -> Actor:
        return roles.actor(body["user"]["id"])

    def publish(decided: Decided) -> None:
        """Deliver the decision's Slack updates after the answer. They are owed in the database (its outbox
        row), so a process that dies first loses nothing: the repair pass delivers them."""
        if notifier is not None and decided.owed is not None:
            container.later(notifier.deliver, decided.application_id, decided.owed)

    def open_decision_modal(
        ack: Ack,
        body: dict[str, Any],
        respond: Respond,
        client: WebClient,
        *,
        approve: bool,
        as_manager: bool,
    ) -> None:
        ack()
        app_id = button_application_id(body, respond, client)
        if app_id is None:
            return
        actor = actor_of(body)
        action = "approve" if approve else "reject"
        needed = (Role.MANAGER,) if as_manager else (Role.ANALYST, Role.MANAGER)
        if not actor.has(*needed):
            why = f"Only a credit {' or '.join(r.value for r in needed)} can {action} applications."
            decisions.record_refusal(actor, action, app_id, why)
            tell(body, respond, client, why)
            return
        try:
            state = decisions.get(app_id)
        except NotFound as exc:
            tell(body, respond, client, str(exc))
            return
        open_status = "awaiting_manager" if as_manager else "submitted"
        manager_on_waiting = actor.has(Role.MANAGER) and state.application.status == "awaiting_manager"
        if state.application.status != open_status and not manager_on_waiting:
            text = already_decided_text(app_id, state.application.status, state.decision)
            tell(body, respond, client, text)
            return
        as_manager = as_manager or manager_on_waiting
        view = (
            approve_modal(
                state.application,
                decisions.available_terms(),
                settings.analyst_approval_limit,
                as_manager=as_manager,
            )
            if approve
            else reject_modal(state.application, as_manager=as_manager)
        )
        open_modal(body, respond, client, view)

    @app.action(ActionId.APPROVE)
    def approve_clicked(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        open_decision_modal(ack, body, respond, client, approve=True, as_manager=False)

    @app.action(ActionId.REJECT)
    def reject_clicked(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        open_decision_modal(ack, body, respond, client, approve=False, as_manager=False)

    @app.action(ActionId.MANAGER_REJECT)
    def manager_reject_clicked(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        open_decision_modal(ack, body, respond, client, approve=False, as_manager=True)

    @app.action(ActionId.MANAGER_CONFIRM)
    def manager_confirm_clicked(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        app_id = button_application_id(body, respond, client)
        if app_id is None:
            return
        try:
            outcome = decisions.confirm(app_id, actor_of(body))
        except (NotAllowed, NotFound) as exc:
            tell(body, respond, client, str(exc))
            return
        if outcome.outcome == Outcome.ALREADY_DECIDED:
            tell(body, respond, client, already_decided_text(app_id, outcome.status, outcome.decision))
        publish(outcome)

    @app.action(ActionId.DETAILS)
    def details_clicked(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        app_id = button_application_id(body, respond, client)
        if app_id is None:
            return
        actor = actor_of(body)
        if not actor.has(*VIEWER_ROLES):
            why = "Only the credit team can see application details."
            decisions.record_refusal(actor, "details", app_id, why)
            tell(body, respond, client, why)
            return
        try:
            state = decisions.get(app_id)
        except NotFound as exc:
            tell(body, respond, client, str(exc))
            return
        open_modal(body, respond, client, details_modal(state.application, state.decisions))

    def submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], *, approve: bool) -> None:
        try:
            meta = load_modal(view.get("private_metadata"))
        except MetadataError:
            log.warning("slack.bad_private_metadata", callback_id=view.get("callback_id"))
            ack(
                response_action="update",
                view=notice_modal("Credit Desk", "This form is out of date; start again."),
            )
            return
        values = view.get("state", {}).get("values", {})
        actor = actor_of(body)
        try:
            if approve:
                selected = (values.get(BlockId.TERMS, {}).get(ActionId.TERMS, {}) or {}).get(
                    "selected_option"
                )
                if not selected:
                    ack(response_action="errors", errors={BlockId.TERMS: "Choose the terms."})
                    return
                outcome = decisions.approve(
                    meta.application_id,
                    actor,
                    terms=str(selected.get("value", "")),
                    credit_limit=str(
                        values.get(BlockId.CREDIT_LIMIT, {}).get(ActionId.CREDIT_LIMIT, {}).get("value") or ""
                    ),
                    note=values.get(BlockId.NOTE, {}).get(ActionId.NOTE, {}).get("value"),
                )
            else:
                outcome = decisions.reject(
                    meta.application_id,
                    actor,
                    reason=str(values.get(BlockId.REASON, {}).get(ActionId.REASON, {}).get("value") or ""),
                )
        except InvalidDecision as exc:
            block = {"terms": BlockId.TERMS, "credit_limit": BlockId.CREDIT_LIMIT, "note": BlockId.NOTE}.get(
                exc.field, BlockId.REASON
            )
            ack(response_action="errors", errors={block: str(exc)})
            return
        except (NotAllowed, NotFound) as exc:
            ack(response_action="update", view=notice_modal("Not allowed", str(exc)))
            return
        if outcome.outcome == Outcome.ALREADY_DECIDED:
            text = already_decided_text(outcome.application_id, outcome.status, outcome.decision)
            ack(response_action="update", view=notice_modal("Already decided", text))
            return
        ack()
        publish(outcome)

    @app.view(CallbackId.APPROVE)
    def approve_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        submitted(ack, body, view, approve=True)

    @app.view(CallbackId.REJECT)
    def reject_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        submitted(ack, body, view, approve=False)
