"""Our values -> NetSuite REST request bodies, and a customer record read back into our names.

The write path's half of the connector: NetSuite's field names (``companyName``, ``vatRegNumber``,
``addressBookAddress``...) appear here and in the rest of ``netsuite/`` only. Nothing here talks
HTTP; :class:`netsuite.client.NetSuiteClient` sends what these functions build.

Choices that depend on the account and are UNCONFIRMED in general (netsuite.md §1.9, §1.8) are
:class:`WriteOptions`, filled from settings:

* where the Federal ID goes (``vatRegNumber``, the SuiteTax ``taxRegistration`` sublist, or a
  ``custentity_*`` field);
* the subsidiary and any other values NetSuite requires on a new customer;
* the contact role a statements contact is attached with.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from netsuite.addressbook import ADDRESS, existing_lines, line_key, normalise_address
from netsuite.hosts import host_label

TaxRegMode = Literal["vatRegNumber", "taxRegistration", "customField"]
VAT_REG_NUMBER = "vatRegNumber"
TAX_REGISTRATION = "taxRegistration"
_CUSTOM_FIELD = re.compile(r"^custentity[A-Za-z0-9_]+$")
DEFAULT_RECORD_URL = "https://{account}.app.netsuite.com/app/common/entity/custjob.nl?id={id}"


class TermNotFound(LookupError):
    """No single active NetSuite term carries the approved terms' name. The message is for people."""


@dataclass(frozen=True)
class WriteOptions:
    """Account-specific choices of the write path (see the module docstring)."""

    tax_field: str = VAT_REG_NUMBER
    """``vatRegNumber``, ``taxRegistration`` or a custom entity field id (``custentity_ein``)."""
    tax_nexus_country: str = "US"
    """The ``nexusCountry`` of the SuiteTax registration line we own."""
    subsidiary_id: str | None = None
    """Primary subsidiary of new customers and contacts (OneWorld accounts require one)."""
    new_customer_defaults: Mapping[str, Any] = field(default_factory=dict)
    """More body fields for a new customer, in NetSuite's names (``{"entityStatus": {"id": "13"}}``)."""
    contact_role_id: str | None = None
    """Contact role the statements contact is attached with (account data; ``None``: no role)."""
    record_url_template: str = DEFAULT_RECORD_URL
    account_id: str | None = None

    def __post_init__(self) -> None:
        if self.tax_mode == "customField" and not _CUSTOM_FIELD.fullmatch(self.tax_field):
            raise ValueError(
                f"tax field {self.tax_field!r} must be vatRegNumber, taxRegistration or a custom "
                "entity field id starting with custentity"
            )
        if not re.fullmatch(r"[A-Z]{2}", self.tax_nexus_country):
            raise ValueError(f"tax nexus country {self.tax_nexus_country!r} must be an ISO-2 code, like US")
        reserved = {"externalId", "companyName", "addressBook", "id"} & set(self.new_customer_defaults)
        if reserved:
            raise ValueError(f"new-customer defaults may not set {sorted(reserved)}; Credit Desk writes them")
        if "{id}" not in self.record_url_template:
            raise ValueError("the NetSuite record URL template needs an {id} placeholder")

    @property
    def tax_mode(self) -> TaxRegMode:
        if self.tax_field == VAT_REG_NUMBER:
            return "vatRegNumber"
        if self.tax_field == TAX_REGISTRATION:
            return "taxRegistration"
        return "customField"


# ---- our values ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostalAddress:
    """An address in our names. ``region`` is a state or province code/name."""

    line1: str
    city: str
    postal_code: str
    country: str
    line2: str | None = None
    region: str | None = None
    addressee: str | None = None
    attention: str | None = None

    def one_line(self) -> str:
        place = " ".join(p for p in (self.city + ",", self.region, self.postal_code) if p)
        parts = [self.line1, self.line2, place, self.country]
        return ", ".join(p for p in parts if p)


@dataclass(frozen=True)
class AddressEntry:
    """One address-book line as read from NetSuite, in our names."""

    line_id: str | None
    label: str | None
    address: PostalAddress
    default_billing: bool
    default_shipping: bool


@dataclass(frozen=True)
class CustomerRecord:
    """The parts of a customer record the sync compares, writes and verifies.

    ``tax_number`` is the clear value NetSuite holds: kept out of ``repr`` so it never reaches a
    log line by accident. ``raw_address_lines`` are NetSuite's own lines, for the merge.
    """

    internal_id: str
    external_id: str | None
    entity_id: str | None
    company_name: str | None
    email: str | None
    terms_id: str | None
    terms_name: str | None
    credit_limit: Decimal | None
    addresses: tuple[AddressEntry, ...]
    raw_address_lines: tuple[dict[str, Any], ...] = field(repr=False)
    raw_tax_registrations: tuple[dict[str, Any], ...] = field(repr=False, default=())
    tax_number: str | None = field(repr=False, default=None)

    @property
    def default_billing(self) -> AddressEntry | None:
        return next((a for a in self.addresses if a.default_billing), None)


# ---- reading a record ---------------------------------------------------------------------------


def read_customer(record: Mapping[str, Any], options: WriteOptions) -> CustomerRecord:
    """A customer read with ``expandSubResources=true``, in our names.

    Raises ValueError when the address book was not expanded (an unexpanded book must never be
    taken for an empty one).
    """
    lines = existing_lines(record)
    terms = record.get("terms")
    terms_id = _text(terms.get("id")) if isinstance(terms, Mapping) else None
    terms_name = _text(terms.get("refName")) if isinstance(terms, Mapping) else None
    registrations = _sublist_items(record.get(TAX_REGISTRATION))
    return CustomerRecord(
        internal_id=str(record.get("id") or ""),
        external_id=_text(record.get("externalId")),
        entity_id=_text(record.get("entityId")),
        company_name=_text(record.get("companyName")),
        email=_text(record.get("email")),
        terms_id=terms_id,
        terms_name=terms_name,
        credit_limit=_amount(record.get("creditLimit")),
        addresses=tuple(_entry(line) for line in lines),
        raw_address_lines=tuple(lines),
        raw_tax_registrations=tuple(registrations),
        tax_number=_read_tax_number(record, registrations, options),
    )


def _entry(line: Mapping[str, Any]) -> AddressEntry:
    raw = line.get(ADDRESS)
    address = raw if isinstance(raw, Mapping) else {}
    return AddressEntry(
        line_id=line_key(line),
        label=_text(line.get("label")),
        address=address_from_netsuite(address),
        default_billing=line.get("defaultBilling") is True,
        default_shipping=line.get("defaultShipping") is True,
    )


def address_from_netsuite(address: Mapping[str, Any]) -> PostalAddress:
    """An ``addressBookAddress`` subrecord in our names (references read by id)."""

    def value(name: str) -> str | None:
        raw = address.get(name)
        if isinstance(raw, Mapping):
            raw = raw.get("id") or raw.get("refName")
        return _text(raw)

    return PostalAddress(
        line1=value("addr1") or "",
        line2=value("addr2"),
        city=value("city") or "",
        region=value("state"),
        postal_code=value("zip") or "",
        country=(value("country") or "").upper(),
        addressee=value("addressee"),
        attention=value("attention"),
    )


def _read_tax_number(
    record: Mapping[str, Any], registrations: Sequence[Mapping[str, Any]], options: WriteOptions
) -> str | None:
    if options.tax_mode == "taxRegistration":
        line = _our_registration(registrations, options.tax_nexus_country)
        return _text(line.get("taxRegistrationNumber")) if line is not None else None
    return _text(record.get(options.tax_field))


def _our_registration(registrations: Sequence[Mapping[str, Any]], country: str) -> Mapping[str, Any] | None:
    for line in registrations:
        nexus = line.get("nexusCountry")
        code = nexus.get("id") if isinstance(nexus, Mapping) else nexus
        if str(code or "").upper() == country:
            return line
    return None


def location_key(address: PostalAddress) -> tuple[str, ...]:
    """Where an address is, compared loosely (case, spacing, punctuation): the same rule the
    address-book merge uses to recognise a line."""
    return normalise_address(address_body(address))


# ---- building bodies ----------------------------------------------------------------------------


def address_body(address: PostalAddress) -> dict[str, Any]:
    """An ``addressBookAddress`` body. Parts we do not have are left out (the merge clears them)."""
    body: dict[str, Any] = {
        "addr1": address.line1,
        "city": address.city,
        "zip": address.postal_code,
        "country": {"id": address.country},
    }
    for name, value in (
        ("addr2", address.line2),
        ("state", address.region),
        ("addressee", address.addressee),
        ("attention", address.attention),
    ):
        if value:
            body[name] = value
    return body


def company_name_body(name: str) -> dict[str, Any]:
    return {"companyName": name}


def terms_body(term_id: str | None, credit_limit: Decimal | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if term_id is not None:
        body["terms"] = {"id": term_id}
    if credit_limit is not None:
        body["creditLimit"] = _number(credit_limit)
    return body


def tax_number_body(
    number: str, options: WriteOptions, current: CustomerRecord | None
) -> tuple[dict[str, Any], list[str]]:
    """(body, sublists to replace) that set the Tax Reg. Number the configured way.

    SuiteTax: our registration line (``nexusCountry`` = the configured country) is updated in
    place, other registrations are resent unchanged, and the sublist is replaced -- so a repeat
    never adds a second line and nobody else's registration is dropped.
    """
    if options.tax_mode != "taxRegistration":
        return {options.tax_field: number}, []
    lines: list[dict[str, Any]] = []
    ours_found = False
    for line in current.raw_tax_registrations if current is not None else ():
        kept = {k: v for k, v in line.items() if k not in ("links", "refName")}
        nexus = line.get("nexusCountry")
        code = nexus.get("id") if isinstance(nexus, Mapping) else nexus
        if not ours_found and str(code or "").upper() == options.tax_nexus_country:
            kept["taxRegistrationNumber"] = number
            ours_found = True
        lines.append(kept)
    if not ours_found:
        lines.append({"nexusCountry": {"id": options.tax_nexus_country}, "taxRegistrationNumber": number})
    return {TAX_REGISTRATION: {"items": lines}}, [TAX_REGISTRATION]


def new_customer_body(external_id: str, options: WriteOptions) -> dict[str, Any]:
    """The values a customer needs at creation besides the synced fields."""
    body: dict[str, Any] = dict(options.new_customer_defaults)
    body["externalId"] = external_id
    body.setdefault("isPerson", False)
    if options.subsidiary_id is not None:
        body["subsidiary"] = {"id": options.subsidiary_id}
    return body


def split_name(name: str) -> tuple[str, str | None]:
    """``Pat Q. Payables`` -> (``Pat Q.``, ``Payables``); one word is a first name only."""
    words = name.split()
    if not words:
        raise ValueError("a contact needs a name")
    if len(words) == 1:
        return words[0], None
    return " ".join(words[:-1]), words[-1]


def contact_body(
    name: str, email: str, phone: str | None, customer_id: str | None, options: WriteOptions
) -> dict[str, Any]:
    """A ``contact`` body; ``customer_id`` places it under the customer ("Organization")."""
    first, last = split_name(name)
    body: dict[str, Any] = {"firstName": first, "email": email}
    if last is not None:
        body["lastName"] = last
    if phone:
        body["phone"] = phone
    if customer_id is not None:
        body["company"] = {"id": customer_id}
    if options.subsidiary_id is not None:
        body["subsidiary"] = {"id": options.subsidiary_id}
    return body


def resolve_term(name: str, terms: Iterable[tuple[str, str, bool]]) -> str:
    """The internal id of the one active term called ``name`` (case and spacing ignored).

    ``terms`` are ``(id, name, inactive)``. No match, or two, raises :class:`TermNotFound`: a
    wrong guess would put a customer on the wrong terms.
    """
    wanted = _fold(name)
    active = [(term_id, term_name) for term_id, term_name, inactive in terms if not inactive]
    found = [term_id for term_id, term_name in active if _fold(term_name) == wanted]
    if len(found) == 1:
        return found[0]
    if not found:
        names = ", ".join(sorted({n for _, n in active})) or "none"
        raise TermNotFound(
            f"NetSuite has no active term named {name!r}, so the terms were not written. "
            f"Active terms: {names}. Add the term in NetSuite or approve with one of these."
        )
    raise TermNotFound(
        f"NetSuite has {len(found)} active terms named {name!r} (ids {', '.join(found)}); "
        "rename one in NetSuite so the right one can be chosen."
    )


def record_url(options: WriteOptions, internal_id: str) -> str:
    """A link people can open to the customer in NetSuite's UI."""
    account = host_label(options.account_id) if options.account_id else "system"
    return options.record_url_template.format(account=account, id=internal_id)


def external_id_for(prefix: str, reference: str, suffix: str = "") -> str:
    """``<prefix><reference><suffix>`` as NetSuite accepts it in an ``eid:`` path (letters,
    digits, ``_``, ``-``, netsuite.md §1.3; at most 100 characters here). When the reference has
    other characters, or the result is too long, the reference is cut and cleaned and a digest of
    the original is added, so that two references never share an external id."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", prefix + suffix) or len(prefix + suffix) > 60:
        raise ValueError(
            f"external id prefix/suffix {prefix!r}/{suffix!r} must be short, letters, digits, _ or -"
        )
    value = f"{prefix}{reference}{suffix}"
    if re.fullmatch(r"[A-Za-z0-9_-]{1,100}", value):
        return value
    room = 100 - len(prefix) - len(suffix) - 9
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "-", reference)[:room]
    return f"{prefix}{cleaned}-{hashlib.sha256(reference.encode()).hexdigest()[:8]}{suffix}"


# ---- helpers ------------------------------------------------------------------------------------


def _sublist_items(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, Mapping) and isinstance(value.get("items"), list):
        return [dict(item) for item in value["items"] if isinstance(item, Mapping)]
    return []


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _amount(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number.quantize(Decimal("0.01")) if number.is_finite() else None


def _number(amount: Decimal) -> int | float:
    """JSON has no decimals: whole amounts go as integers, others as the nearest float."""
    if amount == amount.to_integral_value():
        return int(amount)
    return float(amount)


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()
