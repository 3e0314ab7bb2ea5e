"""Records held by the NetSuite emulator.

The emulator keeps one canonical, typed form per record and derives both wire formats from it: the
REST record service's camelCase JSON (``rest.py``) and SuiteQL's lower-case rows (``tables.py``).
Keeping a single source of truth means a change made "in NetSuite" through either door is seen
through the other, exactly as on a real account.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

CreditHold = Literal["AUTO", "ON", "OFF"]
CREDIT_HOLD_VALUES: tuple[CreditHold, ...] = ("AUTO", "ON", "OFF")
CREDIT_HOLD_NAMES: dict[str, str] = {"AUTO": "Auto", "ON": "On", "OFF": "Off"}


@dataclass
class Address:
    """The ``addressBookAddress`` subrecord of one address-book line."""

    addressee: str | None = None
    attention: str | None = None
    addr1: str | None = None
    addr2: str | None = None
    addr3: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None  # ISO-2 code; REST shows it as {"id": "US", "refName": ...}
    addr_phone: str | None = None

    def text(self) -> str:
        """The formatted address NetSuite shows as ``addrText``/``addressBookAddress_text``."""
        city_line = " ".join(
            part for part in (self.city, self.state, self.zip) if part
        )  # e.g. "Austin TX 78701"
        lines = [self.addressee, self.attention, self.addr1, self.addr2, self.addr3, city_line]
        country = COUNTRY_NAMES.get(self.country or "", self.country)
        lines.append(country)
        return "\n".join(line for line in lines if line)


@dataclass
class AddressLine:
    """One line of a customer's ``addressBook`` sublist (keyed by ``internal_id``)."""

    internal_id: int
    nkey: int  # key of the address subrecord row in customeraddressbookentityaddress
    label: str
    default_billing: bool
    default_shipping: bool
    is_residential: bool
    address: Address


@dataclass
class ContactRole:
    """A contact attached to a customer with a role (customer ``contactRoles`` sublist)."""

    contact_id: int
    role_id: int | None


@dataclass
class Customer:
    """A NetSuite customer (company) with the fields Credit Desk reads or writes."""

    id: int
    entity_id: str
    external_id: str | None
    company_name: str
    is_person: bool
    is_inactive: bool
    email: str | None
    phone: str | None
    fax: str | None
    url: str | None
    comments: str | None
    vat_reg_number: str | None
    email_transactions: bool
    terms_id: int | None
    sales_rep_id: int | None
    credit_limit: Decimal | None
    credit_hold: CreditHold
    currency_id: int
    subsidiary_id: int
    balance: Decimal
    overdue_balance: Decimal
    days_overdue: int
    unbilled_orders: Decimal
    deposit_balance: Decimal
    date_created: datetime
    last_modified: datetime
    address_book: list[AddressLine] = field(default_factory=list)
    contact_roles: list[ContactRole] = field(default_factory=list)

    def copy(self) -> Customer:
        """A deep copy, so callers never alias the emulator's stored record."""
        return copy.deepcopy(self)

    def default_billing_line(self) -> AddressLine | None:
        return next((line for line in self.address_book if line.default_billing), None)

    def default_shipping_line(self) -> AddressLine | None:
        return next((line for line in self.address_book if line.default_shipping), None)


@dataclass
class Contact:
    """A contact person; ``company_id`` links it to a customer ("Organization")."""

    id: int
    entity_id: str
    external_id: str | None
    first_name: str | None
    last_name: str | None
    title: str | None
    email: str | None
    phone: str | None
    company_id: int | None
    subsidiary_id: int
    is_inactive: bool
    date_created: datetime
    last_modified: datetime

    def copy(self) -> Contact:
        return copy.deepcopy(self)


@dataclass(frozen=True)
class Term:
    """A payment term (record type ``term``); ids are account data, never constants."""

    id: int
    name: str
    days_until_net_due: int
    discount_percent: Decimal | None
    days_until_expiry: int | None
    is_inactive: bool


@dataclass(frozen=True)
class Employee:
    """An employee; sales reps have ``is_sales_rep``."""

    id: int
    entity_id: str
    first_name: str
    last_name: str
    email: str
    title: str
    is_sales_rep: bool
    is_inactive: bool


@dataclass(frozen=True)
class Currency:
    id: int
    name: str
    symbol: str


@dataclass(frozen=True)
class ContactRoleType:
    """An entry of the account's contact-role list (``-10`` is "Primary Contact")."""

    id: int
    name: str


@dataclass(frozen=True)
class DeletedRecord:
    """A row of SuiteQL's ``deletedrecord`` table for a deleted customer or contact."""

    record_id: int
    record_type: str  # "customer" or "contact"
    name: str
    deleted_date: datetime


COUNTRY_NAMES: dict[str, str] = {
    "US": "United States",
    "CA": "Canada",
    "GB": "United Kingdom",
    "MX": "Mexico",
}
