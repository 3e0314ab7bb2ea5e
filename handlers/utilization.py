"""`/utilization`, its Next/Previous buttons, "Request credit increase" and the request modal; and the reps'
App Home section (`home_blocks`, called by `handlers.home`).

Each listener parses, lets `UtilizationService` decide who may see what, answers within Slack's 3 s and builds
blocks with `blocks.utilization`. The command answers in its own ack (reads only; the Slack email lookup is
cached after a person's first use).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import structlog
from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from blocks.utilization import (
    INCREASE_CALLBACK,
    INPUT_ACTION,
    MODAL_FIELD_BLOCKS,
    MetadataError,
    UtilizationAction,
    UtilizationBlock,
    chart_counts,
    chart_png,
    dashboard_message,
    dashboard_text,
    home_section,
    increase_done_modal,
    increase_modal,
    load_customer_ref,
    load_page_ref,
    notice_message,
    notice_modal,
)
from bot.utilization.service import Dashboard, Notice, UtilizationService
from handlers.common import open_modal

if TYPE_CHECKING:
    from bot.container import Container

log = structlog.get_logger(__name__)

UTILIZATION_COMMAND = "/utilization"
CHART_CACHE_SECONDS = 24 * 3600


def _reply(answer: Dashboard | Notice) -> dict[str, Any]:
    if isinstance(answer, Notice):
        return {"text": answer.text, "blocks": notice_message(answer)}
    return {"text": dashboard_text(answer), "blocks": dashboard_message(answer)}


def chart_file_id(service: UtilizationService, client: WebClient, dashboard: Dashboard) -> str | None:
    """Upload the dashboard's chart once per distinct picture (cached by content hash), or None on failure."""
    png = chart_png(chart_counts(dashboard))
    key = f"credit-desk:utilization:chart:{hashlib.sha256(png).hexdigest()[:32]}"
    cached = service.emails.redis.get(key)
    if cached is not None:
        return cached.decode() if isinstance(cached, bytes) else str(cached)
    try:
        response = client.files_upload_v2(
            content=png, filename="utilization.png", title="Customers by utilization"
        )
    except SlackApiError as exc:
        log.warning("utilization.chart_upload_failed", error=exc.response.get("error"))
        return None
    uploaded = response.get("file") or (response.get("files") or [{}])[0]
    file_id = uploaded.get("id") if isinstance(uploaded, dict) else None
    if file_id:
        service.emails.redis.set(key, file_id, ex=CHART_CACHE_SECONDS)
    return str(file_id) if file_id else None


def home_blocks(container: Container, user_id: str, client: WebClient) -> list[dict[str, Any]]:
    """The reps' App Home section ([] for people who are not reps). Never raises: Home must still publish."""
    service = container.utilization
    if service is None:
        return []
    try:
        dashboard = service.home(user_id, client)
        if dashboard is None:
            return []
        file_id = (
            chart_file_id(service, client, dashboard) if service.options.chart and dashboard.total else None
        )
        return home_section(dashboard, file_id)
    except Exception:
        log.exception("utilization.home_failed", user=user_id)
        return []


def _value(values: dict[str, Any], block_id: str) -> str:
    return str((values.get(block_id, {}).get(INPUT_ACTION, {}) or {}).get("value") or "")


def register(app: App, container: Container) -> None:
    service = container.utilization
    assert service is not None

    @app.command(UTILIZATION_COMMAND)
    def utilization(ack: Ack, command: dict[str, Any], client: WebClient) -> None:
        answer = service.answer(command["user_id"], command.get("text") or "", client)
        ack(response_type="ephemeral", **_reply(answer))

    def page(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        try:
            ref = load_page_ref(body["actions"][0].get("value"))
        except (MetadataError, KeyError, IndexError):
            respond(text="That button no longer works. Run `/utilization` again.", replace_original=False)
            return
        answer = service.answer(body["user"]["id"], ref.q, client, page=ref.p)
        respond(replace_original=True, **_reply(answer))

    app.action(UtilizationAction.NEXT)(page)
    app.action(UtilizationAction.PREVIOUS)(page)

    @app.action(UtilizationAction.REQUEST_INCREASE)
    def request_clicked(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        try:
            ref = load_customer_ref(body["actions"][0].get("value"))
        except (MetadataError, KeyError, IndexError):
            open_modal(body, None, client, notice_modal("That button no longer works. Run `/utilization`."))
            return
        found = service.prefill(body["user"]["id"], ref.c, client)
        view = notice_modal(found.text) if isinstance(found, Notice) else increase_modal(found)
        open_modal(body, None, client, view)

    @app.view(INCREASE_CALLBACK)
    def request_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        try:
            ref = load_customer_ref(view.get("private_metadata"))
        except MetadataError:
            ack(response_action="update", view=notice_modal("This form is out of date; start again."))
            return
        values = view.get("state", {}).get("values", {})
        result = service.request_increase(
            body["user"]["id"],
            ref.c,
            client,
            new_limit=_value(values, UtilizationBlock.LIMIT),
            federal_id=_value(values, UtilizationBlock.FEDERAL_ID),
            contact_name=_value(values, UtilizationBlock.CONTACT_NAME),
            contact_email=_value(values, UtilizationBlock.CONTACT_EMAIL),
            reason=_value(values, UtilizationBlock.REASON) or None,
            view_id=str(view.get("id") or "no-view"),
        )
        if isinstance(result, Notice):
            ack(response_action="update", view=notice_modal(result.text))
        elif result.errors:
            ack(
                response_action="errors",
                errors={MODAL_FIELD_BLOCKS[k]: v[:150] for k, v in result.errors.items()},
            )
        else:
            assert result.application_id is not None
            ack(
                response_action="update",
                view=increase_done_modal(result.application_id, created=result.created),
            )
