"""Block Kit for "Link to NetSuite Record" and the sync: link modal, pick modal, results, `/credit syncs`.

Pure functions from domain objects (the application, suggestions, the comparison, sync requests) to JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from blocks.applications import _modal, business_title
from blocks.ids import ActionId, BlockId, CallbackId
from blocks.metadata import ApplicationRef, PickMeta, SyncRef
from blocks.text import (
    OPTION_TEXT_MAX,
    button,
    context,
    cut,
    divider,
    esc,
    fields,
    header,
    option,
    plain,
    section,
    user,
    when,
)
from bot.applications.schemas import ApplicationOut
from bot.customers.search import CustomerMatch
from bot.customers.suggest import Suggestion
from bot.sync.fields import SyncField
from bot.sync.service import Comparison, SyncRequestView

MAX_OPTIONS = 100  # an external select answers with at most 100 options
MAX_SYNCS_LISTED = 10  # 2 blocks each in a 50-block message
NEW, EXISTING = "new", "existing"
NOW, SCHEDULED = "now", "scheduled"


def customer_option_text(m: CustomerMatch, note: str | None = None) -> str:
    """`Acme Supply · CUST-12 · Austin` (and a confidence), within an option's 75 characters."""
    parts = [m.company_name or f"Customer {m.internal_id}", m.entity_id or str(m.internal_id)]
    if m.city:
        parts.append(m.city)
    text = " · ".join(parts)
    if note:
        text = f"{cut(text, OPTION_TEXT_MAX - len(note) - 3)} ({note})"
    return cut(text, OPTION_TEXT_MAX)


def customer_options(
    suggestions: Sequence[Suggestion], matches: Sequence[CustomerMatch]
) -> dict[str, list[dict[str, Any]]]:
    """The external select's answer: suggested matches first (with a confidence), then search results."""
    groups: list[dict[str, Any]] = []
    seen: set[int] = set()
    suggested = [
        option(customer_option_text(s.match, f"{round(s.confidence * 100)}% match"), str(s.match.internal_id))
        for s in suggestions
    ]
    seen.update(s.match.internal_id for s in suggestions)
    if suggested:
        groups.append({"label": plain("Suggested"), "options": suggested})
    room = MAX_OPTIONS - len(suggested)
    found = [
        option(customer_option_text(m), str(m.internal_id)) for m in matches if m.internal_id not in seen
    ]
    if found[:room]:
        groups.append({"label": plain("Search results"), "options": found[:room]})
    return {"option_groups": groups} if groups else {"options": []}


def link_modal(app: ApplicationOut, suggestions: Sequence[Suggestion]) -> dict[str, Any]:
    """New customer or existing one (searched in the mirror), suggestions shown first."""
    mode_options = [
        option("Existing customer in NetSuite", EXISTING),
        option("New customer", NEW),
    ]
    blocks: list[dict[str, Any]] = [
        section(f"Link *{esc(business_title(app))}* (#{app.id}) to a NetSuite customer record."),
        {
            "type": "input",
            "block_id": BlockId.LINK_MODE,
            "label": plain("Customer"),
            "element": {
                "type": "radio_buttons",
                "action_id": ActionId.LINK_MODE,
                "options": mode_options,
                "initial_option": mode_options[0] if suggestions else mode_options[1],
            },
        },
        {
            "type": "input",
            "block_id": BlockId.LINK_CUSTOMER,
            "optional": True,
            "label": plain("Existing customer"),
            "hint": plain("Search by name, entity id, tax number, @email-domain or city."),
            "element": {
                "type": "external_select",
                "action_id": ActionId.LINK_CUSTOMER,
                "placeholder": plain("Search NetSuite customers"),
                "min_query_length": 0,
            },
        },
    ]
    if suggestions:
        lines = [
            f"• *{esc(s.match.company_name or str(s.match.internal_id))}* ({esc(s.match.entity_id or '')}"
            f"{', ' + esc(s.match.city) if s.match.city else ''}): {round(s.confidence * 100)}%, "
            f"{esc(', '.join(s.reasons))}"
            for s in suggestions
        ]
        blocks.append(section("*Suggested matches*\n" + "\n".join(lines)))
    blocks.append(
        {
            "type": "input",
            "block_id": BlockId.LINK_CONFIRM_NEW,
            "optional": True,
            "label": plain("New customer that looks like an existing one"),
            "element": {
                "type": "checkboxes",
                "action_id": ActionId.LINK_CONFIRM_NEW,
                "options": [option("Create a new customer anyway", "yes")],
            },
        }
    )
    return _modal("Link to NetSuite", CallbackId.LINK, ApplicationRef(a=app.id).dump(), blocks, "Next")


def duplicate_warning(suggestions: Sequence[Suggestion]) -> str:
    best = suggestions[0]
    name = best.match.company_name or str(best.match.internal_id)
    return cut(
        f"This looks like {name} ({best.match.entity_id or best.match.internal_id}): "
        f"{', '.join(best.reasons)}. Choose Existing customer, or tick “Create a new customer anyway”.",
        2000,
    )


def pick_modal(comparison: Comparison, schedule_text: str | None) -> dict[str, Any]:
    """One row per mapping: our value beside NetSuite's (as of the mirror's read), a box to tick each."""
    app = comparison.application
    link = comparison.link
    target = (
        "a *new customer* (created on sync)"
        if link.mode == NEW
        else f"customer *{link.customer_internal_id}* in NetSuite"
    )
    as_of = (
        f"NetSuite values as of {when(comparison.as_of)}" if comparison.as_of else "No NetSuite values yet"
    )
    blocks: list[dict[str, Any]] = [
        section(f"Sync *{esc(business_title(app))}* (#{app.id}) to {target}."),
        context(as_of + ". Ticked rows differ from NetSuite; a row with nothing to write cannot be ticked."),
    ]
    tickable = []
    for row in comparison.rows:
        blocks.append(
            fields(
                f"*{esc(row.label)}*\n{esc(cut(row.ours, 1800)) or '_nothing to write_'}",
                f"*In NetSuite*\n{esc(cut(row.netsuite, 1800)) or '—'}",
            )
        )
        if row.has_value:
            tickable.append(row)
    blocks.append(divider())
    options = [option(cut(row.label, OPTION_TEXT_MAX), row.field.value) for row in tickable]
    element: dict[str, Any] = {"type": "checkboxes", "action_id": ActionId.SYNC_FIELDS, "options": options}
    initial = [option(cut(r.label, OPTION_TEXT_MAX), r.field.value) for r in tickable if r.default_ticked]
    if initial:
        element["initial_options"] = initial
    if options:
        blocks.append(
            {
                "type": "input",
                "block_id": BlockId.SYNC_FIELDS,
                "label": plain("Fields to write"),
                "element": element,
            }
        )
    if schedule_text:
        choices = [
            option("Sync now", NOW),
            option(cut(f"At the company schedule ({schedule_text})", 75), SCHEDULED),
        ]
        blocks.append(
            {
                "type": "input",
                "block_id": BlockId.SYNC_WHEN,
                "label": plain("When"),
                "element": {
                    "type": "radio_buttons",
                    "action_id": ActionId.SYNC_WHEN,
                    "options": choices,
                    "initial_option": choices[1],
                },
            }
        )
    seen = comparison.seen_values(r.field for r in comparison.rows)
    meta = PickMeta(a=app.id, seen=seen).dump()
    return _modal("Sync to NetSuite", CallbackId.PICK, meta, blocks, "Sync" if options else None)


def field_list(fields_: Sequence[SyncField]) -> str:
    return ", ".join(f.label.split(" → ")[0] for f in fields_)


def sync_requested_text(sync: SyncRequestView, scheduled: bool) -> str:
    moment = "now" if not scheduled else f"at {when(sync.next_attempt_at)}"
    what = esc(field_list(sync.fields))
    return f":arrows_counterclockwise: {user(sync.requested_by)} asked to sync {what} {moment}."


def sync_result_blocks(sync: SyncRequestView, outcome: str) -> list[dict[str, Any]]:
    """The thread message for a finished sync: success with a link, conflicts to decide on, or the error."""
    ref = SyncRef(s=sync.id).dump()
    app_ref = ApplicationRef(a=sync.application_id).dump()
    result = sync.result or {}
    if outcome == "succeeded":
        link = (
            f"<{sync.record_url}|NetSuite record {result.get('customer_id', '')}>"
            if sync.record_url
            else "NetSuite"
        )
        text = f":white_check_mark: Synced {esc(field_list(sync.fields))} to {link}."
        blocks = [section(text)]
        if result.get("conflicts"):
            blocks += _conflict_blocks(result["conflicts"])
            blocks.append(
                {"type": "actions", "elements": [button("Review and sync", ActionId.SYNC_REVIEW, app_ref)]}
            )
        return blocks
    if outcome == "conflict":
        blocks = [section(":warning: NetSuite changed since you looked, so nothing was overwritten:")]
        blocks += _conflict_blocks(result.get("conflicts", []))
        blocks.append(
            {"type": "actions", "elements": [button("Review and sync", ActionId.SYNC_REVIEW, app_ref)]}
        )
        return blocks
    error = esc(cut(sync.last_error or "unknown error", 2500))
    return [
        section(
            f":x: The sync of {esc(field_list(sync.fields))} failed after {sync.attempts} attempts:"
            f"\n> {error}"
        ),
        {"type": "actions", "elements": [button("Retry", ActionId.SYNC_RETRY, ref, style="primary")]},
    ]


def _conflict_blocks(conflicts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    lines = []
    for c in conflicts[:10]:
        label = c.get("label") or c.get("field", "")
        now = cut(str(c.get("netsuite_now", "")), 300)
        ours = cut(str(c.get("ours", "")), 300)
        lines.append(f"• *{esc(str(label))}*: NetSuite now has “{esc(now)}”; ours is “{esc(ours)}”")
    return [section("\n".join(lines))] if lines else []


def syncs_message(syncs: Sequence[SyncRequestView]) -> list[dict[str, Any]]:
    """`/credit syncs`: pending and failed syncs with Sync now, Cancel and Retry."""
    if not syncs:
        return [section("No pending or failed syncs. :tada:")]
    blocks: list[dict[str, Any]] = [header("NetSuite syncs")]
    for sync in syncs[:MAX_SYNCS_LISTED]:
        ref = SyncRef(s=sync.id).dump()
        state = sync.status.value if hasattr(sync.status, "value") else str(sync.status)
        due = f" · due {when(sync.next_attempt_at)}" if state == "pending" else ""
        err = f"\n> {esc(cut(sync.last_error, 300))}" if sync.last_error and state != "pending" else ""
        blocks.append(
            section(
                f"*Sync {sync.id}* · #{sync.application_id} {esc(sync.business_name)} · "
                f"{esc(field_list(sync.fields))}\n{state} · attempt {sync.attempts}/{sync.max_attempts}"
                f"{due} · by {user(sync.requested_by)}{err}"
            )
        )
        elements = []
        if state == "pending":
            elements.append(button("Sync now", ActionId.SYNC_RUN_NOW, ref, style="primary"))
        if state == "failed":
            elements.append(button("Retry", ActionId.SYNC_RETRY, ref, style="primary"))
        if state == "conflict":
            app_ref = ApplicationRef(a=sync.application_id).dump()
            elements.append(button("Review and sync", ActionId.SYNC_REVIEW, app_ref, style="primary"))
        if state in ("pending", "failed", "conflict"):
            elements.append(button("Cancel", ActionId.SYNC_CANCEL, ref, style="danger"))
        if elements:
            blocks.append({"type": "actions", "elements": elements})
    if len(syncs) > MAX_SYNCS_LISTED:
        blocks.append(context(f"…and {len(syncs) - MAX_SYNCS_LISTED} more."))
    return blocks[:50]
