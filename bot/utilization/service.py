"""The sales rep dashboard: who is asking, which customers they may see, and each customer's credit standing.

Reps are not a configured role. A rep is a Slack user whose email (read with `users.info`, cached in Redis)
matches an active NetSuite sales rep in the mirror, or whom an admin mapped by hand in
`UTILIZATION_REP_OVERRIDES` (for people whose Slack and NetSuite emails differ). Reps see only their own
customers; analysts, managers and admins may name a rep (`@rep`) or look up any customer by name. Every
refusal is explained to the person and written to the audit log.

The figure (see `standing`): used = balance (+ unbilled orders when `UTILIZATION_INCLUDES_ORDERS`, NetSuite's
"Customer Credit Limit Includes Orders"), utilization = used / credit limit. No limit is "no limit" (never a
division); a zero limit with anything used is over; a negative balance (a credit) is "in credit", 0 %.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import TYPE_CHECKING, Any

import redis
import structlog
from pydantic import ValidationError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.orm import Session, sessionmaker

from bot.applications.schemas import ApplicationIn, field_errors
from bot.customers.normalize import normalize_name
from bot.decisions.policy import Actor, Role, RoleDirectory
from storage.db import transaction
from storage.repositories.audit import AuditRepository
from storage.repositories.utilization import (
    CurrencyTotals,
    CustomerFigures,
    Order,
    SalesRep,
    Scope,
    UtilizationRepository,
)
from storage.types import utcnow

if TYPE_CHECKING:
    from bot.applications.service import ApplicationService
    from bot.customers.search import CustomerSearch
    from bot.settings import Settings

log = structlog.get_logger(__name__)

TEAM_ROLES = (Role.ANALYST, Role.MANAGER, Role.ADMIN)
MAX_NAME_MATCHES = 100  # the customer search returns at most this many; they are then paged like a book
MAX_QUERY_CHARS = 200
EMAIL_TTL_SECONDS = 24 * 3600
EMAIL_MISS_TTL_SECONDS = 300  # someone just fixed their profile: ask Slack again soon
SLACK_USER_MISS_TTL_SECONDS = 3600
_CACHE = "credit-desk:utilization:"
_MENTION = re.compile(r"<@([UW][A-Z0-9]{2,30})(?:\|[^>]*)?>")
_OVER = re.compile(r"^over\s+(\d{1,4}(?:\.\d+)?)\s*%?$|^over$", re.IGNORECASE)
_OVERRIDE_ITEM = re.compile(r"^([UW][A-Z0-9]{2,30})\s*=\s*(\d{1,18})$")


# ---- options ------------------------------------------------------------------------------------


def parse_rep_overrides(text: str) -> dict[str, int]:
    """`U0123=45, U0456=78` → {"U0123": 45, "U0456": 78}; a clear ValueError for anything else."""
    out: dict[str, int] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        found = _OVERRIDE_ITEM.match(item)
        if found is None:
            raise ValueError(
                f"{item!r} is not `<Slack user id>=<NetSuite sales rep internal id>`, e.g. U0123ABCD=42"
            )
        user_id, rep_id = found.group(1), int(found.group(2))
        if user_id in out and out[user_id] != rep_id:
            raise ValueError(f"{user_id} is mapped twice ({out[user_id]} and {rep_id})")
        out[user_id] = rep_id
    return out


@dataclass(frozen=True)
class UtilizationOptions:
    includes_orders: bool = False
    near_percent: int = 80
    page_size: int = 10
    rep_overrides: Mapping[str, int] = field(default_factory=dict)
    mirror_interval_minutes: int = 15
    chart: bool = True

    def __post_init__(self) -> None:
        if not 1 <= self.near_percent <= 100:
            raise ValueError("near_percent must be 1..100")
        if not 1 <= self.page_size <= 40:
            raise ValueError("page_size must be 1..40 (a message holds 50 blocks)")

    @classmethod
    def from_settings(cls, settings: Settings) -> UtilizationOptions:
        return cls(
            includes_orders=settings.utilization_includes_orders,
            near_percent=settings.utilization_near_percent,
            page_size=settings.utilization_page_size,
            rep_overrides=parse_rep_overrides(settings.utilization_rep_overrides),
            mirror_interval_minutes=settings.mirror_interval_minutes,
            chart=settings.utilization_chart,
        )

    def stale_after(self) -> timedelta:
        """Figures older than two refresh intervals (a day when refreshes are manual) are called out."""
        return (
            timedelta(minutes=2 * self.mirror_interval_minutes)
            if self.mirror_interval_minutes
            else timedelta(days=1)
        )


# ---- the figure ---------------------------------------------------------------------------------


class Mark(enum.StrEnum):
    WITHIN = "within"
    NEAR = "near"
    OVER = "over"
    ON_HOLD = "on_hold"
    NO_LIMIT = "no_limit"


class Level(enum.IntEnum):
    """Where a customer stands against the lines alerts watch (credit hold aside)."""

    WITHIN = 0
    NEAR = 1
    OVER = 2


_CENT = Decimal("0.01")


@dataclass(frozen=True)
class Standing:
    """One customer's credit standing, exact, in the customer's currency."""

    customer_id: int
    entity_id: str | None
    name: str
    currency: str
    credit_limit: Decimal | None
    balance: Decimal
    unbilled_orders: Decimal
    used: Decimal
    available: Decimal | None
    percent: Decimal | None  # used / limit * 100, one decimal; None: no limit (or a zero limit)
    overdue: Decimal
    days_overdue: int
    terms: str | None
    on_hold: bool
    mark: Mark
    level: Level
    sales_rep_id: int | None

    @property
    def in_credit(self) -> bool:
        return self.used < 0


def standing(fig: CustomerFigures, *, includes_orders: bool, near_percent: int) -> Standing:
    balance = fig.balance or Decimal("0.00")
    unbilled = fig.unbilled_orders or Decimal("0.00")
    used = balance + (unbilled if includes_orders else Decimal("0.00"))
    limit = fig.credit_limit
    percent: Decimal | None = None
    if limit is None:
        level = Level.WITHIN
    elif limit <= 0:
        level = Level.OVER if used > 0 else Level.WITHIN
    else:
        percent = max(used, Decimal(0)) * 100 / limit
        if used > limit:
            level = Level.OVER
        elif used * 100 >= limit * near_percent:
            level = Level.NEAR
        else:
            level = Level.WITHIN
        percent = percent.quantize(Decimal("0.1"))
    on_hold = (fig.credit_hold or "").upper() == "ON"
    if on_hold:
        mark = Mark.ON_HOLD
    elif level == Level.OVER:
        mark = Mark.OVER
    elif level == Level.NEAR:
        mark = Mark.NEAR
    elif limit is None:
        mark = Mark.NO_LIMIT
    else:
        mark = Mark.WITHIN
    return Standing(
        customer_id=fig.internal_id,
        entity_id=fig.entity_id,
        name=fig.company_name or fig.entity_id or f"Customer {fig.internal_id}",
        currency=fig.currency or "USD",
        credit_limit=limit,
        balance=balance,
        unbilled_orders=unbilled,
        used=used,
        available=None if limit is None else (limit - used).quantize(_CENT),
        percent=percent,
        overdue=fig.overdue_balance or Decimal("0.00"),
        days_overdue=fig.days_overdue or 0,
        terms=fig.terms,
        on_hold=on_hold,
        mark=mark,
        level=level,
        sales_rep_id=fig.sales_rep_id,
    )


def suggested_limit(s: Standing) -> Decimal:
    """A starting point for a request: 25 % above what is used now (or the limit), in whole thousands."""
    base = max(s.used, s.credit_limit or Decimal(0), Decimal(1000))
    return (base * Decimal("1.25") / 1000).to_integral_value(ROUND_CEILING) * 1000


# ---- what was asked -----------------------------------------------------------------------------


class QueryError(ValueError):
    """The command text could not be read; the message says how to write it."""


@dataclass(frozen=True)
class UtilizationQuery:
    """`/utilization [@rep] [name] [over N] [overdue]` as read from the command text."""

    text: str = ""
    rep_user_id: str | None = None
    name: str | None = None
    over: int | None = None
    overdue: bool = False
    help: bool = False

    @property
    def filtered(self) -> bool:
        return self.name is not None or self.over is not None or self.overdue


def parse_query(text: str) -> UtilizationQuery:
    raw = " ".join((text or "").split())[: MAX_QUERY_CHARS * 2]
    if raw.lower() in ("help", "?"):
        return UtilizationQuery(text=raw, help=True)
    mentions = _MENTION.findall(raw)
    if len(set(mentions)) > 1:
        raise QueryError("Name one rep at a time, e.g. `/utilization @dana over 80`.")
    rest = _MENTION.sub(" ", raw)
    if re.search(r"(^|\s)@\w", rest):
        raise QueryError("Pick the rep from Slack's list as you type `@` so that Slack sends who it is.")
    words = rest.split()
    over: int | None = None
    overdue = False
    kept: list[str] = []
    i = 0
    while i < len(words):
        word = words[i].lower()
        if word == "overdue":
            overdue = True
        elif word == "over":
            nxt = words[i + 1] if i + 1 < len(words) else ""
            found = _OVER.match(f"over {nxt}") if nxt else None
            if found is None or found.group(1) is None:
                raise QueryError("Write `over` with a percentage, e.g. `/utilization over 80`.")
            value = Decimal(found.group(1))
            if value > 1000:
                raise QueryError("`over` takes a percentage from 0 to 1000.")
            over = int(value.to_integral_value(ROUND_CEILING))
            i += 1
        else:
            kept.append(words[i])
        i += 1
    name = " ".join(kept)[:MAX_QUERY_CHARS] or None
    return UtilizationQuery(
        text=raw, rep_user_id=mentions[0] if mentions else None, name=name, over=over, overdue=overdue
    )


# ---- answers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """A plain answer instead of a dashboard: help, a refusal (audited), or how to get mapped."""

    text: str
    refused: bool = False


@dataclass(frozen=True)
class Dashboard:
    title: str
    query: UtilizationQuery
    standings: list[Standing]
    totals: list[CurrencyTotals]
    page: int
    page_size: int
    total: int
    refreshed_at: datetime | None
    stale: bool
    near_percent: int
    includes_orders: bool
    can_request: bool  # the viewer is the customers' rep: offer "Request credit increase"

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


@dataclass(frozen=True)
class Identity:
    """Who is asking: their roles and, if they are one, the NetSuite sales rep they are."""

    actor: Actor
    rep: SalesRep | None
    email: str | None
    via: str  # "override", "email" or "none"

    @property
    def on_team(self) -> bool:
        return self.actor.has(*TEAM_ROLES)


@dataclass(frozen=True)
class IncreasePrefill:
    """What the request modal starts with (from the mirror). Never the Federal ID: the mirror has it only as
    a digest, so the requester types it."""

    standing: Standing
    suggested_limit: Decimal
    contact_name: str | None
    contact_email: str | None
    billing_summary: str | None


@dataclass(frozen=True)
class IncreaseResult:
    application_id: int | None
    errors: dict[str, str]  # modal field → message (empty when stored)
    created: bool = False


# ---- Slack directory (emails), cached ------------------------------------------------------------


class SlackEmails:
    """Slack user ↔ email through `users.info` / `users.lookupByEmail`, cached in Redis (all processes)."""

    def __init__(self, redis_client: redis.Redis) -> None:
        self.redis = redis_client

    def email_of(self, user_id: str, client: WebClient) -> str | None:
        key = f"{_CACHE}email:{user_id}"
        cached = self.redis.get(key)
        if cached is not None:
            value = cached.decode() if isinstance(cached, bytes) else str(cached)
            return value or None
        try:
            user = client.users_info(user=user_id).get("user") or {}
        except SlackApiError as exc:
            log.warning("utilization.users_info_failed", user=user_id, error=exc.response.get("error"))
            return None  # not cached: a transient failure should not stick
        email = str((user.get("profile") or {}).get("email") or "").strip().lower()
        self.redis.set(key, email, ex=EMAIL_TTL_SECONDS if email else EMAIL_MISS_TTL_SECONDS)
        return email or None

    def user_by_email(self, email: str, client: WebClient) -> str | None:
        key = f"{_CACHE}user:{email.strip().lower()}"
        cached = self.redis.get(key)
        if cached is not None:
            value = cached.decode() if isinstance(cached, bytes) else str(cached)
            return value or None
        try:
            user = client.users_lookupByEmail(email=email).get("user") or {}
            user_id = str(user.get("id") or "")
        except SlackApiError as exc:
            if exc.response.get("error") != "users_not_found":
                log.warning("utilization.lookup_by_email_failed", error=exc.response.get("error"))
                return None
            user_id = ""
        self.redis.set(key, user_id, ex=EMAIL_TTL_SECONDS if user_id else SLACK_USER_MISS_TTL_SECONDS)
        return user_id or None


# ---- the service --------------------------------------------------------------------------------


class UtilizationService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        options: UtilizationOptions,
        roles: RoleDirectory,
        emails: SlackEmails,
        *,
        search: CustomerSearch | None = None,
        applications: ApplicationService | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.options = options
        self.roles = roles
        self.emails = emails
        self.search = search
        self.applications = applications
        self.clock = clock

    def _repo(self, session: Session) -> UtilizationRepository:
        return UtilizationRepository(
            session, includes_orders=self.options.includes_orders, near_percent=self.options.near_percent
        )

    def standing_of(self, fig: CustomerFigures) -> Standing:
        """The figure for one mirrored customer, with this service's settings."""
        return standing(
            fig, includes_orders=self.options.includes_orders, near_percent=self.options.near_percent
        )

    # ---- who -----------------------------------------------------------------------------------

    def identify(self, user_id: str, client: WebClient) -> Identity:
        actor = self.roles.actor(user_id)
        override = self.options.rep_overrides.get(user_id)
        with transaction(self.sessions, readonly=True) as session:
            repo = self._repo(session)
            if override is not None:
                rep = repo.rep(override)
                if rep is None:
                    log.warning("utilization.override_unknown_rep", user=user_id, rep=override)
                return Identity(actor, rep, None, "override")
        email = self.emails.email_of(user_id, client)
        if email is None:
            return Identity(actor, None, None, "none")
        with transaction(self.sessions, readonly=True) as session:
            reps = [r for r in self._repo(session).reps_by_email(email) if not r.is_inactive]
        if len(reps) > 1:
            log.warning(
                "utilization.email_names_several_reps", email=email, reps=[r.internal_id for r in reps]
            )
        return Identity(actor, reps[0] if reps else None, email, "email" if reps else "none")

    def slack_user_of(self, rep: SalesRep, client: WebClient) -> str | None:
        """The Slack user to tell about `rep`'s customers (an override first, else by email)."""
        for user_id, rep_id in self.options.rep_overrides.items():
            if rep_id == rep.internal_id:
                return user_id
        return self.emails.user_by_email(rep.email, client) if rep.email else None

    def refuse(self, who: Identity, attempted: str, why: str) -> Notice:
        with transaction(self.sessions) as session:
            AuditRepository(session).record(
                entity_type="slack",
                entity_id=who.actor.user_id,
                action="authorization.refused",
                actor=who.actor.user_id,
                after={
                    "attempted": attempted[:300],
                    "roles": sorted(who.actor.roles),
                    "sales_rep_id": who.rep.internal_id if who.rep else None,
                },
                detail=why,
                at=self.clock(),
            )
        return Notice(why, refused=True)

    def unmapped_text(self, who: Identity) -> str:
        user_id = who.actor.user_id
        if who.email is None:
            first = "I could not read an email address on your Slack profile"
        else:
            first = f"Your Slack email ({who.email}) does not match an active sales rep in NetSuite"
        return (
            f"{first}, so I don't know which customers are yours.\n"
            "To get mapped, either ask your NetSuite administrator to put that email on your employee record "
            "(the sales rep), or ask a Credit Desk admin to add "
            f"`{user_id}=<your sales rep internal id>` to the `UTILIZATION_REP_OVERRIDES` setting. "
            "The next mirror refresh (or the next change of setting) picks it up."
        )

    # ---- /utilization ----------------------------------------------------------------------------

    def answer(self, user_id: str, text: str, client: WebClient, *, page: int = 0) -> Dashboard | Notice:
        try:
            query = parse_query(text)
        except QueryError as exc:
            return Notice(str(exc))
        if query.help:
            return Notice(HELP_TEXT)
        who = self.identify(user_id, client)
        attempted = f"/utilization {query.text}".strip()
        rep: SalesRep | None
        title = "Your customers"
        if query.rep_user_id is not None and query.rep_user_id != user_id:
            if not who.on_team:
                return self.refuse(
                    who,
                    attempted,
                    "Reps see only their own customers: `@rep` is for the credit team "
                    "(analysts, managers and admins). Try `/utilization` for yours.",
                )
            named = self.identify(query.rep_user_id, client)
            if named.rep is None:
                return Notice(
                    f"<@{query.rep_user_id}> is not mapped to a NetSuite sales rep, so no customers are "
                    "theirs here. They (or an admin) can fix that: "
                    + self.unmapped_text(named).split("\n", 1)[1]
                )
            rep = named.rep
            title = f"Customers of {rep.name}"
        elif who.rep is not None:
            rep = who.rep
        elif who.on_team and query.name is not None:
            rep = None  # the credit team looks up any customer by name
            title = "Customers"
        elif who.on_team:
            return Notice(
                "You are not mapped to a sales rep, so no customers are yours. Name a rep or a customer: "
                "`/utilization @dana`, `/utilization @dana over 80`, `/utilization acme`."
            )
        else:
            return self.refuse(who, attempted, self.unmapped_text(who))
        scope_rep = rep.internal_id if rep is not None else None
        ids: tuple[int, ...] | None = None
        if query.name is not None:
            if self.search is None:
                return Notice("Customer lookup is not available: the customer search is not configured.")
            ids = ()
            if scope_rep is not None and (needle := normalize_name(query.name)):
                # Within one rep's book a substring of the name is what people type; cheap and exact.
                with transaction(self.sessions, readonly=True) as session:
                    ids = tuple(self._repo(session).rep_customers_named(scope_rep, needle, MAX_NAME_MATCHES))
            if not ids:  # nothing by substring (a typo?), or the whole mirror: the typo-tolerant search
                found = self.search.search(query.name, limit=MAX_NAME_MATCHES, sales_rep_id=scope_rep)
                ids = tuple(m.internal_id for m in found)
            if not ids and rep is not None and rep == who.rep and not who.on_team:
                elsewhere = self.search.search(query.name, limit=1)
                if elsewhere:
                    return self.refuse(
                        who,
                        attempted,
                        f"No customer of yours matches “{query.name}”. Reps see only their own customers; "
                        "ask the credit team about others.",
                    )
            title = f"{title} matching “{query.name}”"
        scope = Scope(sales_rep_id=scope_rep, customer_ids=ids, min_percent=query.over, overdue=query.overdue)
        can_request = who.rep is not None and rep is not None and rep.internal_id == who.rep.internal_id
        return self._dashboard(scope, query, title, page=page, order="utilization", can_request=can_request)

    def _dashboard(
        self, scope: Scope, query: UtilizationQuery, title: str, *, page: int, order: Order, can_request: bool
    ) -> Dashboard:
        size = self.options.page_size
        with transaction(self.sessions, readonly=True) as session:
            repo = self._repo(session)
            totals = repo.totals(scope)
            total = sum(t.customers for t in totals)
            last_page = max(0, (total - 1) // size)
            page = min(max(0, page), last_page)
            rows = repo.page(scope, order=order, offset=page * size, limit=size) if total else []
            refreshed = repo.last_refresh()
        stale = refreshed is None or self.clock() - refreshed > self.options.stale_after()
        return Dashboard(
            title=title,
            query=query,
            standings=[self.standing_of(r) for r in rows],
            totals=totals,
            page=page,
            page_size=size,
            total=total,
            refreshed_at=refreshed,
            stale=stale,
            near_percent=self.options.near_percent,
            includes_orders=self.options.includes_orders,
            can_request=can_request,
        )

    def home(self, user_id: str, client: WebClient, *, limit: int = 10) -> Dashboard | None:
        """A rep's App Home section, riskiest first; None for people who are not reps."""
        who = self.identify(user_id, client)
        if who.rep is None:
            return None
        scope = Scope(sales_rep_id=who.rep.internal_id)
        dash = self._dashboard(
            scope, UtilizationQuery(), "Your customers", page=0, order="risk", can_request=True
        )
        return Dashboard(**{**dash.__dict__, "standings": dash.standings[:limit]})

    # ---- requesting a credit increase --------------------------------------------------------------

    def _authorize_customer(
        self, who: Identity, customer_id: int, attempted: str
    ) -> tuple[Standing | None, Notice | None]:
        with transaction(self.sessions, readonly=True) as session:
            fig = self._repo(session).customer(customer_id)
        if fig is None:
            return None, Notice("That customer is no longer in the NetSuite mirror.")
        own = who.rep is not None and fig.sales_rep_id == who.rep.internal_id
        if not (own or who.on_team):
            return None, self.refuse(
                who,
                attempted,
                "Only the customer's sales rep or the credit team can request a credit increase.",
            )
        return self.standing_of(fig), None

    def prefill(self, user_id: str, customer_id: int, client: WebClient) -> IncreasePrefill | Notice:
        who = self.identify(user_id, client)
        found, notice = self._authorize_customer(
            who, customer_id, f"request increase for customer {customer_id}"
        )
        if notice is not None or found is None:
            return notice or Notice("That customer is no longer in the NetSuite mirror.")
        with transaction(self.sessions, readonly=True) as session:
            record = self._repo(session).customer_record(customer_id)
            contact = next((c for c in (record.contacts if record else []) if c.email), None)
            billing = _billing(record)
            return IncreasePrefill(
                standing=found,
                suggested_limit=suggested_limit(found),
                contact_name=(contact.name if contact else None) or (record.company_name if record else None),
                contact_email=(contact.email if contact else None) or (record.email if record else None),
                billing_summary=", ".join(
                    str(v) for v in (billing or {}).values() if v and not isinstance(v, dict)
                )
                or None,
            )

    def request_increase(
        self,
        user_id: str,
        customer_id: int,
        client: WebClient,
        *,
        new_limit: str,
        federal_id: str,
        contact_name: str,
        contact_email: str,
        reason: str | None,
        view_id: str,
    ) -> IncreaseResult | Notice:
        """Enter the request in the analysts' queue as an application (once per modal, however often sent)."""
        if self.applications is None:
            return Notice("Requests need the intake service (FEDERAL_ID_KEY must be set).")
        who = self.identify(user_id, client)
        found, notice = self._authorize_customer(
            who, customer_id, f"request increase for customer {customer_id}"
        )
        if notice is not None or found is None:
            return notice or Notice("That customer is no longer in the NetSuite mirror.")
        with transaction(self.sessions, readonly=True) as session:
            record = self._repo(session).customer_record(customer_id)
            billing = _billing(record)
            terms = found.terms
        if billing is None:
            return IncreaseResult(
                None,
                {"limit": "The NetSuite record has no billing address; ask the credit team to add one."},
            )
        amount = new_limit.replace(",", "").replace("$", "").strip()
        if found.credit_limit is not None:
            try:
                if Decimal(amount) <= found.credit_limit:
                    return IncreaseResult(
                        None, {"limit": f"Ask for more than the current limit ({found.credit_limit:,})."}
                    )
            except ArithmeticError:
                pass  # the application's own validation explains a bad amount
        rep_name = who.rep.name if who.rep else user_id
        body: dict[str, Any] = {
            "reference": f"increase-{customer_id}-{view_id}"[:100],
            "business_name": found.name[:200],
            "federal_id": federal_id.strip(),
            "billing_address": billing,
            "statements_contact": {
                "name": contact_name.strip() or found.name[:150],
                "email": contact_email.strip(),
            },
            "requested_terms": terms,
            "requested_credit_limit": {"amount": amount or "0", "currency": found.currency},
            "applicant": {
                "name": rep_name[:150],
                "email": (who.rep.email if who.rep and who.rep.email else who.email),
                "slack_user_id": user_id,
            },
            "source": "credit_increase",
        }
        try:
            data = ApplicationIn.model_validate(body)
        except ValidationError as exc:
            return IncreaseResult(None, _modal_errors(field_errors(exc)))
        result = self.applications.submit(data, source="credit_increase", actor=user_id)
        if result.created:
            with transaction(self.sessions) as session:
                AuditRepository(session).record(
                    entity_type="application",
                    entity_id=result.application.id,
                    action="utilization.increase_requested",
                    actor=user_id,
                    before={
                        "customer_id": customer_id,
                        "credit_limit": str(found.credit_limit),
                        "used": str(found.used),
                    },
                    after={"requested_credit_limit": str(data.requested_credit_limit.amount)},
                    detail=(reason or "").strip()[:2000] or None,
                    at=self.clock(),
                )
        return IncreaseResult(result.application.id, {}, created=result.created)


_FIELD_TO_INPUT = {
    "requested_credit_limit": "limit",
    "federal_id": "federal_id",
    "statements_contact.name": "contact_name",
    "statements_contact.email": "contact_email",
}


def _modal_errors(errors: list[Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in errors:
        key = next((v for k, v in _FIELD_TO_INPUT.items() if e.field.startswith(k)), None)
        if key is None:  # a field the modal does not show (the mirrored address, say): name it on the limit
            key, message = (
                "limit",
                f"NetSuite's record: {e.field.replace('_', ' ')} {e.message}; ask the credit team.",
            )
        else:
            message = e.message[:1].upper() + e.message[1:]
        out.setdefault(key, message)
    return out


def _billing(record: Any) -> dict[str, Any] | None:
    """The mirrored default billing address (else the first) in the application's shape."""
    if record is None or not record.addresses:
        return None
    chosen = next((a for a in record.addresses if a.default_billing), record.addresses[0])
    out = {
        "line1": chosen.line1,
        "line2": chosen.line2,
        "city": chosen.city,
        "state": chosen.region,
        "postal_code": chosen.postal_code,
        "country": chosen.country or "US",
    }
    return {k: v for k, v in out.items() if v}


HELP_TEXT = (
    "*`/utilization`: your customers' credit standing*\n"
    "• `/utilization`: all your customers, highest utilization first\n"
    "• `/utilization acme`: customers whose name matches\n"
    "• `/utilization over 80`: customers at or above 80 % of their limit\n"
    "• `/utilization overdue`: customers with an overdue balance\n"
    "• the credit team may add `@rep` (`/utilization @dana overdue`) or look up any customer by name\n"
    "Filters combine: `/utilization @dana over 90 overdue`."
)
