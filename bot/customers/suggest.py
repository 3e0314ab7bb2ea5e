"""Which existing NetSuite customers an application probably is: suggested first in the link modal, and the
reason a "New customer" is questioned before anything is written."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from bot.applications.schemas import ApplicationOut
from bot.applications.service import to_out
from bot.customers.search import CustomerMatch, CustomerSearch, MatchedOn
from storage.db import transaction
from storage.repositories.applications import ApplicationRepository
from storage.repositories.suggest import SuggestRepository

FREE_MAIL = frozenset(
    {"gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "aol.com", "icloud.com", "proton.me", "live.com"}
)
DUPLICATE_CONFIDENCE = 0.85
MAX_SUGGESTIONS = 5


@dataclass(frozen=True)
class Suggestion:
    match: CustomerMatch
    confidence: float  # 0..1
    reasons: tuple[str, ...]

    @property
    def likely_duplicate(self) -> bool:
        return self.confidence >= DUPLICATE_CONFIDENCE


def _combine(confidences: Iterable[float]) -> float:
    """Independent pieces of evidence: 1 - Π(1 - c)."""
    remaining = 1.0
    for c in confidences:
        remaining *= 1.0 - c
    return round(1.0 - remaining, 3)


class CustomerSuggester:
    def __init__(self, search: CustomerSearch, sessions: sessionmaker[Session]) -> None:
        self.search = search
        self.sessions = sessions

    def for_application_id(self, application_id: int) -> list[Suggestion]:
        """Suggestions for a stored application (its Federal ID compared by digest, never in clear)."""
        with transaction(self.sessions, readonly=True) as session:
            row = ApplicationRepository(session).get(application_id)
            if row is None:
                return []
            app, digest = to_out(row), row.federal_id_digest
        return self.for_application(app, digest)

    def likely_duplicates(self, application_id: int) -> list[Suggestion]:
        """Existing customers this application very probably is: a "New customer" is questioned first."""
        return [s for s in self.for_application_id(application_id) if s.likely_duplicate]

    def for_application(self, app: ApplicationOut, federal_id_digest: str | None) -> list[Suggestion]:
        evidence: dict[int, list[tuple[float, str]]] = {}
        matches: dict[int, CustomerMatch] = {}

        def add(match: CustomerMatch, confidence: float, reason: str) -> None:
            matches.setdefault(match.internal_id, match)
            evidence.setdefault(match.internal_id, []).append((confidence, reason))

        with transaction(self.sessions, readonly=True) as session:
            repo = SuggestRepository(session)
            tax_ids = repo.by_tax_digest(federal_id_digest) if federal_id_digest else []
            bill = app.billing_address
            address_ids = repo.by_address(bill.line1, bill.postal_code)
        for internal_id in tax_ids:
            for m in self.search.search(str(internal_id), limit=1):
                add(m, 0.97, "same tax number")
        for internal_id in address_ids:
            for m in self.search.search(str(internal_id), limit=1):
                add(m, 0.8, "same address")
        for name in {app.business_name, app.dba} - {None}:
            for m in self.search.search(str(name), limit=MAX_SUGGESTIONS):
                if m.matched_on == MatchedOn.NAME and m.score >= 0.99:
                    add(m, 0.9, "same name")
                elif m.matched_on == MatchedOn.NAME and m.score >= 0.75:
                    add(m, round(m.score * 0.7, 3), "similar name")
        domain = str(app.statements_contact.email).rsplit("@", 1)[-1].lower()
        if domain not in FREE_MAIL:
            for m in self.search.search(f"@{domain}", limit=MAX_SUGGESTIONS):
                add(m, 0.6, "same email domain")
        suggestions = [
            Suggestion(
                matches[i],
                _combine(c for c, _ in ev),
                tuple(dict.fromkeys(r for _, r in sorted(ev, reverse=True))),
            )
            for i, ev in evidence.items()
        ]
        suggestions.sort(key=lambda s: (-s.confidence, s.match.company_name or "", s.match.internal_id))
        return suggestions[:MAX_SUGGESTIONS]
