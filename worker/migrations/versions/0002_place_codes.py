"""place_codes table (second batch entity)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "place_codes",
        sa.Column("place_code", sa.String(8), nullable=False),
        sa.Column("all_places", sa.String(1), nullable=False),
        sa.Column("description", sa.String(256), nullable=True),
        sa.Column("entry_date", sa.DateTime(), nullable=False),
        sa.Column("entry_user", sa.String(200), nullable=True),
        sa.Column("exclude_proc_auth", sa.Boolean(), nullable=False),
        sa.Column("old_place_code", sa.String(8), nullable=True),
        sa.Column("update_date", sa.DateTime(), nullable=False),
        sa.Column("update_user", sa.String(20), nullable=True),
        sa.PrimaryKeyConstraint("place_code", name="pk_place_codes"),
    )


def downgrade() -> None:
    op.drop_table("place_codes")
