"""The database schema, as SQLAlchemy 2 typed ORM classes.

Two families of tables:
- ours: credit applications and everything that happens to them (decisions, audit events, NetSuite links,
  sync requests);
- the mirror: what we last read from NetSuite (customers with addresses and contacts, terms, sales reps).

Money is `Money` (exact, integer minor units); datetimes are `UTCDateTime` (aware UTC on both databases).
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.types import Money, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), Decimal: Money(), dict[str, Any]: JSON()}


class ApplicationStatus(enum.StrEnum):
    """Where a credit application stands. Transitions live in `bot.applications.states`."""

    SUBMITTED = "submitted"
    AWAITING_MANAGER = "awaiting_manager"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class SyncStatus(enum.StrEnum):
    PENDING = "pending"  # committed, due at next_attempt_at
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # out of attempts; a person decides (Retry)
    CONFLICT = "conflict"  # NetSuite changed since the analyst looked; a person decides
    CANCELLED = "cancelled"


class CreditApplication(Base):
    __tablename__ = "credit_applications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(100), unique=True)
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), index=True)  # plain string: no ALTER TYPE

    business_legal_name: Mapped[str] = mapped_column(String(200))
    business_dba: Mapped[str | None] = mapped_column(String(200))
    federal_id_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    federal_id_last4: Mapped[str] = mapped_column(String(4))
    federal_id_digest: Mapped[str] = mapped_column(String(64), index=True)

    billing_line1: Mapped[str] = mapped_column(String(150))
    billing_line2: Mapped[str | None] = mapped_column(String(150))
    billing_city: Mapped[str] = mapped_column(String(100))
    billing_region: Mapped[str | None] = mapped_column(String(100))
    billing_postal_code: Mapped[str] = mapped_column(String(20))
    billing_country: Mapped[str] = mapped_column(String(2))

    contact_name: Mapped[str] = mapped_column(String(150))
    contact_email: Mapped[str] = mapped_column(String(254))
    contact_phone: Mapped[str | None] = mapped_column(String(32))

    currency: Mapped[str] = mapped_column(String(3))
    requested_terms: Mapped[str | None] = mapped_column(String(100))
    requested_credit_limit: Mapped[Decimal] = mapped_column()
    approved_terms: Mapped[str | None] = mapped_column(String(100))
    approved_credit_limit: Mapped[Decimal | None] = mapped_column()

    applicant_name: Mapped[str] = mapped_column(String(150))
    applicant_email: Mapped[str | None] = mapped_column(String(254))
    applicant_phone: Mapped[str | None] = mapped_column(String(32))
    applicant_slack_user_id: Mapped[str | None] = mapped_column(String(32))

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    shipping_locations: Mapped[list[ShippingLocation]] = relationship(
        back_populates="application",
        order_by="ShippingLocation.position",
        cascade="all, delete-orphan",
        lazy="selectin",
    )
    decisions: Mapped[list[Decision]] = relationship(
        back_populates="application",
        order_by="Decision.id",
        lazy="select",  # loaded when a decision needs it
    )


class ShippingLocation(Base):
    __tablename__ = "shipping_locations"
    __table_args__ = (UniqueConstraint("application_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("credit_applications.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    label: Mapped[str | None] = mapped_column(String(100))
    attention: Mapped[str | None] = mapped_column(String(150))
    line1: Mapped[str] = mapped_column(String(150))
    line2: Mapped[str | None] = mapped_column(String(150))
    city: Mapped[str] = mapped_column(String(100))
    region: Mapped[str | None] = mapped_column(String(100))
    postal_code: Mapped[str] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))

    application: Mapped[CreditApplication] = relationship(back_populates="shipping_locations")


class Decision(Base):
    """One person's decision on an application (an approval, a recommendation, a rejection)."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("credit_applications.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(32))  # approve, recommend, confirm, reject
    actor: Mapped[str] = mapped_column(String(64))
    terms: Mapped[str | None] = mapped_column(String(100))
    credit_limit: Mapped[Decimal | None] = mapped_column()
    reason: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)

    application: Mapped[CreditApplication] = relationship(back_populates="decisions")


class AuditEvent(Base):
    """Who did what to which record, when, with the record's state before and after."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_entity", "entity_type", "entity_id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    entity_type: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    detail: Mapped[str | None] = mapped_column(Text)


class NetSuiteLink(Base):
    """The NetSuite customer an application is linked to (new or existing)."""

    __tablename__ = "netsuite_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("credit_applications.id", ondelete="CASCADE"), unique=True
    )
    mode: Mapped[str] = mapped_column(String(16))  # new, existing
    customer_internal_id: Mapped[int | None] = mapped_column(BigInteger)
    external_id: Mapped[str | None] = mapped_column(String(100))
    linked_by: Mapped[str] = mapped_column(String(64))
    linked_at: Mapped[datetime] = mapped_column(default=utcnow)


class SyncRequest(Base):
    """A requested NetSuite write: the durable row every NetSuite write comes from.

    Committed in the same transaction as the click; a job carries only this row's id.
    """

    __tablename__ = "sync_requests"
    __table_args__ = (Index("ix_sync_requests_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("credit_applications.id", ondelete="CASCADE"), index=True
    )
    link_id: Mapped[int] = mapped_column(ForeignKey("netsuite_links.id", ondelete="CASCADE"))
    fields: Mapped[list[str]] = mapped_column(JSON)
    seen_values: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(32), default=SyncStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column()


# --- The NetSuite mirror -------------------------------------------------------------------------


class NsTerm(Base):
    __tablename__ = "ns_terms"

    internal_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(100))
    days_until_due: Mapped[int | None] = mapped_column(Integer)
    is_inactive: Mapped[bool] = mapped_column(Boolean, default=False)
    mirrored_at: Mapped[datetime] = mapped_column(default=utcnow)


class NsSalesRep(Base):
    __tablename__ = "ns_sales_reps"

    internal_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(150))
    email: Mapped[str | None] = mapped_column(String(254), index=True)
    is_inactive: Mapped[bool] = mapped_column(Boolean, default=False)
    mirrored_at: Mapped[datetime] = mapped_column(default=utcnow)


class NsCustomer(Base):
    __tablename__ = "ns_customers"
    __table_args__ = (Index("ix_ns_customers_last_modified", "last_modified", "internal_id"),)

    internal_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    entity_id: Mapped[str | None] = mapped_column(String(100), index=True)
    external_id: Mapped[str | None] = mapped_column(String(100), index=True)
    company_name: Mapped[str | None] = mapped_column(String(200))
    name_normalized: Mapped[str | None] = mapped_column(String(200), index=True)
    # The Federal ID only as `FederalIdCipher.digest`, never in clear (0009 dropped the clear column).
    tax_number_digest: Mapped[str | None] = mapped_column(String(64), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    email_domain: Mapped[str | None] = mapped_column(String(200), index=True)
    phone: Mapped[str | None] = mapped_column(String(40))
    currency: Mapped[str | None] = mapped_column(String(3))
    terms_id: Mapped[int | None] = mapped_column(BigInteger)
    sales_rep_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    credit_limit: Mapped[Decimal | None] = mapped_column()
    balance: Mapped[Decimal | None] = mapped_column()
    unbilled_orders: Mapped[Decimal | None] = mapped_column()
    overdue_balance: Mapped[Decimal | None] = mapped_column()
    days_overdue: Mapped[int | None] = mapped_column(Integer)
    credit_hold: Mapped[str | None] = mapped_column(String(16))  # AUTO, ON, OFF
    is_inactive: Mapped[bool] = mapped_column(Boolean, default=False)
    default_billing_address_id: Mapped[int | None] = mapped_column(BigInteger)
    default_shipping_address_id: Mapped[int | None] = mapped_column(BigInteger)
    last_modified: Mapped[datetime | None] = mapped_column()
    mirrored_at: Mapped[datetime] = mapped_column(default=utcnow)

    addresses: Mapped[list[NsCustomerAddress]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", lazy="selectin"
    )
    contacts: Mapped[list[NsCustomerContact]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", lazy="selectin"
    )


class NsCustomerAddress(Base):
    __tablename__ = "ns_customer_addresses"
    __table_args__ = (UniqueConstraint("customer_id", "address_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("ns_customers.internal_id", ondelete="CASCADE"), index=True
    )
    address_id: Mapped[int] = mapped_column(BigInteger)  # NetSuite's address (nkey)
    label: Mapped[str | None] = mapped_column(String(150))
    default_billing: Mapped[bool] = mapped_column(Boolean, default=False)
    default_shipping: Mapped[bool] = mapped_column(Boolean, default=False)
    addressee: Mapped[str | None] = mapped_column(String(150))
    attention: Mapped[str | None] = mapped_column(String(150))
    line1: Mapped[str | None] = mapped_column(String(150))
    line2: Mapped[str | None] = mapped_column(String(150))
    city: Mapped[str | None] = mapped_column(String(100), index=True)
    region: Mapped[str | None] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str | None] = mapped_column(String(2))

    customer: Mapped[NsCustomer] = relationship(back_populates="addresses")


class NsCustomerContact(Base):
    __tablename__ = "ns_customer_contacts"
    __table_args__ = (UniqueConstraint("customer_id", "contact_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("ns_customers.internal_id", ondelete="CASCADE"), index=True
    )
    contact_id: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str | None] = mapped_column(String(150))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    role: Mapped[str | None] = mapped_column(String(100))

    customer: Mapped[NsCustomer] = relationship(back_populates="contacts")


class MirrorCheckpoint(Base):
    """Where an incremental mirror run got to, so an interrupted run resumes."""

    __tablename__ = "mirror_checkpoints"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    watermark: Mapped[str | None] = mapped_column(String(32))
    last_key: Mapped[int | None] = mapped_column(BigInteger)
    run_started_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SlackMessage(Base):
    """A Slack message we posted about an application, so that we can update it and thread under it.

    `ts` is empty while the post is in flight: the row is claimed first, so a retried job never posts twice.
    """

    __tablename__ = "slack_messages"
    __table_args__ = (UniqueConstraint("application_id", "purpose"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("credit_applications.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(64))  # application, manager_channel, manager_dm:<user>
    channel: Mapped[str] = mapped_column(String(32))
    ts: Mapped[str | None] = mapped_column(String(32))
    posted_at: Mapped[datetime | None] = mapped_column()
    reminded_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutboxKind(enum.StrEnum):
    DECISION = "decision"  # payload: the decision (see bot.decisions.service.decision_payload)
    SYNC_REQUESTED = "sync_requested"  # payload: sync_id, scheduled
    SYNC_FINISHED = "sync_finished"  # payload: sync_id, status


class OutboxMessage(Base):
    """A message owed to the team about an application: a decision, a sync requested, a sync's outcome.

    Written in the same transaction as the change it reports, so a process that dies after the commit loses
    nothing: whoever holds the row delivers it, and a repair pass takes over rows whose holder went quiet.
    `due_at` is when the row may next be taken: a holder sets it to the end of its lease, a failed delivery
    to the next retry. The `due_at` a holder set is also its claim token: finishing is conditional on it.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index(
            "ix_outbox_pending",
            "due_at",
            sqlite_where=text("done_at IS NULL"),
            postgresql_where=text("done_at IS NULL"),
        ),
        Index(
            "ix_outbox_pending_application",
            "application_id",
            "id",
            sqlite_where=text("done_at IS NULL"),
            postgresql_where=text("done_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("credit_applications.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column()
    due_at: Mapped[datetime] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    done_at: Mapped[datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
