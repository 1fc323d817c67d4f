"""Roll billable usage up into one draft invoice per tenant and period, a line per agent and model.

Rollup first adds the usage rows committed since the period's last rollup to the
period's running totals (``ledger.totals``), then rewrites each tenant's draft invoice
from those totals under the tenant's current plan. Running it again, or from two
processes at once, writes the same invoices. Rollups of one period take turns:
PostgreSQL through an advisory lock held for the transaction, SQLite because every
transaction takes the write lock at BEGIN. Final invoices are never touched.
"""

import hashlib
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from ledger.models import Invoice, InvoiceLine, InvoiceStatus, Plan, Tenant, UsageTotal
from ledger.money import round_amount
from ledger.periods import Period
from ledger.plans import PlanTerms, plan_terms
from ledger.sql import insert_ignoring_conflicts
from ledger.totals import advance_totals
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
    factory: sessionmaker[Session],
    period: Period,
    tenant_id: str | None = None,
    full: bool = False,
) -> list[RollupResult]:
    """Write or refresh the draft invoice of every tenant with billable usage in the period.

    With ``full`` the period's totals are computed again from all of its usage rows
    instead of being advanced by the rows committed since the last rollup.
    """
    with factory() as session, session.begin():
        _take_turn(session, period)
        advance_totals(session, period, full)
        groups = _usage_groups(session, period, tenant_id)
        return _write_invoices(session, period, groups)


def _take_turn(session: Session, period: Period) -> None:
    """Wait for any other rollup of the period to commit, so that the aggregate below
    includes every row committed before this rollup writes."""
    if session.get_bind().dialect.name == "postgresql":
        digest = hashlib.sha256(f"agentfleet.rollup:{period.start}".encode()).digest()
        key = int.from_bytes(digest[:8], "big", signed=True)
        session.execute(select(func.pg_advisory_xact_lock(key)))


def _write_invoices(
    session: Session, period: Period, groups: dict[str, list[UsageGroup]]
) -> list[RollupResult]:
    """Rewrite the draft invoices of the tenants in ``groups``, with a few statements for
    all of them."""
    tenants = sorted(groups)
    if not tenants:
        return []
    terms = _terms_of(session, tenants)
    invoices = _lock_invoices(session, period, {t: terms[t].currency for t in tenants})
    drafts = [t for t in tenants if invoices[t].status != InvoiceStatus.FINAL.value]
    lines = {t: [_invoice_line(invoices[t].id, g, terms[t]) for g in groups[t]] for t in drafts}
    if drafts:
        draft_ids = [invoices[t].id for t in drafts]
        session.execute(delete(InvoiceLine).where(InvoiceLine.invoice_id.in_(draft_ids)))
        session.execute(insert(InvoiceLine), [line for t in drafts for line in lines[t]])
    now = utcnow()
    results = []
    for tenant in tenants:
        invoice = invoices[tenant]
        if tenant in lines:
            invoice.total = sum((line["amount"] for line in lines[tenant]), Decimal("0.00"))
            invoice.updated_at = now
        results.append(
            RollupResult(tenant, period, invoice.id, invoice.total, invoice.currency,
                         len(lines.get(tenant, [])), tenant not in lines)
        )  # fmt: skip
    return results


def _terms_of(session: Session, tenants: list[str]) -> dict[str, PlanTerms]:
    """Return each tenant's plan terms, reading each plan once."""
    plans = session.execute(select(Tenant.id, Plan).join(Plan).where(Tenant.id.in_(tenants)))
    plan_of = {tenant: plan for tenant, plan in plans}
    distinct = {plan.id: plan for plan in plan_of.values()}
    terms = {plan_id: plan_terms(session, plan) for plan_id, plan in distinct.items()}
    return {tenant: terms[plan.id] for tenant, plan in plan_of.items()}


def _lock_invoices(
    session: Session, period: Period, currencies: dict[str, str]
) -> dict[str, Invoice]:
    """Return the tenants' invoices for the period, created if missing, locked for this
    transaction so concurrent rollups of the same tenant take turns.

    Only missing invoices are inserted: on PostgreSQL an insert that meets a conflict
    still takes a value from the id sequence, which would leave gaps in invoice ids.
    """
    query = (
        select(Invoice)
        .where(Invoice.period_start == period.start, Invoice.tenant_id.in_(list(currencies)))
        .order_by(Invoice.tenant_id)
        .with_for_update()
    )
    invoices = {invoice.tenant_id: invoice for invoice in session.scalars(query)}
    missing = [tenant_id for tenant_id in currencies if tenant_id not in invoices]
    if not missing:
        return invoices
    now = utcnow()
    session.execute(
        insert_ignoring_conflicts(session, Invoice.__table__, "tenant_id", "period_start"),
        [
            {
                "tenant_id": tenant_id,
                "period_start": period.start,
                "period_end": period.end,
                "status": InvoiceStatus.DRAFT.value,
                "currency": currencies[tenant_id],
                "total": Decimal("0.00"),
                "created_at": now,
                "updated_at": now,
            }
            for tenant_id in missing
        ],
    )
    return {invoice.tenant_id: invoice for invoice in session.scalars(query)}


def _usage_groups(
    session: Session, period: Period, tenant_id: str | None
) -> dict[str, list[UsageGroup]]:
    """Return the period's billable usage by tenant, agent and model, from its totals.

    Cache hits count only for tenants whose plan bills them; they have no provider cost,
    so a markup plan charges nothing for them either way.
    """
    query = select(
        UsageTotal.tenant_id,
        UsageTotal.agent,
        UsageTotal.model,
        UsageTotal.cache_hit,
        UsageTotal.calls,
        UsageTotal.input_tokens,
        UsageTotal.cached_input_tokens,
        UsageTotal.cache_write_tokens,
        UsageTotal.output_tokens,
        UsageTotal.cost,
    ).where(UsageTotal.period_start == period.start)
    if tenant_id is not None:
        query = query.where(UsageTotal.tenant_id == tenant_id)
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


def _invoice_line(invoice_id: int, group: UsageGroup, terms: PlanTerms) -> dict[str, Any]:
    return {
        "invoice_id": invoice_id,
        "agent": group.agent,
        "model": group.model,
        "calls": group.calls,
        "input_tokens": group.tokens[TokenKind.INPUT],
        "cached_input_tokens": group.tokens[TokenKind.CACHED_INPUT],
        "cache_write_tokens": group.tokens[TokenKind.CACHE_WRITE],
        "output_tokens": group.tokens[TokenKind.OUTPUT],
        "amount": round_amount(terms.charge(group.tokens, group.cost)),
    }
