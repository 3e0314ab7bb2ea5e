"""The queue of applications: App Home for analysts and managers, and `/credit` replies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from blocks.applications import approved_amount, business_title
from blocks.ids import ActionId
from blocks.metadata import ApplicationRef
from blocks.text import button, context, divider, esc, header, money, section, when
from bot.applications.schemas import ApplicationOut, QueueItem

MAX_ITEMS_HOME = 15  # 2 blocks an item: two lists stay well inside a view's 100 blocks
MAX_ITEMS_MESSAGE = 10  # 2 blocks an item plus a few: inside a message's 50 blocks


def _item(app: QueueItem | ApplicationOut, *, manager: bool, can_decide: bool) -> list[dict[str, Any]]:
    ref = ApplicationRef(a=app.id).dump()
    amount = money(app.requested_credit_limit.amount, app.requested_credit_limit.currency)
    shown = approved_amount(app) if manager and app.approved_credit_limit else amount
    terms = esc(app.approved_terms or app.requested_terms or "no terms given")
    text = f"*#{app.id} {esc(business_title(app))}*\n{terms} · {shown} · received {when(app.created_at)}"
    elements = []
    if can_decide:
        approve = ActionId.MANAGER_CONFIRM if manager else ActionId.APPROVE
        reject = ActionId.MANAGER_REJECT if manager else ActionId.REJECT
        elements += [
            button("Approve", approve, ref, style="primary"),
            button("Reject", reject, ref, style="danger"),
        ]
    elements.append(button("Details", ActionId.DETAILS, ref))
    return [section(text), {"type": "actions", "elements": elements}]


def _list(
    title: str,
    apps: Sequence[QueueItem] | Sequence[ApplicationOut],
    total: int,
    limit: int,
    *,
    manager: bool,
    can_decide: bool,
) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [section(f"*{title} ({total})*")]
    if not apps:
        blocks.append(context("Nothing waiting. :tada:"))
        return blocks
    for app in apps[:limit]:
        blocks += _item(app, manager=manager, can_decide=can_decide)
    if total > min(len(apps), limit):
        blocks.append(
            context(f"…and {total - min(len(apps), limit)} more. Oldest first; `/credit pending` lists them.")
        )
    return blocks


def home_view(
    *,
    is_analyst: bool,
    is_manager: bool,
    submitted: Sequence[QueueItem],
    submitted_total: int,
    awaiting: Sequence[QueueItem],
    awaiting_total: int,
    is_rep: bool = False,
) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [header("Credit Desk")]
    if not (is_analyst or is_manager or is_rep):
        blocks.append(
            section(
                "You have no Credit Desk role yet. An admin adds analysts and managers "
                "(`ANALYSTS` and `MANAGERS` settings: Slack user ids or user groups)."
            )
        )
    if is_analyst or is_manager:
        blocks += _list(
            "Waiting for an analyst",
            submitted,
            submitted_total,
            MAX_ITEMS_HOME,
            manager=False,
            can_decide=True,
        )
        blocks.append(divider())
        blocks += _list(
            "Waiting for a manager",
            awaiting,
            awaiting_total,
            MAX_ITEMS_HOME,
            manager=True,
            can_decide=is_manager,
        )
    blocks.append(context("`/credit help` lists the commands."))
    return {"type": "home", "blocks": blocks[:100]}


def pending_message(
    *,
    submitted: Sequence[QueueItem],
    submitted_total: int,
    awaiting: Sequence[QueueItem],
    awaiting_total: int,
    is_manager: bool,
) -> list[dict[str, Any]]:
    blocks = _list(
        "Waiting for an analyst",
        submitted,
        submitted_total,
        MAX_ITEMS_MESSAGE,
        manager=False,
        can_decide=True,
    )
    blocks.append(divider())
    blocks += _list(
        "Waiting for a manager",
        awaiting,
        awaiting_total,
        MAX_ITEMS_MESSAGE,
        manager=True,
        can_decide=is_manager,
    )
    return blocks[:50]


def matches_message(query: str, apps: Sequence[ApplicationOut]) -> list[dict[str, Any]]:
    if not apps:
        return [
            section(
                f"No application matches “{esc(query)}”. Try an id (`/credit show 12`) or part of a name."
            )
        ]
    blocks: list[dict[str, Any]] = [section(f"*{len(apps)} applications match “{esc(query)}”*")]
    for app in apps[:MAX_ITEMS_MESSAGE]:
        ref = ApplicationRef(a=app.id).dump()
        blocks.append(
            section(
                f"*#{app.id} {esc(business_title(app))}* · {esc(app.status.replace('_', ' '))} · "
                f"received {when(app.created_at)}",
                accessory=button("Details", ActionId.DETAILS, ref),
            )
        )
    return blocks[:50]


HELP_TEXT = (
    "*Credit Desk commands*\n"
    "• `/credit pending`: applications waiting for an analyst or a manager\n"
    "• `/credit show <id or name>`: one application, with Approve, Reject and Details\n"
    "• `/credit syncs`: NetSuite syncs that are pending or failed, with Sync now, Cancel and Retry\n"
    "• `/credit help`: this message\n"
    "New applications are posted in the analysts' channel; approvals above the analyst band go to managers."
)


def help_message() -> list[dict[str, Any]]:
    return [section(HELP_TEXT)]
