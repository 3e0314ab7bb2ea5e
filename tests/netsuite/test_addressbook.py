"""Address book merge: examples, then properties checked against a model of NetSuite's
``replace=addressBook`` semantics (netsuite.md §1.7)."""

from __future__ import annotations

import copy
import itertools
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netsuite.addressbook import (
    ADDRESS,
    REPLACE,
    DesiredAddress,
    existing_lines,
    line_key,
    locate_lines,
    merge_address_book,
    normalise_address,
)


def netsuite_apply_replace(
    existing: list[dict[str, Any]], items: list[dict[str, Any]], ids: itertools.count[int]
) -> list[dict[str, Any]]:
    """What NetSuite does with PATCH ?replace=addressBook: request lines whose key matches an
    existing line update it (omitted fields kept), other request lines are added with a new key,
    and existing lines not in the request are removed."""
    by_key = {line_key(line): line for line in existing}
    result = []
    for item in items:
        key = line_key(item)
        if key is not None and key in by_key:
            line = copy.deepcopy(by_key[key])
            for name, value in item.items():
                if name == ADDRESS:
                    line[ADDRESS] = {**line.get(ADDRESS, {}), **value}
                else:
                    line[name] = value
        else:
            line = copy.deepcopy({k: v for k, v in item.items() if k not in ("internalId", "id")})
            line["internalId"] = next(ids)
        line.setdefault("defaultBilling", False)
        line.setdefault("defaultShipping", False)
        result.append(line)
    return result


def ns_line(internal_id: int, label: str, addr1: str, city: str = "Austin", **flags: bool) -> dict[str, Any]:
    return {
        "internalId": internal_id,
        "label": label,
        "defaultBilling": flags.get("billing", False),
        "defaultShipping": flags.get("shipping", False),
        "links": [{"rel": "self", "href": f"https://x/customer/1/addressBook/{internal_id}"}],
        "addressBookAddress_text": f"{addr1}\n{city}",
        ADDRESS: {
            "addr1": addr1,
            "city": city,
            "state": "TX",
            "zip": "78701",
            "country": {"id": "US", "refName": "United States"},
            "addrText": f"{addr1}\n{city}",
            "links": [],
        },
    }


def ours(key: str, label: str, addr1: str, city: str = "Austin", **kw: Any) -> DesiredAddress:
    address = {"addr1": addr1, "city": city, "state": "TX", "zip": "78701", "country": {"id": "US"}}
    return DesiredAddress(key=key, label=label, address=address, **kw)


# ---- examples ---------------------------------------------------------------------------------


def test_foreign_lines_are_kept_and_ours_added_with_the_defaults_moved() -> None:
    existing = [ns_line(10, "HQ", "1 Main St", billing=True, shipping=True)]
    plan = merge_address_book(
        existing,
        [
            ours("billing", "Credit Desk billing", "5 Pay Rd", default_billing=True),
            ours("ship:1", "Warehouse", "9 Dock Rd", "Dallas", default_shipping=True),
        ],
    )
    kept, billing, ship = plan.items
    assert kept["internalId"] == 10 and kept["label"] == "HQ"
    assert kept["defaultBilling"] is False and kept["defaultShipping"] is False
    assert "links" not in kept and "addressBookAddress_text" not in kept
    assert "addrText" not in kept[ADDRESS] and "links" not in kept[ADDRESS]
    assert billing == {
        "label": "Credit Desk billing",
        ADDRESS: {
            "addr1": "5 Pay Rd",
            "city": "Austin",
            "state": "TX",
            "zip": "78701",
            "country": {"id": "US"},
        },
        "defaultBilling": True,
        "defaultShipping": False,
    }
    assert ship["defaultShipping"] is True and "internalId" not in ship
    assert plan.matches == {"billing": None, "ship:1": None}
    assert plan.body() == {"addressBook": {"items": plan.items}}
    assert REPLACE == ("addressBook",)


def test_our_line_is_found_by_recorded_id_then_label_then_address() -> None:
    existing = [
        ns_line(10, "Renamed by a clerk", "5 Pay Rd"),
        ns_line(11, "Warehouse", "Old dock"),
        ns_line(12, "Somebody's", "9 Dock  Rd.", "DALLAS"),
    ]
    plan = merge_address_book(
        existing,
        [
            ours("billing", "Billing", "5 Pay Road", line_id="10"),
            ours("ship:1", "Warehouse", "1 New Dock"),
            ours("ship:2", "Dallas DC", "9 dock rd", "Dallas"),
        ],
    )
    assert plan.matches == {"billing": "10", "ship:1": "11", "ship:2": "12"}
    assert len(plan.items) == 3
    assert plan.items[0][ADDRESS]["addr1"] == "5 Pay Road"
    assert plan.items[0]["label"] == "Billing"
    assert plan.items[1][ADDRESS]["addr1"] == "1 New Dock"
    assert plan.items[2]["internalId"] == 12


def test_a_dropped_address_part_is_cleared_not_left_behind() -> None:
    line = ns_line(10, "Billing", "5 Pay Rd")
    line[ADDRESS]["addr2"] = "Suite 9"
    line[ADDRESS]["addrPhone"] = "512-555-0100"  # not ours to manage: kept
    plan = merge_address_book([line], [ours("billing", "Billing", "5 Pay Rd")])
    assert plan.items[0][ADDRESS]["addr2"] == ""
    assert plan.items[0][ADDRESS]["addrPhone"] == "512-555-0100"


def test_existing_defaults_survive_when_we_name_none() -> None:
    existing = [ns_line(1, "A", "1 A St"), ns_line(2, "B", "2 B St", billing=True, shipping=True)]
    plan = merge_address_book(existing, [ours("x", "X", "3 X St")])
    assert [i["defaultBilling"] for i in plan.items] == [False, True, False]
    assert [i["defaultShipping"] for i in plan.items] == [False, True, False]

    empty = merge_address_book([], [ours("x", "X", "3 X St")])
    assert empty.items[0]["defaultBilling"] is True and empty.items[0]["defaultShipping"] is True
    assert merge_address_book([], []).items == []


def test_our_input_is_checked() -> None:
    a, b = ours("a", "A", "1 St"), ours("b", "B", "2 St")
    bad_inputs = [
        [a, ours("a", "Other", "3 St")],
        [a, ours("c", " a ", "3 St")],
        [ours("a", "A", "1 St", default_billing=True), ours("b", "B", "2", default_billing=True)],
        [ours("a", "A", "1", default_shipping=True), ours("b", "B", "2", default_shipping=True)],
        [DesiredAddress(key="a", label="A", address={"addressee": "Acme"})],
        [DesiredAddress(key="a", label="", address=a.address)],
    ]
    for desired in bad_inputs:
        with pytest.raises(ValueError):
            merge_address_book([], desired)
    merge_address_book([], [a, b])


def test_an_unexpanded_or_paged_book_is_refused() -> None:
    assert existing_lines({"id": "1"}) == []
    assert existing_lines({"addressBook": {"items": [{"internalId": 1}]}}) == [{"internalId": 1}]
    with pytest.raises(ValueError, match="expandSubResources"):
        existing_lines({"addressBook": {"links": [{"rel": "self", "href": "x"}]}})
    with pytest.raises(ValueError, match="paged"):
        existing_lines({"addressBook": {"items": [], "hasMore": True}})


def test_normalise_address() -> None:
    a = {"addr1": "9 Dock Rd.", "city": "Dallas", "zip": "M5J 2X2", "country": {"id": "CA"}}
    b = {"addr1": " 9  dock rd", "city": "DALLAS", "zip": "m5j2x2", "country": "CA"}
    assert normalise_address(a) == normalise_address(b)
    assert normalise_address(a) != normalise_address({**b, "addr2": "Unit 2"})


# ---- properties -------------------------------------------------------------------------------

STREETS = ["1 Main St", "1 MAIN ST.", "5 Pay Rd", "9 Dock Rd", "77 Elm"]
CITIES = ["Austin", "Dallas"]
LABELS = ["Billing", "Warehouse", "HQ", "Dallas DC", "Old"]


@st.composite
def existing_books(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(0, 5))
    ids = draw(st.lists(st.integers(1, 50), min_size=n, max_size=n, unique=True))
    lines = []
    for internal_id in ids:
        line = ns_line(
            internal_id,
            draw(st.sampled_from(LABELS)),
            draw(st.sampled_from(STREETS)),
            draw(st.sampled_from(CITIES)),
            billing=draw(st.booleans()),
            shipping=draw(st.booleans()),
        )
        lines.append(line)
    return lines


@st.composite
def desired_sets(draw: st.DrawFn) -> list[DesiredAddress]:
    n = draw(st.integers(0, 3))
    labels = draw(st.lists(st.sampled_from(LABELS), min_size=n, max_size=n, unique=True))
    billing = draw(st.one_of(st.none(), st.integers(0, max(n - 1, 0))))
    shipping = draw(st.one_of(st.none(), st.integers(0, max(n - 1, 0))))
    result = []
    for i, label in enumerate(labels):
        result.append(
            ours(
                f"key-{i}",
                label,
                draw(st.sampled_from(STREETS)),
                draw(st.sampled_from(CITIES)),
                default_billing=billing == i,
                default_shipping=shipping == i,
                line_id=draw(st.one_of(st.none(), st.integers(1, 60).map(str))),
            )
        )
    return result


def keys(lines: list[dict[str, Any]]) -> list[str]:
    found = [line_key(line) for line in lines]
    assert all(k is not None for k in found)
    return sorted(k for k in found if k is not None)


def addresses(lines: list[dict[str, Any]]) -> Counter[tuple[str, ...]]:
    return Counter(normalise_address(line[ADDRESS]) for line in lines)


def check_defaults(lines: list[dict[str, Any]], desired: list[DesiredAddress]) -> None:
    if not lines:
        return
    for flag, wants in (("defaultBilling", "default_billing"), ("defaultShipping", "default_shipping")):
        flagged = [line for line in lines if line[flag]]
        assert len(flagged) == 1, flag
        named = [d for d in desired if getattr(d, wants)]
        if named:
            assert flagged[0]["label"] == named[0].label
            assert normalise_address(flagged[0][ADDRESS]) == normalise_address(named[0].address)


@settings(max_examples=300, deadline=None)
@given(existing=existing_books(), desired=desired_sets())
def test_merge_invariants(existing: list[dict[str, Any]], desired: list[DesiredAddress]) -> None:
    ids = itertools.count(1000)
    plan = merge_address_book(existing, desired)
    after = netsuite_apply_replace(existing, plan.items, ids)

    # Lines we do not own survive with their key, label and address.
    claimed = {k for k in plan.matches.values() if k is not None}
    survivors = {line_key(line): line for line in after}
    for line in existing:
        if line_key(line) not in claimed:
            kept = survivors[line_key(line)]
            assert kept["label"] == line["label"]
            assert normalise_address(kept[ADDRESS]) == normalise_address(line[ADDRESS])

    # Each of ours is present under its label at its address exactly once, besides copies that
    # NetSuite already held and none of ours took (those are not ours to delete).
    def same(line: dict[str, Any], d: DesiredAddress) -> bool:
        return line["label"] == d.label and (normalise_address(line[ADDRESS]) == normalise_address(d.address))

    for d in desired:
        untouched = sum(1 for ln in existing if line_key(ln) not in claimed and same(ln, d))
        assert sum(1 for line in after if same(line, d)) == 1 + untouched
    unmatched = sum(1 for key in plan.matches.values() if key is None)
    assert len(after) == len(existing) + unmatched

    check_defaults(after, desired)

    # Writing again after re-reading changes nothing: no new lines, same places, same ids.
    located = locate_lines(after, desired)
    assert all(v is not None for v in located.values())
    again = netsuite_apply_replace(after, merge_address_book(after, desired).items, ids)
    assert len(again) == len(after)
    assert addresses(again) == addresses(after)
    assert keys(again) == keys(after)
    check_defaults(again, desired)

    # Recording the line ids and writing again also finds the same lines.
    recorded = [
        DesiredAddress(
            d.key, d.label, d.address, d.default_billing, d.default_shipping, line_id=located[d.key]
        )
        for d in desired
    ]
    again = netsuite_apply_replace(after, merge_address_book(after, recorded).items, ids)
    assert keys(again) == keys(after)

    # A blind retry of the same payload after an unseen success does not duplicate lines.
    retried = netsuite_apply_replace(after, plan.items, ids)
    assert len(retried) == len(after)
    assert addresses(retried) == addresses(after)
