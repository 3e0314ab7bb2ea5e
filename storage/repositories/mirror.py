"""Reads over the NetSuite mirror that the rest of the product needs (terms, sales reps)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import NsTerm


class TermsRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def active_names(self) -> list[str]:
        stmt = select(NsTerm.name).where(NsTerm.is_inactive.is_(False)).order_by(NsTerm.name)
        return list(self.session.scalars(stmt))
