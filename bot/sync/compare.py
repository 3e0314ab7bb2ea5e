"""Our values beside NetSuite's, one row per mapping, and fingerprints of NetSuite's values.

Pure functions. NetSuite's side comes from one of two places that must agree:

* the **mirror** (what the analyst sees in the pick modal, "as of" its ``mirrored_at``), and
* the **live record** the worker re-reads just before writing.

Both are turned into one :class:`NetSuiteSide`, and :func:`fingerprint` reduces a field of it to
a short digest. The analyst's fingerprints are stored with the sync request (``seen_values``);
the worker compares them with the live record's to tell "NetSuite changed since the analyst
looked" (a conflict: not written) from "NetSuite is as the analyst saw it" (written).

The Federal ID is never held here in clear: NetSuite's value is represented by its keyed digest
(:meth:`bot.federal_id.FederalIdCipher.digest`) and shown masked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from bot.applications.schemas import ApplicationOut
from bot.federal_id import digits, mask
from bot.sync.fields import ORDER, SyncField
from netsuite.mapping import ContactValues
from netsuite.writes import AddressEntry, CustomerRecord, PostalAddress, location_key
from storage.models import NsCustomer

CompanyNameStyle = Literal["legal", "dba", "legal_dba"]
Digest = Callable[[str], str]
NOTHING = "—"


@dataclass(frozen=True)
class ContactValue:
    name: str | None
    email: str | None
    phone: str | None

    def display(self) -> str:
        parts = [self.name or "(no name)"]
        if self.email:
            parts.append(f"<{self.email}>")
        if self.phone:
            parts.append(self.phone)
        return " ".join(parts)


@dataclass(frozen=True)
class ShippingValue:
    label: str
    address: PostalAddress


@dataclass(frozen=True)
class OurSide:
    """What Credit Desk would write, from an approved application."""

    company_name: str
    federal_id_masked: str
    federal_id_digest: str | None
    billing: PostalAddress
    contact: ContactValue
    terms_name: str | None
    credit_limit: Decimal | None
    currency: str
    shipping: tuple[ShippingValue, ...]


@dataclass(frozen=True)
class NetSuiteSide:
    """NetSuite's values for the six mappings (``exists=False``: no customer yet)."""

    exists: bool
    company_name: str | None = None
    tax_digest: str | None = None
    tax_masked: str | None = None
    addresses: tuple[AddressEntry, ...] = ()
    contacts: tuple[ContactValue, ...] = ()
    terms_id: str | None = None
    terms_name: str | None = None
    credit_limit: Decimal | None = None
    as_of: datetime | None = None

    @property
    def billing(self) -> AddressEntry | None:
        return next((a for a in self.addresses if a.default_billing), None)

    @property
    def shipping(self) -> tuple[AddressEntry, ...]:
        """The lines that are not only the default billing address."""
        return tuple(a for a in self.addresses if not (a.default_billing and not a.default_shipping))

    def contact_for(self, email: str) -> ContactValue | None:
        wanted = email.strip().casefold()
        return next((c for c in self.contacts if (c.email or "").strip().casefold() == wanted), None)


NO_CUSTOMER = NetSuiteSide(exists=False)


@dataclass(frozen=True)
class ComparisonRow:
    """One row of the pick modal."""

    field: SyncField
    label: str
    ours: str
    netsuite: str
    as_of: datetime | None
    differs: bool
    has_value: bool
    default_ticked: bool
    seen: str  # fingerprint of NetSuite's value as shown: goes into seen_values when ticked


# ---- building the two sides ---------------------------------------------------------------------


def company_name(app: ApplicationOut, style: CompanyNameStyle = "legal_dba") -> str:
    """The Company Name we write: the legal name, the DBA, or ``Legal dba DBA``."""
    dba = (app.dba or "").strip()
    if not dba or dba.casefold() == app.business_name.casefold():
        return app.business_name
    if style == "dba":
        return dba
    if style == "legal_dba":
        return f"{app.business_name} dba {dba}"
    return app.business_name


def our_side(
    app: ApplicationOut,
    *,
    federal_id_digest: str | None,
    style: CompanyNameStyle = "legal_dba",
) -> OurSide:
    bill = app.billing_address
    name = company_name(app, style)
    shipping: list[ShippingValue] = []
    used: set[str] = set()
    for n, loc in enumerate(app.shipping_locations, start=1):
        label = _unique_label(loc.label or f"Shipping {n}", used)
        shipping.append(
            ShippingValue(
                label,
                PostalAddress(
                    line1=loc.line1,
                    line2=loc.line2,
                    city=loc.city,
                    region=loc.state,
                    postal_code=loc.postal_code,
                    country=loc.country,
                    addressee=app.business_name,
                    attention=loc.attention,
                ),
            )
        )
    contact = app.statements_contact
    limit = app.approved_credit_limit
    return OurSide(
        company_name=name,
        federal_id_masked=app.federal_id,
        federal_id_digest=federal_id_digest,
        billing=PostalAddress(
            line1=bill.line1,
            line2=bill.line2,
            city=bill.city,
            region=bill.state,
            postal_code=bill.postal_code,
            country=bill.country,
            addressee=app.business_name,
        ),
        contact=ContactValue(contact.name, str(contact.email), contact.phone),
        terms_name=app.approved_terms,
        credit_limit=Decimal(limit.amount) if limit is not None else None,
        currency=limit.currency if limit is not None else app.requested_credit_limit.currency,
        shipping=tuple(shipping),
    )


def _unique_label(label: str, used: set[str]) -> str:
    """Labels identify our lines in NetSuite's address book, so ours must differ from each other."""
    candidate, n = label, 2
    while candidate.casefold() in used:
        candidate, n = f"{label} ({n})", n + 1
    used.add(candidate.casefold())
    return candidate


def side_from_mirror(customer: NsCustomer | None, term_names: Mapping[int, str]) -> NetSuiteSide:
    """NetSuite's values as the mirror last saw them (``None``: a new customer). The mirror has the
    Federal ID only as its digest, so it has nothing to show masked (see :func:`display_netsuite`)."""
    if customer is None:
        return NO_CUSTOMER
    addresses = tuple(
        AddressEntry(
            line_id=None,
            label=a.label,
            address=PostalAddress(
                line1=a.line1 or "",
                line2=a.line2,
                city=a.city or "",
                region=a.region,
                postal_code=a.postal_code or "",
                country=(a.country or "").upper(),
                addressee=a.addressee,
                attention=a.attention,
            ),
            default_billing=a.default_billing,
            default_shipping=a.default_shipping,
        )
        for a in sorted(customer.addresses, key=lambda a: a.address_id)
    )
    return NetSuiteSide(
        exists=True,
        company_name=customer.company_name,
        tax_digest=customer.tax_number_digest,
        addresses=addresses,
        contacts=tuple(ContactValue(c.name, c.email, c.phone) for c in customer.contacts),
        terms_id=str(customer.terms_id) if customer.terms_id is not None else None,
        terms_name=term_names.get(customer.terms_id) if customer.terms_id is not None else None,
        credit_limit=customer.credit_limit,
        as_of=customer.mirrored_at,
    )


def side_from_record(
    record: CustomerRecord | None,
    contacts: Sequence[ContactValues],
    digest: Digest,
    as_of: datetime | None = None,
) -> NetSuiteSide:
    """NetSuite's values as the live record shows them (``None``: no such customer)."""
    if record is None:
        return NO_CUSTOMER
    return NetSuiteSide(
        exists=True,
        company_name=record.company_name,
        tax_digest=digest(record.tax_number) if record.tax_number else None,
        tax_masked=_masked(record.tax_number),
        addresses=record.addresses,
        contacts=tuple(ContactValue(c["name"], c["email"], c["phone"]) for c in contacts),
        terms_id=record.terms_id,
        terms_name=record.terms_name,
        credit_limit=record.credit_limit,
        as_of=as_of,
    )


def _masked(value: str | None) -> str | None:
    if not value:
        return None
    found = digits(value)
    return mask(found[-4:]) if len(found) >= 4 else "(set)"


# ---- comparing ----------------------------------------------------------------------------------


def has_value(field: SyncField, ours: OurSide) -> bool:
    """Whether we have anything to write for ``field`` (a row without cannot be ticked)."""
    if field is SyncField.FEDERAL_ID:
        return bool(ours.federal_id_masked)
    if field is SyncField.CREDIT_TERMS:
        return ours.terms_name is not None or ours.credit_limit is not None
    if field is SyncField.SHIPPING_LOCATIONS:
        return bool(ours.shipping)
    if field is SyncField.STATEMENTS_CONTACT:
        return bool(ours.contact.email)
    return True


def in_sync(field: SyncField, ours: OurSide, side: NetSuiteSide) -> bool:
    """Whether NetSuite already holds our value for ``field`` (then there is nothing to write)."""
    if not side.exists:
        return False
    if field is SyncField.COMPANY_NAME:
        return (side.company_name or "").strip() == ours.company_name.strip()
    if field is SyncField.FEDERAL_ID:
        return ours.federal_id_digest is not None and side.tax_digest == ours.federal_id_digest
    if field is SyncField.BILLING_ADDRESS:
        billing = side.billing
        return billing is not None and location_key(billing.address) == location_key(ours.billing)
    if field is SyncField.STATEMENTS_CONTACT:
        found = side.contact_for(ours.contact.email or "")
        if found is None:
            return False
        theirs, mine = _contact_key(found), _contact_key(ours.contact)
        # We never clear a phone NetSuite has: without one of ours, any phone there is fine.
        return theirs[:2] == mine[:2] and (not mine[2] or theirs[2] == mine[2])
    if field is SyncField.CREDIT_TERMS:
        terms_ok = ours.terms_name is None or _fold(side.terms_name) == _fold(ours.terms_name)
        limit_ok = ours.credit_limit is None or side.credit_limit == ours.credit_limit
        return terms_ok and limit_ok
    if field is SyncField.SHIPPING_LOCATIONS:
        present = {location_key(a.address) for a in side.addresses}
        if not all(location_key(s.address) in present for s in ours.shipping):
            return False
        default = next((a for a in side.addresses if a.default_shipping), None)
        first = ours.shipping[0].address if ours.shipping else None
        return first is None or (default is not None and location_key(default.address) == location_key(first))
    raise AssertionError(f"unhandled field {field}")


def fingerprint(field: SyncField, side: NetSuiteSide, ours: OurSide) -> str:
    """A short digest of NetSuite's value of ``field`` (equal values, equal fingerprints,
    whether read from the mirror or live). ``ours`` only picks which contact is "the" one."""
    return _digest({"field": field.value, "value": _canonical(field, side, ours)})


def _canonical(field: SyncField, side: NetSuiteSide, ours: OurSide) -> Any:
    if not side.exists:
        return None
    if field is SyncField.COMPANY_NAME:
        return (side.company_name or "").strip()
    if field is SyncField.FEDERAL_ID:
        return side.tax_digest or ""
    if field is SyncField.BILLING_ADDRESS:
        billing = side.billing
        return list(location_key(billing.address)) if billing is not None else None
    if field is SyncField.STATEMENTS_CONTACT:
        found = side.contact_for(ours.contact.email or "")
        return list(_contact_key(found)) if found is not None else None
    if field is SyncField.CREDIT_TERMS:
        limit = side.credit_limit
        return [side.terms_id, str(limit.quantize(Decimal("0.01"))) if limit is not None else None]
    if field is SyncField.SHIPPING_LOCATIONS:
        return sorted([*location_key(a.address), str(a.default_shipping)] for a in side.shipping)
    raise AssertionError(f"unhandled field {field}")


def compare(ours: OurSide, side: NetSuiteSide) -> list[ComparisonRow]:
    """One row per mapping, in :data:`bot.sync.fields.ORDER`."""
    rows = []
    for field in ORDER:
        value = has_value(field, ours)
        differs = not in_sync(field, ours, side)
        ticked = value and (differs or not side.exists)
        rows.append(
            ComparisonRow(
                field=field,
                label=field.label,
                ours=display_ours(field, ours),
                netsuite=display_netsuite(field, side, ours),
                as_of=side.as_of,
                differs=differs,
                has_value=value,
                default_ticked=ticked,
                seen=fingerprint(field, side, ours),
            )
        )
    return rows


def display_ours(field: SyncField, ours: OurSide) -> str:
    if field is SyncField.COMPANY_NAME:
        return ours.company_name
    if field is SyncField.FEDERAL_ID:
        return ours.federal_id_masked or NOTHING
    if field is SyncField.BILLING_ADDRESS:
        return ours.billing.one_line()
    if field is SyncField.STATEMENTS_CONTACT:
        return ours.contact.display()
    if field is SyncField.CREDIT_TERMS:
        return _terms_text(ours.terms_name, ours.credit_limit, ours.currency)
    if field is SyncField.SHIPPING_LOCATIONS:
        if not ours.shipping:
            return NOTHING
        return "\n".join(
            f"{'★ ' if n == 0 else ''}{s.label}: {s.address.one_line()}" for n, s in enumerate(ours.shipping)
        )
    raise AssertionError(f"unhandled field {field}")


def display_netsuite(field: SyncField, side: NetSuiteSide, ours: OurSide) -> str:
    """NetSuite's value as text for people (the Federal ID masked, never in clear)."""
    if not side.exists:
        return "(new customer)"
    if field is SyncField.COMPANY_NAME:
        return side.company_name or NOTHING
    if field is SyncField.FEDERAL_ID:
        if side.tax_digest is not None and side.tax_digest == ours.federal_id_digest:
            return ours.federal_id_masked
        if side.tax_masked:
            return side.tax_masked
        return "(set, not shown)" if side.tax_digest else NOTHING
    if field is SyncField.BILLING_ADDRESS:
        billing = side.billing
        return billing.address.one_line() if billing is not None else NOTHING
    if field is SyncField.STATEMENTS_CONTACT:
        found = side.contact_for(ours.contact.email or "")
        if found is not None:
            return found.display()
        others = len(side.contacts)
        return f"No contact with {ours.contact.email}" + (f" ({others} other contacts)" if others else "")
    if field is SyncField.CREDIT_TERMS:
        return _terms_text(side.terms_name or side.terms_id, side.credit_limit, ours.currency)
    if field is SyncField.SHIPPING_LOCATIONS:
        if not side.shipping:
            return NOTHING
        return "\n".join(
            f"{'★ ' if a.default_shipping else ''}{a.label or 'Address'}: {a.address.one_line()}"
            for a in side.shipping
        )
    raise AssertionError(f"unhandled field {field}")


# ---- helpers ------------------------------------------------------------------------------------


def _terms_text(terms: str | None, limit: Decimal | None, currency: str) -> str:
    parts = [terms or "no terms", f"limit {limit:,.2f} {currency}" if limit is not None else "no limit"]
    return ", ".join(parts)


def _contact_key(contact: ContactValue) -> tuple[str, str, str]:
    return (
        " ".join((contact.name or "").split()).casefold(),
        (contact.email or "").strip().casefold(),
        _phone_digits(contact.phone),
    )


def _phone_digits(phone: str | None) -> str:
    """Digits only, a leading US country code dropped: ``+1 512-555-0134`` == ``(512) 555-0134``."""
    found = "".join(ch for ch in phone or "" if ch.isdigit())
    return found[1:] if len(found) == 11 and found.startswith("1") else found


def _fold(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]
