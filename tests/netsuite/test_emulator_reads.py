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


# ---- compiled evaluation against the plain tree walk ----------------------------------------------

# Statements and params the compiled evaluation must answer exactly as the tree walk does: the
# ingest's shapes, every node type, implicit casts between numbers and text, NULLs, joins (inner and
# left), sorting on several keys, and statements that fail while evaluating.
REFERENCE_CASES: list[tuple[str, list[Any]]] = [
    (queries.CUSTOMERS_MODIFIED_SINCE, ["2000-01-01 00:00:00", "2000-01-01 00:00:00", 0]),
    (queries.CUSTOMERS_MODIFIED_SINCE, ["2023-06-01 00:00:00", "2023-06-01 00:00:00", "1040"]),
    (queries.CUSTOMER_CREDIT_STANDING, ["1005"]),
    (queries.DELETED_CUSTOMERS_SINCE, ["2000-01-01 00:00:00", "2000-01-01 00:00:00", 0]),
    (queries.TERMS, []),
    (queries.SALES_REPS, []),
    ("SELECT c.id, c.companyname FROM customer c WHERE c.companyname LIKE ? "
     "ORDER BY c.companyname DESC, c.id", ["%a%"]),
    ("SELECT c.id, UPPER(c.email) AS e, NVL(c.phone, 'none') AS p, COALESCE(c.url, c.email, 'x') AS u "
     "FROM customer c WHERE c.id BETWEEN ? AND ? ORDER BY c.id", ["1003", 1040]),
    ("SELECT c.id FROM customer c WHERE c.id NOT BETWEEN ? AND ? AND c.id < ? ORDER BY c.id",
     [1003, 1040, 1060]),
    ("SELECT c.id, c.externalid FROM customer c WHERE c.externalid IS NULL OR c.id > ? "
     "ORDER BY c.id", [1100]),
    ("SELECT c.id, c.creditlimit FROM customer c WHERE c.creditlimit >= ? AND c.balancesearch > ? "
     "ORDER BY c.creditlimit DESC, c.id", ["10000", "0.5"]),
    ("SELECT c.id FROM customer c WHERE c.creditlimit > ? ORDER BY c.id", [10000.5]),
    ("SELECT c.id FROM customer c WHERE c.balancesearch > c.creditlimit ORDER BY c.id", []),
    ("SELECT c.id FROM customer c WHERE c.daysoverduesearch <> ? AND c.daysoverduesearch <= ? "
     "ORDER BY c.daysoverduesearch, c.id", [0, "61"]),
    ("SELECT DISTINCT c.terms, BUILTIN.DF(c.terms) AS t FROM customer c ORDER BY c.terms", []),
    ("SELECT c.id, BUILTIN.DF(c.salesrep) AS r, BUILTIN.DF(c.currency) AS cu, "
     "BUILTIN.DF(c.oncredithold) AS h, BUILTIN.DF(c.subsidiary) AS s, "
     "TO_CHAR(c.datecreated, 'YYYY-MM-DD HH:MI:SS AM') AS d, "
     "TO_CHAR(c.lastmodifieddate) AS l, c.datecreated FROM customer c WHERE c.id IN (?, ?, ?)",
     ["1001", 1002, "1003.0"]),
    ("SELECT c.id, c.entityid || '-' || c.id AS k FROM customer c WHERE c.entityid IN (?, 'C' || ?)",
     ["C1001", "1002"]),
    ("SELECT c.id FROM customer c WHERE NOT (c.isinactive = 'T') AND c.id < ? ORDER BY c.id", [1050]),
    ("SELECT c.id FROM customer c WHERE c.isinactive = ? ORDER BY c.id", [True]),
    ("SELECT c.id FROM customer c WHERE c.id IN (?, c.terms) OR c.id = ? ORDER BY c.id", [1001, "1002"]),
    ("SELECT c.id FROM customer c WHERE c.id NOT IN (?, NULL)", [1001]),
    ("SELECT c.id FROM customer c WHERE c.lastmodifieddate > TO_TIMESTAMP(?, 'YYYY-MM-DD HH24:MI:SS') "
     "OR c.id > ? ORDER BY c.lastmodifieddate, c.id", ["2024-06-01 00:00:00", 1100]),
    ("SELECT c.id FROM customer c WHERE c.lastmodifieddate < TO_TIMESTAMP(?, 'YYYY-MM-DD HH24:MI:SS') "
     "ORDER BY c.id DESC", ["2023-01-01 00:00:00"]),
    ("SELECT cab.entity, cab.label, a.city, a.addrtext FROM customeraddressbook cab "
     "LEFT JOIN customeraddressbookentityaddress a ON a.nkey = cab.addressbookaddress "
     "WHERE cab.entity IN (?, ?, ?) ORDER BY a.city DESC, cab.entity", [1001, 1002, "1003"]),
    ("SELECT c.id, a.city, a.zip FROM customer c JOIN customeraddressbookentityaddress a "
     "ON a.nkey = c.defaultbillingaddress AND a.country = ? WHERE c.id < ? ORDER BY a.zip, c.id",
     ["US", 1060]),
    ("SELECT co.id, co.company, BUILTIN.DF(co.company) AS cn FROM contact co "
     "WHERE co.company = ? OR co.company = ? ORDER BY co.id", [1001, "1002"]),
    ("SELECT e.id FROM employee e WHERE e.id IN (?, ?) AND e.issalesrep = 'T'", [101, "102"]),
    # failing while evaluating: the same error either way
    ("SELECT c.id FROM customer c WHERE c.entityid IN (?, 5)", ["C1001"]),
    ("SELECT c.id FROM customer c WHERE c.id IN (?, ?)", [1001, "abc"]),
    ("SELECT c.id FROM customer c WHERE c.id > ?", ["abc"]),
    ("SELECT c.id FROM customer c WHERE c.lastmodifieddate > ?", ["2024-01-01"]),
    ("SELECT c.id FROM customer c WHERE c.companyname", []),
    ("SELECT c.id FROM customer c WHERE c.lastmodifieddate >= TO_TIMESTAMP(?, 'YYYY-MM-DD HH24:MI:SS')",
     ["01/02/2024"]),
]  # fmt: skip


def answer(svc: SuiteQLService, q: str, params: list[Any], limit: int, offset: int) -> Any:
    try:
        page = svc.execute(q, params, limit=limit, offset=offset)
    except NsError as error:
        return ("error", error.status, str(error))
    return (page.items, page.total, page.has_more)


@pytest.mark.parametrize("q, params", REFERENCE_CASES)
def test_compiled_evaluation_answers_as_the_plain_tree_walk(q: str, params: list[Any]) -> None:
    state = EmulatorState(seed=5, customers=150, clock=lambda: FIXED)
    state.edit_customer(1004, company_name="Édition Ünïcode & Co", credit_limit=Decimal("12.5"))
    state.edit_customer(1006, email=None, phone=None)
    state.delete_customer(1008)
    fast, plain = SuiteQLService(state), SuiteQLService(state, reference=True)
    for limit, offset in ((1000, 0), (7, 14)):
        expected = answer(plain, q, params, limit, offset)
        assert answer(fast, q, params, limit, offset) == expected
    assert not (expected[0] == "error" and expected[1] >= 500), "a bug, not the statement's fault"


def test_a_number_sent_as_text_compares_as_a_number_with_numeric_columns() -> None:
    svc = service()
    a = ids_of(svc, 1)[0]
    q = "SELECT c.id FROM customer c WHERE c.id > ? AND c.id <= ? ORDER BY c.id"
    assert column(svc, q, [f" {a} ", f"{a + 2}.00"]) == [str(a + 1), str(a + 2)]
    assert "invalid number: 'x'" in refused(svc, q, [a, "x"])
    q = "SELECT c.id FROM customer c WHERE c.entityid > ? ORDER BY c.id"  # text against text
    assert column(svc, q, [f"C{a + 197}"]) == [
        str(cid) for cid in ids_of(svc, 120) if f"C{cid}" > f"C{a + 197}"
    ]


def test_the_address_text_is_built_only_for_statements_that_read_it() -> None:
    svc = service()
    a = ids_of(svc, 1)[0]
    with_text = rows(svc, "SELECT a.nkey, a.addrtext FROM customeraddressbookentityaddress a "
                          "WHERE a.nkey = ?", [a * 10 + NKEY_OFFSET])  # fmt: skip
    customer = svc.state.get_customer(a)
    assert customer is not None
    assert with_text == [{"links": [], "nkey": str(a * 10 + NKEY_OFFSET),
                          "addrtext": customer.address_book[0].address.text()}]  # fmt: skip


# ---- seed draws ------------------------------------------------------------------------------------


def test_seed_draws_are_the_random_modules_draws() -> None:
    import random

    from netsuite.emulator.seed import _Draw

    for text in ("7:customer:1", "1:name:99", "31:contact2:123456"):
        ours, theirs = _Draw(text), random.Random(text)
        for n in range(2000):
            kind = n % 5
            if kind == 0:
                assert ours.choice(range(n % 37 + 1)) == theirs.choice(range(n % 37 + 1))
            elif kind == 1:
                assert ours.randrange(n + 1) == theirs.randrange(n + 1)
            elif kind == 2:
                assert ours.randrange(n, 2 * n + 3) == theirs.randrange(n, 2 * n + 3)
            elif kind == 3:
                assert ours.uniform(0.05, 1.1) == theirs.uniform(0.05, 1.1)
            else:
                assert ours.random() == theirs.random()
