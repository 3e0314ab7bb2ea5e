"""outbox: messages owed about an application, written in the transaction of the change they report

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 17:00:00

Why: a decision's Slack updates (the application's message, the audit line in its thread, the managers'
request) were held only in the web process's memory after the commit, so a worker killed between the
answer to Slack and those calls lost them (the reliability suite's web-kill scenario lost 2 of 300).
Each decision now writes one row here in its own transaction; the process that made it delivers it at
once, and a repair pass delivers rows whose holder died (`due_at` passed, see `storage.models`).

Two partial indexes cover only rows not yet delivered, so they stay small however long the table grows
before delivered rows are pruned: one by `due_at` for the repair pass, one by application for delivering
an application's rows in order.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("done_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("application_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("due_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("done_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["credit_applications.id"],
            name=op.f("fk_outbox_application_id_credit_applications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index("ix_outbox_pending", "outbox", ["due_at"], sqlite_where=PENDING, postgresql_where=PENDING)
    op.create_index(
        "ix_outbox_pending_application",
        "outbox",
        ["application_id", "id"],
        sqlite_where=PENDING,
        postgresql_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_pending_application", table_name="outbox")
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.drop_table("outbox")
