"""Merging our address lines into a customer's ``addressBook`` without losing or doubling lines.

NetSuite's sublist rules (netsuite.md §1.6-1.7, §6.1): a PATCH without ``replace`` appends every
unkeyed line (so a retried write duplicates addresses), and ``?replace=addressBook`` removes every
line not resent. The safe write is therefore: read the customer with sub-resources expanded
(failing if that read fails -- never treat it as "no addresses"), build the *complete* line set
here, and PATCH it with ``replace=addressBook`` (:data:`REPLACE`). This module is pure: it takes
the lines NetSuite returned and the lines we want, and returns the lines to send.

Our lines are found among NetSuite's by, in order: the line id we recorded after an earlier
write, our label, then normalised address equality. That makes a retry -- or a write after a
success we never saw -- update the same lines instead of adding new ones. Lines we do not own
are sent back unchanged except for the default flags, so they survive the replace.

The REST key of an addressBook line is UNCONFIRMED (``internalId`` per the SOAP docs; ``id`` is
also exposed); lines are resent with whichever of the two NetSuite gave us.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

SUBLIST = "addressBook"
REPLACE = (SUBLIST,)
LINE_KEY_FIELDS = ("internalId", "id")
ADDRESS = "addressBookAddress"
# The fields that say where an address is; who it is for (addressee, attention, phone) may change.
LOCATION_FIELDS = ("addr1", "addr2", "addr3", "city", "state", "zip", "country")
_CLEARABLE_TEXT_FIELDS = ("addr1", "addr2", "addr3", "city", "state", "zip")
_READ_ONLY_LINE_FIELDS = frozenset({"links", "refName", "lastModifiedDate", "addressBookAddress_text"})
_READ_ONLY_ADDRESS_FIELDS = frozenset({"links", "refName", "lastModifiedDate", "id"})
_PUNCTUATION = re.compile(r"[.,#;:'\"]+")


@dataclass(frozen=True)
class DesiredAddress:
    """One address line Credit Desk owns on a customer.

    ``key`` is ours (stable per customer, e.g. ``billing`` or ``ship:<location id>``); ``label``
    is what NetSuite shows and should be unique on the customer; ``line_id`` is the NetSuite line
    key recorded after an earlier write, when known. ``address`` is the complete
    ``addressBookAddress`` body (``country`` as ``{"id": "US"}`` or ``"US"``).
    """

    key: str
    label: str
    address: Mapping[str, Any]
    default_billing: bool = False
    default_shipping: bool = False
    line_id: str | None = None
    is_residential: bool | None = None


@dataclass(frozen=True)
class AddressBookPlan:
    """The lines to send with ``replace=addressBook``, and which existing line each of ours took
    (``None``: a new line, whose id is known only after re-reading -- see :func:`locate_lines`)."""

    items: list[dict[str, Any]]
    matches: dict[str, str | None] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {SUBLIST: {"items": self.items}}


def line_key(line: Mapping[str, Any]) -> str | None:
    """The NetSuite key of an existing line (``internalId``, else ``id``), as a string."""
    for name in LINE_KEY_FIELDS:
        value = line.get(name)
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def normalise_address(address: Mapping[str, Any]) -> tuple[str, ...]:
    """Location fields compared loosely: case, spacing and punctuation ignored; references
    (``{"id": "US"}``) read by id; zip without inner spaces."""
    parts = []
    for name in LOCATION_FIELDS:
        value = address.get(name)
        if isinstance(value, Mapping):
            value = value.get("id") or value.get("refName")
        text = _PUNCTUATION.sub(" ", str(value or "")).casefold()
        text = " ".join(text.split())
        if name == "zip":
            text = text.replace(" ", "")
        parts.append(text)
    return tuple(parts)


def existing_lines(customer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The address lines of a customer read with ``expandSubResources=true``.

    Raises ValueError if the address book was not expanded (links only), because treating an
    unexpanded book as empty would wipe it on the replace.
    """
    book = customer.get(SUBLIST)
    if book is None:
        return []
    if not isinstance(book, Mapping) or not isinstance(book.get("items"), list):
        raise ValueError("customer addressBook is not expanded; read with expandSubResources=true")
    if book.get("hasMore"):
        raise ValueError("customer addressBook came back paged; cannot merge a partial book")
    lines = []
    for item in book["items"]:
        if not isinstance(item, Mapping):
            raise ValueError("addressBook line is not an object")
        lines.append(dict(item))
    return lines


def merge_address_book(
    existing: Sequence[Mapping[str, Any]], desired: Sequence[DesiredAddress]
) -> AddressBookPlan:
    """The complete ``addressBook.items`` to PATCH with ``replace=addressBook``.

    Guarantees: every existing line that none of ours matches is resent (with its key), each of
    ours is sent exactly once (updating its matched line, or as a new line), and -- when any line
    is left -- exactly one line is the default billing and one the default shipping address.
    """
    _validate(desired)
    matches = _match(existing, desired)
    owner_of = {index: d for d, index in ((d, matches[d.key]) for d in desired) if index is not None}

    items: list[dict[str, Any]] = []
    ours_at: dict[str, int] = {}
    for index, line in enumerate(existing):
        mine = owner_of.get(index)
        if mine is None:
            items.append(_clean_line(line))
        else:
            ours_at[mine.key] = len(items)
            items.append(_updated_line(line, mine))
    for d in desired:
        if matches[d.key] is None:
            ours_at[d.key] = len(items)
            items.append(_new_line(d))

    ours_in_order = [ours_at[d.key] for d in desired]
    for flag, wanted in (
        ("defaultBilling", [d for d in desired if d.default_billing]),
        ("defaultShipping", [d for d in desired if d.default_shipping]),
    ):
        chosen = _choose_default(items, flag, [ours_at[d.key] for d in wanted], ours_in_order)
        for position, item in enumerate(items):
            item[flag] = position == chosen

    return AddressBookPlan(
        items=items,
        matches={
            d.key: (line_key(existing[i]) if (i := matches[d.key]) is not None else None) for d in desired
        },
    )


def locate_lines(
    existing: Sequence[Mapping[str, Any]], desired: Sequence[DesiredAddress]
) -> dict[str, str | None]:
    """After a write and a re-read: the NetSuite line key of each of our lines (to record)."""
    _validate(desired)
    found = _match(existing, desired)
    return {d.key: (line_key(existing[i]) if (i := found[d.key]) is not None else None) for d in desired}


# ---- internals --------------------------------------------------------------------------------


def _validate(desired: Sequence[DesiredAddress]) -> None:
    keys = [d.key for d in desired]
    if len(set(keys)) != len(keys):
        raise ValueError("our address keys must be unique")
    labels = [_label(d.label) for d in desired]
    if any(not label for label in labels) or len(set(labels)) != len(labels):
        raise ValueError("our address labels must be non-empty and unique")
    if sum(d.default_billing for d in desired) > 1:
        raise ValueError("at most one of our addresses can be the default billing address")
    if sum(d.default_shipping for d in desired) > 1:
        raise ValueError("at most one of our addresses can be the default shipping address")
    for d in desired:
        if not any(normalise_address(d.address)):
            raise ValueError(f"address {d.key!r} has no location fields")


def _match(existing: Sequence[Mapping[str, Any]], desired: Sequence[DesiredAddress]) -> dict[str, int | None]:
    """Pair each of ours with at most one existing line, each line with at most one of ours."""
    taken: set[int] = set()
    result: dict[str, int | None] = {d.key: None for d in desired}
    keys = [line_key(line) for line in existing]
    labels = [_label(str(line.get("label") or "")) for line in existing]
    addresses = [
        normalise_address(a) if isinstance(a := line.get(ADDRESS), Mapping) else None for line in existing
    ]

    def claim(d: DesiredAddress, candidates: list[int]) -> None:
        for index in candidates:
            if index not in taken:
                taken.add(index)
                result[d.key] = index
                return

    for d in desired:  # 1. the line id we recorded
        if d.line_id is not None:
            claim(d, [i for i, k in enumerate(keys) if k == str(d.line_id)])
    for d in desired:  # 2. our label
        if result[d.key] is None:
            claim(d, [i for i, label in enumerate(labels) if label == _label(d.label)])
    for d in desired:  # 3. the same place
        if result[d.key] is None:
            mine = normalise_address(d.address)
            claim(d, [i for i, a in enumerate(addresses) if a == mine])
    return result


def _choose_default(items: list[dict[str, Any]], flag: str, wanted: list[int], ours: list[int]) -> int | None:
    """Ours if we name one; else the line already flagged; else our first line; else the first."""
    if wanted:
        return wanted[0]
    for position, item in enumerate(items):
        if item.get(flag) is True:
            return position
    if ours:
        return ours[0]
    return 0 if items else None


def _label(text: str) -> str:
    return " ".join(text.split()).casefold()


def _clean_address(address: Mapping[str, Any]) -> dict[str, Any]:
    cleaned = {k: v for k, v in address.items() if k not in _READ_ONLY_ADDRESS_FIELDS}
    if not cleaned.get("override"):
        cleaned.pop("addrText", None)  # derived from the fields unless overridden
    return cleaned


def _clean_line(line: Mapping[str, Any]) -> dict[str, Any]:
    cleaned = {k: v for k, v in line.items() if k not in _READ_ONLY_LINE_FIELDS}
    if isinstance(cleaned.get(ADDRESS), Mapping):
        cleaned[ADDRESS] = _clean_address(cleaned[ADDRESS])
    return cleaned


def _updated_line(line: Mapping[str, Any], mine: DesiredAddress) -> dict[str, Any]:
    updated = _clean_line(line)
    old = updated.get(ADDRESS)
    address = dict(old) if isinstance(old, Mapping) else {}
    for name in _CLEARABLE_TEXT_FIELDS:  # a part we no longer send must not linger
        if name in address and name not in mine.address:
            address[name] = ""
    address.pop("addrText", None)
    address.update(mine.address)
    updated[ADDRESS] = address
    updated["label"] = mine.label
    if mine.is_residential is not None:
        updated["isResidential"] = mine.is_residential
    return updated


def _new_line(mine: DesiredAddress) -> dict[str, Any]:
    line: dict[str, Any] = {"label": mine.label, ADDRESS: dict(mine.address)}
    if mine.is_residential is not None:
        line["isResidential"] = mine.is_residential
    return line
