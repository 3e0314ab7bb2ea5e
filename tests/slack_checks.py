"""Validate every Slack surface the code builds: slack_sdk.models, plus the limits the SDK does not check."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

MESSAGE_BLOCKS_MAX = 50
VIEW_BLOCKS_MAX = 100
CHECKBOX_OPTIONS_MAX = 10
FIELD_TEXT_MAX = 2000
MESSAGE_TEXT_MAX = 40_000


def _walk_elements(block: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    if "element" in block:
        out.append(block["element"])
    if "accessory" in block:
        out.append(block["accessory"])
    out.extend(block.get("elements", []))
    return out


def _extra_limits(blocks: list[dict[str, Any]]) -> None:
    for block in blocks:
        for f in block.get("fields", []) or []:
            assert len(f["text"]) <= FIELD_TEXT_MAX, f"section field over {FIELD_TEXT_MAX} chars"
        for el in _walk_elements(block):
            if not isinstance(el, dict):
                continue
            if el.get("type") in ("checkboxes", "radio_buttons"):
                assert len(el.get("options", [])) <= CHECKBOX_OPTIONS_MAX, f"{el['type']} over 10 options"
            if el.get("type") == "plain_text_input":
                lo, hi = el.get("min_length", 0), el.get("max_length", 3000)
                assert 0 <= lo <= hi <= 3000, "plain_text_input length bounds"
                if "initial_value" in el:
                    assert lo <= len(el["initial_value"]) <= hi, "initial value outside its own bounds"


def check_message(blocks: list[dict[str, Any]], text: str | None = None) -> None:
    """A message's blocks: each valid for slack_sdk, at most 50, plus the limits it does not check."""
    assert 0 < len(blocks) <= MESSAGE_BLOCKS_MAX, f"{len(blocks)} blocks in a message"
    for raw in blocks:
        block = Block.parse(raw)
        assert block is not None, raw
        block.to_dict()  # runs slack_sdk's validators
    _extra_limits(blocks)
    if text is not None:
        assert len(text) <= MESSAGE_TEXT_MAX


def check_view(view: dict[str, Any]) -> None:
    """A modal or Home view: slack_sdk's validators (which include the 100-block limit) and ours."""
    assert len(view.get("blocks", [])) <= VIEW_BLOCKS_MAX
    View(**view).to_dict()
    _extra_limits(view["blocks"])
