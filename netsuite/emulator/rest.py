"""The REST record service's JSON for customers, contacts and terms (netsuite.md §1).

Two directions:

* ``*_to_json`` render records as NetSuite returns them: camelCase body fields, references as
  ``{"links", "id", "refName"}``, empty fields left out, datetimes ISO 8601 in UTC, sublists as
  links unless ``expandSubResources=true``;
* :class:`BodyReader` applies a POST/PATCH/PUT body to a record with NetSuite's rules: property-name
  validation (``X-NetSuite-PropertyNameValidation``: ``error`` rejects unknown names, otherwise they
  are ignored), value validation with ``o:errorPath``, references that must exist, and the
  ``addressBook`` sublist merged by line key or replaced with ``?replace=addressBook`` (§1.7).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from netsuite.emulator.errors import (
    NsError,
    invalid_content,
    invalid_field_value,
    user_error,
)
from netsuite.emulator.model import (
    COUNTRY_NAMES,
    CREDIT_HOLD_NAMES,
    CREDIT_HOLD_VALUES,
    Address,
    AddressLine,
    Contact,
    Customer,
    Term,
)
from netsuite.emulator.seed import SUBSIDIARY_ID, SUBSIDIARY_NAME
from netsuite.emulator.state import EmulatorState

RECORD_PATH = "/services/rest/record/v1"

# --- rendering ---------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _links(href: str) -> list[dict[str, str]]:
    return [{"rel": "self", "href": href}]


def _ref(base: str, record_type: str, ref_id: int | str, name: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "links": _links(f"{base}{RECORD_PATH}/{record_type}/{ref_id}"),
        "id": str(ref_id),
    }
    if name is not None:
        out["refName"] = name
    return out


def _money(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _prune(body: dict[str, Any]) -> dict[str, Any]:
    """NetSuite leaves empty fields out of a record body."""
    return {key: value for key, value in body.items() if value is not None}


class Renderer:
    """Renders records for one request; ``base`` is the scheme+host the client called."""

    def __init__(self, state: EmulatorState, base: str) -> None:
        self.state = state
        self.base = base
        self.terms = {t.id: t for t in state.base.terms}
        self.employees = {e.id: e for e in state.base.employees}
        self.currencies = {c.id: c for c in state.base.currencies}
        self.roles = {r.id: r.name for r in state.base.contact_roles}

    def customer_url(self, customer_id: int) -> str:
        return f"{self.base}{RECORD_PATH}/customer/{customer_id}"

    def customer(self, customer: Customer, *, expand: bool, fields: set[str] | None = None) -> dict[str, Any]:
        url = self.customer_url(customer.id)
        billing = customer.default_billing_line()
        shipping = customer.default_shipping_line()
        term = self.terms.get(customer.terms_id) if customer.terms_id is not None else None
        rep = self.employees.get(customer.sales_rep_id) if customer.sales_rep_id else None
        currency = self.currencies.get(customer.currency_id)
        body: dict[str, Any] = {
            "links": _links(url),
            "id": str(customer.id),
            "entityId": customer.entity_id,
            "externalId": customer.external_id,
            "companyName": customer.company_name,
            "isPerson": customer.is_person,
            "isInactive": customer.is_inactive,
            "email": customer.email,
            "phone": customer.phone,
            "fax": customer.fax,
            "url": customer.url,
            "comments": customer.comments,
            "vatRegNumber": customer.vat_reg_number,
            "emailTransactions": customer.email_transactions,
            "terms": _ref(self.base, "term", term.id, term.name) if term else None,
            "salesRep": _ref(self.base, "employee", rep.id, rep.entity_id) if rep else None,
            "creditLimit": _money(customer.credit_limit),
            "creditHoldOverride": {
                "id": customer.credit_hold,
                "refName": CREDIT_HOLD_NAMES[customer.credit_hold],
            },
            "currency": _ref(
                self.base, "currency", customer.currency_id, currency.name if currency else None
            ),
            "subsidiary": _ref(
                self.base,
                "subsidiary",
                customer.subsidiary_id,
                SUBSIDIARY_NAME if customer.subsidiary_id == SUBSIDIARY_ID else None,
            ),
            "balance": _money(customer.balance),
            "overdueBalance": _money(customer.overdue_balance),
            "daysOverdue": customer.days_overdue,
            "unbilledOrders": _money(customer.unbilled_orders),
            "depositBalance": _money(customer.deposit_balance),
            "dateCreated": _iso(customer.date_created),
            "lastModifiedDate": _iso(customer.last_modified),
            "defaultAddress": billing.address.text() if billing else None,
            "defaultShippingAddress": shipping.address.text() if shipping else None,
        }
        if fields is not None:
            body = {k: v for k, v in body.items() if k in fields or k in ("links", "id")}
        body["addressBook"] = (
            self.address_book(customer, expand=True) if expand else {"links": _links(f"{url}/addressBook")}
        )
        body["contactRoles"] = (
            self.contact_roles(customer) if expand else {"links": _links(f"{url}/contactRoles")}
        )
        return _prune(body)

    def address_book(self, customer: Customer, *, expand: bool) -> dict[str, Any]:
        url = f"{self.customer_url(customer.id)}/addressBook"
        items: list[dict[str, Any]] = [
            self.address_line(customer, line) if expand else {"links": _links(f"{url}/{line.internal_id}")}
            for line in customer.address_book
        ]
        return {
            "links": _links(url),
            "items": items,
            "totalResults": len(items),
            "count": len(items),
            "hasMore": False,
            "offset": 0,
        }

    def address_line(self, customer: Customer, line: AddressLine) -> dict[str, Any]:
        url = f"{self.customer_url(customer.id)}/addressBook/{line.internal_id}"
        return _prune(
            {
                "links": _links(url),
                "addressBookAddress": self.address(url, line.address),
                "addressBookAddress_text": line.address.text(),
                "addressId": str(line.internal_id),
                "defaultBilling": line.default_billing,
                "defaultShipping": line.default_shipping,
                "id": line.internal_id,
                "internalId": line.internal_id,
                "isResidential": line.is_residential,
                "label": line.label,
            }
        )

    @staticmethod
    def address(line_url: str, address: Address) -> dict[str, Any]:
        country = (
            {"id": address.country, "refName": COUNTRY_NAMES.get(address.country, address.country)}
            if address.country
            else None
        )
        return _prune(
            {
                "links": _links(f"{line_url}/addressBookAddress"),
                "addressee": address.addressee,
                "attention": address.attention,
                "addr1": address.addr1,
                "addr2": address.addr2,
                "addr3": address.addr3,
                "city": address.city,
                "state": address.state,
                "zip": address.zip,
                "country": country,
                "addrPhone": address.addr_phone,
                "addrText": address.text(),
                "override": False,
            }
        )

    def contact_roles(self, customer: Customer) -> dict[str, Any]:
        items = []
        for role in customer.contact_roles:
            contact = self.state.get_contact(role.contact_id)
            items.append(
                _prune(
                    {
                        "contact": _ref(
                            self.base, "contact", role.contact_id, contact.entity_id if contact else None
                        ),
                        "contactName": contact.entity_id if contact else None,
                        "email": contact.email if contact else None,
                        "role": {"id": str(role.role_id), "refName": self.roles.get(role.role_id)}
                        if role.role_id is not None
                        else None,
                    }
                )
            )
        return {
            "links": _links(f"{self.customer_url(customer.id)}/contactRoles"),
            "items": items,
            "totalResults": len(items),
            "count": len(items),
            "hasMore": False,
            "offset": 0,
        }

    def contact(self, contact: Contact) -> dict[str, Any]:
        company_name = None
        if contact.company_id is not None:
            company = self.state.get_customer(contact.company_id)
            company_name = company.company_name if company else None
        return _prune(
            {
                "links": _links(f"{self.base}{RECORD_PATH}/contact/{contact.id}"),
                "id": str(contact.id),
                "entityId": contact.entity_id,
                "externalId": contact.external_id,
                "firstName": contact.first_name,
                "lastName": contact.last_name,
                "title": contact.title,
                "email": contact.email,
                "phone": contact.phone,
                "company": _ref(self.base, "customer", contact.company_id, company_name)
                if contact.company_id is not None
                else None,
                "subsidiary": _ref(self.base, "subsidiary", contact.subsidiary_id, SUBSIDIARY_NAME),
                "isInactive": contact.is_inactive,
                "dateCreated": _iso(contact.date_created),
                "lastModifiedDate": _iso(contact.last_modified),
            }
        )

    def term(self, term: Term) -> dict[str, Any]:
        return _prune(
            {
                "links": _links(f"{self.base}{RECORD_PATH}/term/{term.id}"),
                "id": str(term.id),
                "name": term.name,
                "daysUntilNetDue": term.days_until_net_due,
                "discountPercent": _money(term.discount_percent),
                "daysUntilExpiry": term.days_until_expiry,
                "dateDriven": False,
                "installment": False,
                "isInactive": term.is_inactive,
                "preferred": term.id == 2,
            }
        )

    def collection(
        self, record_type: str, ids: list[int], *, offset: int, total: int, has_more: bool
    ) -> dict[str, Any]:
        url = f"{self.base}{RECORD_PATH}/{record_type}"
        return {
            "links": _links(url),
            "count": len(ids),
            "hasMore": has_more,
            "items": [{"links": _links(f"{url}/{i}"), "id": str(i)} for i in ids],
            "offset": offset,
            "totalResults": total,
        }


# --- reading request bodies --------------------------------------------------------------------

_STRING = "string"
_BOOL = "bool"
_MONEY = "money"


@dataclass(frozen=True)
class _Field:
    attr: str
    kind: str  # string, bool, money, ref:<type>, enum, sublist, readonly
    label: str
    required: bool = False


_CUSTOMER_FIELDS: dict[str, _Field] = {
    "externalId": _Field("external_id", _STRING, "External ID"),
    "entityId": _Field("entity_id", _STRING, "Customer ID", required=True),
    "companyName": _Field("company_name", _STRING, "Company Name", required=True),
    "isPerson": _Field("is_person", _BOOL, "Is Individual"),
    "isInactive": _Field("is_inactive", _BOOL, "Inactive"),
    "email": _Field("email", _STRING, "Email"),
    "phone": _Field("phone", _STRING, "Phone"),
    "fax": _Field("fax", _STRING, "Fax"),
    "url": _Field("url", _STRING, "Web Address"),
    "comments": _Field("comments", _STRING, "Comments"),
    "vatRegNumber": _Field("vat_reg_number", _STRING, "VAT Registration No."),
    "emailTransactions": _Field("email_transactions", _BOOL, "Email Transactions"),
    "terms": _Field("terms_id", "ref:term", "Terms"),
    "salesRep": _Field("sales_rep_id", "ref:employee", "Sales Rep"),
    "creditLimit": _Field("credit_limit", _MONEY, "Credit Limit"),
    "creditHoldOverride": _Field("credit_hold", "enum", "Hold", required=True),
    "currency": _Field("currency_id", "ref:currency", "Currency", required=True),
    "subsidiary": _Field("subsidiary_id", "ref:subsidiary", "Primary Subsidiary", required=True),
    "addressBook": _Field("address_book", "sublist", "Address"),
}
_CUSTOMER_READONLY = frozenset({
    "links", "id", "refName", "balance", "overdueBalance", "daysOverdue", "unbilledOrders",
    "depositBalance", "dateCreated", "lastModifiedDate", "defaultAddress",
    "defaultShippingAddress", "contactRoles",
})  # fmt: skip

_CONTACT_FIELDS: dict[str, _Field] = {
    "externalId": _Field("external_id", _STRING, "External ID"),
    "entityId": _Field("entity_id", _STRING, "Contact"),
    "firstName": _Field("first_name", _STRING, "First Name"),
    "lastName": _Field("last_name", _STRING, "Last Name"),
    "title": _Field("title", _STRING, "Job Title"),
    "email": _Field("email", _STRING, "Email"),
    "phone": _Field("phone", _STRING, "Main Phone"),
    "company": _Field("company_id", "ref:customer", "Company"),
    "subsidiary": _Field("subsidiary_id", "ref:subsidiary", "Subsidiary", required=True),
    "isInactive": _Field("is_inactive", _BOOL, "Inactive"),
}
_CONTACT_READONLY = frozenset({"links", "id", "refName", "dateCreated", "lastModifiedDate"})

_LINE_FIELDS = frozenset({
    "id", "internalId", "label", "defaultBilling", "defaultShipping", "isResidential",
    "addressBookAddress",
})  # fmt: skip
_LINE_READONLY = frozenset({
    "links", "refName", "addressBookAddress_text", "addressId", "lastModifiedDate",
})  # fmt: skip
_ADDRESS_FIELDS: dict[str, str] = {
    "addressee": "addressee",
    "attention": "attention",
    "addr1": "addr1",
    "addr2": "addr2",
    "addr3": "addr3",
    "city": "city",
    "state": "state",
    "zip": "zip",
    "country": "country",
    "addrPhone": "addr_phone",
}
_ADDRESS_READONLY = frozenset({
    "links", "refName", "addrText", "override", "externalId", "lastModifiedDate",
})  # fmt: skip
_MAX_TEXT = 4000
_MAX_NAME = 83  # NetSuite's limit on companyName/entityId


@dataclass
class BodyOptions:
    """Request-level switches that change how a body is read."""

    strict_names: bool = False  # X-NetSuite-PropertyNameValidation: error
    replace: frozenset[str] = frozenset()  # ?replace=addressBook,...
    case_insensitive_names: bool = False  # UNCONFIRMED NetSuite behaviour (§1.2): a setting


class BodyReader:
    """Applies request bodies to records, raising :class:`NsError` exactly as NetSuite would."""

    def __init__(self, state: EmulatorState, options: BodyOptions) -> None:
        self.state = state
        self.options = options
        self.terms = {t.id: t for t in state.base.terms}
        self.employees = {e.id: e for e in state.base.employees}
        self.currencies = {c.id for c in state.base.currencies}
        self.roles = {r.id for r in state.base.contact_roles}

    # names ------------------------------------------------------------------------------------

    def _known(
        self, body: dict[str, Any], fields: dict[str, Any] | frozenset[str], readonly: frozenset[str],
        prefix: str,
    ) -> dict[str, Any]:  # fmt: skip
        """Map body keys to canonical names; reject or drop unknown ones per the header."""
        canonical = {name.lower(): name for name in [*fields, *readonly]}
        result: dict[str, Any] = {}
        for key, value in body.items():
            name = key
            if key not in fields and key not in readonly and self.options.case_insensitive_names:
                name = canonical.get(key.lower(), key)
            if name in fields:
                result[name] = value
            elif name in readonly:
                continue  # read-only values are ignored on write
            elif self.options.strict_names:
                raise invalid_content(
                    f"Invalid field name '{key}'. The field does not exist on this record.",
                    f"{prefix}{key}",
                )
        return result

    # scalar values ----------------------------------------------------------------------------

    def _value(self, spec: _Field, value: Any, path: str) -> Any:
        if value is None:
            if spec.required:
                raise user_error(f"You must enter a value for {spec.label}.", path)
            return False if spec.kind == _BOOL else None
        if spec.kind == _STRING:
            if not isinstance(value, str):
                raise invalid_content(f"Invalid value for {spec.label}: expected a string.", path)
            limit = _MAX_NAME if spec.attr in ("company_name", "entity_id") else _MAX_TEXT
            if len(value) > limit:
                raise user_error(
                    f"Invalid Field Value {value[:40]}... for the following field: {path}. "
                    f"Maximum length is {limit}.",
                    path,
                )
            if spec.required and not value.strip():
                raise user_error(f"You must enter a value for {spec.label}.", path)
            if spec.attr == "email" and value and ("@" not in value or " " in value.strip()):
                raise user_error(f"Invalid Field Value {value} for the following field: email", path)
            return value
        if spec.kind == _BOOL:
            if not isinstance(value, bool):
                raise invalid_content(f"Invalid value for {spec.label}: expected a boolean.", path)
            return value
        if spec.kind == _MONEY:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise invalid_content(f"Invalid value for {spec.label}: expected a number.", path)
            if value < 0:
                raise invalid_field_value(value, path, path)
            return Decimal(str(value)).quantize(Decimal("0.01"))
        if spec.kind == "enum":
            enum_id = value.get("id") if isinstance(value, dict) else value
            if enum_id not in CREDIT_HOLD_VALUES:
                raise invalid_field_value(enum_id, path, path)
            return enum_id
        if spec.kind.startswith("ref:"):
            return self._reference(spec.kind[4:], value, path)
        raise AssertionError(f"unhandled field kind {spec.kind}")

    def _reference(self, record_type: str, value: Any, path: str) -> int:
        if not isinstance(value, dict) or not ({"id", "externalId"} & set(value)):
            raise invalid_content(
                f"Invalid reference for {path}: send an object with 'id' or 'externalId'.", path
            )
        unknown = set(value) - {"id", "externalId", "refName", "links"}
        if unknown and self.options.strict_names:
            name = sorted(unknown)[0]
            raise invalid_content(f"Invalid field name '{name}'.", f"{path}.{name}")
        if "id" in value:
            raw = value["id"]
            try:
                ref_id = int(str(raw))
            except ValueError:
                raise invalid_field_value(raw, path, path) from None
        else:
            external = value["externalId"]
            found = (
                self.state.customer_id_by_external_id(str(external)) if record_type == "customer" else None
            )
            if found is None:
                raise invalid_field_value(external, path, path)
            ref_id = found
        if not self._exists(record_type, ref_id):
            raise invalid_field_value(value.get("id", value.get("externalId")), path, path)
        return ref_id

    def _exists(self, record_type: str, ref_id: int) -> bool:
        if record_type == "term":
            term = self.terms.get(ref_id)
            return term is not None and not term.is_inactive
        if record_type == "employee":
            rep = self.employees.get(ref_id)
            return rep is not None and rep.is_sales_rep and not rep.is_inactive
        if record_type == "currency":
            return ref_id in self.currencies
        if record_type == "subsidiary":
            return ref_id == SUBSIDIARY_ID
        if record_type == "customer":
            return self.state.get_customer(ref_id) is not None
        return False

    # customers --------------------------------------------------------------------------------

    def customer(self, body: Any, current: Customer | None, new_id: Callable[[], int]) -> Customer:
        """Apply ``body`` to ``current`` (PATCH/upsert-update) or build a new customer."""
        if not isinstance(body, dict):
            raise invalid_content("The request body must be a JSON object.")
        values = self._known(body, _CUSTOMER_FIELDS, _CUSTOMER_READONLY, "")
        if current is None:
            if values.get("companyName") in (None, "") and not values.get("isPerson"):
                raise user_error("You must enter a value for Company Name.", "companyName")
            now = self.state.now()
            record = Customer(
                id=0, entity_id="", external_id=None, company_name="", is_person=False,
                is_inactive=False, email=None, phone=None, fax=None, url=None, comments=None,
                vat_reg_number=None, email_transactions=False, terms_id=None, sales_rep_id=None,
                credit_limit=None, credit_hold="AUTO", currency_id=1, subsidiary_id=SUBSIDIARY_ID,
                balance=Decimal("0.00"), overdue_balance=Decimal("0.00"), days_overdue=0,
                unbilled_orders=Decimal("0.00"), deposit_balance=Decimal("0.00"),
                date_created=now, last_modified=now,
            )  # fmt: skip
        else:
            record = current.copy()
        for name, value in values.items():
            spec = _CUSTOMER_FIELDS[name]
            if spec.kind == "sublist":
                record.address_book = self._address_book(
                    record.address_book, value, replace="addressBook" in self.options.replace
                )
            else:
                setattr(record, spec.attr, self._value(spec, value, name))
        if current is None:
            record.id = new_id()
            if not record.entity_id:
                record.entity_id = f"C{record.id}"
        self._check_unique(record)
        return record

    def _check_unique(self, record: Customer) -> None:
        owner = self.state.customer_id_by_entity_id(record.entity_id)
        if owner is not None and owner != record.id:
            raise user_error("This entity already exists.", "entityId")
        if record.external_id:
            owner = self.state.customer_id_by_external_id(record.external_id)
            if owner is not None and owner != record.id:
                raise user_error("A record with this external ID already exists.", "externalId")

    def _address_book(self, lines: list[AddressLine], value: Any, *, replace: bool) -> list[AddressLine]:
        if value is None:
            return []  # "addressBook": null deletes every line
        if not isinstance(value, dict):
            raise invalid_content("Invalid value for addressBook: expected an object.", "addressBook")
        self._known(value, frozenset({"items"}), frozenset({"links", "totalResults", "count",
                                                           "hasMore", "offset"}), "addressBook.")  # fmt: skip
        items = value.get("items")
        if items is None:
            return [] if "items" in value else [*lines]
        if not isinstance(items, list):
            raise invalid_content("addressBook.items must be a list.", "addressBook.items")
        existing = {line.internal_id: line for line in lines}
        result: list[AddressLine] = [] if replace else [*lines]
        position = {line.internal_id: n for n, line in enumerate(result)}
        billing_set: list[int] = []
        shipping_set: list[int] = []
        for n, item in enumerate(items):
            path = f"addressBook.items[{n}]"
            if not isinstance(item, dict):
                raise invalid_content(f"{path} must be an object.", path)
            fields = self._known(item, _LINE_FIELDS, _LINE_READONLY, f"{path}.")
            key = fields.get("internalId", fields.get("id"))
            line: AddressLine
            if key is not None:
                try:
                    line_id = int(str(key))
                except ValueError:
                    raise invalid_field_value(key, "addressBook", f"{path}.id") from None
                if line_id not in existing:
                    raise invalid_field_value(key, "addressBook", f"{path}.id")
                line = _copy_line(existing[line_id])
            else:
                line_id, nkey = self.state.allocate_line()
                line = AddressLine(line_id, nkey, "", False, False, False, Address())
            for name in ("label",):
                if name in fields:
                    label = fields[name]
                    if label is not None and not isinstance(label, str):
                        raise invalid_content("label must be a string.", f"{path}.label")
                    line.label = label or ""
            for name, attr in (("isResidential", "is_residential"),
                               ("defaultBilling", "default_billing"),
                               ("defaultShipping", "default_shipping")):  # fmt: skip
                if name in fields:
                    flag = fields[name]
                    if not isinstance(flag, bool):
                        raise invalid_content(f"{name} must be a boolean.", f"{path}.{name}")
                    setattr(line, attr, flag)
            if fields.get("defaultBilling") is True:
                billing_set.append(line.internal_id)
            if fields.get("defaultShipping") is True:
                shipping_set.append(line.internal_id)
            if "addressBookAddress" in fields:
                line.address = self._address(
                    line.address, fields["addressBookAddress"], f"{path}.addressBookAddress"
                )
            if not line.label:
                line.label = line.address.addr1 or "Address"
            if line.internal_id in position:
                result[position[line.internal_id]] = line
            else:
                position[line.internal_id] = len(result)
                result.append(line)
        _single_default(result, billing_set, "default_billing")
        _single_default(result, shipping_set, "default_shipping")
        return result

    def _address(self, current: Address, value: Any, path: str) -> Address:
        if not isinstance(value, dict):
            raise invalid_content(f"{path} must be an object.", path)
        fields = self._known(value, frozenset(_ADDRESS_FIELDS), _ADDRESS_READONLY, f"{path}.")
        address = Address(**vars(current))
        for name, raw in fields.items():
            attr = _ADDRESS_FIELDS[name]
            item = raw
            if name in ("country", "state") and isinstance(raw, dict):
                item = raw.get("id")
            if item is not None and not isinstance(item, str):
                raise invalid_content(f"{name} must be a string.", f"{path}.{name}")
            if name == "country" and item is not None and item not in COUNTRY_NAMES:
                raise invalid_field_value(item, "country", f"{path}.country")
            setattr(address, attr, item)
        return address

    # contacts ---------------------------------------------------------------------------------

    def contact(self, body: Any, current: Contact | None, new_id: Callable[[], int]) -> Contact:
        if not isinstance(body, dict):
            raise invalid_content("The request body must be a JSON object.")
        values = self._known(body, _CONTACT_FIELDS, _CONTACT_READONLY, "")
        if current is None:
            now = self.state.now()
            record = Contact(
                id=0, entity_id="", external_id=None, first_name=None, last_name=None,
                title=None, email=None, phone=None, company_id=None, subsidiary_id=SUBSIDIARY_ID,
                is_inactive=False, date_created=now, last_modified=now,
            )  # fmt: skip
        else:
            record = current.copy()
        for name, value in values.items():
            spec = _CONTACT_FIELDS[name]
            setattr(record, spec.attr, self._value(spec, value, name))
        if not record.entity_id:
            record.entity_id = " ".join(p for p in (record.first_name, record.last_name) if p)
        if not record.entity_id:
            raise user_error("You must enter a value for Contact.", "entityId")
        if current is None:
            record.id = new_id()
        if record.external_id:
            owner = self.state.contact_id_by_external_id(record.external_id)
            if owner is not None and owner != record.id:
                raise user_error("A record with this external ID already exists.", "externalId")
        return record

    def role(self, body: Any) -> int | None:
        """The optional ``{"role": {"id": ...}}`` body of ``!attach``."""
        if body is None or body == {}:
            return None
        if not isinstance(body, dict):
            raise invalid_content("The request body must be a JSON object.")
        values = self._known(body, frozenset({"role"}), frozenset(), "")
        role = values.get("role")
        if role is None:
            return None
        if not isinstance(role, dict) or "id" not in role:
            raise invalid_content("role must be an object with an 'id'.", "role")
        try:
            role_id = int(str(role["id"]))
        except ValueError:
            raise invalid_field_value(role["id"], "role", "role") from None
        if role_id not in self.roles:
            raise invalid_field_value(role["id"], "role", "role")
        return role_id


def _copy_line(line: AddressLine) -> AddressLine:
    return AddressLine(
        line.internal_id, line.nkey, line.label, line.default_billing, line.default_shipping,
        line.is_residential, Address(**vars(line.address)),
    )  # fmt: skip


def _single_default(lines: list[AddressLine], set_now: list[int], attr: str) -> None:
    """Keep at most one default line, as NetSuite does: the line most recently set wins."""
    flagged = [line for line in lines if getattr(line, attr)]
    if len(flagged) <= 1:
        return
    winner = set_now[-1] if set_now else flagged[-1].internal_id
    for line in lines:
        setattr(line, attr, line.internal_id == winner)


def parse_replace(raw: str | None) -> frozenset[str]:
    """The ``replace`` query parameter: comma-separated sublist names (only addressBook here)."""
    if not raw:
        return frozenset()
    names = frozenset(part.strip() for part in raw.split(",") if part.strip())
    unknown = names - {"addressBook"}
    if unknown:
        raise NsError(
            400,
            "INVALID_PARAMETER",
            f"Invalid 'replace' parameter value: {', '.join(sorted(unknown))}. Only sublists "
            "can be replaced.",
        )
    return names
