"""job deliveries and recoveries, and the index the recovery task scans

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("deliveries", sa.Integer(), server_default="0", nullable=False))
        jobs.add_column(sa.Column("recoveries", sa.Integer(), server_default="0", nullable=False))
    op.create_index("ix_jobs_status_deadline_at", "jobs", ["status", "deadline_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_status_deadline_at", table_name="jobs")
    with op.batch_alter_table("jobs") as jobs:
        jobs.drop_column("recoveries")
        jobs.drop_column("deliveries")
