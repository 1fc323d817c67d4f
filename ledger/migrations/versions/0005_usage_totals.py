"""running usage totals per period, and the commit order of usage rows

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from ledger.types import ExactDecimal

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The id of the transaction that wrote the row; rollup adds a row to its period's totals
# once every transaction older than the row's has ended.
TXID_DEFAULT = "(pg_current_xact_id()::text)::bigint"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("usage_records") as usage:
        usage.add_column(sa.Column("txid", sa.BigInteger(), nullable=True))
    if postgres:
        # Set after the column exists, so rows already stored keep NULL and the table is
        # not rewritten.
        op.execute(f"ALTER TABLE usage_records ALTER COLUMN txid SET DEFAULT {TXID_DEFAULT}")
        op.create_index("ix_usage_records_txid", "usage_records", ["txid"])
    op.create_table(
        "usage_totals",
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("cache_hit", sa.Boolean(), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cached_input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cache_write_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost", ExactDecimal(12), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_usage_totals_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint(
            "period_start", "tenant_id", "agent", "model", "cache_hit", name=op.f("pk_usage_totals")
        ),
    )
    op.create_table(
        "rollup_horizons",
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("horizon", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("period_start", name=op.f("pk_rollup_horizons")),
    )


def downgrade() -> None:
    op.drop_table("rollup_horizons")
    op.drop_table("usage_totals")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_usage_records_txid", table_name="usage_records")
    with op.batch_alter_table("usage_records") as usage:
        usage.drop_column("txid")
