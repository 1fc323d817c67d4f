"""The ledger's tables: tenants and plans, jobs and attempts, usage, prices and invoices."""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ledger.types import ExactDecimal, UTCDateTime, utcnow

# Cost of a call: per-token prices have up to 12 decimal places in USD.
COST_SCALE = 12
# Rates per million tokens keep six places, which covers every published list price.
RATE_SCALE = 6
# Invoice amounts are rounded to the currency's minor unit.
AMOUNT_SCALE = 2

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class AttemptStatus(StrEnum):
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ORPHANED = "orphaned"
    # Served from the response cache: no provider call was made.
    CACHE_HIT = "cache_hit"


class PlanKind(StrEnum):
    PER_MTOK = "per_mtok"
    MARKUP = "markup"


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    FINAL = "final"


class Plan(Base):
    """Billing terms: a rate per million tokens of each kind, or provider cost times a markup."""

    __tablename__ = "plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    markup: Mapped[Decimal | None] = mapped_column(ExactDecimal(6, precision=12))
    # Whether a reply served from the response cache is billed like the call it replaces.
    bill_cache_hits: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PlanRate(Base):
    """The price per million tokens of one token kind under a per_mtok plan."""

    __tablename__ = "plan_rates"

    plan_id: Mapped[int] = mapped_column(
        ForeignKey("plans.id", ondelete="CASCADE"), primary_key=True
    )
    token_kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    price_per_mtok: Mapped[Decimal] = mapped_column(ExactDecimal(RATE_SCALE, precision=18))


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plans.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key"),
        Index(None, "tenant_id", "status"),
        Index(None, "tenant_id", "created_at"),
        Index(None, "status", "deadline_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    agent: Mapped[str] = mapped_column(String(64))
    input: Mapped[dict[str, Any]] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Times a worker took the job's message; a re-enqueue to wait does not count.
    deliveries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Times the recovery task sent the job again after it was stuck past its deadline.
    recoveries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set by the delivery that claimed the job, so a claim retried after a commit whose
    # outcome was unknown recognises itself.
    claim_token: Mapped[str | None] = mapped_column(String(36))
    result: Mapped[Any | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Attempt(Base):
    """One provider call, written before the call is made."""

    __tablename__ = "attempts"
    __table_args__ = (UniqueConstraint("job_id", "number"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    provider: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default=AttemptStatus.STARTED)
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UsageRecord(Base):
    """The tokens one provider call used and what the provider charges for them.

    The token kinds are disjoint: ``input_tokens`` excludes cached and cache-write input,
    and ``reasoning_tokens`` is the part of ``output_tokens`` the model spent reasoning.
    """

    __tablename__ = "usage_records"
    __table_args__ = (
        Index(None, "tenant_id", "created_at"),
        Index(None, "created_at"),
        # A job's result comes from exactly one call, so at most one of its records is billable.
        Index(
            "uq_usage_records_billable_job_id",
            "job_id",
            unique=True,
            postgresql_where=text("billable"),
            sqlite_where=text("billable"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    attempt_id: Mapped[str] = mapped_column(ForeignKey("attempts.id"), unique=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    agent: Mapped[str] = mapped_column(String(64))
    provider: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cached_input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    reasoning_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[Decimal] = mapped_column(ExactDecimal(COST_SCALE))
    currency: Mapped[str] = mapped_column(String(3))
    billable: Mapped[bool] = mapped_column(Boolean)
    # The call failed mid-stream; the counts are what the provider reported before it did.
    partial: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The reply came from the response cache: no provider call, so no provider cost.
    cache_hit: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # PostgreSQL: the id of the transaction that wrote the row (a column default); rows
    # stored before revision 0005 and SQLite rows have none. See ledger/totals.py.
    txid: Mapped[int | None] = mapped_column(BigInteger)


class UsageTotal(Base):
    """Billable usage of one period summed by tenant, agent, model and cache hit, as far
    as the period's rollup horizon."""

    __tablename__ = "usage_totals"

    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    agent: Mapped[str] = mapped_column(String(64), primary_key=True)
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    cache_hit: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    calls: Mapped[int] = mapped_column(BigInteger)
    input_tokens: Mapped[int] = mapped_column(BigInteger)
    cached_input_tokens: Mapped[int] = mapped_column(BigInteger)
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger)
    output_tokens: Mapped[int] = mapped_column(BigInteger)
    cost: Mapped[Decimal] = mapped_column(ExactDecimal(COST_SCALE))


class RollupHorizon(Base):
    """How far a period's usage totals reach: every usage row whose sequence value
    (PostgreSQL: ``txid``; SQLite: ``id``) is below ``horizon`` is counted in them."""

    __tablename__ = "rollup_horizons"

    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    horizon: Mapped[int] = mapped_column(BigInteger)


class Price(Base):
    """A provider's list price for one token kind of one model, from a date on."""

    __tablename__ = "prices"
    __table_args__ = (
        UniqueConstraint(
            "provider",
            "model",
            "token_kind",
            "effective_from",
            "above_input_tokens",
            name="uq_prices_model_kind_from_tier",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))
    token_kind: Mapped[str] = mapped_column(String(16))
    price_per_mtok: Mapped[Decimal] = mapped_column(ExactDecimal(RATE_SCALE, precision=18))
    currency: Mapped[str] = mapped_column(String(3))
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime)
    # Long-context tier: the price applies to calls whose prompt has more tokens than this.
    above_input_tokens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (UniqueConstraint("tenant_id", "period_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id"))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), default=InvoiceStatus.DRAFT)
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(ExactDecimal(AMOUNT_SCALE, precision=18))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InvoiceLine(Base):
    """Billed usage of one agent and model within an invoice's period."""

    __tablename__ = "invoice_lines"
    __table_args__ = (UniqueConstraint("invoice_id", "agent", "model"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    agent: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(128))
    calls: Mapped[int] = mapped_column(Integer)
    input_tokens: Mapped[int] = mapped_column(BigId)
    cached_input_tokens: Mapped[int] = mapped_column(BigId)
    cache_write_tokens: Mapped[int] = mapped_column(BigId)
    output_tokens: Mapped[int] = mapped_column(BigId)
    amount: Mapped[Decimal] = mapped_column(ExactDecimal(AMOUNT_SCALE, precision=18))
