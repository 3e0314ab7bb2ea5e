"""Deterministic, lazily derived seed data for the NetSuite emulator.

Customer ``i`` (0-based) is computed from ``(seed, i)`` on demand, so an emulator with 1,000,000
customers costs almost nothing until somebody reads a record. Two properties make SuiteQL over the
base set fast without materialising it:

* ``lastmodifieddate`` is a non-decreasing function of ``i`` and internal ids increase with ``i``,
  so the base set is already ordered by ``(lastmodifieddate, id)`` and a keyset bound becomes a
  binary search (``first_index_after``);
* deleted customers occupy every 50th id slot (slot ``50j + 49``), so live index ↔ internal id is
  plain arithmetic and ``deletedrecord`` is ordered by ``deleteddate`` too.

Modified and created records never live here: ``state.EmulatorState`` keeps them in an overlay.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from netsuite.emulator.model import (
    Address,
    AddressLine,
    Contact,
    ContactRole,
    ContactRoleType,
    CreditHold,
    Currency,
    Customer,
    DeletedRecord,
    Employee,
    Term,
)

CUSTOMER_ID_BASE = 1000
"""Internal id of id slot 0; NetSuite ids are arbitrary positive integers."""
DELETED_EVERY = 50
"""Every 50th id slot holds a customer that was deleted before the emulator starts."""
LINES_PER_CUSTOMER_ID = 10
"""Base address-line ids are ``customer_id * 10 + k``; new lines come from a counter above them."""
NKEY_OFFSET = 5_000_000_000
"""Address subrecord keys (``nkey``) differ from line ids, as in NetSuite: joining on the wrong one
finds nothing."""
CONTACT_ID_BASE = 20_000_000
CONTACTS_PER_SLOT = 4
SUBSIDIARY_ID = 1
SUBSIDIARY_NAME = "Parent Company"

BASE_START = datetime(2022, 1, 3, tzinfo=UTC)
BASE_END = datetime(2025, 6, 30, tzinfo=UTC)
_SPAN_MINUTES = int((BASE_END - BASE_START).total_seconds() // 60)
_TIE_GROUP = 4
"""Customers are stamped in groups of four sharing one ``lastmodifieddate`` (bulk imports), so
keyset paging must break ties by id."""

TERMS: tuple[Term, ...] = (
    Term(1, "Net 15", 15, None, None, False),
    Term(2, "Net 30", 30, None, None, False),
    Term(3, "Net 60", 60, None, None, False),
    Term(4, "Due on receipt", 0, None, None, False),
    Term(5, "1% 10 Net 30", 30, Decimal("1"), 10, True),
    Term(6, "2% 10 Net 30", 30, Decimal("2"), 10, False),
    Term(7, "Net 45", 45, None, None, False),
)
_TERM_WEIGHTS: tuple[tuple[int | None, int], ...] = (
    (2, 45),
    (1, 12),
    (7, 10),
    (3, 8),
    (4, 8),
    (6, 7),
    (None, 10),
)

CURRENCIES: tuple[Currency, ...] = (
    Currency(1, "USA", "USD"),
    Currency(2, "British pound", "GBP"),
    Currency(3, "Canadian Dollar", "CAD"),
    Currency(4, "Euro", "EUR"),
)

CONTACT_ROLES: tuple[ContactRoleType, ...] = (
    ContactRoleType(-10, "Primary Contact"),
    ContactRoleType(-20, "Alternate Contact"),
    ContactRoleType(-30, "Consultant"),
    ContactRoleType(1, "Accounts Payable"),
    ContactRoleType(2, "Statements/Invoice Contact"),
)

_FIRST = (
    "Acme", "Summit", "Blue Ridge", "Harbor", "Cascade", "Pioneer", "Granite", "Redwood", "Liberty",
    "Northwind", "Evergreen", "Keystone", "Lakeside", "Prairie", "Ironclad", "Silverline",
    "Coastal", "Frontier", "Sterling", "Meridian", "Apex", "Golden Gate", "Riverbend", "Highland",
    "Oak Hollow", "Copperfield", "Bayview", "Crescent", "Timberline", "Stonebridge", "Westfield",
    "Brightwater", "Union", "Heritage", "Mesa", "Foxglove", "Kingsway", "Mariner", "Tri-County",
    "Old Mill",
)  # fmt: skip
_SECOND = (
    "Widgets", "Supply", "Distributors", "Foods", "Hardware", "Logistics", "Building Products",
    "Electric", "Plumbing", "Paper", "Packaging", "Tools", "Farms", "Brewing", "Textiles",
    "Industrial", "Medical Supply", "Auto Parts", "Lumber", "Coffee Roasters", "Marine",
    "Printing", "Fasteners", "Cabinetry", "Outfitters", "Provisions", "Chemicals", "Glass",
    "Restaurant Group", "Landscaping",
)  # fmt: skip
_SUFFIX = ("LLC", "Inc.", "Co.", "Corp.", "Ltd.", "Group", "& Sons", "Holdings LLC", "LP", "")
_PEOPLE_FIRST = (
    "James", "Maria", "Robert", "Linda", "Michael", "Patricia", "David", "Jennifer", "Carlos",
    "Aisha", "Wei", "Priya", "Thomas", "Sarah", "Daniel", "Emily", "Kevin", "Olivia", "Jamal",
    "Grace", "Luis", "Hannah", "Omar", "Chloe",
)  # fmt: skip
_PEOPLE_LAST = (
    "Smith", "Garcia", "Johnson", "Nguyen", "Patel", "Brown", "Martinez", "Okafor", "Kim",
    "Rossi", "Miller", "Chen", "Davis", "Lopez", "Wilson", "Khan", "Anderson", "Clark", "Haddad",
    "Schmidt", "Walker", "Reyes", "Young", "Hughes",
)  # fmt: skip
_TITLES = ("Accounts Payable", "Controller", "Owner", "Purchasing Manager", "CFO", "Office Manager")
_STREETS = (
    "Main St", "Oak Ave", "Industrial Pkwy", "Commerce Dr", "Market St", "2nd St", "Elm St",
    "Harbor Blvd", "Airport Rd", "Warehouse Way", "Lincoln Ave", "Mill Rd", "Park Pl",
    "Enterprise Ct", "River Rd",
)  # fmt: skip
# (city, state, zip prefix, country, phone area code)
_PLACES: tuple[tuple[str, str, str, str, str], ...] = (
    ("Austin", "TX", "787", "US", "512"),
    ("Dallas", "TX", "752", "US", "214"),
    ("Denver", "CO", "802", "US", "303"),
    ("Portland", "OR", "972", "US", "503"),
    ("Columbus", "OH", "432", "US", "614"),
    ("Atlanta", "GA", "303", "US", "404"),
    ("Phoenix", "AZ", "850", "US", "602"),
    ("Nashville", "TN", "372", "US", "615"),
    ("Minneapolis", "MN", "554", "US", "612"),
    ("Sacramento", "CA", "958", "US", "916"),
    ("Newark", "NJ", "071", "US", "973"),
    ("Charlotte", "NC", "282", "US", "704"),
    ("Salt Lake City", "UT", "841", "US", "801"),
    ("Boise", "ID", "837", "US", "208"),
    ("Toronto", "ON", "M5V", "CA", "416"),
    ("Vancouver", "BC", "V6B", "CA", "604"),
)
_CREDIT_LIMIT_TIERS: tuple[Decimal, ...] = tuple(
    Decimal(v) for v in (2500, 5000, 10000, 15000, 25000, 50000, 75000, 100000, 250000, 500000)
)
_LARGE_LIMITS: tuple[Decimal, ...] = tuple(Decimal(v) for v in (1000000, 2500000, 5000000))
_CENT = Decimal("0.01")
_T = TypeVar("_T")


def _money(value: float) -> Decimal:
    return Decimal(str(round(value, 2))).quantize(_CENT)


class _Draw:
    """The draws of ``random.Random(text)``, the same numbers in the same order, taken without
    the stdlib's argument checks and method layers (records are generated by the million).

    ``choice``, ``randrange`` and ``uniform`` are ``random.Random``'s own algorithms (``_randbelow``
    over ``getrandbits``); ``random`` is its C method.
    """

    __slots__ = ("_bits", "random")

    def __init__(self, text: str) -> None:
        rng = random.Random(text)
        self.random = rng.random
        self._bits = rng.getrandbits

    def below(self, n: int) -> int:
        """``Random._randbelow(n)``: uniform in ``[0, n)``, ``n > 0``."""
        bits = self._bits
        k = n.bit_length()
        r = bits(k)
        while r >= n:
            r = bits(k)
        return r

    def choice(self, seq: Sequence[_T]) -> _T:
        return seq[self.below(len(seq))]

    def randrange(self, start: int, stop: int | None = None) -> int:
        if stop is None:
            return self.below(start)
        return start + self.below(stop - start)

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.random()


class _Weights(tuple[tuple[_T, int], ...]):
    """``(value, weight)`` choices with their total weight worked out once."""

    total: int

    def __new__(cls, choices: Sequence[tuple[_T, int]]) -> _Weights[_T]:
        made = super().__new__(cls, choices)
        made.total = sum(weight for _, weight in choices)
        return made


def _weighted(rng: _Draw, choices: Sequence[tuple[_T, int]]) -> _T:
    total = choices.total if isinstance(choices, _Weights) else sum(weight for _, weight in choices)
    pick = rng.randrange(total)
    for value, weight in choices:
        if pick < weight:
            return value
        pick -= weight
    raise AssertionError("unreachable: weights exhausted")


_TERM_CHOICES: _Weights[int | None] = _Weights(_TERM_WEIGHTS)
_CREDIT_HOLD_WEIGHTS: _Weights[CreditHold] = _Weights((("AUTO", 92), ("ON", 3), ("OFF", 5)))
_CURRENCY_WEIGHTS: _Weights[int] = _Weights(((1, 85), (3, 9), (2, 4), (4, 2)))
_CONTACT_COUNT_WEIGHTS: _Weights[int] = _Weights(((0, 15), (1, 45), (2, 30), (3, 10)))
_DAYS_OVERDUE = (3, 8, 15, 27, 34, 46, 61, 75, 92, 121, 180)
_EMAIL_BOXES = ("ap", "billing", "accounts", "finance")
_UNLIMITED_SCALES = (3000.0, 40000.0)
_EARLIEST_CREATED = datetime(2015, 1, 5, tzinfo=UTC)
_ZERO = Decimal("0.00")


def _domain_word(company: str) -> str:
    """The letters and digits of a company name's first word, lower-case (email domains)."""
    return "".join(ch for ch in company.lower().split(" ")[0] if ch.isalnum())


class SeedData:
    """The emulator's base data set: ``count`` live customers derived from ``seed``.

    Every method is a pure function of ``(seed, count)`` and its arguments, so the same seed always
    yields the same account and instances can be shared between threads without locks.
    """

    def __init__(self, seed: int, count: int) -> None:
        if count < 0:
            raise ValueError(f"customer count must be >= 0, got {count}")
        self.seed = seed
        self.count = count
        self.slots = self.slot_of(count - 1) + 1 if count else 0
        self.deleted_count = self.slots // DELETED_EVERY
        self.terms = TERMS
        self.currencies = CURRENCIES
        self.contact_roles = CONTACT_ROLES
        self.employees = self._employees()
        self._rep_ids = [e.id for e in self.employees if e.is_sales_rep]

    # --- id arithmetic -------------------------------------------------------------------------

    @staticmethod
    def slot_of(index: int) -> int:
        """Id slot of live customer ``index`` (skipping every 50th slot, which is deleted)."""
        return index + index // (DELETED_EVERY - 1)

    def id_of(self, index: int) -> int:
        return CUSTOMER_ID_BASE + self.slot_of(index)

    def index_of(self, customer_id: int) -> int | None:
        """Live index of a base customer id, or ``None`` (deleted slot, out of range)."""
        slot = customer_id - CUSTOMER_ID_BASE
        if slot < 0 or slot >= self.slots or slot % DELETED_EVERY == DELETED_EVERY - 1:
            return None
        return slot - slot // DELETED_EVERY

    @property
    def max_base_customer_id(self) -> int:
        return CUSTOMER_ID_BASE + self.slots

    @property
    def first_free_line_id(self) -> int:
        return (self.max_base_customer_id + 1) * LINES_PER_CUSTOMER_ID

    @property
    def first_free_contact_id(self) -> int:
        return CONTACT_ID_BASE + (self.slots + 1) * CONTACTS_PER_SLOT

    # --- time ----------------------------------------------------------------------------------

    def last_modified(self, index: int) -> datetime:
        """``lastmodifieddate`` of base customer ``index``: non-decreasing in ``index``."""
        group_start = (index // _TIE_GROUP) * _TIE_GROUP
        minutes = group_start * _SPAN_MINUTES // max(self.count, 1)
        return BASE_START + timedelta(minutes=minutes)

    def sort_key(self, index: int) -> tuple[datetime, int]:
        return self.last_modified(index), self.id_of(index)

    def first_index_after(self, key: tuple[datetime, int], *, inclusive: bool) -> int:
        """First live index whose ``(lastmodifieddate, id)`` is > ``key`` (>= if inclusive)."""
        search = bisect.bisect_left if inclusive else bisect.bisect_right
        return search(range(self.count), key, key=self.sort_key)

    # --- customers ----------------------------------------------------------------------------

    def _rng(self, kind: str, slot: int) -> _Draw:
        return _Draw(f"{self.seed}:{kind}:{slot}")

    def company_name(self, slot: int) -> str:
        rng = self._rng("name", slot)
        name = f"{rng.choice(_FIRST)} {rng.choice(_SECOND)}"
        suffix = rng.choice(_SUFFIX)
        return f"{name} {suffix}" if suffix else name

    def customer(self, index: int) -> Customer:
        """Build base customer ``index`` (a fresh object each call; callers may mutate it)."""
        return self.customer_with_contacts(index)[0]

    def customer_with_contacts(self, index: int) -> tuple[Customer, list[Contact]]:
        """Base customer ``index`` and its contacts, built together (fresh objects).

        Building a customer builds its contacts anyway (its contact roles point at them), so a
        caller that needs both -- SuiteQL's read path -- gets them for the price of one.
        """
        if not 0 <= index < self.count:
            raise IndexError(f"customer index {index} outside 0..{self.count - 1}")
        slot = self.slot_of(index)
        cid = CUSTOMER_ID_BASE + slot
        rng = self._rng("customer", slot)
        name = self.company_name(slot)
        word = _domain_word(name)
        domain = f"{word or 'company'}{slot % 997}.example"
        city, state, zip_prefix, country, area = rng.choice(_PLACES)
        last_modified = self.last_modified(index)
        created = max(
            _EARLIEST_CREATED,
            last_modified - timedelta(days=rng.randrange(0, 1500), minutes=rng.randrange(1440)),
        )

        large = rng.random() < 0.04
        if rng.random() < 0.22:
            credit_limit: Decimal | None = None
        elif large:
            credit_limit = rng.choice(_LARGE_LIMITS)
        else:
            credit_limit = rng.choice(_CREDIT_LIMIT_TIERS)
        scale = float(credit_limit) if credit_limit is not None else rng.choice(_UNLIMITED_SCALES)
        balance = _money(scale * rng.uniform(0.0, 1.25)) if rng.random() < 0.8 else _ZERO
        overdue = _ZERO
        days_overdue = 0
        if balance > 0 and rng.random() < 0.35:
            # Overdue may exceed balance when unapplied payments net the balance down.
            overdue = _money(float(balance) * rng.uniform(0.05, 1.1))
            days_overdue = rng.choice(_DAYS_OVERDUE)
        unbilled = _money(scale * rng.uniform(0.0, 0.3)) if rng.random() < 0.3 else _ZERO
        deposit = _money(scale * rng.uniform(0, 0.05)) if rng.random() < 0.05 else _ZERO
        credit_hold: CreditHold = _weighted(rng, _CREDIT_HOLD_WEIGHTS)
        currency_id = _weighted(rng, _CURRENCY_WEIGHTS)
        if country == "CA" and rng.random() < 0.7:
            currency_id = 3

        customer = Customer(
            id=cid,
            entity_id=f"C{cid}",
            external_id=f"LEGACY-{cid:07d}" if rng.random() < 0.35 else None,
            company_name=name,
            is_person=False,
            is_inactive=rng.random() < 0.04,
            email=f"{rng.choice(_EMAIL_BOXES)}@{domain}" if rng.random() < 0.9 else None,
            phone=f"{area}-555-{rng.randrange(100, 10000):04d}" if rng.random() < 0.85 else None,
            fax=None,
            url=f"https://www.{domain}" if rng.random() < 0.4 else None,
            comments=None,
            vat_reg_number=f"{rng.randrange(10, 99)}-{rng.randrange(1000000, 9999999)}"
            if rng.random() < 0.5
            else None,
            email_transactions=rng.random() < 0.6,
            terms_id=_weighted(rng, _TERM_CHOICES),
            sales_rep_id=rng.choice(self._rep_ids) if rng.random() < 0.85 else None,
            credit_limit=credit_limit,
            credit_hold=credit_hold,
            currency_id=currency_id,
            subsidiary_id=SUBSIDIARY_ID,
            balance=balance,
            overdue_balance=overdue,
            days_overdue=days_overdue,
            unbilled_orders=unbilled,
            deposit_balance=deposit,
            date_created=created,
            last_modified=last_modified,
        )
        customer.address_book = self._address_book(rng, cid, name, city, state, zip_prefix,
                                                    country, area, large)  # fmt: skip
        contacts = self._contacts_of(index, slot, name, last_modified, word)
        customer.contact_roles = [
            ContactRole(contact.id, -10 if k == 0 else 2) for k, contact in enumerate(contacts)
        ]
        return customer, contacts

    def _address_book(
        self,
        rng: _Draw,
        cid: int,
        name: str,
        city: str,
        state: str,
        zip_prefix: str,
        country: str,
        area: str,
        large: bool,
    ) -> list[AddressLine]:
        if rng.random() < 0.03:
            return []

        def address(at_city: str, at_state: str, at_zip: str, at_country: str) -> Address:
            if at_country == "CA":
                postal = f"{at_zip} {rng.randrange(1, 9)}{chr(65 + rng.randrange(26))}{rng.randrange(10)}"
            else:
                postal = f"{at_zip}{rng.randrange(0, 100):02d}"
            return Address(
                addressee=name,
                attention=rng.choice((None, "Accounts Payable", "Receiving")),
                addr1=f"{rng.randrange(1, 9900)} {rng.choice(_STREETS)}",
                addr2=rng.choice((None, None, None, f"Suite {rng.randrange(100, 900)}")),
                city=at_city,
                state=at_state,
                zip=postal,
                country=at_country,
                addr_phone=f"{area}-555-{rng.randrange(100, 10000):04d}",
            )

        lines: list[AddressLine] = []

        def add(label: str, billing: bool, shipping: bool, addr: Address) -> None:
            line_id = cid * LINES_PER_CUSTOMER_ID + len(lines)
            lines.append(AddressLine(line_id, line_id + NKEY_OFFSET, label, billing, shipping, False, addr))

        main = address(city, state, zip_prefix, country)
        if rng.random() < 0.5:
            add("Main Office", True, True, main)
        else:
            add("Billing", True, False, main)
            add("Warehouse", False, True, address(city, state, zip_prefix, country))
        extra = rng.randrange(2, 5) if large or rng.random() < 0.12 else 0
        for n in range(extra):
            other = rng.choice(_PLACES)
            add(f"Ship-to {n + 2}", False, False, address(other[0], other[1], other[2], other[3]))
        return lines

    # --- contacts ------------------------------------------------------------------------------

    def contact_count(self, slot: int) -> int:
        return _weighted(self._rng("contacts", slot), _CONTACT_COUNT_WEIGHTS)

    def contacts_of(self, index: int) -> list[Contact]:
        slot = self.slot_of(index)
        return self._contacts_of(index, slot, self.company_name(slot))

    def _contacts_of(
        self,
        index: int,
        slot: int,
        company: str,
        modified: datetime | None = None,
        word: str | None = None,
    ) -> list[Contact]:
        modified = self.last_modified(index) if modified is None else modified
        word = _domain_word(company) if word is None else word
        return [
            self._contact(index, slot, k, company, modified, word) for k in range(self.contact_count(slot))
        ]

    def contact(self, contact_id: int) -> Contact | None:
        """Base contact by internal id, or ``None``."""
        offset = contact_id - CONTACT_ID_BASE
        if offset < 0:
            return None
        slot, k = divmod(offset, CONTACTS_PER_SLOT)
        index = self.index_of(CUSTOMER_ID_BASE + slot)
        if index is None or k >= self.contact_count(slot):
            return None
        return self._contact(index, slot, k, self.company_name(slot))

    def _contact(
        self,
        index: int,
        slot: int,
        k: int,
        company: str,
        modified: datetime | None = None,
        domain: str | None = None,
    ) -> Contact:
        """Contact ``k`` of slot ``slot``; ``company`` is ``company_name(slot)`` (the email domain
        comes from it), passed in so a customer's contacts do not re-derive it each -- as may be
        ``modified`` (``last_modified(index)``) and ``domain`` (``_domain_word(company)``)."""
        rng = self._rng(f"contact{k}", slot)
        first, last = rng.choice(_PEOPLE_FIRST), rng.choice(_PEOPLE_LAST)
        cid = CUSTOMER_ID_BASE + slot
        contact_id = CONTACT_ID_BASE + slot * CONTACTS_PER_SLOT + k
        modified = self.last_modified(index) if modified is None else modified
        domain = _domain_word(company) if domain is None else domain
        return Contact(
            id=contact_id,
            entity_id=f"{first} {last}",
            external_id=None,
            first_name=first,
            last_name=last,
            title=rng.choice(_TITLES),
            email=f"{first.lower()}.{last.lower()}@{domain or 'company'}{slot % 997}.example",
            phone=f"555-01{rng.randrange(0, 100):02d}" if rng.random() < 0.7 else None,
            company_id=cid,
            subsidiary_id=SUBSIDIARY_ID,
            is_inactive=False,
            date_created=modified - timedelta(days=rng.randrange(0, 400)),
            last_modified=modified,
        )

    # --- deleted customers ---------------------------------------------------------------------

    def deleted(self, j: int) -> DeletedRecord:
        """The ``j``-th customer deleted before start (ordered by deleted date, then id)."""
        if not 0 <= j < self.deleted_count:
            raise IndexError(f"deleted index {j} outside 0..{self.deleted_count - 1}")
        slot = DELETED_EVERY * j + DELETED_EVERY - 1
        previous_live = slot - j - 1
        when = self.last_modified(previous_live) + timedelta(minutes=37)
        return DeletedRecord(CUSTOMER_ID_BASE + slot, "customer", self.company_name(slot), when)

    def deleted_sort_key(self, j: int) -> tuple[datetime, int]:
        record = self.deleted(j)
        return record.deleted_date, record.record_id

    def first_deleted_after(self, key: tuple[datetime, int], *, inclusive: bool) -> int:
        search = bisect.bisect_left if inclusive else bisect.bisect_right
        return search(range(self.deleted_count), key, key=self.deleted_sort_key)

    # --- small lists ---------------------------------------------------------------------------

    def _employees(self) -> tuple[Employee, ...]:
        rng = random.Random(f"{self.seed}:employees")
        people: list[Employee] = [
            Employee(
                -5,
                "Administrator",
                "Admin",
                "User",
                "admin@creditdesk-demo.example",
                "Administrator",
                False,
                False,
            ),
        ]
        used: set[tuple[str, str]] = set()
        for n in range(14):
            while True:
                first, last = rng.choice(_PEOPLE_FIRST), rng.choice(_PEOPLE_LAST)
                if (first, last) not in used:
                    used.add((first, last))
                    break
            is_rep = n < 11
            people.append(
                Employee(
                    id=101 + n,
                    entity_id=f"{first} {last}",
                    first_name=first,
                    last_name=last,
                    email=f"{first.lower()}.{last.lower()}@creditdesk-demo.example",
                    title="Account Executive" if is_rep else "Credit Analyst",
                    is_sales_rep=is_rep,
                    is_inactive=n == 10,  # one former rep: still referenced, no longer active
                )
            )
        return tuple(people)
