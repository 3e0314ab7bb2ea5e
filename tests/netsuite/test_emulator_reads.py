"""The emulator's fast SuiteQL read path answers exactly as the plain evaluation would.

Hashed ``IN`` lists, key lookups, the shared LRU of generated customers and the statement cache
are speed-ups only; these tests pin that they change no answer -- mixed-type ``IN`` lists, NULLs,
errors, edits and deletions made "in NetSuite" between reads, and a cache too small to hold a page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from netsuite import queries
from netsuite.emulator import EmulatorState
from netsuite.emulator.errors import NsError
from netsuite.emulator.seed import NKEY_OFFSET
from netsuite.emulator.suiteql import SuiteQLService

FIXED = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def service(customers: int = 120, **state_options: Any) -> SuiteQLService:
    return SuiteQLService(EmulatorState(seed=5, customers=customers, clock=lambda: FIXED, **state_options))


def ids_of(svc: SuiteQLService, count: int) -> list[int]:
    return [svc.state.base.id_of(i) for i in range(count)]


def rows(svc: SuiteQLService, q: str, params: list[Any], **paging: int) -> list[dict[str, Any]]:
    return svc.execute(q, params, limit=paging.get("limit", 1000), offset=paging.get("offset", 0)).items


def column(svc: SuiteQLService, q: str, params: list[Any], name: str = "id") -> list[str]:
    return [row[name] for row in rows(svc, q, params)]


def refused(svc: SuiteQLService, q: str, params: list[Any]) -> str:
    with pytest.raises(NsError) as caught:
        rows(svc, q, params)
    assert caught.value.status == 400
    return str(caught.value)


BY_ID = "SELECT c.id FROM customer c WHERE c.id IN ({}) ORDER BY c.id"


def test_an_id_list_matches_numbers_and_numeric_text_alike() -> None:
    svc = service()
    a, b, c, d = ids_of(svc, 4)
    # int, text of an int, a float and a decimal-looking text all compare as numbers
    got = column(svc, BY_ID.format("?, ?, ?, ?"), [a, str(b), float(c), f"{d}.0"])
    assert got == [str(a), str(b), str(c), str(d)]
    assert column(svc, BY_ID.format("?, ?"), [a, 10**9]) == [str(a)]


def test_text_against_text_compares_as_text_and_text_against_a_number_as_numbers() -> None:
    svc = service()
    a, b = ids_of(svc, 2)
    q = "SELECT c.id FROM customer c WHERE c.entityid IN ({}) ORDER BY c.id"
    assert column(svc, q.format("?, ?"), [f"C{a}", "nobody"]) == [str(a)]
    assert column(svc, q.format("?, 'C' || ?"), [f"C{a}", str(b)]) == [str(a), str(b)]
    # a number in the list makes every entity id a number to compare: 'C1000' is none
    assert "invalid number: 'C1000'" in refused(svc, q.format("?, 5"), [f"C{a}"])
    # and text that is no number cannot be compared with a numeric id
    assert "invalid number: 'abc'" in refused(svc, BY_ID.format("?, ?"), [a, "abc"])


def test_nulls_in_a_list_follow_three_valued_logic() -> None:
    svc = service()
    a, b, c = ids_of(svc, 3)
    assert column(svc, BY_ID.format("?, NULL"), [a]) == [str(a)]
    # x NOT IN (..., NULL) is never true
    q = "SELECT c.id FROM customer c WHERE c.id NOT IN (?, NULL) AND c.id <= ? ORDER BY c.id"
    assert column(svc, q, [a, c]) == []
    q = "SELECT c.id FROM customer c WHERE c.id NOT IN (?, ?) AND c.id <= ? ORDER BY c.id"
    assert column(svc, q, [a, b, c]) == [str(c)]
    # a NULL operand is neither in nor out of the list
    q = "SELECT c.id FROM customer c WHERE c.email IN (?, ?) AND c.id <= ? ORDER BY c.id"
    no_email = {r["id"] for r in rows(svc, "SELECT c.id, c.email FROM customer c", []) if "email" not in r}
    assert no_email.isdisjoint(column(svc, q, ["x", "y", ids_of(svc, 120)[-1]]))


def test_a_list_with_a_column_in_it_is_evaluated_row_by_row() -> None:
    svc = service()
    q = "SELECT c.id, c.terms FROM customer c WHERE ? IN (c.terms, ?) ORDER BY c.id"
    with_terms_2 = [r["id"] for r in rows(svc, "SELECT c.id, c.terms FROM customer c ORDER BY c.id", [])
                    if r.get("terms") == "2"]  # fmt: skip
    assert column(svc, q, [2, -1]) == with_terms_2
    assert len(column(svc, q, [2, 2])) == len(ids_of(svc, 120))


def test_dates_in_a_list_compare_only_with_dates() -> None:
    svc = service()
    first = svc.state.base.last_modified(0).strftime("%Y-%m-%d %H:%M:%S")
    q = (
        "SELECT c.id FROM customer c WHERE c.lastmodifieddate IN "
        "(TO_TIMESTAMP(?, 'YYYY-MM-DD HH24:MI:SS')) ORDER BY c.id"
    )
    assert column(svc, q, [first]) == [str(i) for i in ids_of(svc, 4)]  # customers come in groups of 4
    q = "SELECT c.id FROM customer c WHERE c.lastmodifieddate IN (?) ORDER BY c.id"
    assert "cannot compare a date with text" in refused(svc, q, [first])


def test_address_and_contact_queries_answer_the_same_with_and_without_the_cache() -> None:
    cached, uncached, tiny = service(300), service(300, cache_size=0), service(300, cache_size=7)
    ids = ids_of(cached, 300)
    for q in (queries.CUSTOMER_ADDRESSES, queries.CUSTOMER_CONTACTS):
        for chunk in (ids[:200], ids[200:], ids[::7], [ids[3], 999, 10**9]):
            statement = queries.with_id_list(q, len(chunk))
            expected = rows(uncached, statement, chunk)
            assert expected, "every chunk has rows"
            assert rows(cached, statement, chunk) == expected
            assert rows(tiny, statement, chunk) == expected
            assert rows(cached, statement, chunk, limit=50, offset=50) == expected[50:100]
    repeated = queries.with_id_list(queries.CUSTOMER_ADDRESSES, 3)
    once = queries.with_id_list(queries.CUSTOMER_ADDRESSES, 2)
    assert rows(cached, repeated, [ids[0], ids[0], ids[1]]) == rows(uncached, once, [ids[0], ids[1]])
    assert tiny.state.cached_customers <= 7
    assert uncached.state.cached_customers == 0


def test_the_customer_pages_answer_the_same_with_and_without_the_cache() -> None:
    cached, uncached = service(300), service(300, cache_size=0)
    params = ["2000-01-01 00:00:00", "2000-01-01 00:00:00", 0]
    for _ in range(2):  # the second time from the cache
        assert rows(cached, queries.CUSTOMERS_MODIFIED_SINCE, params, limit=250) == rows(
            uncached, queries.CUSTOMERS_MODIFIED_SINCE, params, limit=250
        )


def test_reads_after_edits_and_deletions_see_them_though_the_record_was_cached() -> None:
    svc = service()
    a, b, c = ids_of(svc, 3)
    ids = [a, b, c]
    addresses = queries.with_id_list(queries.CUSTOMER_ADDRESSES, 3)
    contacts = queries.with_id_list(queries.CUSTOMER_CONTACTS, 3)
    standing = queries.CUSTOMER_CREDIT_STANDING
    before_addresses = rows(svc, addresses, ids)
    before_contacts = rows(svc, contacts, ids)
    assert rows(svc, standing, [a])[0]["creditlimit"] != "777"

    svc.state.edit_customer(a, credit_limit=Decimal("777"))
    svc.state.delete_customer(b)
    gone = next(int(r["id"]) for r in before_contacts)
    svc.state.delete_contact(gone)

    assert rows(svc, standing, [a])[0]["creditlimit"] == "777"
    assert rows(svc, standing, [b]) == []
    assert [r for r in rows(svc, addresses, ids)] == [r for r in before_addresses if r["customer"] != str(b)]
    after = [int(r["id"]) for r in rows(svc, contacts, ids)]
    assert gone not in after
    nkey = b * 10 + NKEY_OFFSET
    q = "SELECT a.nkey FROM customeraddressbookentityaddress a WHERE a.nkey IN (?)"
    assert rows(svc, q, [nkey]) == []


def test_a_changed_result_row_does_not_change_the_next_answer() -> None:
    svc = service()
    ids = ids_of(svc, 5)
    q = queries.with_id_list(queries.CUSTOMER_ADDRESSES, 5)
    first = rows(svc, q, ids)
    expected = [dict(r) for r in first]
    for row in first:
        row["city"] = "Changed"
    assert rows(svc, q, ids) == expected


def test_a_statement_seen_before_still_checks_its_parameters() -> None:
    svc = service()
    a, b = ids_of(svc, 2)
    q = BY_ID.format("?")
    assert column(svc, q, [a]) == [str(a)]
    assert column(svc, q, [b]) == [str(b)]  # the cached statement binds the new value
    assert "1 parameter(s) but 2 value(s)" in refused(svc, q, [a, b])
    assert "Unknown identifier" in refused(svc, "SELECT x.id FROM customer c WHERE c.id = ?", [a])
    assert "Unknown identifier" in refused(svc, "SELECT x.id FROM customer c WHERE c.id = ?", [a])


def test_a_negative_cache_size_is_refused() -> None:
    with pytest.raises(ValueError, match="cache_size"):
        EmulatorState(seed=1, customers=5, cache_size=-1)
