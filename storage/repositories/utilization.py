"""SQL for the utilization dashboard and its alerts: a rep's customers ordered by how much credit they use.

The figure is computed in SQL only to filter, sort and sum; the exact per-customer figures shown to people
are recomputed from the same columns in `bot.utilization.service` (Decimal arithmetic), so the SQL here only
has to agree with it on order and on the lines it filters by. Money columns hold integer cents
(`storage.types.Money`), so every comparison below is exact integer arithmetic on cents:

    used       = balance (+ unbilled orders when the limit includes orders)
    over N %   = limit > 0 and used * 100 >= N * limit
    over limit = limit is not null and used > limit (a zero limit with anything used is over)

Every query filters by sales rep first (or by a short list of ids found by the customer search), which is what
keeps it fast in a 1M-customer mirror: `ix_ns_customers_rep_book` (migration 0006) covers the rep's rows.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Float,
    ForeignKey,
    Index,
    MetaData,
    SmallInteger,
    Table,
    and_,
    case,
    cast,
    delete,
    func,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import MirrorCheckpoint, NsCustomer, NsSalesRep, NsTerm
from storage.types import UTCDateTime, utcnow

MIRROR_DONE_CHECKPOINT = "customers"  # written by the ingest when a run completes (bot.mirror.ingest)
ALERT_BASELINE_CHECKPOINT = "utilization:alerts-baseline"
OVER_LIMIT_SORT_KEY = 1e9  # a zero limit with a balance sorts above any real ratio

_metadata = MetaData()

utilization_alerts = Table(
    "utilization_alerts",
    _metadata,
    Column(
        "customer_id",
        BigInteger,
        ForeignKey("ns_customers.internal_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("sales_rep_id", BigInteger, nullable=True),
    Column("level", SmallInteger, nullable=False),
    Column("alert_due", SmallInteger, nullable=True),
    Column("alerted_level", SmallInteger, nullable=True),
    Column("alerted_at", UTCDateTime(), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_utilization_alerts_due", "alert_due"),
)
"""Created by migration 0006; declared here (not in `storage.models`) because only this module uses it."""

Order = Literal["utilization", "risk"]


@dataclass(frozen=True)
class CustomerFigures:
    """One customer's credit columns as the mirror holds them (amounts exact, in the customer's currency)."""

    internal_id: int
    entity_id: str | None
    company_name: str | None
    currency: str | None
    credit_limit: Decimal | None
    balance: Decimal | None
    unbilled_orders: Decimal | None
    overdue_balance: Decimal | None
    days_overdue: int | None
    credit_hold: str | None
    terms: str | None
    sales_rep_id: int | None


@dataclass(frozen=True)
class Scope:
    """Which customers: one rep's book and/or a list of ids, narrowed by `over N %` and `overdue`."""

    sales_rep_id: int | None = None
    customer_ids: tuple[int, ...] | None = None
    min_percent: int | None = None
    overdue: bool = False

    def __post_init__(self) -> None:
        if self.sales_rep_id is None and self.customer_ids is None:
            raise ValueError("a scope needs a sales rep or customer ids: never the whole mirror")


@dataclass(frozen=True)
class CurrencyTotals:
    """Sums over a scope's customers that share one currency (amounts in different currencies never add)."""

    currency: str | None
    customers: int
    credit_limit: Decimal
    balance: Decimal
    unbilled_orders: Decimal
    used: Decimal
    overdue_balance: Decimal
    with_limit: int
    no_limit: int
    near: int
    over: int
    on_hold: int
    overdue_customers: int


@dataclass(frozen=True)
class SalesRep:
    internal_id: int
    name: str
    email: str | None
    is_inactive: bool


@dataclass(frozen=True)
class AlertState:
    customer_id: int
    sales_rep_id: int | None
    level: int
    alert_due: int | None


@dataclass(frozen=True)
class LevelChange:
    """A customer's new level; `alert_due` is set when the change is an upward crossing to tell the rep."""

    customer_id: int
    sales_rep_id: int | None
    level: int
    alert_due: int | None


def _cents(column: Any) -> ColumnElement[int]:
    """The raw integer cents of a Money column (no conversion to Decimal inside SQL expressions)."""
    return type_coerce(column, BigInteger)


def _from_cents(value: int | None) -> Decimal:
    return (Decimal(int(value or 0)).scaleb(-2)).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class _Expressions:
    limit: ColumnElement[int]
    used: ColumnElement[int]
    ratio: ColumnElement[Any]
    on_hold: ColumnElement[bool]
    over: ColumnElement[bool]
    near: ColumnElement[bool]
    overdue: ColumnElement[bool]


@functools.lru_cache(maxsize=16)
def _expressions(includes_orders: bool, near_percent: int) -> _Expressions:
    """The figure's SQL expressions, built once per setting pair (immutable; building them per request cost
    more than the queries' own planning)."""
    c = NsCustomer
    limit = _cents(c.credit_limit)
    used: ColumnElement[int] = func.coalesce(_cents(c.balance), 0)
    if includes_orders:
        used = used + func.coalesce(_cents(c.unbilled_orders), 0)
    ratio = case(
        (limit > 0, cast(used, Float) / limit),
        (and_(limit == 0, used > 0), literal(OVER_LIMIT_SORT_KEY, Float)),
        else_=None,
    )
    return _Expressions(
        limit=limit,
        used=used,
        ratio=ratio,
        on_hold=c.credit_hold == "ON",
        over=and_(limit.is_not(None), used > limit),
        near=and_(limit > 0, used * 100 >= limit * near_percent, used <= limit),
        overdue=func.coalesce(_cents(c.overdue_balance), 0) > 0,
    )


class UtilizationRepository:
    """Reads (and, for alerts, writes) the utilization figures. `includes_orders` and `near_percent` are the
    settings that define the figure (see module docstring)."""

    def __init__(self, session: Session, *, includes_orders: bool, near_percent: int) -> None:
        if not 1 <= near_percent <= 100:
            raise ValueError("near_percent must be 1..100")
        self.session = session
        self.near_percent = near_percent
        e = _expressions(includes_orders, near_percent)
        self._limit, self._used, self._ratio = e.limit, e.used, e.ratio
        self._on_hold, self._over, self._near, self._overdue = e.on_hold, e.over, e.near, e.overdue

    def rep_customers_named(self, sales_rep_id: int, normalized: str, limit: int) -> list[int]:
        """A rep's customers whose normalised name contains `normalized` (a plain substring: the rep's own
        book is small, and this is what a rep typing part of a name means)."""
        pattern = "%" + normalized.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = (
            select(NsCustomer.internal_id)
            .where(
                NsCustomer.sales_rep_id == sales_rep_id, NsCustomer.name_normalized.like(pattern, escape="\\")
            )
            .order_by(NsCustomer.name_normalized, NsCustomer.internal_id)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    # ---- the dashboard --------------------------------------------------------------------------

    def _where(self, scope: Scope) -> list[ColumnElement[bool]]:
        c = NsCustomer
        where: list[ColumnElement[bool]] = [c.is_inactive.is_(False)]
        if scope.sales_rep_id is not None:
            where.append(c.sales_rep_id == scope.sales_rep_id)
        if scope.customer_ids is not None:
            where.append(c.internal_id.in_(scope.customer_ids) if scope.customer_ids else literal(False))
        if scope.min_percent is not None:
            where.append(
                or_(
                    and_(self._limit > 0, self._used * 100 >= self._limit * scope.min_percent),
                    and_(self._limit == 0, self._used > 0),
                )
            )
        if scope.overdue:
            where.append(self._overdue)
        return where

    def page(self, scope: Scope, *, order: Order, offset: int, limit: int) -> list[CustomerFigures]:
        """`limit` customers from `offset`: by utilization (highest first, no limit last), or by risk (on
        credit hold first, then by utilization). Ties go to the lower internal id, on both databases."""
        if offset < 0 or not 1 <= limit <= 1000:
            raise ValueError("offset must be >= 0 and limit 1..1000")
        c = NsCustomer
        keys: list[Any] = []
        if order == "risk":
            keys.append(case((self._on_hold, 0), else_=1))
        keys += [self._ratio.desc().nulls_last(), c.internal_id]
        ids = select(c.internal_id).where(*self._where(scope)).order_by(*keys).offset(offset).limit(limit)
        ordered = [int(i) for i in self.session.scalars(ids)]
        found = self._figures(ordered)
        return [found[i] for i in ordered if i in found]

    def _figures(self, ids: Sequence[int]) -> dict[int, CustomerFigures]:
        if not ids:
            return {}
        c = NsCustomer
        stmt = (
            select(
                c.internal_id,
                c.entity_id,
                c.company_name,
                c.currency,
                c.credit_limit,
                c.balance,
                c.unbilled_orders,
                c.overdue_balance,
                c.days_overdue,
                c.credit_hold,
                NsTerm.name,
                c.sales_rep_id,
            )
            .outerjoin(NsTerm, NsTerm.internal_id == c.terms_id)
            .where(c.internal_id.in_(list(ids)))
        )
        out: dict[int, CustomerFigures] = {}
        for row in self.session.execute(stmt):
            r: tuple[Any, ...] = tuple(row)
            out[int(r[0])] = CustomerFigures(
                internal_id=int(r[0]),
                entity_id=r[1],
                company_name=r[2],
                currency=r[3],
                credit_limit=r[4],
                balance=r[5],
                unbilled_orders=r[6],
                overdue_balance=r[7],
                days_overdue=r[8],
                credit_hold=r[9],
                terms=r[10],
                sales_rep_id=r[11],
            )
        return out

    def customer(self, internal_id: int) -> CustomerFigures | None:
        return self._figures([internal_id]).get(internal_id)

    def customer_record(self, internal_id: int) -> NsCustomer | None:
        """The whole mirrored customer (addresses and contacts load with it), to pre-fill a request."""
        return self.session.get(NsCustomer, internal_id)

    def totals(self, scope: Scope) -> list[CurrencyTotals]:
        """Per currency, largest book first."""
        c = NsCustomer

        def count(cond: ColumnElement[bool]) -> Any:
            return func.sum(case((cond, 1), else_=0))

        with_limit = self._limit.is_not(None)
        stmt = (
            select(
                c.currency,
                func.count(),
                func.sum(case((with_limit, self._limit), else_=0)),
                func.sum(func.coalesce(_cents(c.balance), 0)),
                func.sum(func.coalesce(_cents(c.unbilled_orders), 0)),
                func.sum(self._used),
                func.sum(func.coalesce(_cents(c.overdue_balance), 0)),
                count(with_limit),
                count(self._limit.is_(None)),
                count(self._near),
                count(self._over),
                count(self._on_hold),
                count(self._overdue),
            )
            .where(*self._where(scope))
            .group_by(c.currency)
            .order_by(func.count().desc(), c.currency)
        )
        out = []
        for r in self.session.execute(stmt):
            out.append(
                CurrencyTotals(
                    currency=r[0],
                    customers=int(r[1]),
                    credit_limit=_from_cents(r[2]),
                    balance=_from_cents(r[3]),
                    unbilled_orders=_from_cents(r[4]),
                    used=_from_cents(r[5]),
                    overdue_balance=_from_cents(r[6]),
                    with_limit=int(r[7] or 0),
                    no_limit=int(r[8] or 0),
                    near=int(r[9] or 0),
                    over=int(r[10] or 0),
                    on_hold=int(r[11] or 0),
                    overdue_customers=int(r[12] or 0),
                )
            )
        return out

    # ---- who is asking --------------------------------------------------------------------------

    def reps_by_email(self, email: str) -> list[SalesRep]:
        """Sales reps with this email (case-insensitive), active ones first."""
        stmt = (
            select(NsSalesRep.internal_id, NsSalesRep.name, NsSalesRep.email, NsSalesRep.is_inactive)
            .where(func.lower(NsSalesRep.email) == email.strip().lower())
            .order_by(NsSalesRep.is_inactive, NsSalesRep.internal_id)
        )
        return [SalesRep(int(r[0]), r[1], r[2], bool(r[3])) for r in self.session.execute(stmt)]

    def rep(self, internal_id: int) -> SalesRep | None:
        row = self.session.get(NsSalesRep, internal_id)
        return None if row is None else SalesRep(row.internal_id, row.name, row.email, row.is_inactive)

    def last_refresh(self) -> datetime | None:
        """When the last mirror run completed (None: never)."""
        row = self.session.get(MirrorCheckpoint, MIRROR_DONE_CHECKPOINT)
        return None if row is None else row.updated_at

    # ---- alerts ---------------------------------------------------------------------------------

    def changed_since(self, moment: datetime, *, after_id: int, limit: int) -> list[CustomerFigures]:
        """Active customers with a sales rep that a refresh wrote at or after `moment`, by internal id."""
        c = NsCustomer
        ids = (
            select(c.internal_id)
            .where(
                c.mirrored_at >= moment,
                c.internal_id > after_id,
                c.sales_rep_id.is_not(None),
                c.is_inactive.is_(False),
            )
            .order_by(c.internal_id)
            .limit(limit)
        )
        ordered = [int(i) for i in self.session.scalars(ids)]
        found = self._figures(ordered)
        return [found[i] for i in ordered if i in found]

    def alert_states(self, customer_ids: Iterable[int]) -> dict[int, AlertState]:
        t = utilization_alerts
        ids = list(customer_ids)
        if not ids:
            return {}
        stmt = select(t.c.customer_id, t.c.sales_rep_id, t.c.level, t.c.alert_due).where(
            t.c.customer_id.in_(ids)
        )
        return {int(r[0]): AlertState(int(r[0]), r[1], int(r[2]), r[3]) for r in self.session.execute(stmt)}

    def baseline_taken(self) -> bool:
        return self.session.get(MirrorCheckpoint, ALERT_BASELINE_CHECKPOINT) is not None

    def mark_baseline(self) -> None:
        if not self.baseline_taken():
            self.session.add(MirrorCheckpoint(name=ALERT_BASELINE_CHECKPOINT, updated_at=utcnow()))
            self.session.flush()

    def save_levels(self, changes: Sequence[LevelChange]) -> None:
        """Record new levels: level 0 removes the row; otherwise insert or update (keeping an alert still due
        unless this change brings a new one)."""
        t = utilization_alerts
        gone = [ch.customer_id for ch in changes if ch.level == 0]
        if gone:
            self.session.execute(delete(t).where(t.c.customer_id.in_(gone)))
        now = utcnow()
        for ch in changes:
            if ch.level == 0:
                continue
            values: dict[str, Any] = {"sales_rep_id": ch.sales_rep_id, "level": ch.level, "updated_at": now}
            if ch.alert_due is not None:
                values["alert_due"] = ch.alert_due
            dialect = self.session.get_bind().dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            stmt = insert(t).values(customer_id=ch.customer_id, **values)
            self.session.execute(stmt.on_conflict_do_update(index_elements=["customer_id"], set_=values))

    def due_alerts(self, limit: int) -> list[AlertState]:
        t = utilization_alerts
        stmt = (
            select(t.c.customer_id, t.c.sales_rep_id, t.c.level, t.c.alert_due)
            .where(t.c.alert_due.is_not(None))
            .order_by(t.c.sales_rep_id, t.c.customer_id)
            .limit(limit)
        )
        return [AlertState(int(r[0]), r[1], int(r[2]), r[3]) for r in self.session.execute(stmt)]

    def claim_alert(self, customer_id: int, level: int) -> bool:
        """Take the due alert for sending: True for exactly one caller, however many race."""
        t = utilization_alerts
        result = self.session.execute(
            update(t)
            .where(t.c.customer_id == customer_id, t.c.alert_due == level)
            .values(alert_due=None, alerted_level=level, alerted_at=utcnow())
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def release_alert(self, customer_id: int, level: int) -> None:
        """Give a claimed alert back after a failed send (the next pass tries again), unless the level
        has changed meanwhile."""
        t = utilization_alerts
        self.session.execute(
            update(t)
            .where(t.c.customer_id == customer_id, t.c.level == level, t.c.alert_due.is_(None))
            .values(alert_due=level, alerted_level=None, alerted_at=None)
        )
