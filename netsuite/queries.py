"""The SuiteQL statements Credit Desk sends, verbatim (netsuite.md §2).

One place for every query text, so the client, the emulator's tests and the benchmarks agree on
exactly what reaches NetSuite. Rules every statement follows:

* user-supplied values are bound through the request's ``params`` (``?`` placeholders), never
  formatted into the text;
* datetimes are selected through ``TO_CHAR(..., 'YYYY-MM-DD HH24:MI:SS')`` (raw values come back in
  the user's display format; ``HH`` would be the 12-hour clock) and compared through
  ``TO_TIMESTAMP(?, 'YYYY-MM-DD HH24:MI:SS')``;
* paged statements have a unique ``ORDER BY``, and the big ones page by keyset, because the query
  service returns at most 100,000 results per statement;
* column names are SuiteQL's (``balancesearch``, not REST's ``balance``); result keys are lower-case.

Statements that take a list of ids contain ``{ids}``; expand it with :func:`with_id_list`.
"""

from __future__ import annotations

MAX_IDS_PER_QUERY = 1000
"""Oracle rejects IN-lists longer than 1000 items; split bigger sets."""

SUITEQL_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
"""Python's spelling of ``'YYYY-MM-DD HH24:MI:SS'`` for formatting cursor params."""

CUSTOMERS_MODIFIED_SINCE = """
SELECT c.id, c.entityid, c.externalid, c.companyname, c.isperson, c.isinactive,
       c.email, c.phone, c.currency, BUILTIN.DF(c.currency) AS currencyname,
       c.creditlimit, c.oncredithold, c.terms, BUILTIN.DF(c.terms) AS termsname,
       c.salesrep, BUILTIN.DF(c.salesrep) AS salesrepname,
       c.balancesearch, c.overduebalancesearch, c.daysoverduesearch, c.unbilledorderssearch,
       c.defaultbillingaddress, c.defaultshippingaddress,
       TO_CHAR(c.datecreated, 'YYYY-MM-DD HH24:MI:SS') AS datecreated,
       TO_CHAR(c.lastmodifieddate, 'YYYY-MM-DD HH24:MI:SS') AS lastmodified
FROM customer c
WHERE c.lastmodifieddate >= TO_TIMESTAMP(?, 'YYYY-MM-DD HH24:MI:SS')
  AND (c.lastmodifieddate > TO_TIMESTAMP(?, 'YYYY-MM-DD HH24:MI:SS') OR c.id > ?)
ORDER BY c.lastmodifieddate, c.id
"""
"""Customers changed at or after a cursor, in ``(lastmodifieddate, id)`` keyset order.

``params = [cursor_time, cursor_time, cursor_id]``: the rows strictly after the cursor
``(cursor_time, cursor_id)``. Start with ``cursor_time`` = stored watermark minus an overlap window
and ``cursor_id = 0``; after each page move the cursor to the last row's ``(lastmodified, id)``
and query again with ``offset=0`` — never page by offset, which stops at 100,000 results. Keep the
``limit`` (≤ 1000) fixed. Because the cursor time is compared at whole seconds, a record edited
within the cursor's second may come again: dedupe on ``(id, lastmodified)``; records are never
skipped.
"""

CUSTOMER_CREDIT_STANDING = """
SELECT c.id, c.entityid, c.companyname, c.externalid, c.isinactive,
       c.creditlimit, c.balancesearch, c.overduebalancesearch, c.daysoverduesearch,
       c.unbilledorderssearch, c.oncredithold,
       c.terms, BUILTIN.DF(c.terms) AS termsname,
       c.salesrep, BUILTIN.DF(c.salesrep) AS salesrepname,
       c.currency, BUILTIN.DF(c.currency) AS currencyname,
       TO_CHAR(c.lastmodifieddate, 'YYYY-MM-DD HH24:MI:SS') AS lastmodified
FROM customer c
WHERE c.id = ?
"""
"""One customer's credit standing, read fresh (``params = [customer_id]``); no row if deleted."""

CUSTOMER_ADDRESSES = """
SELECT cab.entity AS customer, cab.internalid AS lineid, cab.label,
       cab.defaultbilling, cab.defaultshipping, cab.isresidential,
       a.nkey, a.addressee, a.attention, a.addr1, a.addr2, a.addr3,
       a.city, a.state, a.zip, a.country, a.addrphone
FROM customeraddressbook cab
JOIN customeraddressbookentityaddress a ON a.nkey = cab.addressbookaddress
WHERE cab.entity IN ({ids})
ORDER BY cab.entity, cab.internalid
"""
"""Address-book lines (with their address) of a set of customers.

``{ids}`` → :func:`with_id_list`; ``params`` = the customer ids. ``nkey`` is what a customer's
``defaultbillingaddress``/``defaultshippingaddress`` point at; ``lineid`` is the REST line key.
May exceed one page (several lines per customer): page with offset, the order is unique.
"""

CUSTOMER_CONTACTS = """
SELECT co.id, co.company, co.entityid, co.firstname, co.lastname, co.title,
       co.email, co.phone, co.isinactive,
       TO_CHAR(co.lastmodifieddate, 'YYYY-MM-DD HH24:MI:SS') AS lastmodified
FROM contact co
WHERE co.company IN ({ids})
ORDER BY co.company, co.id
"""
"""Contacts whose company is one of a set of customers (``{ids}`` → :func:`with_id_list`)."""

TERMS = """
SELECT t.id, t.name, t.daysuntilnetdue, t.discountpercent, t.isinactive
FROM term t
ORDER BY t.id
"""
"""Every payment term, inactive ones too (ids are account data: resolve "Net 30" by name)."""

SALES_REPS = """
SELECT e.id, e.entityid, e.firstname, e.lastname, e.email, e.isinactive
FROM employee e
WHERE e.issalesrep = 'T'
ORDER BY e.id
"""
"""Employees flagged as sales reps (inactive ones too: old customers still point at them)."""

DELETED_CUSTOMERS_SINCE = """
SELECT d.recordid, d.name,
       TO_CHAR(d.deleteddate, 'YYYY-MM-DD HH24:MI:SS') AS deleteddate
FROM deletedrecord d
WHERE d.type = 'customer'
  AND d.deleteddate >= TO_TIMESTAMP(?, 'YYYY-MM-DD HH24:MI:SS')
  AND (d.deleteddate > TO_TIMESTAMP(?, 'YYYY-MM-DD HH24:MI:SS') OR d.recordid > ?)
ORDER BY d.deleteddate, d.recordid
"""
"""Customers deleted after a cursor, keyset-paged like :data:`CUSTOMERS_MODIFIED_SINCE`.

``params = [cursor_time, cursor_time, cursor_record_id]``. The ``type`` value and column list of
``deletedrecord`` are UNCONFIRMED (netsuite.md §2.2).
"""


def with_id_list(query: str, count: int) -> str:
    """``query`` with ``{ids}`` replaced by ``count`` placeholders (``?, ?, ...``).

    The ids themselves still go into ``params``; only the number of placeholders is formatted in.
    """
    if not 1 <= count <= MAX_IDS_PER_QUERY:
        raise ValueError(f"id list length must be 1..{MAX_IDS_PER_QUERY}, got {count}")
    if "{ids}" not in query:
        raise ValueError("query has no {ids} list")
    return query.replace("{ids}", ", ".join("?" * count))
