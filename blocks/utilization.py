"""Block Kit for `/utilization`, the reps' App Home section, utilization alerts and credit increase requests.

Pure builders: data in (`bot.utilization.service` types), JSON-ready dicts out. A reply stays inside a
message's 50 blocks (one section a customer, at most 25 a page), and `chart_png` draws the App Home chart
with the standard library alone (zlib + struct), since neither Pillow nor matplotlib is a dependency.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from blocks.text import (
    BUTTON_TEXT_MAX,
    button,
    context,
    cut,
    divider,
    esc,
    header,
    money,
    plain,
    section,
    when,
)
from bot.utilization.service import Dashboard, IncreasePrefill, Mark, Notice, Standing
from storage.repositories.utilization import CurrencyTotals

MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100
HOME_ITEMS = 10
ALERT_ITEMS = 20
BAR_CELLS = 10


class UtilizationAction:
    PREVIOUS = "utilization.page_previous"
    NEXT = "utilization.page_next"
    REQUEST_INCREASE = "utilization.request_increase"


class UtilizationBlock:
    LIMIT = "utilization.limit"
    FEDERAL_ID = "utilization.federal_id"
    CONTACT_NAME = "utilization.contact_name"
    CONTACT_EMAIL = "utilization.contact_email"
    REASON = "utilization.reason"


INCREASE_CALLBACK = "utilization.increase_modal"
INPUT_ACTION = "value"  # the one plain_text_input in each input block
MODAL_FIELD_BLOCKS = {
    "limit": UtilizationBlock.LIMIT,
    "federal_id": UtilizationBlock.FEDERAL_ID,
    "contact_name": UtilizationBlock.CONTACT_NAME,
    "contact_email": UtilizationBlock.CONTACT_EMAIL,
    "reason": UtilizationBlock.REASON,
}


class MetadataError(ValueError):
    """A button value or private_metadata we did not write."""


class _Ref(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def dump(self) -> str:
        return self.model_dump_json()


class PageRef(_Ref):
    """Which page of which query a Next/Previous button shows (the query is run again, authorized again)."""

    q: str = Field(max_length=400)
    p: int = Field(ge=0, le=100_000)


class CustomerRef(_Ref):
    """Which customer a "Request credit increase" button or modal is about."""

    c: int = Field(ge=1)


def load_page_ref(raw: str | None) -> PageRef:
    try:
        return PageRef.model_validate_json(raw or "")
    except ValidationError as exc:
        raise MetadataError(f"unreadable page button: {raw!r:.80}") from exc


def load_customer_ref(raw: str | None) -> CustomerRef:
    try:
        return CustomerRef.model_validate_json(raw or "")
    except ValidationError as exc:
        raise MetadataError(f"unreadable customer reference: {raw!r:.80}") from exc


# ---- pieces -------------------------------------------------------------------------------------

MARK_LABEL = {
    Mark.WITHIN: ":large_green_circle: Within limit",
    Mark.NEAR: ":large_yellow_circle: Near limit",
    Mark.OVER: ":red_circle: Over limit",
    Mark.ON_HOLD: ":no_entry: On credit hold",
    Mark.NO_LIMIT: ":white_circle: No limit",
}


def amount(value: Decimal, currency: str) -> str:
    """Money with the sign in front of the symbol (-$1,200.00), never `$-1,200.00`."""
    return f"-{money(-value, currency)}" if value < 0 else money(value, currency)


def bar(percent: Decimal | None) -> str:
    """Ten cells; a full bar past 100 %."""
    if percent is None:
        return "░" * BAR_CELLS
    filled = min(BAR_CELLS, max(0, int((percent / 10).to_integral_value())))
    return "█" * filled + "░" * (BAR_CELLS - filled)


def utilization_text(s: Standing) -> str:
    if s.credit_limit is None:
        return "no limit"
    if s.in_credit:
        return f"in credit ({amount(-s.used, s.currency)} owed to the customer), 0 %"
    if s.percent is None:  # a zero limit
        return "zero limit" + (", anything used is over" if s.used > 0 else "")
    return f"{s.percent} %"


def customer_line(s: Standing, *, includes_orders: bool) -> str:
    ident = f" ({esc(s.entity_id)})" if s.entity_id and s.entity_id != s.name else ""
    lines = [f"*{esc(cut(s.name, 120))}*{ident}  {MARK_LABEL[s.mark]}"]
    lines.append(f"`{bar(s.percent)}` {utilization_text(s)}")
    used = f"Balance {amount(s.balance, s.currency)}"
    if includes_orders and s.unbilled_orders:
        used += f" + orders {amount(s.unbilled_orders, s.currency)}"
    limit = "no limit" if s.credit_limit is None else amount(s.credit_limit, s.currency)
    available = "" if s.available is None else f" · Available {amount(s.available, s.currency)}"
    lines.append(f"{used} · Limit {limit}{available}")
    overdue = (
        f"Overdue {amount(s.overdue, s.currency)}" + (f" ({s.days_overdue} days)" if s.days_overdue else "")
        if s.overdue > 0
        else "Nothing overdue"
    )
    lines.append(f"{overdue} · Terms {esc(s.terms) if s.terms else '—'}")
    return "\n".join(lines)


def _request_button(s: Standing) -> dict[str, Any]:
    return button(
        cut("Request credit increase", BUTTON_TEXT_MAX),
        UtilizationAction.REQUEST_INCREASE,
        CustomerRef(c=s.customer_id).dump(),
    )


def customer_block(s: Standing, *, includes_orders: bool, can_request: bool) -> dict[str, Any]:
    block = section(customer_line(s, includes_orders=includes_orders))
    if can_request and s.mark in (Mark.NEAR, Mark.OVER, Mark.ON_HOLD):
        block["accessory"] = _request_button(s)
    return block


def totals_text(t: CurrencyTotals, near_percent: int) -> str:
    cur = t.currency or "USD"
    share = f" ({(t.used * 100 / t.credit_limit).quantize(Decimal('0.1'))} %)" if t.credit_limit > 0 else ""
    counts = [f":red_circle: {t.over} over", f":large_yellow_circle: {t.near} near ({near_percent} %+)"]
    if t.on_hold:
        counts.append(f":no_entry: {t.on_hold} on hold")
    if t.no_limit:
        counts.append(f":white_circle: {t.no_limit} without a limit")
    overdue = (
        f" · Overdue {amount(t.overdue_balance, cur)} ({t.overdue_customers} customers)"
        if t.overdue_customers
        else ""
    )
    return (
        f"*{t.customers:,} customers in {cur}* · Limits {amount(t.credit_limit, cur)} · "
        f"Used {amount(t.used, cur)}{share}{overdue}\n" + " · ".join(counts)
    )


def freshness(d: Dashboard) -> str:
    basis = "balance + unbilled orders" if d.includes_orders else "balance"
    if d.refreshed_at is None:
        return (
            f":warning: The NetSuite mirror has not completed a refresh yet. Utilization = {basis} / limit."
        )
    line = f"NetSuite figures as of {when(d.refreshed_at)}. Utilization = {basis} / limit."
    return (":warning: " + line + " The mirror is behind its schedule.") if d.stale else line


def _filters(d: Dashboard) -> str:
    q = d.query
    parts = []
    if q.over is not None:
        parts.append(f"at or over {q.over} %")
    if q.overdue:
        parts.append("overdue")
    return f" ({', '.join(parts)})" if parts else ""


# ---- /utilization -------------------------------------------------------------------------------


def dashboard_text(d: Dashboard) -> str:
    return f"{d.title}{_filters(d)}: {d.total} customers"


def dashboard_message(d: Dashboard) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [section(f"*{esc(d.title)}{_filters(d)}*")]
    if d.total == 0:
        hint = (
            "No customers match. " if d.query.filtered else "No active customers are assigned to this rep. "
        )
        blocks.append(section(hint + "`/utilization help` shows the filters."))
        blocks.append(context(freshness(d)))
        return blocks
    for t in d.totals[:3]:
        blocks.append(section(totals_text(t, d.near_percent)))
    if len(d.totals) > 3:
        blocks.append(context(f"…and customers in {len(d.totals) - 3} more currencies."))
    blocks.append(context(freshness(d)))
    blocks.append(divider())
    room = MESSAGE_BLOCKS_MAX - len(blocks) - 2
    for s in d.standings[:room]:
        blocks.append(customer_block(s, includes_orders=d.includes_orders, can_request=d.can_request))
    first = d.page * d.page_size + 1
    last = d.page * d.page_size + len(d.standings)
    blocks.append(context(f"Showing {first}-{last} of {d.total:,} · page {d.page + 1} of {d.pages}"))
    nav = []
    if d.page > 0:
        nav.append(
            button("Previous", UtilizationAction.PREVIOUS, PageRef(q=d.query.text, p=d.page - 1).dump())
        )
    if d.page + 1 < d.pages:
        nav.append(button("Next", UtilizationAction.NEXT, PageRef(q=d.query.text, p=d.page + 1).dump()))
    if nav:
        blocks.append({"type": "actions", "block_id": "utilization.pages", "elements": nav})
    return blocks[:MESSAGE_BLOCKS_MAX]


def notice_message(n: Notice) -> list[dict[str, Any]]:
    return [section(n.text)]


# ---- App Home -----------------------------------------------------------------------------------


def home_section(d: Dashboard, chart_file_id: str | None = None) -> list[dict[str, Any]]:
    """The rep's part of App Home: totals, a chart of the book by band, the riskiest customers first."""
    blocks: list[dict[str, Any]] = [header("Your customers' credit")]
    if d.total == 0:
        blocks.append(section("No active customers are assigned to you in NetSuite."))
        blocks.append(context(freshness(d)))
        return blocks
    for t in d.totals[:3]:
        blocks.append(section(totals_text(t, d.near_percent)))
    if chart_file_id:
        blocks.append(
            {
                "type": "image",
                "slack_file": {"id": chart_file_id},
                "alt_text": chart_alt_text(d),
                "title": plain("Customers by utilization"),
            }
        )
    blocks.append(context(freshness(d)))
    blocks.append(section("*Riskiest first*"))
    for s in d.standings[:HOME_ITEMS]:
        blocks.append(customer_block(s, includes_orders=d.includes_orders, can_request=d.can_request))
    if d.total > HOME_ITEMS:
        blocks.append(context(f"{d.total - HOME_ITEMS:,} more: `/utilization` lists them all, with filters."))
    blocks.append(divider())
    return blocks


def add_home_section(view: dict[str, Any], extra: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """`view` (from `blocks.queue.home_view`) with `extra` right after its header, within 100 blocks.

    The queue's own blocks are kept whole from the top: whatever does not fit is cut from the end."""
    blocks = list(view.get("blocks", []))
    at = 1 if blocks and blocks[0].get("type") == "header" else 0
    merged = blocks[:at] + list(extra) + blocks[at:]
    return {**view, "blocks": merged[:VIEW_BLOCKS_MAX]}


# ---- alerts -------------------------------------------------------------------------------------


def alert_text(crossed: Sequence[Standing]) -> str:
    if len(crossed) == 1:
        s = crossed[0]
        where = "is over its credit limit" if s.mark == Mark.OVER else "is near its credit limit"
        return f"{s.name} {where} ({utilization_text(s)})."
    return f"{len(crossed)} of your customers crossed a credit line."


def alert_message(
    crossed: Sequence[Standing], *, near_percent: int, includes_orders: bool
) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [
        section(
            f"*Credit alert*: {len(crossed)} of your customers "
            f"{'has' if len(crossed) == 1 else 'have'} crossed {near_percent} % of the limit or gone over it "
            "since NetSuite was last read. Before promising more orders, you may ask the credit team "
            "for more."
        )
    ]
    for s in crossed[:ALERT_ITEMS]:
        block = section(customer_line(s, includes_orders=includes_orders))
        block["accessory"] = _request_button(s)
        blocks.append(block)
    if len(crossed) > ALERT_ITEMS:
        blocks.append(context(f"…and {len(crossed) - ALERT_ITEMS} more: `/utilization over {near_percent}`."))
    return blocks[:MESSAGE_BLOCKS_MAX]


# ---- the request modal --------------------------------------------------------------------------


def _input(
    block_id: str,
    label: str,
    *,
    initial: str | None,
    optional: bool = False,
    multiline: bool = False,
    max_length: int = 150,
    hint: str | None = None,
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": INPUT_ACTION,
        "max_length": max_length,
    }
    if multiline:
        element["multiline"] = True
    if initial:
        element["initial_value"] = initial[:max_length]
    block: dict[str, Any] = {
        "type": "input",
        "block_id": block_id,
        "label": plain(label, 2000),
        "element": element,
        "optional": optional,
    }
    if hint:
        block["hint"] = plain(hint, 2000)
    return block


def increase_modal(p: IncreasePrefill) -> dict[str, Any]:
    s = p.standing
    return {
        "type": "modal",
        "callback_id": INCREASE_CALLBACK,
        "private_metadata": CustomerRef(c=s.customer_id).dump(),
        "title": plain("Credit increase", 24),
        "submit": plain("Send request", 24),
        "close": plain("Cancel", 24),
        "blocks": [
            section(customer_line(s, includes_orders=False)),
            context(
                "The request goes to the credit analysts' queue as an application for this customer"
                + (f", billed to {esc(p.billing_summary)}." if p.billing_summary else ".")
            ),
            _input(
                UtilizationBlock.LIMIT,
                f"New credit limit ({s.currency})",
                initial=f"{p.suggested_limit:.2f}",
                max_length=20,
                hint="Current limit: "
                + ("none" if s.credit_limit is None else amount(s.credit_limit, s.currency)),
            ),
            _input(
                UtilizationBlock.FEDERAL_ID,
                "Federal ID (EIN)",
                initial=None,
                max_length=10,
                hint="NN-NNNNNNN",
            ),
            _input(UtilizationBlock.CONTACT_NAME, "Statements contact", initial=p.contact_name),
            _input(
                UtilizationBlock.CONTACT_EMAIL,
                "Statements contact email",
                initial=p.contact_email,
                max_length=254,
            ),
            _input(
                UtilizationBlock.REASON,
                "Why (orders planned, history…)",
                initial=None,
                optional=True,
                multiline=True,
                max_length=2000,
            ),
        ],
    }


def increase_done_modal(application_id: int, *, created: bool) -> dict[str, Any]:
    said = "sent to the credit team" if created else "already with the credit team"
    return {
        "type": "modal",
        "title": plain("Credit increase", 24),
        "close": plain("Done", 24),
        "blocks": [
            section(f"Your request is {said} as application #{application_id}. You will hear back here.")
        ],
    }


def notice_modal(text: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "title": plain("Credit increase", 24),
        "close": plain("Close", 24),
        "blocks": [section(text)],
    }


# ---- the chart ----------------------------------------------------------------------------------

_BANDS = (
    ("within", (46, 160, 67)),
    ("near", (219, 171, 9)),
    ("over", (207, 34, 46)),
    ("hold", (110, 64, 170)),
    ("none", (140, 149, 159)),
)

_DIGITS = {  # 3x5 pixel digits
    "0": ("111", "101", "101", "101", "111"),
    "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"),
    "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"),
    "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"),
    "7": ("111", "001", "010", "010", "010"),
    "8": ("111", "101", "111", "101", "111"),
    "9": ("111", "101", "111", "001", "111"),
}


def chart_counts(d: Dashboard) -> list[int]:
    """Customers within, near, over, on hold and without a limit (one figure per bar, all currencies)."""
    within = sum(t.with_limit - t.near - t.over for t in d.totals)
    return [
        max(0, within),
        sum(t.near for t in d.totals),
        sum(t.over for t in d.totals),
        sum(t.on_hold for t in d.totals),
        sum(t.no_limit for t in d.totals),
    ]


def chart_alt_text(d: Dashboard) -> str:
    within, near, over, hold, none = chart_counts(d)
    return (
        f"Bar chart of your customers: {within} within limit (green), {near} near it (yellow), "
        f"{over} over it (red), {hold} on credit hold (purple), {none} without a limit (grey)."
    )


def chart_png(counts: Sequence[int], *, width: int = 480, height: int = 200) -> bytes:
    """A bar chart (one bar per band, its count above it) as PNG bytes, drawn pixel by pixel."""
    if len(counts) != len(_BANDS) or any(c < 0 for c in counts):
        raise ValueError(f"need {len(_BANDS)} non-negative counts")
    pixels = [[(255, 255, 255)] * width for _ in range(height)]

    def rect(x0: int, y0: int, x1: int, y1: int, rgb: tuple[int, int, int]) -> None:
        for y in range(max(0, y0), min(height, y1)):
            row = pixels[y]
            for x in range(max(0, x0), min(width, x1)):
                row[x] = rgb

    scale, top, bottom = 3, 30, height - 12
    peak = max(max(counts), 1)
    slot = width // len(counts)
    for i, (count, (_, rgb)) in enumerate(zip(counts, _BANDS, strict=True)):
        x0 = i * slot + slot // 5
        x1 = (i + 1) * slot - slot // 5
        bar_height = 0 if count == 0 else max(2, round((bottom - top) * count / peak))
        rect(x0, bottom - bar_height, x1, bottom, rgb)
        label = str(count)
        text_width = len(label) * 4 * scale - scale
        tx = (x0 + x1 - text_width) // 2
        ty = bottom - bar_height - 6 * scale
        for k, ch in enumerate(label):
            for gy, line in enumerate(_DIGITS[ch]):
                for gx, on in enumerate(line):
                    if on == "1":
                        px = tx + (k * 4 + gx) * scale
                        rect(px, ty + gy * scale, px + scale, ty + (gy + 1) * scale, (36, 41, 47))
    rect(0, bottom, width, bottom + 2, (36, 41, 47))
    raw = b"".join(b"\x00" + bytes(v for px in row for v in px) for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 9))
        + chunk(b"IEND", b"")
    )
