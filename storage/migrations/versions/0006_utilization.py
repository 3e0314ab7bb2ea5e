"""utilization alerts, and the indexes the utilization dashboard and alerts read by

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 09:00:00

- `utilization_alerts`: one row per customer that stands at or above the "near" line (level 1 near,
  2 over), so that a rep is told once per crossing however often the mirror refreshes. A customer
  without a row stands within its limit. `alert_due` holds a crossing not yet told; the DM is claimed by
  clearing it in a conditional UPDATE, so two passes never send the same alert twice. Rows go with their
  customer (`ON DELETE CASCADE`).
- `ix_ns_customers_mirrored_at`: the alert pass after each refresh reads only the customers that refresh
  wrote (`mirrored_at >= run start`) instead of scanning the whole mirror.
- `ix_ns_customers_rep_book`: a rep's book with the columns the dashboard sorts and sums on, so one rep's
  5,000 customers in a 1M mirror are read from the index alone on SQLite and with few heap visits on
  PostgreSQL.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "utilization_alerts",
        sa.Column("customer_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("sales_rep_id", sa.BigInteger(), nullable=True),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("alert_due", sa.SmallInteger(), nullable=True),
        sa.Column("alerted_level", sa.SmallInteger(), nullable=True),
        sa.Column("alerted_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["ns_customers.internal_id"],
            name=op.f("fk_utilization_alerts_customer_id_ns_customers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_utilization_alerts")),
    )
    op.create_index("ix_utilization_alerts_due", "utilization_alerts", ["alert_due"])
    op.create_index("ix_ns_customers_mirrored_at", "ns_customers", ["mirrored_at", "internal_id"])
    op.create_index(
        "ix_ns_customers_rep_book",
        "ns_customers",
        [
            "sales_rep_id",
            "is_inactive",
            "credit_hold",
            "credit_limit",
            "balance",
            "unbilled_orders",
            "overdue_balance",
            "currency",
            "internal_id",
        ],
    )


def downgrade() -> None:
    op.drop_index("ix_ns_customers_rep_book", table_name="ns_customers")
    op.drop_index("ix_ns_customers_mirrored_at", table_name="ns_customers")
    op.drop_index("ix_utilization_alerts_due", table_name="utilization_alerts")
    op.drop_table("utilization_alerts")
