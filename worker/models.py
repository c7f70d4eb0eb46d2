"""The tables claimpay writes. Columns mirror the seed's fields, in snake_case."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Boolean, DateTime, Integer, LargeBinary, MetaData, String, Table
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "pk": "pk_%(table_name)s",
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class ClaimPromptPay(Base):
    """A prompt-pay rule (`PUT /claim-prompt-pays-batch`)."""

    __tablename__ = "claim_prompt_pay"

    claim_prompt_pay_key: Mapped[int] = mapped_column(
        Integer, primary_key=True, autoincrement=False
    )
    division_id: Mapped[str | None] = mapped_column(String(20))
    entry_date: Mapped[datetime] = mapped_column(DateTime)
    entry_user: Mapped[str | None] = mapped_column(String(200))
    group_id: Mapped[str | None] = mapped_column(String(20))
    plan_id: Mapped[str | None] = mapped_column(String(20))
    prompt_pay_duration: Mapped[int | None] = mapped_column(Integer)
    prompt_pay_duration_type: Mapped[str | None] = mapped_column(String(16))
    tax_id: Mapped[str | None] = mapped_column(String(32))
    update_date: Mapped[datetime] = mapped_column(DateTime)
    update_user: Mapped[str | None] = mapped_column(String(20))


class PlaceCodes(Base):
    """A place-of-service code (`PUT /place-codes-batch`)."""

    __tablename__ = "place_codes"

    place_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    all_places: Mapped[str] = mapped_column(String(1))
    description: Mapped[str | None] = mapped_column(String(256))
    entry_date: Mapped[datetime] = mapped_column(DateTime)
    entry_user: Mapped[str | None] = mapped_column(String(200))
    exclude_proc_auth: Mapped[bool] = mapped_column(Boolean)
    old_place_code: Mapped[str | None] = mapped_column(String(8))
    update_date: Mapped[datetime] = mapped_column(DateTime)
    update_user: Mapped[str | None] = mapped_column(String(20))


class ChunkLedger(Base):
    """One row per applied chunk, committed with the chunk's rows: a redelivered chunk
    finds its entry and reuses the stored results instead of applying the rows again."""

    __tablename__ = "claimpay_chunk_ledger"

    job_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    chunk_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    outcomes: Mapped[bytes] = mapped_column(LargeBinary)
    applied_at: Mapped[datetime] = mapped_column(DateTime, index=True)


ENTITY_TABLES: dict[str, Table] = {
    "claim_prompt_pay": cast(Table, ClaimPromptPay.__table__),
    "place_codes": cast(Table, PlaceCodes.__table__),
}
"""Entity table name (`EntitySpec.table`) -> its SQLAlchemy table."""
