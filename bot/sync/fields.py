"""The six mappings an analyst can tick when syncing an application to a NetSuite customer.

Each member names one of our fields and the NetSuite field it is written to (netsuite.md §0). The
member's value is what the durable sync row stores in ``fields`` and ``seen_values``, so values
never change once released.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable


class SyncField(enum.StrEnum):
    COMPANY_NAME = "company_name"
    FEDERAL_ID = "federal_id"
    BILLING_ADDRESS = "billing_address"
    STATEMENTS_CONTACT = "statements_contact"
    CREDIT_TERMS = "credit_terms"
    SHIPPING_LOCATIONS = "shipping_locations"

    @property
    def ours(self) -> str:
        """Our field, as the application form calls it."""
        return _LABELS[self][0]

    @property
    def netsuite(self) -> str:
        """NetSuite's field, as NetSuite's screens call it."""
        return _LABELS[self][1]

    @property
    def label(self) -> str:
        """``Business Name/DBA → Company Name``: one row of the pick modal."""
        return f"{self.ours} → {self.netsuite}"


_LABELS: dict[SyncField, tuple[str, str]] = {
    SyncField.COMPANY_NAME: ("Business Name/DBA", "Company Name"),
    SyncField.FEDERAL_ID: ("Federal ID Number", "Tax Reg. Number"),
    SyncField.BILLING_ADDRESS: ("Billing Address", "Default billing address"),
    SyncField.STATEMENTS_CONTACT: ("Statements/Invoice Contact", "Company contact"),
    SyncField.CREDIT_TERMS: ("Credit Terms", "Terms and credit limit"),
    SyncField.SHIPPING_LOCATIONS: ("Shipping Locations", "Address book"),
}

ORDER: tuple[SyncField, ...] = tuple(SyncField)
"""The order rows are shown and fields are processed in."""


def parse_fields(values: Iterable[str]) -> list[SyncField]:
    """Field names from a form or a stored row, deduplicated, in :data:`ORDER`.

    Raises ValueError naming an unknown field, so a tampered payload fails loudly.
    """
    chosen: set[SyncField] = set()
    for value in values:
        try:
            chosen.add(SyncField(value))
        except ValueError:
            known = ", ".join(f.value for f in ORDER)
            raise ValueError(f"unknown sync field {value!r} (known: {known})") from None
    return [f for f in ORDER if f in chosen]
