"""claim_prompt_pay table and the chunk ledger

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "claim_prompt_pay",
        sa.Column("claim_prompt_pay_key", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("division_id", sa.String(20), nullable=True),
        sa.Column("entry_date", sa.DateTime(), nullable=False),
        sa.Column("entry_user", sa.String(200), nullable=True),
        sa.Column("group_id", sa.String(20), nullable=True),
        sa.Column("plan_id", sa.String(20), nullable=True),
        sa.Column("prompt_pay_duration", sa.Integer(), nullable=True),
        sa.Column("prompt_pay_duration_type", sa.String(16), nullable=True),
        sa.Column("tax_id", sa.String(32), nullable=True),
        sa.Column("update_date", sa.DateTime(), nullable=False),
        sa.Column("update_user", sa.String(20), nullable=True),
        sa.PrimaryKeyConstraint("claim_prompt_pay_key", name="pk_claim_prompt_pay"),
    )
    op.create_table(
        "claimpay_chunk_ledger",
        sa.Column("job_id", sa.String(64), nullable=False),
        sa.Column("chunk_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("outcomes", sa.LargeBinary(), nullable=False),
        sa.Column("applied_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "chunk_no", name="pk_claimpay_chunk_ledger"),
    )
    op.create_index("ix_claimpay_chunk_ledger_applied_at", "claimpay_chunk_ledger", ["applied_at"])


def downgrade() -> None:
    op.drop_index("ix_claimpay_chunk_ledger_applied_at", table_name="claimpay_chunk_ledger")
    op.drop_table("claimpay_chunk_ledger")
    op.drop_table("claim_prompt_pay")
