"""Listeners for "Link to NetSuite Record", the customer search, the pick modal and the sync buttons."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from blocks.applications import notice_modal
from blocks.ids import ActionId, BlockId, CallbackId
from blocks.metadata import MetadataError, load_pick, load_ref, load_sync_ref
from blocks.sync import (
    EXISTING,
    NEW,
    NOW,
    customer_options,
    duplicate_warning,
    link_modal,
    pick_modal,
    syncs_message,
)
from bot.decisions.policy import Role
from bot.decisions.service import NotAllowed
from bot.sync.service import InvalidSyncRequest
from handlers.common import button_application_id, open_modal, tell

if TYPE_CHECKING:
    from bot.container import Container

log = structlog.get_logger(__name__)
DECIDED = ("approved", "rejected")
FORM_BLOCK = {"mode": BlockId.LINK_MODE, "customer": BlockId.LINK_CUSTOMER, "fields": BlockId.SYNC_FIELDS}


def register(app: App, container: Container) -> None:
    sync = container.sync
    decisions = container.decisions
    roles = container.roles
    suggester = container.suggester
    search = container.customer_search
    notifier = container.notifier
    assert sync is not None and decisions is not None and roles is not None
    assert suggester is not None and search is not None
    schedule = sync.options.schedule
    schedule_text = None if schedule.instant else container.settings.sync_schedule

    def allowed(
        body: dict[str, Any], respond: Respond | None, client: WebClient, action: str, app_id: int
    ) -> bool:
        actor = roles.actor(body["user"]["id"])
        if actor.has(Role.ANALYST, Role.MANAGER):
            return True
        why = f"Only a credit analyst or manager can {action}."
        decisions.record_refusal(actor, action, app_id, why)
        tell(body, respond, client, why)
        return False

    def open_pick(
        body: dict[str, Any], respond: Respond | None, client: WebClient, application_id: int
    ) -> None:
        open_modal(body, respond, client, pick_modal(sync.comparison(application_id), schedule_text))

    @app.action(ActionId.LINK)
    def link_clicked(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        app_id = button_application_id(body, respond, client)
        if app_id is None:
            return
        if not allowed(body, respond, client, "link applications to NetSuite", app_id):
            return
        state = decisions.get(app_id)
        if state.application.status not in DECIDED:
            tell(body, respond, client, "Approve or reject the application first; then link it to NetSuite.")
            return
        # Open at once (the trigger lives 3 s), then add the suggestions, which take a few searches.
        view = open_modal(body, respond, client, link_modal(state.application, []))
        if view is None:
            return
        try:
            suggestions = suggester.for_application_id(app_id)
            if suggestions:
                client.views_update(
                    view_id=view["id"], hash=view.get("hash"), view=link_modal(state.application, suggestions)
                )
        except SlackApiError as exc:  # hash_conflict: the person already changed the modal; leave it
            log.info("slack.link_modal_not_updated", error=str(exc.response.get("error")))

    @app.options(ActionId.LINK_CUSTOMER)
    def customer_options_load(ack: Ack, body: dict[str, Any]) -> None:
        query = (body.get("value") or "").strip()
        try:
            app_id = load_ref((body.get("view") or {}).get("private_metadata")).application_id
        except MetadataError:
            ack(options=[])
            return
        # The search reads the whole NetSuite mirror: only people who may link get its answers. The
        # explanation is the one option shown (its value is no customer id, so it cannot be linked).
        actor = roles.actor(body["user"]["id"])
        if not actor.has(Role.ANALYST, Role.MANAGER):
            why = "Only a credit analyst or manager can search NetSuite customers."
            decisions.record_refusal(actor, "search NetSuite customers", app_id, why)
            ack(options=[{"text": {"type": "plain_text", "text": why}, "value": "refused"}])
            return
        suggestions = suggester.for_application_id(app_id) if not query else []
        matches = search.search(query, limit=50) if query else []
        answer = customer_options(suggestions, matches)
        if "option_groups" in answer:
            ack(option_groups=answer["option_groups"])
        else:
            ack(options=answer["options"])

    @app.view(CallbackId.LINK)
    def link_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        try:
            app_id = load_ref(view.get("private_metadata")).application_id
        except MetadataError:
            ack(
                response_action="update",
                view=notice_modal("Credit Desk", "This form is out of date; start again."),
            )
            return
        values = view.get("state", {}).get("values", {})
        mode = (
            (values.get(BlockId.LINK_MODE, {}).get(ActionId.LINK_MODE) or {}).get("selected_option") or {}
        ).get("value")
        picked = (values.get(BlockId.LINK_CUSTOMER, {}).get(ActionId.LINK_CUSTOMER) or {}).get(
            "selected_option"
        )
        confirmed = bool(
            (values.get(BlockId.LINK_CONFIRM_NEW, {}).get(ActionId.LINK_CONFIRM_NEW) or {}).get(
                "selected_options"
            )
        )
        actor = roles.actor(body["user"]["id"])
        if mode not in (NEW, EXISTING):
            ack(
                response_action="errors",
                errors={BlockId.LINK_MODE: "Choose New customer or Existing customer."},
            )
            return
        customer_id: int | None = None
        if mode == EXISTING:
            if not picked or not str(picked.get("value", "")).isdigit():
                ack(response_action="errors", errors={BlockId.LINK_CUSTOMER: "Choose the NetSuite customer."})
                return
            customer_id = int(picked["value"])
        elif not confirmed:
            likely = suggester.likely_duplicates(app_id)
            if likely:
                ack(response_action="errors", errors={BlockId.LINK_MODE: duplicate_warning(likely)})
                return
        try:
            sync.link(app_id, actor, mode, customer_id)
            comparison = sync.comparison(app_id)
        except InvalidSyncRequest as exc:
            ack(response_action="errors", errors={FORM_BLOCK.get(exc.field, BlockId.LINK_MODE): str(exc)})
            return
        except NotAllowed as exc:
            ack(response_action="update", view=notice_modal("Not allowed", str(exc)))
            return
        ack(response_action="update", view=pick_modal(comparison, schedule_text))

    @app.view(CallbackId.PICK)
    def pick_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        try:
            meta = load_pick(view.get("private_metadata"))
        except MetadataError:
            ack(
                response_action="update",
                view=notice_modal("Credit Desk", "This form is out of date; start again."),
            )
            return
        values = view.get("state", {}).get("values", {})
        ticked = (values.get(BlockId.SYNC_FIELDS, {}).get(ActionId.SYNC_FIELDS) or {}).get(
            "selected_options"
        ) or []
        when_choice = (
            (values.get(BlockId.SYNC_WHEN, {}).get(ActionId.SYNC_WHEN) or {}).get("selected_option") or {}
        ).get("value", NOW)
        actor = roles.actor(body["user"]["id"])
        try:
            requested = sync.request(
                meta.a,
                actor,
                [o["value"] for o in ticked],
                meta.seen,
                now=when_choice == NOW or schedule.instant,
            )
        except InvalidSyncRequest as exc:
            ack(response_action="errors", errors={BlockId.SYNC_FIELDS: str(exc)})
            return
        except NotAllowed as exc:
            ack(response_action="update", view=notice_modal("Not allowed", str(exc)))
            return
        ack()
        if notifier is not None and requested.owed is not None:  # a new request owes its thread a line
            container.later(notifier.deliver, requested.application_id, requested.owed)

    @app.action(ActionId.SYNC_REVIEW)
    def review_clicked(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        app_id = button_application_id(body, respond, client)
        if app_id is None:
            return
        if allowed(body, respond, client, "sync to NetSuite", app_id):
            open_pick(body, respond, client, app_id)

    def sync_button(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient, verb: str) -> None:
        ack()
        try:
            sync_id = load_sync_ref(body["actions"][0].get("value")).s
        except (MetadataError, KeyError, IndexError):
            tell(body, respond, client, "That button no longer works. Try `/credit syncs`.")
            return
        actor = roles.actor(body["user"]["id"])
        try:
            changed = {"now": sync.sync_now, "cancel": sync.cancel, "retry": sync.retry}[verb](sync_id, actor)
        except (NotAllowed, InvalidSyncRequest, LookupError) as exc:
            tell(body, respond, client, str(exc))
            return
        log.info("sync.button", verb=verb, sync_id=sync_id, status=str(changed.status))
        if body.get("response_url"):
            respond(
                blocks=syncs_message(sync.pending_and_failed(50)),
                replace_original=True,
                text="NetSuite syncs",
            )

    @app.action(ActionId.SYNC_RUN_NOW)
    def run_now_clicked(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        sync_button(ack, body, respond, client, "now")

    @app.action(ActionId.SYNC_CANCEL)
    def cancel_clicked(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        sync_button(ack, body, respond, client, "cancel")

    @app.action(ActionId.SYNC_RETRY)
    def retry_clicked(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        sync_button(ack, body, respond, client, "retry")
