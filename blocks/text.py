"""Small text helpers for Block Kit: escaping, truncation, money and dates."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
HEADER_MAX = 150
BUTTON_TEXT_MAX = 75
OPTION_TEXT_MAX = 75
CONTEXT_TEXT_MAX = 3000

CURRENCY_SYMBOLS = {"USD": "$", "CAD": "CA$", "EUR": "€", "GBP": "£", "AUD": "A$"}


def esc(text: str | None) -> str:
    """Escape user text for mrkdwn (Slack treats &, < and > as control characters)."""
    if text is None:
        return ""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cut(text: str, limit: int) -> str:
    """Truncate to `limit` characters with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def money(amount: Decimal | str | None, currency: str = "USD") -> str:
    if amount is None:
        return "—"
    value = Decimal(str(amount))
    symbol = CURRENCY_SYMBOLS.get(currency, "")
    text = f"{symbol}{value:,.2f}"
    return text if symbol and currency == "USD" else f"{text} {currency}"


def when(moment: datetime) -> str:
    """A date Slack shows in each reader's own time zone, with a UTC fallback."""
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def user(user_id: str) -> str:
    return f"<@{user_id}>"


def plain(text: str, limit: int | None = None, *, emoji: bool = True) -> dict[str, Any]:
    return {"type": "plain_text", "text": cut(text, limit) if limit else text, "emoji": emoji}


def mrkdwn(text: str, limit: int = SECTION_TEXT_MAX) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": cut(text, limit)}


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": mrkdwn(text), **extra}


def fields(*items: str) -> dict[str, Any]:
    """A section of up to 10 two-column fields."""
    return {"type": "section", "fields": [mrkdwn(i, FIELD_TEXT_MAX) for i in items[:10]]}


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": plain(text, HEADER_MAX)}


def context(*texts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [mrkdwn(t) for t in texts[:10]]}


def divider() -> dict[str, Any]:
    return {"type": "divider"}


def button(
    text: str, action_id: str, value: str, *, style: str | None = None, confirm: dict[str, Any] | None = None
) -> dict[str, Any]:
    b: dict[str, Any] = {
        "type": "button",
        "text": plain(text, BUTTON_TEXT_MAX),
        "action_id": action_id,
        "value": value,
    }
    if style:
        b["style"] = style
    if confirm:
        b["confirm"] = confirm
    return b


def option(text: str, value: str) -> dict[str, Any]:
    return {"text": plain(text, OPTION_TEXT_MAX), "value": value}
