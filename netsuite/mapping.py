"""NetSuite's SuiteQL rows -> the values Credit Desk keeps in its mirror tables.

SuiteQL sends every value as a string and leaves null columns out of the row (netsuite.md §2.1,
§7.6); booleans are ``'T'``/``'F'``; datetimes come through ``TO_CHAR`` in the integration user's
time zone. This module turns them into typed Python values under *our* names (the mirror's column
names), so NetSuite's column names stay inside the ``netsuite`` package. Bad values raise
:class:`MappingError` naming the record, the column and the value, rather than being stored
half-understood.

The reverse direction (our values -> REST bodies for writes) will live here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, NotRequired, TypedDict

from netsuite.errors import ProtocolError
from netsuite.suiteql import format_datetime, parse_datetime

CreditHold = Literal["AUTO", "ON", "OFF"]

CURRENCY_CODES = """
SELECT cu.id, cu.symbol
FROM currency cu
ORDER BY cu.id
"""
"""Currency ids and their ISO codes (``symbol``); customers reference currencies by id.
(A SuiteQL text: it belongs with the others in ``netsuite.queries``.)"""

FULL_SCAN_START = "1990-01-01 00:00:00"
"""Cursor time that precedes every record (NetSuite accounts are younger)."""

_CREDIT_HOLD: dict[str, CreditHold] = {"AUTO": "AUTO", "ON": "ON", "OFF": "OFF"}
_TRUE = frozenset({"T", "TRUE", "Y", "YES"})
_FALSE = frozenset({"F", "FALSE", "N", "NO", ""})


class MappingError(ValueError):
    """A NetSuite value that cannot be read as what the mirror expects."""

    def __init__(self, record: str, column: str, value: object, expected: str) -> None:
        super().__init__(f"{record}: column {column!r} has {value!r}, expected {expected}")
        self.record = record
        self.column = column
        self.value = value


# ---- mirror values (our names) ----------------------------------------------------------------


class CustomerValues(TypedDict):
    """One ``ns_customers`` row as read from NetSuite. The search columns (``name_normalized``,
    ``email_domain``) are derived by the mirror service, not by NetSuite."""

    internal_id: int
    entity_id: str | None
    external_id: str | None
    company_name: str | None
    email: str | None
    phone: str | None
    currency: str | None
    terms_id: int | None
    sales_rep_id: int | None
    credit_limit: Decimal | None
    balance: Decimal | None
    unbilled_orders: Decimal | None
    overdue_balance: Decimal | None
    days_overdue: int | None
    credit_hold: CreditHold | None
    is_inactive: bool
    default_billing_address_id: int | None
    default_shipping_address_id: int | None
    last_modified: datetime | None
    name_normalized: NotRequired[str | None]
    email_domain: NotRequired[str | None]


class AddressValues(TypedDict):
    customer_id: int
    address_id: int
    label: str | None
    default_billing: bool
    default_shipping: bool
    addressee: str | None
    attention: str | None
    line1: str | None
    line2: str | None
    city: str | None
    region: str | None
    postal_code: str | None
    country: str | None


class ContactValues(TypedDict):
    customer_id: int
    contact_id: int
    name: str | None
    email: str | None
    phone: str | None
    role: str | None


class TermValues(TypedDict):
    internal_id: int
    name: str
    days_until_due: int | None
    is_inactive: bool


class SalesRepValues(TypedDict):
    internal_id: int
    name: str
    email: str | None
    is_inactive: bool


@dataclass(frozen=True, order=True)
class Cursor:
    """A keyset position ``(time, key)``: ``time`` exactly as NetSuite rendered it
    (``YYYY-MM-DD HH24:MI:SS`` in its zone), so the stored watermark is the server's own string."""

    time: str
    key: int

    def params(self) -> list[str | int]:
        """The ``[cursor_time, cursor_time, cursor_id]`` params of the keyset statements."""
        return [self.time, self.time, self.key]

    def moved_back(self, overlap: timedelta, tz: tzinfo = UTC) -> Cursor:
        """The cursor ``overlap`` earlier, from the start of that second (key 0)."""
        moment = parse_datetime(self.time, tz)
        if moment is None:
            raise MappingError("cursor", "time", self.time, "a YYYY-MM-DD HH24:MI:SS datetime")
        return Cursor(format_datetime(moment - overlap, tz), 0)

    @classmethod
    def start(cls) -> Cursor:
        return cls(FULL_SCAN_START, 0)


# ---- value readers ------------------------------------------------------------------------------


def text(value: Any) -> str | None:
    """A string column; blank is null (SuiteQL omits nulls, some proxies send "")."""
    if value is None:
        return None
    result = str(value).strip()
    return result or None


def integer(value: Any, record: str = "row", column: str = "value") -> int | None:
    found = text(value)
    if found is None:
        return None
    try:
        return int(found)
    except ValueError:
        try:
            number = Decimal(found)
        except InvalidOperation:
            number = Decimal("NaN")
        if number.is_finite() and number == number.to_integral_value():
            return int(number)
        raise MappingError(record, column, value, "an integer") from None


def decimal(value: Any, record: str = "row", column: str = "value") -> Decimal | None:
    found = text(value)
    if found is None:
        return None
    try:
        number = Decimal(found)
    except InvalidOperation:
        raise MappingError(record, column, value, "a number") from None
    if not number.is_finite():
        raise MappingError(record, column, value, "a finite number")
    return number


def money(value: Any, record: str = "row", column: str = "value") -> Decimal | None:
    """An amount with at most two decimals (the mirror stores cents exactly)."""
    number = decimal(value, record, column)
    if number is None:
        return None
    cents = number.quantize(Decimal("0.01"))
    if cents != number:
        raise MappingError(record, column, value, "an amount with at most 2 decimals")
    return cents


def flag(value: Any, record: str = "row", column: str = "value") -> bool:
    """``'T'``/``'F'`` (SuiteQL) or JSON booleans (REST); absent is false."""
    if isinstance(value, bool):
        return value
    found = "" if value is None else str(value).strip().upper()
    if found in _TRUE:
        return True
    if found in _FALSE:
        return False
    raise MappingError(record, column, value, "'T' or 'F'")


def timestamp(value: Any, tz: tzinfo = UTC, record: str = "row", column: str = "value") -> datetime | None:
    """A ``TO_CHAR(..., 'YYYY-MM-DD HH24:MI:SS')`` value in zone ``tz``, as aware UTC."""
    found = text(value)
    if found is None:
        return None
    try:
        return parse_datetime(found, tz)
    except ProtocolError:
        raise MappingError(record, column, value, "YYYY-MM-DD HH24:MI:SS") from None


def credit_hold(value: Any, record: str = "row", column: str = "oncredithold") -> CreditHold | None:
    """The credit-hold override: ``AUTO``, ``ON`` or ``OFF`` (also as shown: ``Auto``/``On``/``Off``)."""
    found = text(value)
    if found is None:
        return None
    hold = _CREDIT_HOLD.get(found.upper())
    if hold is None:
        raise MappingError(record, column, value, "AUTO, ON or OFF")
    return hold


def currency_code(value: Any) -> str | None:
    """An ISO 4217 code, or ``None`` when NetSuite's symbol is not one (``$``, a long name)."""
    found = text(value)
    if found is None or len(found) != 3 or not found.isalpha():
        return None
    return found.upper()


def _person_name(*parts: Any) -> str | None:
    return " ".join(p for p in (text(part) for part in parts) if p) or None


# ---- rows ---------------------------------------------------------------------------------------


def currency_codes(rows: Iterable[Mapping[str, Any]]) -> dict[int, str]:
    """``CURRENCY_CODES`` rows -> {currency id: ISO code} (ids without an ISO symbol left out)."""
    codes: dict[int, str] = {}
    for row in rows:
        currency_id = integer(row.get("id"), "currency", "id")
        code = currency_code(row.get("symbol"))
        if currency_id is not None and code is not None:
            codes[currency_id] = code
    return codes


def customer_id(row: Mapping[str, Any]) -> int:
    value = integer(row.get("id"), "customer", "id")
    if value is None:
        raise MappingError("customer", "id", None, "an internal id")
    return value


def customer_cursor(row: Mapping[str, Any]) -> Cursor:
    """Where a ``CUSTOMERS_MODIFIED_SINCE`` row sits in keyset order."""
    moment = text(row.get("lastmodified"))
    if moment is None:
        raise MappingError(f"customer {row.get('id')}", "lastmodified", None, "a datetime")
    return Cursor(moment, customer_id(row))


def customer(row: Mapping[str, Any], currencies: Mapping[int, str], tz: tzinfo = UTC) -> CustomerValues:
    """A ``CUSTOMERS_MODIFIED_SINCE`` row as mirror values.

    ``currencies`` maps currency ids to ISO codes (from :data:`CURRENCY_CODES`); an unknown id
    falls back to the display name when that is an ISO code, else null.
    """
    cid = customer_id(row)
    record = f"customer {cid}"
    currency_id = integer(row.get("currency"), record, "currency")
    currency = currencies.get(currency_id) if currency_id is not None else None
    return {
        "internal_id": cid,
        "entity_id": text(row.get("entityid")),
        "external_id": text(row.get("externalid")),
        "company_name": text(row.get("companyname")),
        "email": text(row.get("email")),
        "phone": text(row.get("phone")),
        "currency": currency or currency_code(row.get("currencyname")),
        "terms_id": integer(row.get("terms"), record, "terms"),
        "sales_rep_id": integer(row.get("salesrep"), record, "salesrep"),
        "credit_limit": money(row.get("creditlimit"), record, "creditlimit"),
        "balance": money(row.get("balancesearch"), record, "balancesearch"),
        "unbilled_orders": money(row.get("unbilledorderssearch"), record, "unbilledorderssearch"),
        "overdue_balance": money(row.get("overduebalancesearch"), record, "overduebalancesearch"),
        "days_overdue": integer(row.get("daysoverduesearch"), record, "daysoverduesearch"),
        "credit_hold": credit_hold(row.get("oncredithold"), record),
        "is_inactive": flag(row.get("isinactive"), record, "isinactive"),
        "default_billing_address_id": integer(
            row.get("defaultbillingaddress"), record, "defaultbillingaddress"
        ),
        "default_shipping_address_id": integer(
            row.get("defaultshippingaddress"), record, "defaultshippingaddress"
        ),
        "last_modified": timestamp(row.get("lastmodified"), tz, record, "lastmodified"),
    }


def address(row: Mapping[str, Any]) -> AddressValues:
    """A ``CUSTOMER_ADDRESSES`` row (address-book line joined to its address) as mirror values.

    ``address_id`` is the address's ``nkey``, which a customer's default billing/shipping address
    columns point at. ``addr3`` has no mirror column and is left out.
    """
    owner = integer(row.get("customer"), "address line", "customer")
    nkey = integer(row.get("nkey"), "address line", "nkey")
    if owner is None or nkey is None:
        raise MappingError("address line", "customer/nkey", (owner, nkey), "both ids")
    record = f"address {nkey} of customer {owner}"
    country = text(row.get("country"))
    return {
        "customer_id": owner,
        "address_id": nkey,
        "label": text(row.get("label")),
        "default_billing": flag(row.get("defaultbilling"), record, "defaultbilling"),
        "default_shipping": flag(row.get("defaultshipping"), record, "defaultshipping"),
        "addressee": text(row.get("addressee")),
        "attention": text(row.get("attention")),
        "line1": text(row.get("addr1")),
        "line2": text(row.get("addr2")),
        "city": text(row.get("city")),
        "region": text(row.get("state")),
        "postal_code": text(row.get("zip")),
        "country": country.upper() if country and len(country) == 2 else None,
    }


def contact(row: Mapping[str, Any]) -> ContactValues | None:
    """A ``CUSTOMER_CONTACTS`` row as mirror values; ``None`` for an inactive contact (the mirror
    keeps the people one can reach, and has no column to flag the others)."""
    contact_id = integer(row.get("id"), "contact", "id")
    owner = integer(row.get("company"), f"contact {contact_id}", "company")
    if contact_id is None or owner is None:
        raise MappingError("contact", "id/company", (contact_id, owner), "both ids")
    if flag(row.get("isinactive"), f"contact {contact_id}", "isinactive"):
        return None
    return {
        "customer_id": owner,
        "contact_id": contact_id,
        "name": _person_name(row.get("firstname"), row.get("lastname")) or text(row.get("entityid")),
        "email": text(row.get("email")),
        "phone": text(row.get("phone")),
        "role": None,  # the contact role lives on the customer's contactRoles sublist, not here
    }


def term(row: Mapping[str, Any]) -> TermValues:
    term_id = integer(row.get("id"), "term", "id")
    name = text(row.get("name"))
    if term_id is None or name is None:
        raise MappingError("term", "id/name", (term_id, name), "an id and a name")
    record = f"term {term_id}"
    return {
        "internal_id": term_id,
        "name": name,
        "days_until_due": integer(row.get("daysuntilnetdue"), record, "daysuntilnetdue"),
        "is_inactive": flag(row.get("isinactive"), record, "isinactive"),
    }


def sales_rep(row: Mapping[str, Any]) -> SalesRepValues:
    rep_id = integer(row.get("id"), "employee", "id")
    if rep_id is None:
        raise MappingError("employee", "id", None, "an internal id")
    record = f"employee {rep_id}"
    name = _person_name(row.get("firstname"), row.get("lastname")) or text(row.get("entityid"))
    return {
        "internal_id": rep_id,
        "name": name or str(rep_id),
        "email": text(row.get("email")),
        "is_inactive": flag(row.get("isinactive"), record, "isinactive"),
    }


def deleted_customer(row: Mapping[str, Any]) -> tuple[int, Cursor]:
    """A ``DELETED_CUSTOMERS_SINCE`` row: the deleted customer's id and its keyset position."""
    record_id = integer(row.get("recordid"), "deletedrecord", "recordid")
    moment = text(row.get("deleteddate"))
    if record_id is None or moment is None:
        raise MappingError("deletedrecord", "recordid/deleteddate", (record_id, moment), "both values")
    return record_id, Cursor(moment, record_id)
