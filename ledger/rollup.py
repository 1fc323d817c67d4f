"""Roll billable usage up into one draft invoice per tenant and period, a line per agent and model.

Rollup recomputes the period's draft invoices from its usage rows, with one aggregate
over the period for all tenants, so running it again, or from two processes at once,
writes the same invoices. Rollups of one period take turns: PostgreSQL through an
advisory lock held for the transaction, SQLite because every transaction takes the
write lock at BEGIN. Final invoices are never touched.
"""

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from ledger.models import Invoice, InvoiceLine, InvoiceStatus, Plan, Tenant, UsageRecord
from ledger.money import round_amount
from ledger.periods import Period
from ledger.plans import PlanTerms, plan_terms
from ledger.sql import insert_ignoring_conflicts
from ledger.types import utcnow
from ledger.usage import TokenKind


@dataclass(frozen=True)
class UsageGroup:
    agent: str
    model: str
    calls: int
    tokens: dict[TokenKind, int]
    cost: Decimal


@dataclass(frozen=True)
class RollupResult:
    tenant_id: str
    period: Period
    invoice_id: int
    total: Decimal
    currency: str
    lines: int
    skipped_final: bool = False


def rollup_period(
    factory: sessionmaker[Session], period: Period, tenant_id: str | None = None
) -> list[RollupResult]:
    """Write or refresh the draft invoice of every tenant with billable usage in the period."""
    with factory() as session, session.begin():
        _take_turn(session, period)
        groups = _usage_groups(session, period, tenant_id)
        return [_rollup_tenant(session, tenant, period, groups[tenant]) for tenant in groups]


def _take_turn(session: Session, period: Period) -> None:
    """Wait for any other rollup of the period to commit, so that the aggregate below
    includes every row committed before this rollup writes."""
    if session.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(f"agentfleet.rollup:{period.start}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        session.execute(select(func.pg_advisory_xact_lock(key)))


def _in_period(period: Period) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return (UsageRecord.created_at >= period.start_at, UsageRecord.created_at < period.end_at)


def _rollup_tenant(
    session: Session, tenant_id: str, period: Period, groups: list[UsageGroup]
) -> RollupResult:
    plan = session.scalars(select(Plan).join(Tenant).where(Tenant.id == tenant_id)).one()
    terms = plan_terms(session, plan)
    invoice = _lock_invoice(session, tenant_id, period, terms.currency)
    if invoice.status == InvoiceStatus.FINAL.value:
        return RollupResult(tenant_id, period, invoice.id, invoice.total, invoice.currency, 0, True)

    lines = [_invoice_line(invoice.id, group, terms) for group in groups]
    session.execute(delete(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id))
    session.add_all(lines)
    invoice.total = sum((line.amount for line in lines), Decimal("0.00"))
    invoice.updated_at = utcnow()
    return RollupResult(tenant_id, period, invoice.id, invoice.total, invoice.currency, len(lines))


def _lock_invoice(session: Session, tenant_id: str, period: Period, currency: str) -> Invoice:
    """Return the tenant's invoice for the period, created if missing, locked for this
    transaction so concurrent rollups of the same tenant take turns."""
    now = utcnow()
    session.execute(
        insert_ignoring_conflicts(session, Invoice.__table__, "tenant_id", "period_start"),
        [
            {
                "tenant_id": tenant_id,
                "period_start": period.start,
                "period_end": period.end,
                "status": InvoiceStatus.DRAFT.value,
                "currency": currency,
                "total": Decimal("0.00"),
                "created_at": now,
                "updated_at": now,
            }
        ],
    )
    query = select(Invoice).where(
        Invoice.tenant_id == tenant_id, Invoice.period_start == period.start
    )
    return session.scalars(query.with_for_update()).one()


def _usage_groups(
    session: Session, period: Period, tenant_id: str | None
) -> dict[str, list[UsageGroup]]:
    """Sum the period's billable usage by tenant, agent and model, in one aggregate.

    Cache hits count only for tenants whose plan bills them; they have no provider cost,
    so a markup plan charges nothing for them either way. The aggregate keeps them apart
    and reads no other table, so it costs what a plain GROUP BY of the rows costs.
    """
    query = (
        select(
            UsageRecord.tenant_id,
            UsageRecord.agent,
            UsageRecord.model,
            UsageRecord.cache_hit,
            func.count(),
            func.sum(UsageRecord.input_tokens),
            func.sum(UsageRecord.cached_input_tokens),
            func.sum(UsageRecord.cache_write_tokens),
            func.sum(UsageRecord.output_tokens),
            func.sum(UsageRecord.cost),
        )
        .where(UsageRecord.billable, *_in_period(period))
        .group_by(
            UsageRecord.tenant_id, UsageRecord.agent, UsageRecord.model, UsageRecord.cache_hit
        )
    )
    if tenant_id is not None:
        query = query.where(UsageRecord.tenant_id == tenant_id)
    bills_hits = dict(session.execute(select(Tenant.id, Plan.bill_cache_hits).join(Plan)).all())
    sums: dict[tuple[str, str, str], list[Any]] = {}
    for tenant, agent, model, hit, *row in session.execute(query):
        if hit and not bills_hits[tenant]:
            continue
        total = sums.setdefault((tenant, agent, model), [0, 0, 0, 0, 0, Decimal(0)])
        for index, value in enumerate(row):
            total[index] += value
    groups: dict[str, list[UsageGroup]] = {}
    for (tenant, agent, model), (calls, inp, cached, written, out, cost) in sorted(sums.items()):
        tokens = {
            TokenKind.INPUT: int(inp),
            TokenKind.CACHED_INPUT: int(cached),
            TokenKind.CACHE_WRITE: int(written),
            TokenKind.OUTPUT: int(out),
        }
        groups.setdefault(tenant, []).append(UsageGroup(agent, model, int(calls), tokens, cost))
    return groups


def _invoice_line(invoice_id: int, group: UsageGroup, terms: PlanTerms) -> InvoiceLine:
    return InvoiceLine(
        invoice_id=invoice_id,
        agent=group.agent,
        model=group.model,
        calls=group.calls,
        input_tokens=group.tokens[TokenKind.INPUT],
        cached_input_tokens=group.tokens[TokenKind.CACHED_INPUT],
        cache_write_tokens=group.tokens[TokenKind.CACHE_WRITE],
        output_tokens=group.tokens[TokenKind.OUTPUT],
        amount=round_amount(terms.charge(group.tokens, group.cost)),
    )
