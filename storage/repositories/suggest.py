"""Mirror lookups for "is this application an existing NetSuite customer?" (beyond the search index)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import NsCustomer, NsCustomerAddress


class SuggestRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_tax_digest(self, digest: str, limit: int = 5) -> list[int]:
        stmt = (
            select(NsCustomer.internal_id)
            .where(NsCustomer.tax_number_digest == digest)
            .order_by(NsCustomer.internal_id)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def by_address(self, line1: str, postal_code: str, limit: int = 5) -> list[int]:
        """Customers with an address-book line at the same street address and postal code."""
        stmt = (
            select(NsCustomerAddress.customer_id)
            .where(
                func.lower(NsCustomerAddress.line1) == line1.strip().lower(),
                NsCustomerAddress.postal_code == postal_code.strip(),
            )
            .distinct()
            .order_by(NsCustomerAddress.customer_id)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))
