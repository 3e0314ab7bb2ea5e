"""What a credit application looks like coming in (validated) and going out (masked).

The same `ApplicationIn` serves the intake API, the file import and (later) the Slack modal, so every rule
lives here once. Errors come out one per field through `field_errors()`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated

import phonenumbers
import pycountry
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from bot.federal_id import EIN_PATTERN

US_STATES: dict[str, str] = {
    "AL": "Alabama",
    "AK": "Alaska",
    "AZ": "Arizona",
    "AR": "Arkansas",
    "CA": "California",
    "CO": "Colorado",
    "CT": "Connecticut",
    "DE": "Delaware",
    "DC": "District of Columbia",
    "FL": "Florida",
    "GA": "Georgia",
    "HI": "Hawaii",
    "ID": "Idaho",
    "IL": "Illinois",
    "IN": "Indiana",
    "IA": "Iowa",
    "KS": "Kansas",
    "KY": "Kentucky",
    "LA": "Louisiana",
    "ME": "Maine",
    "MD": "Maryland",
    "MA": "Massachusetts",
    "MI": "Michigan",
    "MN": "Minnesota",
    "MS": "Mississippi",
    "MO": "Missouri",
    "MT": "Montana",
    "NE": "Nebraska",
    "NV": "Nevada",
    "NH": "New Hampshire",
    "NJ": "New Jersey",
    "NM": "New Mexico",
    "NY": "New York",
    "NC": "North Carolina",
    "ND": "North Dakota",
    "OH": "Ohio",
    "OK": "Oklahoma",
    "OR": "Oregon",
    "PA": "Pennsylvania",
    "RI": "Rhode Island",
    "SC": "South Carolina",
    "SD": "South Dakota",
    "TN": "Tennessee",
    "TX": "Texas",
    "UT": "Utah",
    "VT": "Vermont",
    "VA": "Virginia",
    "WA": "Washington",
    "WV": "West Virginia",
    "WI": "Wisconsin",
    "WY": "Wyoming",
    "PR": "Puerto Rico",
    "GU": "Guam",
    "VI": "U.S. Virgin Islands",
    "AS": "American Samoa",
    "MP": "Northern Mariana Islands",
    "AA": "Armed Forces Americas",
    "AE": "Armed Forces Europe",
    "AP": "Armed Forces Pacific",
}
_STATE_BY_NAME = {name.casefold(): code for code, name in US_STATES.items()}
US_ZIP = re.compile(r"^[0-9]{5}(-[0-9]{4})?$")
POSTAL_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 -]{0,8}[A-Za-z0-9]$", re.ASCII)
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
REFERENCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$")
MAX_CREDIT_LIMIT = Decimal("1000000000000")  # a trillion: beyond that it is a typo
MAX_SHIPPING_LOCATIONS = 50


def _printable(value: str) -> str:
    """Control characters (NUL above all: PostgreSQL refuses it) have no place in an application."""
    if CONTROL_CHARS.search(value):
        raise ValueError("must not contain control characters")
    return value


_Clean = AfterValidator(_printable)
Str20 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20), _Clean]
Str100 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), _Clean]
Str150 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=150), _Clean]
Str200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), _Clean]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class Address(_Strict):
    """A postal address. US addresses need a state and a ZIP; others a country and postal code."""

    country: str = Field("US", description="ISO 3166-1 alpha-2 country code.")
    line1: Str150
    line2: Str150 | None = None
    city: Str100
    state: Str100 | None = Field(
        None, validate_default=True, description="US state code (or name); region elsewhere."
    )
    postal_code: Str20

    @field_validator("country")
    @classmethod
    def _country(cls, v: str) -> str:
        code = v.strip().upper()
        if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
            raise ValueError("must be an ISO 3166-1 alpha-2 country code, like US or CA")
        return code

    @field_validator("state")
    @classmethod
    def _state(cls, v: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("country") != "US":
            return v
        if not v:
            raise ValueError("is required for a US address")
        code = v.upper() if v.upper() in US_STATES else _STATE_BY_NAME.get(v.casefold())
        if code is None:
            raise ValueError(f"{v!r} is not a US state code, like NY")
        return code

    @field_validator("postal_code")
    @classmethod
    def _postal_code(cls, v: str, info: ValidationInfo) -> str:
        country = info.data.get("country")
        if country == "US" and not US_ZIP.fullmatch(v):
            raise ValueError("must be a US ZIP code: 12345 or 12345-6789")
        if country != "US" and not POSTAL_CODE.fullmatch(v):
            raise ValueError("must be 2 to 10 letters, digits, spaces or dashes")
        return v


class ShippingLocation(Address):
    label: Str100 | None = Field(None, description="A name for the location, e.g. 'Warehouse 2'.")
    attention: Str150 | None = None


def _normalise_phone(value: str | None, region: str = "US") -> str | None:
    if value is None:
        return None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("is not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("is not a valid phone number (include the country code outside the US)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class Contact(_Strict):
    """The statements/invoice contact."""

    name: Str150
    email: EmailStr
    phone: str | None = None

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        return _normalise_phone(v)


class Applicant(_Strict):
    """Who asked for credit (a person at the customer, or a sales rep on their behalf)."""

    name: Str150
    email: EmailStr | None = None
    phone: str | None = None
    slack_user_id: Annotated[str, StringConstraints(pattern=r"^[UW][A-Z0-9]{2,30}$")] | None = None

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        return _normalise_phone(v)


class MoneyIn(_Strict):
    amount: Decimal = Field(description='Exact amount; a string like "50000.00" or a number.')
    currency: str = Field("USD", description="ISO 4217 code.")

    @field_validator("amount")
    @classmethod
    def _amount(cls, v: Decimal) -> Decimal:
        if not v.is_finite():
            raise ValueError("must be a finite number")
        if v <= 0:
            raise ValueError("must be greater than zero")
        if v > MAX_CREDIT_LIMIT:
            raise ValueError(f"must be at most {MAX_CREDIT_LIMIT:,}")
        if v != v.quantize(Decimal("0.01")):
            raise ValueError("must have at most two decimal places")
        return v.quantize(Decimal("0.01"))

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        code = v.strip().upper()
        if len(code) != 3 or pycountry.currencies.get(alpha_3=code) is None:
            raise ValueError("must be an ISO 4217 currency code, like USD")
        return code


class ApplicationIn(_Strict):
    """A credit application as the intake API, the file import and the Slack modal take it."""

    reference: str = Field(
        description="The caller's own id for this application; sending it again never makes a second one."
    )
    business_name: Str200 = Field(description="Legal business name.")
    dba: Str200 | None = Field(None, description="Doing-business-as name, if different.")
    federal_id: str = Field(description="Federal ID Number (EIN), NN-NNNNNNN.")
    billing_address: Address
    statements_contact: Contact
    requested_terms: Str100 | None = Field(None, description="e.g. Net 30.")
    requested_credit_limit: MoneyIn
    shipping_locations: list[ShippingLocation] = Field(
        default_factory=list, max_length=MAX_SHIPPING_LOCATIONS
    )
    applicant: Applicant
    source: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")] | None = Field(
        None,
        description="Where it came from (api, import, slack, nuvo...); set by the channel if absent.",
    )

    @field_validator("reference")
    @classmethod
    def _reference(cls, v: str) -> str:
        v = v.strip()
        if not REFERENCE.fullmatch(v):
            raise ValueError("must be 1 to 100 letters, digits or . _ : / - and start with a letter or digit")
        return v

    @field_validator("federal_id")
    @classmethod
    def _ein(cls, v: str) -> str:
        v = v.strip()
        if not EIN_PATTERN.fullmatch(v):
            raise ValueError("must be an EIN in the form NN-NNNNNNN")
        if v.startswith("00-") or v.endswith("0000000"):
            raise ValueError("is not a valid EIN")
        return v

    def fingerprint(self) -> str:
        """A digest of the content (not the formatting): tells a true repeat from a reused reference."""
        canonical = json.dumps(self.model_dump(mode="json", exclude={"source"}), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


class FieldError(BaseModel):
    field: str
    message: str


def field_errors(exc: ValidationError) -> list[FieldError]:
    """One plain message per field, with dotted paths like `billing_address.postal_code`."""
    out: list[FieldError] = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        if err["type"] == "extra_forbidden" and loc:
            # Name the unknown key so that it can be found: quoted when it is not a plain name.
            loc[-1] = loc[-1] if FIELD_NAME.match(loc[-1]) else json.dumps(loc[-1])
        if err["type"] == "missing":
            message = "is required"
        elif err["type"] == "extra_forbidden":
            message = "is not a known field"
        else:
            message = err["msg"].removeprefix("Value error, ")
            message = message[:1].lower() + message[1:]
        out.append(FieldError(field=".".join(loc) or "(body)", message=message))
    return out


# --- What goes out ---------------------------------------------------------------------------------


class MoneyOut(BaseModel):
    amount: str
    currency: str


@dataclass(frozen=True)
class QueueItem:
    """One line of a queue (App Home, `/credit pending`): what the line shows and nothing else, read as plain
    columns so that listing a queue costs no more than the line needs."""

    id: int
    status: str
    business_name: str
    dba: str | None
    requested_terms: str | None
    requested_credit_limit: MoneyOut
    approved_terms: str | None
    approved_credit_limit: MoneyOut | None
    created_at: datetime


class ApplicationOut(BaseModel):
    """An application as the API shows it: the Federal ID only masked."""

    id: int
    reference: str
    status: str
    source: str
    business_name: str
    dba: str | None
    federal_id: str = Field(description="Masked, e.g. **-***6789.")
    billing_address: Address
    statements_contact: Contact
    requested_terms: str | None
    requested_credit_limit: MoneyOut
    approved_terms: str | None
    approved_credit_limit: MoneyOut | None
    shipping_locations: list[ShippingLocation]
    applicant: Applicant
    created_at: datetime
    updated_at: datetime
