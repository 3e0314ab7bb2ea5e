"""Block Kit for credit applications: the analysts' message, the decision modals, the manager's request.

Pure functions from domain objects to JSON-ready dicts. Nothing here talks to Slack or the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from blocks.ids import ActionId, BlockId, CallbackId
from blocks.metadata import ApplicationRef, DecisionModalMeta
from blocks.text import (
    button,
    context,
    cut,
    divider,
    esc,
    fields,
    header,
    money,
    option,
    plain,
    section,
    user,
    when,
)
from bot.applications.schemas import Address, ApplicationOut, QueueItem
from bot.decisions.service import DecisionView

STATUS_LABELS = {
    "submitted": ":hourglass_flowing_sand: Waiting for an analyst",
    "awaiting_manager": ":raised_hand: Waiting for a manager",
    "approved": ":white_check_mark: Approved",
    "rejected": ":no_entry: Rejected",
    "withdrawn": ":wastebasket: Withdrawn",
}
DECISION_VERBS = {
    "approve": "approved",
    "recommend": "recommended approval of",
    "confirm": "confirmed approval of",
    "reject": "rejected",
}
MAX_SHIPPING_IN_MESSAGE = 3
MAX_TERMS_OPTIONS = 100


def requested_amount(app: ApplicationOut) -> str:
    return money(app.requested_credit_limit.amount, app.requested_credit_limit.currency)


def approved_amount(app: ApplicationOut | QueueItem) -> str:
    limit = app.approved_credit_limit
    return money(limit.amount, limit.currency) if limit is not None else "—"


def business_title(app: ApplicationOut | QueueItem) -> str:
    if app.dba and app.dba != app.business_name:
        return f"{app.business_name} (DBA {app.dba})"
    return app.business_name


def address_text(a: Address) -> str:
    lines = [a.line1, a.line2, f"{a.city}, {a.state or ''} {a.postal_code}".replace(" ,", ","), a.country]
    return esc("\n".join(line for line in lines if line and line.strip()))


def decision_line(d: DecisionView, currency: str) -> str:
    verb = DECISION_VERBS.get(d.kind, d.kind)
    parts = [f"{user(d.actor)} {verb} this {when(d.decided_at)}"]
    if d.terms or d.credit_limit is not None:
        parts.append(f"{esc(d.terms or '')} · {money(d.credit_limit, currency)}".strip(" ·"))
    if d.reason:
        parts.append(f"“{esc(cut(d.reason, 500))}”")
    return " — ".join(parts)


def _summary(app: ApplicationOut) -> list[dict[str, Any]]:
    contact = app.statements_contact
    contact_lines = [esc(contact.name), esc(str(contact.email)), esc(contact.phone or "")]
    applicant = app.applicant
    asked_by = user(applicant.slack_user_id) if applicant.slack_user_id else esc(applicant.name)
    return [
        fields(
            f"*Business*\n{esc(business_title(app))}",
            f"*Federal ID*\n{app.federal_id}",
            f"*Requested terms*\n{esc(app.requested_terms or 'not given')}",
            f"*Requested limit*\n{requested_amount(app)}",
            "*Statements contact*\n" + "\n".join(c for c in contact_lines if c),
            f"*Asked by*\n{asked_by} · via {esc(app.source)}",
        ),
        fields(f"*Billing address*\n{address_text(app.billing_address)}", _shipping_summary(app)),
    ]


def _shipping_summary(app: ApplicationOut) -> str:
    locs = app.shipping_locations
    if not locs:
        return "*Shipping locations*\nnone given"
    shown = [
        f"• {esc(loc.label or loc.line1)}, {esc(loc.city)} {esc(loc.state or '')} {esc(loc.country)}".rstrip()
        for loc in locs[:MAX_SHIPPING_IN_MESSAGE]
    ]
    more = len(locs) - MAX_SHIPPING_IN_MESSAGE
    if more > 0:
        shown.append(f"…and {more} more (Details)")
    return f"*Shipping locations ({len(locs)})*\n" + "\n".join(shown)


def _status_context(app: ApplicationOut, decisions: Sequence[DecisionView]) -> dict[str, Any]:
    lines = [f"*{STATUS_LABELS.get(app.status, app.status)}* · #{app.id} · received {when(app.created_at)}"]
    lines += [decision_line(d, app.requested_credit_limit.currency) for d in decisions[-3:]]
    return context(*lines)


def application_message(app: ApplicationOut, decisions: Sequence[DecisionView] = ()) -> list[dict[str, Any]]:
    """The message in the analysts' channel. Approve and Reject only while an analyst can act."""
    ref = ApplicationRef(a=app.id).dump()
    actions: list[dict[str, Any]] = []
    if app.status == "submitted":
        actions += [
            button("Approve", ActionId.APPROVE, ref, style="primary"),
            button("Reject", ActionId.REJECT, ref, style="danger"),
        ]
    if app.status in ("approved", "rejected"):
        actions.append(button("Link to NetSuite Record", ActionId.LINK, ref, style="primary"))
    actions.append(button("Details", ActionId.DETAILS, ref))
    return [
        header(f"Credit application: {business_title(app)}"),
        *_summary(app),
        _status_context(app, decisions),
        {"type": "actions", "block_id": BlockId.ACTIONS, "elements": actions},
    ]


def application_text(app: ApplicationOut) -> str:
    """Notification fallback text (shown in notifications and to screen readers)."""
    amount = money(app.requested_credit_limit.amount, app.requested_credit_limit.currency)
    return cut(f"Credit application #{app.id} from {business_title(app)} for {amount}: {app.status}", 3000)


def manager_request_message(
    app: ApplicationOut, recommendation: DecisionView | None, decisions: Sequence[DecisionView] = ()
) -> list[dict[str, Any]]:
    """What managers get (by DM and in their channel) when an approval needs them."""
    ref = ApplicationRef(a=app.id).dump()
    currency = app.requested_credit_limit.currency
    rec_text = (
        f"{user(recommendation.actor)} recommends *{esc(recommendation.terms or '')}* with a limit of "
        f"*{money(recommendation.credit_limit, currency)}*"
        + (f"\n> {esc(cut(recommendation.reason, 500))}" if recommendation.reason else "")
        if recommendation
        else "An approval is waiting for a manager."
    )
    blocks: list[dict[str, Any]] = [
        header(f"Manager approval needed: {business_title(app)}"),
        section(rec_text),
        *_summary(app),
        _status_context(app, decisions),
    ]
    actions = [button("Details", ActionId.DETAILS, ref)]
    if app.status == "awaiting_manager":
        actions = [
            button("Approve", ActionId.MANAGER_CONFIRM, ref, style="primary"),
            button("Reject", ActionId.MANAGER_REJECT, ref, style="danger"),
            *actions,
        ]
    blocks.append({"type": "actions", "block_id": BlockId.ACTIONS, "elements": actions})
    return blocks


def decision_thread_text(d: DecisionView, app: ApplicationOut) -> str:
    icon = {
        "approve": ":white_check_mark:",
        "confirm": ":white_check_mark:",
        "recommend": ":raised_hand:",
    }.get(d.kind, ":no_entry:")
    return f"{icon} {decision_line(d, app.requested_credit_limit.currency)}"


def reminder_text(app: ApplicationOut, waiting_since_minutes: int) -> str:
    hours = waiting_since_minutes // 60
    waited = f"{hours} h" if hours else f"{waiting_since_minutes} min"
    title = esc(business_title(app))
    return f":alarm_clock: Reminder: application #{app.id} ({title}) has waited {waited} for a manager."


# --- modals --------------------------------------------------------------------------------------


def _modal(
    title: str, callback_id: str, meta: str, blocks: list[dict[str, Any]], submit: str | None
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": meta,
        "title": plain(title, 24),
        "close": plain("Cancel" if submit else "Close", 24),
        "blocks": blocks[:100],
    }
    if submit:
        view["submit"] = plain(submit, 24)
    return view


def approve_modal(
    app: ApplicationOut,
    terms: Sequence[str],
    analyst_limit: Decimal,
    *,
    as_manager: bool = False,
) -> dict[str, Any]:
    """Terms (NetSuite's list), credit limit and a note, pre-filled from what was asked."""
    currency = app.requested_credit_limit.currency
    options = [option(t, t) for t in terms[:MAX_TERMS_OPTIONS]]
    terms_select: dict[str, Any] = {
        "type": "static_select",
        "action_id": ActionId.TERMS,
        "placeholder": plain("Choose terms"),
        "options": options,
    }
    if app.requested_terms in terms[:MAX_TERMS_OPTIONS]:
        terms_select["initial_option"] = option(app.requested_terms or "", app.requested_terms or "")
    band = (
        f"Above {money(analyst_limit, currency)} a manager must confirm an analyst's approval."
        if not as_manager
        else "You approve as a manager: any limit."
    )
    blocks = [
        section(
            f"*{esc(business_title(app))}* asked for *{esc(app.requested_terms or 'no particular terms')}* "
            f"and *{money(app.requested_credit_limit.amount, currency)}*."
        ),
        context(band),
        {"type": "input", "block_id": BlockId.TERMS, "label": plain("Terms"), "element": terms_select},
        {
            "type": "input",
            "block_id": BlockId.CREDIT_LIMIT,
            "label": plain(f"Credit limit ({currency})"),
            "element": {
                "type": "plain_text_input",
                "action_id": ActionId.CREDIT_LIMIT,
                "initial_value": str(app.requested_credit_limit.amount),
                "max_length": 24,
            },
        },
        {
            "type": "input",
            "block_id": BlockId.NOTE,
            "optional": True,
            "label": plain("Note"),
            "element": {
                "type": "plain_text_input",
                "action_id": ActionId.NOTE,
                "multiline": True,
                "max_length": 2000,
            },
        },
    ]
    meta = DecisionModalMeta(a=app.id, m=as_manager).dump()
    return _modal(f"Approve #{app.id}", CallbackId.APPROVE, meta, blocks, "Approve")


def reject_modal(app: ApplicationOut, *, as_manager: bool = False) -> dict[str, Any]:
    blocks = [
        section(
            f"Reject the application from *{esc(business_title(app))}*? "
            "The reason is kept in the audit trail."
        ),
        {
            "type": "input",
            "block_id": BlockId.REASON,
            "label": plain("Reason"),
            "element": {
                "type": "plain_text_input",
                "action_id": ActionId.REASON,
                "multiline": True,
                "min_length": 1,
                "max_length": 2000,
            },
        },
    ]
    meta = DecisionModalMeta(a=app.id, m=as_manager).dump()
    return _modal(f"Reject #{app.id}", CallbackId.REJECT, meta, blocks, "Reject")


def details_modal(app: ApplicationOut, decisions: Sequence[DecisionView] = ()) -> dict[str, Any]:
    """The whole profile."""
    currency = app.requested_credit_limit.currency
    blocks: list[dict[str, Any]] = [
        header(business_title(app)),
        fields(
            f"*Legal name*\n{esc(app.business_name)}",
            f"*DBA*\n{esc(app.dba or '—')}",
            f"*Federal ID*\n{app.federal_id}",
            f"*Status*\n{STATUS_LABELS.get(app.status, app.status)}",
            f"*Requested*\n{esc(app.requested_terms or '—')} · {requested_amount(app)}",
            f"*Approved*\n{esc(app.approved_terms or '—')} · {approved_amount(app)}",
            f"*Reference*\n{esc(app.reference)} (via {esc(app.source)})",
            f"*Received*\n{when(app.created_at)}",
        ),
        divider(),
        fields(
            f"*Billing address*\n{address_text(app.billing_address)}",
            "*Statements contact*\n"
            + "\n".join(
                esc(x)
                for x in (
                    app.statements_contact.name,
                    str(app.statements_contact.email),
                    app.statements_contact.phone,
                )
                if x
            ),
            "*Applicant*\n"
            + "\n".join(
                x
                for x in (
                    esc(app.applicant.name),
                    esc(str(app.applicant.email or "")),
                    esc(app.applicant.phone or ""),
                    user(app.applicant.slack_user_id) if app.applicant.slack_user_id else "",
                )
                if x
            ),
        ),
        divider(),
    ]
    locs = app.shipping_locations
    if locs:
        # Two locations a section (as fields), so 50 locations take 25 blocks.
        for i in range(0, len(locs), 2):
            pair = locs[i : i + 2]
            blocks.append(
                fields(
                    *(
                        f"*{esc(loc.label or f'Location {i + j + 1}')}*"
                        + (f"\nAttn: {esc(loc.attention)}" if loc.attention else "")
                        + f"\n{address_text(loc)}"
                        for j, loc in enumerate(pair)
                    )
                )
            )
    else:
        blocks.append(section("*Shipping locations*\nnone given"))
    if decisions:
        blocks.append(divider())
        blocks.append(section("*History*\n" + "\n".join(decision_line(d, currency) for d in decisions[-20:])))
    return _modal(f"Application #{app.id}", CallbackId.DETAILS, ApplicationRef(a=app.id).dump(), blocks, None)


def notice_modal(title: str, text: str) -> dict[str, Any]:
    """A plain modal with one message (used when a modal was opened but the action turned out refused)."""
    return _modal(title, "notice", "", [section(text)], None)
