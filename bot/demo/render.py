"""Slack Block Kit as people see it: readable terminal text (rich) and an HTML transcript.

The demo shows what Slack would show at each step, so both renderers read the same JSON the app sent to
Slack. They understand the block and element types the product builds (``KNOWN_BLOCK_TYPES``,
``KNOWN_ELEMENT_TYPES``); anything else is shown as a visible placeholder, or, with ``strict=True`` (what the
tests use), raises :class:`UnsupportedBlock`, so a new block type cannot slip into the product unrendered.

Slack's mrkdwn is parsed once into :class:`Line`/:class:`Span` values (mentions, links, dates, bold, italic,
strike, code, quotes, emoji) and both outputs are built from those: the terminal from rich ``Text`` objects
(never markup strings, so user text cannot inject rich markup) and HTML with every piece of text escaped.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

__all__ = [
    "KNOWN_BLOCK_TYPES",
    "KNOWN_ELEMENT_TYPES",
    "KNOWN_TEXT_TYPES",
    "KNOWN_VIEW_TYPES",
    "Line",
    "Names",
    "Span",
    "UnsupportedBlock",
    "blocks_html",
    "blocks_renderable",
    "blocks_text",
    "escape_html",
    "mrkdwn_html",
    "options_html",
    "options_renderable",
    "page_html",
    "parse_mrkdwn",
    "plain_text",
    "slack_escape",
    "surface_html",
    "surface_renderable",
]

KNOWN_BLOCK_TYPES = frozenset({"section", "header", "context", "divider", "actions", "input", "image"})
SELECT_TYPES = frozenset(
    {
        "static_select",
        "external_select",
        "users_select",
        "conversations_select",
        "channels_select",
        "multi_static_select",
        "multi_external_select",
        "multi_users_select",
    }
)
INPUT_TYPES = frozenset(
    {"plain_text_input", "number_input", "email_text_input", "url_text_input", "datepicker", "timepicker"}
)
KNOWN_ELEMENT_TYPES = frozenset(
    {"button", "image", "radio_buttons", "checkboxes", "overflow"} | SELECT_TYPES | INPUT_TYPES
)
KNOWN_TEXT_TYPES = frozenset({"mrkdwn", "plain_text"})
KNOWN_VIEW_TYPES = frozenset({"modal", "home"})

EMOJI = {
    "alarm_clock": "⏰",
    "arrows_counterclockwise": "🔄",
    "hourglass_flowing_sand": "⏳",
    "large_green_circle": "🟢",
    "large_yellow_circle": "🟡",
    "no_entry": "⛔",
    "raised_hand": "✋",
    "red_circle": "🔴",
    "tada": "🎉",
    "warning": "⚠️",
    "wastebasket": "🗑️",
    "white_check_mark": "✅",
    "white_circle": "⚪",
    "x": "❌",
    "mag": "🔍",
    "bell": "🔔",
    "moneybag": "💰",
    "chart_with_upwards_trend": "📈",
}

Names = Mapping[str, str]
"""Slack user and channel ids to the names shown for them (``U0ANA`` → ``Ana``, ``C0Q`` → ``credit-desk``)."""


class UnsupportedBlock(ValueError):
    """A block, element or text type the renderers do not know (raised only with ``strict=True``)."""


# --------------------------------------------------------------------------- mrkdwn


@dataclass(frozen=True)
class Span:
    """A run of text with one style. ``url`` makes it a link; ``token`` marks a mention or a date."""

    text: str
    bold: bool = False
    italic: bool = False
    strike: bool = False
    code: bool = False
    url: str | None = None
    token: bool = False


@dataclass(frozen=True)
class Line:
    """One line of mrkdwn; ``quote`` for Slack's ``> `` block quotes."""

    spans: tuple[Span, ...]
    quote: bool = False

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.spans)


_SPECIAL = re.compile(r"<([^<>\n]+)>")
_PLACEHOLDER_BASE = 0xE000
_MARKERS = {
    "code": re.compile(r"(?<![\w`])`([^`\n]+)`(?![\w`])"),
    "bold": re.compile(r"(?<![\w*])\*(?=\S)([^*\n]*?\S)\*(?![\w*])|(?<![\w*])\*(\S)\*(?![\w*])"),
    "italic": re.compile(r"(?<![\w_])_(?=\S)([^_\n]*?\S)_(?![\w_])|(?<![\w_])_(\S)_(?![\w_])"),
    "strike": re.compile(r"(?<![\w~])~(?=\S)([^~\n]*?\S)~(?![\w~])|(?<![\w~])~(\S)~(?![\w~])"),
}
_EMOJI = re.compile(r":([a-z0-9_+\-]+):")


def _slack_unescape(text: str) -> str:
    """Slack escapes only &, < and > in mrkdwn (see ``blocks.text.esc``)."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _emoji(text: str) -> str:
    return _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)


def _special(inner: str, names: Names) -> Span:
    """``<@U1>``, ``<#C1|name>``, ``<!date^…|fallback>``, ``<!here>``, ``<url|label>`` as shown in Slack."""
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        uid = target[1:]
        return Span("@" + (names.get(uid) or _slack_unescape(label) or uid), bold=True, token=True)
    if target.startswith("#"):
        cid = target[1:]
        return Span("#" + (names.get(cid) or _slack_unescape(label) or cid), bold=True, token=True)
    if target.startswith("!date^"):
        return Span(_slack_unescape(label) or target.split("^")[1], token=True)
    if target.startswith("!subteam^"):
        return Span(_slack_unescape(label) or "@group", bold=True, token=True)
    if target.startswith("!"):
        return Span("@" + target[1:], bold=True, token=True)
    url = _slack_unescape(target)
    return Span(_slack_unescape(label) if label else url, url=url)


def _parse_line(raw: str, names: Names) -> Line:
    quote = raw.startswith("> ") or raw == ">"
    if quote:
        raw = raw[2:]
    specials: list[Span] = []

    def hold(match: re.Match[str]) -> str:
        specials.append(_special(match.group(1), names))
        return chr(_PLACEHOLDER_BASE + len(specials) - 1)

    held = _SPECIAL.sub(hold, raw)
    n = len(held)
    style: dict[str, list[bool]] = {name: [False] * n for name in _MARKERS}
    drop = [False] * n
    for name, pattern in _MARKERS.items():
        for m in pattern.finditer(held):
            if any(drop[m.start() : m.end()]) or any(style["code"][m.start() : m.end()]):
                continue  # inside code, or overlapping markers already used
            drop[m.start()] = drop[m.end() - 1] = True
            for i in range(m.start() + 1, m.end() - 1):
                style[name][i] = True
    spans: list[Span] = []
    run: list[str] = []
    run_style: tuple[bool, ...] | None = None

    def flush() -> None:
        if run and run_style is not None:
            bold, italic, strike, code = run_style
            text = _slack_unescape("".join(run))
            spans.append(Span(text if code else _emoji(text), bold, italic, strike, code))
        run.clear()

    for i, ch in enumerate(held):
        if drop[i]:
            continue
        current = (style["bold"][i], style["italic"][i], style["strike"][i], style["code"][i])
        index = ord(ch) - _PLACEHOLDER_BASE
        if 0 <= index < len(specials):
            flush()
            run_style = None
            bold, italic, strike, _code = current
            special = specials[index]
            spans.append(replace(special, bold=special.bold or bold, italic=italic, strike=strike))
            continue
        if current != run_style:
            flush()
            run_style = current
        run.append(ch)
    flush()
    return Line(tuple(spans), quote)


def parse_mrkdwn(text: str, names: Names | None = None) -> list[Line]:
    """Slack mrkdwn → lines of styled spans, with Slack's escapes undone (the text as a reader sees it)."""
    return [_parse_line(raw, names or {}) for raw in text.split("\n")]


def _plain_lines(text: str) -> list[Line]:
    return [Line((Span(_emoji(t)),)) if t else Line(()) for t in text.split("\n")]


def _text_lines(obj: Any, names: Names, strict: bool) -> list[Line]:
    """A Block Kit text object (``mrkdwn`` or ``plain_text``) or a bare string, as lines."""
    if obj is None:
        return []
    if isinstance(obj, str):
        return _plain_lines(obj)
    if not isinstance(obj, Mapping):
        return _unsupported("text object", repr(type(obj).__name__), strict)
    kind = obj.get("type")
    text = str(obj.get("text", ""))
    if kind == "mrkdwn":
        return parse_mrkdwn(text, names)
    if kind == "plain_text":
        return _plain_lines(text)
    return _unsupported("text type", kind, strict)


def _unsupported(what: str, kind: object, strict: bool) -> list[Line]:
    if strict:
        raise UnsupportedBlock(f"the renderer does not know the {what} {kind!r}")
    return [Line((Span(f"[{what} {kind} not shown]", italic=True),))]


def _plain(obj: Any) -> str:
    """The raw string of a text object (labels, button texts, option texts)."""
    if not isinstance(obj, Mapping):
        return "" if obj is None else str(obj)
    raw = str(obj.get("text", ""))
    return _emoji(_slack_unescape(raw) if obj.get("type") == "mrkdwn" else raw)


# --------------------------------------------------------------------------- shared walking


def _check_block(block: Any, strict: bool) -> str | None:
    """The block's type if renderable, else None (or UnsupportedBlock when strict)."""
    kind = block.get("type") if isinstance(block, Mapping) else None
    if kind in KNOWN_BLOCK_TYPES:
        return str(kind)
    if strict:
        raise UnsupportedBlock(f"the renderer does not know the block type {kind!r}")
    return None


def _check_element(element: Any, strict: bool) -> str | None:
    kind = element.get("type") if isinstance(element, Mapping) else None
    if kind in KNOWN_ELEMENT_TYPES:
        return str(kind)
    if strict:
        raise UnsupportedBlock(f"the renderer does not know the element type {kind!r}")
    return None


def _options(element: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        found.extend(group.get("options") or [])
    return found


def _selected_values(element: Mapping[str, Any]) -> set[str]:
    chosen: list[Any] = []
    if element.get("initial_option"):
        chosen.append(element["initial_option"])
    chosen.extend(element.get("initial_options") or [])
    return {str(o.get("value")) for o in chosen if isinstance(o, Mapping)}


# --------------------------------------------------------------------------- terminal (rich)


def _rich_line(line: Line) -> Text:
    out = Text()
    if line.quote:
        out.append("│ ", style="dim")
    for span in line.spans:
        styles = [
            name for name, on in (("bold", span.bold), ("italic", span.italic), ("strike", span.strike)) if on
        ]
        if span.code:
            styles.append("reverse")
        if span.token:
            styles.append("cyan")
        if span.url:
            out.append(span.text, style=" ".join([*styles, "underline", "blue"]))
            if span.url != span.text:
                out.append(f" ({span.url})", style="dim")
        else:
            out.append(span.text, style=" ".join(styles))
    return out


def _rich_lines(lines: Sequence[Line], style: str = "") -> Text:
    text = Text("\n").join(_rich_line(line) for line in lines)
    if style:
        text.stylize(style)
    return text


def _rich_element(element: Mapping[str, Any], names: Names, strict: bool) -> Text:
    kind = _check_element(element, strict)
    if kind is None:
        return _rich_lines(_unsupported("element", element.get("type"), False))
    if kind == "button":
        colour = {"primary": "bold white on green", "danger": "bold white on red"}.get(
            str(element.get("style")), "bold"
        )
        return Text(f"[ {_plain(element.get('text'))} ]", style=colour)
    if kind == "image":
        return Text(f"[image: {element.get('alt_text', '')}]", style="italic dim")
    if kind in SELECT_TYPES:
        chosen = [
            _plain(o.get("text"))
            for o in _options(element)
            if str(o.get("value")) in _selected_values(element)
        ]
        shown = ", ".join(chosen) or _plain(element.get("placeholder")) or "Select"
        hint = " (searches as you type)" if "external" in kind else ""
        return Text(f"[ {shown} ▾ ]{hint}", style="bold")
    if kind in ("radio_buttons", "checkboxes"):
        chosen_values = _selected_values(element)
        on, off = ("(•)", "( )") if kind == "radio_buttons" else ("[x]", "[ ]")
        rows = [
            f"{on if str(o.get('value')) in chosen_values else off} {_plain(o.get('text'))}"
            for o in _options(element)
        ]
        return Text("\n".join(rows))
    if kind == "overflow":
        return Text("[ … ]", style="bold")
    value = element.get("initial_value") or element.get("initial_date") or element.get("initial_time")
    placeholder = _plain(element.get("placeholder"))
    return Text(f"[ {value or placeholder or ''} ]".replace("[  ]", "[ ________ ]"))


def _rich_block(block: Mapping[str, Any], names: Names, strict: bool) -> RenderableType:
    kind = _check_block(block, strict)
    if kind is None:
        return _rich_lines(_unsupported("block type", block.get("type"), False))
    if kind == "header":
        return _rich_lines(_text_lines(block.get("text"), names, strict), "bold underline")
    if kind == "divider":
        return Rule(style="dim")
    if kind == "context":
        lines: list[Text] = []
        for element in block.get("elements") or []:
            if isinstance(element, Mapping) and element.get("type") == "image":
                lines.append(Text(f"[image: {element.get('alt_text', '')}]"))
            else:
                lines.append(_rich_lines(_text_lines(element, names, strict)))
        return Text("\n").join(lines)
    if kind == "image":
        title = _plain(block.get("title"))
        return Text(
            f"[image{': ' + title if title else ''} — {block.get('alt_text', '')}]", style="italic dim"
        )
    if kind == "actions":
        row = Text("  ").join(
            _rich_element(e, names, strict) for e in block.get("elements") or [] if isinstance(e, Mapping)
        )
        return row
    if kind == "input":
        label = Text(_plain(block.get("label")), style="bold")
        if block.get("optional"):
            label.append(" (optional)", style="dim")
        rows: list[RenderableType] = [
            label,
            Padding(_rich_element(block.get("element") or {}, names, strict), (0, 0, 0, 2)),
        ]
        if block.get("hint"):
            rows.append(Text(_plain(block.get("hint")), style="dim italic"))
        return Group(*rows)
    # section
    parts: list[RenderableType] = []
    if block.get("text"):
        parts.append(_rich_lines(_text_lines(block.get("text"), names, strict)))
    field_items = block.get("fields") or []
    if field_items:
        grid = Table.grid(padding=(0, 3))
        grid.add_column(ratio=1)
        grid.add_column(ratio=1)
        cells = [_rich_lines(_text_lines(f, names, strict)) for f in field_items]
        for i in range(0, len(cells), 2):
            grid.add_row(*cells[i : i + 2])
        parts.append(grid)
    if isinstance(block.get("accessory"), Mapping):
        parts.append(_rich_element(block["accessory"], names, strict))
    return Group(*parts)


def blocks_renderable(
    blocks: Iterable[Mapping[str, Any]], names: Names | None = None, *, strict: bool = False
) -> Group:
    """Blocks as a rich renderable, one block after another with a blank line between them."""
    rendered: list[RenderableType] = []
    for block in blocks:
        if rendered:
            rendered.append(Text(""))
        rendered.append(_rich_block(block, names or {}, strict))
    return Group(*rendered)


def blocks_text(
    blocks: Iterable[Mapping[str, Any]], names: Names | None = None, *, strict: bool = False, width: int = 100
) -> str:
    """Blocks as plain terminal text (what ``blocks_renderable`` prints, without colours)."""
    from rich.console import Console

    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(blocks_renderable(blocks, names, strict=strict))
    return console.export_text()


def options_renderable(answer: Mapping[str, Any]) -> Text:
    """An options-load answer (``options`` or ``option_groups``) as the drop-down list Slack shows."""
    out = Text()
    groups = answer.get("option_groups") or [{"label": None, "options": answer.get("options") or []}]
    for group in groups:
        if group.get("label"):
            out.append(f"{_plain(group['label'])}\n", style="bold dim")
        for o in group.get("options") or []:
            out.append(f"  • {_plain(o.get('text'))}\n")
    if not out.plain.strip():
        out.append("(no options)", style="dim")
    out.rstrip()
    return out


def surface_renderable(
    *,
    kind: str,
    where: str,
    blocks: Sequence[Mapping[str, Any]] = (),
    text: str = "",
    view: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    names: Names | None = None,
    strict: bool = False,
) -> Panel:
    """One Slack surface (a message, a modal, a Home tab, an options list) as a titled panel."""
    names = names or {}
    body: RenderableType
    if options is not None:
        body = options_renderable(options)
    elif blocks:
        body = blocks_renderable(blocks, names, strict=strict)
    else:
        body = _rich_lines(parse_mrkdwn(text, names))
    subtitle = None
    border = {"modal": "magenta", "home": "blue", "ephemeral": "yellow", "options": "magenta"}.get(
        kind, "green"
    )
    if view is not None and view.get("type") == "modal":
        buttons = [_plain(view.get("close")) or "Close"]
        if view.get("submit"):
            buttons.append(_plain(view.get("submit")))
        subtitle = "  ".join(f"[ {b} ]" for b in buttons)
    return Panel(body, title=Text(where, style=f"bold {border}"), subtitle=subtitle, border_style=border)


# --------------------------------------------------------------------------- HTML


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _html_line(line: Line) -> str:
    out = []
    for span in line.spans:
        piece = _e(span.text)
        if span.code:
            piece = f"<code>{piece}</code>"
        if span.strike:
            piece = f"<s>{piece}</s>"
        if span.italic:
            piece = f"<em>{piece}</em>"
        if span.bold:
            piece = f"<strong>{piece}</strong>"
        if span.token:
            piece = f'<span class="mention">{piece}</span>'
        if span.url:
            piece = f'<a href="{_e(span.url)}" rel="noopener noreferrer">{piece}</a>'
        out.append(piece)
    return "".join(out)


def _html_lines(lines: Sequence[Line]) -> str:
    out: list[str] = []
    quote: list[str] = []
    for line in lines:
        if line.quote:
            quote.append(_html_line(line))
            continue
        if quote:
            out.append("<blockquote>" + "<br>".join(quote) + "</blockquote>")
            quote = []
        out.append(_html_line(line))
    if quote:
        out.append("<blockquote>" + "<br>".join(quote) + "</blockquote>")
    joined = ""
    for piece in out:
        if joined and not joined.endswith("</blockquote>") and not piece.startswith("<blockquote>"):
            joined += "<br>"
        joined += piece
    return joined


def mrkdwn_html(text: str, names: Names | None = None) -> str:
    """Slack mrkdwn as escaped HTML."""
    return _html_lines(parse_mrkdwn(text, names))


def _html_text(obj: Any, names: Names, strict: bool) -> str:
    return _html_lines(_text_lines(obj, names, strict))


def _html_button(label: str, style: str, title: str | None = None) -> str:
    hover = f' title="{_e(title)}"' if title else ""
    return f'<button type="button" class="btn btn-{_e(style)}"{hover} disabled>{_e(label)}</button>'


def _html_element(element: Mapping[str, Any], names: Names, strict: bool) -> str:
    kind = _check_element(element, strict)
    if kind is None:
        return f'<span class="unsupported">[element {_e(element.get("type"))} not shown]</span>'
    if kind == "button":
        url = element.get("url")
        return _html_button(_plain(element.get("text")), str(element.get("style") or "default"), url)
    if kind == "image":
        return f'<span class="image">[image: {_e(element.get("alt_text", ""))}]</span>'
    if kind in SELECT_TYPES:
        chosen = _selected_values(element)
        opts = []
        placeholder = _plain(element.get("placeholder")) or "Select"
        if not chosen:
            opts.append(f"<option selected>{_e(placeholder)}</option>")
        for o in _options(element):
            sel = " selected" if str(o.get("value")) in chosen else ""
            opts.append(f'<option value="{_e(o.get("value"))}"{sel}>{_e(_plain(o.get("text")))}</option>')
        note = '<span class="hint"> searches as you type</span>' if "external" in kind else ""
        multiple = " multiple" if kind.startswith("multi_") else ""
        return f"<select{multiple} disabled>{''.join(opts)}</select>{note}"
    if kind in ("radio_buttons", "checkboxes"):
        chosen = _selected_values(element)
        input_type = "radio" if kind == "radio_buttons" else "checkbox"
        rows = []
        for o in _options(element):
            checked = " checked" if str(o.get("value")) in chosen else ""
            rows.append(
                f'<label class="choice"><input type="{input_type}"{checked} disabled> '
                f"{_e(_plain(o.get('text')))}</label>"
            )
        return '<div class="choices">' + "".join(rows) + "</div>"
    if kind == "overflow":
        return _html_button("…", "default")
    value = element.get("initial_value") or element.get("initial_date") or element.get("initial_time") or ""
    placeholder = _plain(element.get("placeholder"))
    if element.get("multiline"):
        return f'<textarea disabled placeholder="{_e(placeholder)}">{_e(value)}</textarea>'
    input_type = {"datepicker": "date", "timepicker": "time", "number_input": "number"}.get(kind, "text")
    return f'<input type="{input_type}" value="{_e(value)}" placeholder="{_e(placeholder)}" disabled>'


def _html_block(block: Mapping[str, Any], names: Names, strict: bool) -> str:
    kind = _check_block(block, strict)
    if kind is None:
        return f'<div class="block unsupported">[block {_e(block.get("type"))} not shown]</div>'
    if kind == "header":
        return f'<h4 class="block header">{_html_text(block.get("text"), names, strict)}</h4>'
    if kind == "divider":
        return '<hr class="block divider">'
    if kind == "context":
        parts = []
        for element in block.get("elements") or []:
            if isinstance(element, Mapping) and element.get("type") == "image":
                parts.append(f'<span class="image">[image: {_e(element.get("alt_text", ""))}]</span>')
            else:
                parts.append(f"<span>{_html_text(element, names, strict)}</span>")
        return '<div class="block context">' + " · ".join(parts) + "</div>"
    if kind == "image":
        title = _plain(block.get("title"))
        url = block.get("image_url")
        alt = _e(block.get("alt_text", ""))
        picture = (
            f'<img src="{_e(url)}" alt="{alt}">'
            if isinstance(url, str)
            else f'<span class="image">[image: {alt}]</span>'
        )
        caption = f"<figcaption>{_e(title)}</figcaption>" if title else ""
        return f'<figure class="block image">{picture}{caption}</figure>'
    if kind == "actions":
        elements = [
            _html_element(e, names, strict) for e in block.get("elements") or [] if isinstance(e, Mapping)
        ]
        return '<div class="block actions">' + " ".join(elements) + "</div>"
    if kind == "input":
        optional = ' <span class="optional">(optional)</span>' if block.get("optional") else ""
        hint = f'<div class="hint">{_e(_plain(block.get("hint")))}</div>' if block.get("hint") else ""
        element = _html_element(block.get("element") or {}, names, strict)
        return (
            f'<div class="block input"><div class="label">{_e(_plain(block.get("label")))}{optional}</div>'
            f"{element}{hint}</div>"
        )
    parts = []
    if block.get("text"):
        parts.append(f'<div class="text">{_html_text(block.get("text"), names, strict)}</div>')
    field_items = block.get("fields") or []
    if field_items:
        cells = "".join(f'<div class="field">{_html_text(f, names, strict)}</div>' for f in field_items)
        parts.append(f'<div class="fields">{cells}</div>')
    if isinstance(block.get("accessory"), Mapping):
        parts.append(f'<div class="accessory">{_html_element(block["accessory"], names, strict)}</div>')
    return '<div class="block section">' + "".join(parts) + "</div>"


def blocks_html(
    blocks: Iterable[Mapping[str, Any]], names: Names | None = None, *, strict: bool = False
) -> str:
    """Blocks as HTML fragments, every piece of text escaped."""
    return "".join(_html_block(b, names or {}, strict) for b in blocks)


def options_html(answer: Mapping[str, Any]) -> str:
    """An options-load answer as the open drop-down list."""
    groups = answer.get("option_groups") or [{"label": None, "options": answer.get("options") or []}]
    out = ['<div class="dropdown">']
    for group in groups:
        if group.get("label"):
            out.append(f'<div class="group">{_e(_plain(group["label"]))}</div>')
        out.append(
            "<ul>"
            + "".join(f"<li>{_e(_plain(o.get('text')))}</li>" for o in group.get("options") or [])
            + "</ul>"
        )
    out.append("</div>")
    return "".join(out)


def surface_html(
    *,
    kind: str,
    where: str,
    blocks: Sequence[Mapping[str, Any]] = (),
    text: str = "",
    view: Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    names: Names | None = None,
    author: str = "Credit Desk",
    strict: bool = False,
) -> str:
    """One Slack surface as a styled HTML card: a message, a modal (title, blocks, buttons), Home, options."""
    names = names or {}
    if options is not None:
        body = options_html(options)
    elif blocks:
        body = blocks_html(blocks, names, strict=strict)
    else:
        body = f'<div class="block section"><div class="text">{mrkdwn_html(text, names)}</div></div>'
    where_html = f'<div class="where">{_e(where)}</div>'
    if kind == "modal" and view is not None:
        title = _e(_plain(view.get("title")))
        buttons = [_html_button(_plain(view.get("close")) or "Close", "default")]
        if view.get("submit"):
            buttons.append(_html_button(_plain(view.get("submit")), "primary"))
        return (
            f'<div class="surface modal">{where_html}<div class="modal-title">{title}</div>'
            f'<div class="modal-body">{body}</div><div class="modal-footer">{"".join(buttons)}</div></div>'
        )
    if kind == "home":
        return f'<div class="surface home">{where_html}<div class="home-tab">Home</div>{body}</div>'
    if kind == "options":
        return f'<div class="surface options">{where_html}{body}</div>'
    note = '<span class="only-you">Only visible to you</span>' if kind == "ephemeral" else ""
    return (
        f'<div class="surface message kind-{_e(kind)}">{where_html}<div class="author">{_e(author)} '
        f'<span class="app">APP</span>{note}</div>{body}</div>'
    )


STYLE = """
body{font:15px/1.45 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
 color:#1d1c1d;background:#f4f4f5;margin:0}
main{max-width:880px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px} .lead{color:#555;margin:0 0 24px}
section.step{background:#fff;border-radius:10px;padding:16px 20px;margin:0 0 18px;box-shadow:0 1px 3px #0002}
section.step h2{font-size:18px;margin:0 0 10px} section.step.skipped{opacity:.7}
.action{margin:10px 0;color:#333} .action::before{content:"▶ ";color:#1264a3}
.info{margin:8px 0;color:#555} .check{color:#007a5a;margin:4px 0} .check::before{content:"✓ "}
.skip{color:#a36a00;margin:4px 0} .skip::before{content:"↷ "}
.surface{border:1px solid #ddd;border-radius:8px;padding:10px 14px;margin:10px 0;background:#fff}
.surface .where{font-size:12px;color:#616061;margin-bottom:6px;text-transform:none}
.author{font-weight:700;margin-bottom:4px}
.app{font-size:10px;background:#ddd;border-radius:3px;padding:1px 4px;font-weight:600;margin-left:4px}
.only-you{font-weight:400;font-size:12px;color:#616061;margin-left:8px}
.kind-reply{margin-left:28px;border-left:3px solid #ddd} .kind-ephemeral{background:#fffbe6}
.modal{max-width:520px;box-shadow:0 4px 14px #0003} .modal-title{font-weight:700;font-size:18px;
 border-bottom:1px solid #eee;padding-bottom:8px;margin-bottom:8px}
.modal-footer{border-top:1px solid #eee;padding-top:8px;margin-top:8px;text-align:right}
.home{background:#fbfbfb} .home-tab{font-size:12px;font-weight:700;border-bottom:2px solid #1264a3;
 display:inline-block;margin-bottom:8px}
.block{margin:6px 0} .header{font-size:17px;margin:8px 0} .context{font-size:12px;color:#616061}
.fields{display:grid;grid-template-columns:1fr 1fr;gap:6px 18px}
.btn{border:1px solid #bbb;border-radius:4px;background:#fff;padding:4px 12px;font-weight:700;
 color:#1d1c1d;margin:2px 4px 2px 0;opacity:1}
.btn-primary{background:#007a5a;border-color:#007a5a;color:#fff}
.btn-danger{background:#fff;border-color:#e01e5a;color:#e01e5a}
.input .label{font-weight:700;margin-bottom:3px} .optional,.hint{color:#616061;font-weight:400;font-size:12px}
input[type=text],textarea,select{font:inherit;padding:4px 6px;border:1px solid #bbb;border-radius:4px;
 min-width:260px;background:#fff;color:#1d1c1d} textarea{min-height:48px}
.choices .choice{display:block}
blockquote{border-left:4px solid #ddd;margin:4px 0;padding-left:8px;color:#444}
code{background:#f2f2f2;border:1px solid #e2e2e2;border-radius:3px;padding:0 3px}
.mention{background:#e8f5fa;color:#1264a3;border-radius:3px;padding:0 2px}
.dropdown{border:1px solid #ccc;border-radius:6px;max-width:520px} .dropdown .group{font-size:12px;
 color:#616061;padding:6px 10px 0} .dropdown ul{list-style:none;margin:0;padding:2px 0}
.dropdown li{padding:3px 10px} .unsupported{color:#a00;font-style:italic}
.http{font-family:ui-monospace,Menlo,monospace;font-size:13px;background:#f6f8fa;border-radius:6px;
 padding:6px 10px;white-space:pre-wrap}
footer{color:#777;font-size:12px;margin-top:20px}
"""


def page_html(title: str, lead: str, sections: Iterable[str], footer: str = "") -> str:
    """A whole HTML document around already-escaped sections."""
    foot = f"<footer>{_e(footer)}</footer>" if footer else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body><main>"
        f'<h1>{_e(title)}</h1><p class="lead">{_e(lead)}</p>{"".join(sections)}{foot}</main></body></html>\n'
    )


def escape_html(value: object) -> str:
    """HTML-escape any value (quotes too), for narration placed beside rendered surfaces."""
    return _e(value)


def plain_text(obj: Any) -> str:
    """The text of a Block Kit text object (a button's, an option's, a label's) as a reader sees it."""
    return _plain(obj)


def slack_escape(text: str) -> str:
    """Escape text the way the product escapes user text for mrkdwn (``blocks.text.esc``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
