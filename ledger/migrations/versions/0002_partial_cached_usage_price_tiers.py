"""partial and cached usage, cache-hit billing, long-context price tiers

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_PRICE_KEY = "uq_prices_provider_model_token_kind_effective_from"
NEW_PRICE_KEY = "uq_prices_model_kind_from_tier"


def upgrade() -> None:
    with op.batch_alter_table("plans") as plans:
        plans.add_column(
            sa.Column("bill_cache_hits", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
    with op.batch_alter_table("prices") as prices:
        prices.add_column(
            sa.Column("above_input_tokens", sa.Integer(), server_default="0", nullable=False)
        )
        prices.drop_constraint(OLD_PRICE_KEY, type_="unique")
        prices.create_unique_constraint(
            NEW_PRICE_KEY,
            ["provider", "model", "token_kind", "effective_from", "above_input_tokens"],
        )
    with op.batch_alter_table("usage_records") as usage:
        usage.add_column(
            sa.Column("partial", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        usage.add_column(
            sa.Column("cache_hit", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as usage:
        usage.drop_column("cache_hit")
        usage.drop_column("partial")
    with op.batch_alter_table("prices") as prices:
        prices.drop_constraint(NEW_PRICE_KEY, type_="unique")
        prices.create_unique_constraint(
            OLD_PRICE_KEY, ["provider", "model", "token_kind", "effective_from"]
        )
        prices.drop_column("above_input_tokens")
    with op.batch_alter_table("plans") as plans:
        plans.drop_column("bill_cache_hits")
