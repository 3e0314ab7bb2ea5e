"""SuiteQL tables over the emulator's state (NetSuite2 column names, netsuite.md §2.2).

Each table turns records into lower-case rows with SuiteQL's value conventions: booleans as
``'T'``/``'F'``, references as internal ids, money as ``Decimal``, datetimes as UTC ``datetime``
(the query layer formats them). A table can narrow its scan with a :class:`Hint` — equality on a
key column, or a lower bound on its natural ``(time, id)`` order — and must then yield exactly the
rows satisfying the hint; the query layer still evaluates the full WHERE clause on every row it
returns.

Tables only read records, so they use the state's shared, uncopied read path (``peek_*``,
``scan_customers(shared=True)``); rows are fresh dicts, so nothing a caller does to a result can
reach a stored record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from netsuite.emulator.model import (
    CREDIT_HOLD_NAMES,
    AddressLine,
    Contact,
    Customer,
    DeletedRecord,
)
from netsuite.emulator.seed import SUBSIDIARY_ID, SUBSIDIARY_NAME
from netsuite.emulator.state import EmulatorState, SortKey

Row = dict[str, Any]
RowLoader = Callable[[], Row]

_MIN_ID = -(2**62)
_MAX_ID = 2**62


@dataclass
class Hint:
    """What the query layer learnt from the WHERE clause about one table."""

    equals: dict[str, frozenset[int]] = field(default_factory=dict)
    after: SortKey | None = None
    inclusive: bool = True
    columns: frozenset[str] | None = None
    """The columns the query refers to (None: all). A table may leave others out of its rows."""

    @staticmethod
    def since(moment: datetime, *, strict: bool) -> tuple[SortKey, bool]:
        """The ``(after, inclusive)`` bound for ``time >= moment`` (or ``>`` when strict)."""
        return ((moment, _MAX_ID), False) if strict else ((moment, _MIN_ID), True)

    def admits(self, key: SortKey) -> bool:
        if self.after is None:
            return True
        return key > self.after or (self.inclusive and key == self.after)


class Table(Protocol):
    name: str
    columns: frozenset[str]
    key_columns: frozenset[str]
    natural_order: tuple[str, str] | None

    def scan(self, hint: Hint) -> Iterator[tuple[SortKey | None, RowLoader]]: ...

    def count(self, hint: Hint) -> int | None: ...

    def display(self, column: str, value: Any) -> str | None: ...


def _tf(flag: bool) -> str:
    return "T" if flag else "F"


def _ids(hint: Hint, column: str) -> list[int] | None:
    values = hint.equals.get(column)
    return None if values is None else sorted(values)


class _References:
    """Display names (``BUILTIN.DF``) of the lists customers and contacts point at."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.terms = {t.id: t.name for t in state.base.terms}
        self.employees = {e.id: e.entity_id for e in state.base.employees}
        self.currencies = {c.id: c.name for c in state.base.currencies}

    def customer_name(self, value: Any) -> str | None:
        customer = self.state.peek_customer(int(value))
        return None if customer is None else customer.company_name


class CustomerTable:
    name = "customer"
    columns = frozenset({
        "id", "entityid", "externalid", "companyname", "isperson", "isinactive", "email",
        "phone", "fax", "url", "comments", "emailtransactions", "creditlimit", "oncredithold",
        "terms", "salesrep", "currency", "subsidiary", "defaultbillingaddress",
        "defaultshippingaddress", "datecreated", "lastmodifieddate", "balancesearch",
        "overduebalancesearch", "daysoverduesearch", "unbilledorderssearch",
    })  # fmt: skip
    key_columns = frozenset({"id"})
    natural_order: tuple[str, str] | None = ("lastmodifieddate", "id")

    def __init__(self, state: EmulatorState, refs: _References) -> None:
        self.state = state
        self.refs = refs

    @staticmethod
    def row(customer: Customer) -> Row:
        billing = customer.default_billing_line()
        shipping = customer.default_shipping_line()
        return {
            "id": customer.id,
            "entityid": customer.entity_id,
            "externalid": customer.external_id,
            "companyname": customer.company_name,
            "isperson": _tf(customer.is_person),
            "isinactive": _tf(customer.is_inactive),
            "email": customer.email,
            "phone": customer.phone,
            "fax": customer.fax,
            "url": customer.url,
            "comments": customer.comments,
            "emailtransactions": _tf(customer.email_transactions),
            "creditlimit": customer.credit_limit,
            "oncredithold": customer.credit_hold,
            "terms": customer.terms_id,
            "salesrep": customer.sales_rep_id,
            "currency": customer.currency_id,
            "subsidiary": customer.subsidiary_id,
            "defaultbillingaddress": billing.nkey if billing else None,
            "defaultshippingaddress": shipping.nkey if shipping else None,
            "datecreated": customer.date_created,
            "lastmodifieddate": customer.last_modified,
            "balancesearch": customer.balance,
            "overduebalancesearch": customer.overdue_balance,
            "daysoverduesearch": customer.days_overdue,
            "unbilledorderssearch": customer.unbilled_orders,
        }

    def _load(self, loader: Callable[[], Any]) -> Row:
        return self.row(loader())

    def scan(self, hint: Hint) -> Iterator[tuple[SortKey | None, RowLoader]]:
        ids = _ids(hint, "id")
        if ids is not None:
            for customer_id in ids:
                customer = self.state.peek_customer(customer_id)
                if customer is not None:
                    key = (customer.last_modified, customer.id)
                    if hint.admits(key):
                        yield key, partial(self.row, customer)
            return
        for key, loader in self.state.scan_customers(hint.after, inclusive=hint.inclusive, shared=True):
            yield key, partial(self._load, loader)

    def count(self, hint: Hint) -> int | None:
        if hint.equals:
            return None
        return self.state.count_customers(hint.after, inclusive=hint.inclusive)

    def display(self, column: str, value: Any) -> str | None:
        if value is None:
            return None
        if column == "terms":
            return self.refs.terms.get(int(value))
        if column == "salesrep":
            return self.refs.employees.get(int(value))
        if column == "currency":
            return self.refs.currencies.get(int(value))
        if column == "subsidiary":
            return SUBSIDIARY_NAME if int(value) == SUBSIDIARY_ID else None
        if column == "oncredithold":
            return CREDIT_HOLD_NAMES.get(str(value))
        if column == "id":
            return self.refs.customer_name(value)
        return str(value)


class _LinesTable:
    """Shared lookup of address-book lines by customer, line id or ``nkey``."""

    def __init__(self, state: EmulatorState, refs: _References) -> None:
        self.state = state
        self.refs = refs

    def _lines_of(self, customer_ids: list[int]) -> Iterator[tuple[Customer, AddressLine]]:
        for customer_id in customer_ids:
            customer = self.state.peek_customer(customer_id)
            if customer is not None:
                for line in customer.address_book:
                    yield customer, line

    def _all_lines(self) -> Iterator[tuple[Customer, AddressLine]]:
        for _, loader in self.state.scan_customers(shared=True):
            customer: Customer = loader()
            for line in customer.address_book:
                yield customer, line

    def _owners_of_nkeys(self, nkeys: list[int]) -> list[int]:
        owners = {self.state.customer_of_nkey(nkey) for nkey in nkeys}
        return sorted(owner for owner in owners if owner is not None)

    def count(self, hint: Hint) -> int | None:
        del hint
        return None


class AddressBookTable(_LinesTable):
    name = "customeraddressbook"
    columns = frozenset({
        "entity", "internalid", "addressbookaddress", "label", "defaultbilling",
        "defaultshipping", "isresidential",
    })  # fmt: skip
    key_columns = frozenset({"entity", "addressbookaddress"})
    natural_order: tuple[str, str] | None = None

    @staticmethod
    def row(customer: Customer, line: AddressLine) -> Row:
        return {
            "entity": customer.id,
            "internalid": line.internal_id,
            "addressbookaddress": line.nkey,
            "label": line.label,
            "defaultbilling": _tf(line.default_billing),
            "defaultshipping": _tf(line.default_shipping),
            "isresidential": _tf(line.is_residential),
        }

    def scan(self, hint: Hint) -> Iterator[tuple[SortKey | None, RowLoader]]:
        entities = _ids(hint, "entity")
        nkeys = hint.equals.get("addressbookaddress")
        if entities is not None:
            pairs = self._lines_of(entities)
        elif nkeys is not None:
            pairs = self._lines_of(self._owners_of_nkeys(sorted(nkeys)))
        else:
            pairs = self._all_lines()
        for customer, line in pairs:
            if nkeys is not None and line.nkey not in nkeys:
                continue
            yield None, partial(self.row, customer, line)

    def display(self, column: str, value: Any) -> str | None:
        if value is None:
            return None
        if column == "entity":
            return self.refs.customer_name(value)
        return str(value)


class AddressTable(_LinesTable):
    name = "customeraddressbookentityaddress"
    columns = frozenset({
        "nkey", "addressee", "attention", "addr1", "addr2", "addr3", "city", "state", "zip",
        "country", "addrphone", "addrtext", "override", "recordowner", "lastmodifieddate",
    })  # fmt: skip
    key_columns = frozenset({"nkey"})
    natural_order: tuple[str, str] | None = None

    @staticmethod
    def row(customer: Customer, line: AddressLine, with_text: bool = True) -> Row:
        """The row; ``with_text=False`` leaves out ``addrtext`` (formatting it is the costly part)."""
        address = line.address
        row = {
            "nkey": line.nkey,
            "addressee": address.addressee,
            "attention": address.attention,
            "addr1": address.addr1,
            "addr2": address.addr2,
            "addr3": address.addr3,
            "city": address.city,
            "state": address.state,
            "zip": address.zip,
            "country": address.country,
            "addrphone": address.addr_phone,
            "override": "F",
            "recordowner": line.internal_id,
            "lastmodifieddate": customer.last_modified,
        }
        if with_text:
            row["addrtext"] = address.text()
        return row

    def scan(self, hint: Hint) -> Iterator[tuple[SortKey | None, RowLoader]]:
        nkeys = hint.equals.get("nkey")
        with_text = hint.columns is None or "addrtext" in hint.columns
        if nkeys is not None and len(nkeys) == 1:  # a join from an address-book line: one owner
            (nkey,) = nkeys
            owner = self.state.customer_of_nkey(nkey)
            customer = self.state.peek_customer(owner) if owner is not None else None
            if customer is not None:
                for line in customer.address_book:
                    if line.nkey == nkey:
                        yield None, partial(self.row, customer, line, with_text)
            return
        pairs = self._all_lines() if nkeys is None else self._lines_of(self._owners_of_nkeys(sorted(nkeys)))
        for customer, line in pairs:
            if nkeys is None or line.nkey in nkeys:
                yield None, partial(self.row, customer, line, with_text)

    def display(self, column: str, value: Any) -> str | None:
        return None if value is None else str(value)


class ContactTable:
    name = "contact"
    columns = frozenset({
        "id", "entityid", "externalid", "firstname", "lastname", "title", "email", "phone",
        "company", "subsidiary", "isinactive", "datecreated", "lastmodifieddate",
    })  # fmt: skip
    key_columns = frozenset({"id", "company"})
    natural_order: tuple[str, str] | None = None

    def __init__(self, state: EmulatorState, refs: _References) -> None:
        self.state = state
        self.refs = refs

    @staticmethod
    def row(contact: Contact) -> Row:
        return {
            "id": contact.id,
            "entityid": contact.entity_id,
            "externalid": contact.external_id,
            "firstname": contact.first_name,
            "lastname": contact.last_name,
            "title": contact.title,
            "email": contact.email,
            "phone": contact.phone,
            "company": contact.company_id,
            "subsidiary": contact.subsidiary_id,
            "isinactive": _tf(contact.is_inactive),
            "datecreated": contact.date_created,
            "lastmodifieddate": contact.last_modified,
        }

    def scan(self, hint: Hint) -> Iterator[tuple[SortKey | None, RowLoader]]:
        ids = hint.equals.get("id")
        companies = _ids(hint, "company")
        if companies is not None:
            contacts: Iterator[Contact] = (
                c for company in companies for c in self.state.peek_contacts_of_customer(company)
            )
        elif ids is not None:
            contacts = (c for cid in sorted(ids) if (c := self.state.get_contact(cid)) is not None)
        else:
            contacts = self.state.scan_contacts()
        for contact in contacts:
            if ids is None or contact.id in ids:
                yield None, partial(self.row, contact)

    def count(self, hint: Hint) -> int | None:
        del hint
        return None

    def display(self, column: str, value: Any) -> str | None:
        if value is None:
            return None
        if column == "company":
            return self.refs.customer_name(value)
        if column == "subsidiary":
            return SUBSIDIARY_NAME if int(value) == SUBSIDIARY_ID else None
        return str(value)


class _ListTable:
    """A small, fully materialised list (terms, employees, currencies)."""

    name = ""
    columns: frozenset[str] = frozenset()
    key_columns = frozenset({"id"})
    natural_order: tuple[str, str] | None = None

    def __init__(self, rows: list[Row]) -> None:
        self.rows = rows

    def scan(self, hint: Hint) -> Iterator[tuple[SortKey | None, RowLoader]]:
        ids = hint.equals.get("id")
        for row in self.rows:
            if ids is None or row["id"] in ids:
                yield None, partial(dict, row)

    def count(self, hint: Hint) -> int | None:
        del hint
        return None

    def display(self, column: str, value: Any) -> str | None:
        if value is None:
            return None
        if column == "id":
            row = next((r for r in self.rows if r["id"] == value), None)
            label = "name" if self.name != "employee" else "entityid"
            return None if row is None else str(row[label])
        return str(value)


class TermTable(_ListTable):
    name = "term"
    columns = frozenset({
        "id", "name", "daysuntilnetdue", "discountpercent", "daysuntilexpiry", "isinactive",
    })  # fmt: skip

    def __init__(self, state: EmulatorState) -> None:
        super().__init__(
            [
                {
                    "id": t.id,
                    "name": t.name,
                    "daysuntilnetdue": t.days_until_net_due,
                    "discountpercent": t.discount_percent,
                    "daysuntilexpiry": t.days_until_expiry,
                    "isinactive": _tf(t.is_inactive),
                }
                for t in state.base.terms
            ]
        )


class EmployeeTable(_ListTable):
    name = "employee"
    columns = frozenset({
        "id", "entityid", "firstname", "lastname", "email", "title", "issalesrep", "isinactive",
    })  # fmt: skip

    def __init__(self, state: EmulatorState) -> None:
        super().__init__(
            [
                {
                    "id": e.id,
                    "entityid": e.entity_id,
                    "firstname": e.first_name,
                    "lastname": e.last_name,
                    "email": e.email,
                    "title": e.title,
                    "issalesrep": _tf(e.is_sales_rep),
                    "isinactive": _tf(e.is_inactive),
                }
                for e in state.base.employees
            ]
        )


class CurrencyTable(_ListTable):
    name = "currency"
    columns = frozenset({"id", "name", "symbol"})

    def __init__(self, state: EmulatorState) -> None:
        super().__init__([{"id": c.id, "name": c.name, "symbol": c.symbol} for c in state.base.currencies])


class DeletedRecordTable:
    """``deletedrecord`` (UNCONFIRMED column list: ``recordid``, ``type``, ``name``,
    ``deleteddate``, ``context``)."""

    name = "deletedrecord"
    columns = frozenset({"recordid", "type", "name", "deleteddate", "context"})
    key_columns: frozenset[str] = frozenset()
    natural_order: tuple[str, str] | None = ("deleteddate", "recordid")

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    @staticmethod
    def row(record: DeletedRecord) -> Row:
        return {
            "recordid": record.record_id,
            "type": record.record_type,
            "name": record.name,
            "deleteddate": record.deleted_date,
            "context": "WEBSERVICES",
        }

    def _load(self, loader: Callable[[], Any]) -> Row:
        return self.row(loader())

    def scan(self, hint: Hint) -> Iterator[tuple[SortKey | None, RowLoader]]:
        for key, loader in self.state.scan_deleted(hint.after, inclusive=hint.inclusive):
            yield key, partial(self._load, loader)

    def count(self, hint: Hint) -> int | None:
        return self.state.count_deleted(hint.after, inclusive=hint.inclusive)

    def display(self, column: str, value: Any) -> str | None:
        return None if value is None else str(value)


def build_tables(state: EmulatorState) -> dict[str, Table]:
    """Every SuiteQL table the emulator knows, by lower-case name."""
    refs = _References(state)
    tables: list[Table] = [
        CustomerTable(state, refs),
        AddressBookTable(state, refs),
        AddressTable(state, refs),
        ContactTable(state, refs),
        TermTable(state),
        EmployeeTable(state),
        CurrencyTable(state),
        DeletedRecordTable(state),
    ]
    return {table.name: table for table in tables}
