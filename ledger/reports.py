"""Usage totals for operators and for reconciling the ledger with a provider's own counts."""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.models import Job, UsageRecord


@dataclass(frozen=True)
class UsageTotal:
    """Usage of one (tenant, agent, model) group, or of one model when grouped by model."""

    key: tuple[str, ...]
    calls: int
    billable_calls: int
    cache_hits: int
    prompt_tokens: int
    output_tokens: int
    cost: Decimal


GROUPINGS = {
    "model": (UsageRecord.provider, UsageRecord.model),
    "tenant": (UsageRecord.tenant_id,),
    "tenant-agent-model": (
        UsageRecord.tenant_id,
        UsageRecord.agent,
        UsageRecord.provider,
        UsageRecord.model,
    ),
}


def usage_totals(
    session: Session, by: str = "model", job_ids: Sequence[str] | None = None
) -> list[UsageTotal]:
    """Sum every recorded provider call, billable or not, grouped as ``by`` names; optionally
    only the calls of the given jobs. Cache hits made no call, so they are only counted."""
    columns = GROUPINGS[by]
    prompt = (
        UsageRecord.input_tokens + UsageRecord.cached_input_tokens + UsageRecord.cache_write_tokens
    )
    query = (
        select(
            *columns,
            func.count().filter(UsageRecord.cache_hit.is_(False)),
            func.count().filter(UsageRecord.billable),
            func.count().filter(UsageRecord.cache_hit),
            func.coalesce(func.sum(prompt).filter(UsageRecord.cache_hit.is_(False)), 0),
            func.coalesce(
                func.sum(UsageRecord.output_tokens).filter(UsageRecord.cache_hit.is_(False)), 0
            ),
            func.sum(UsageRecord.cost),
        )
        .group_by(*columns)
        .order_by(*columns)
    )
    if job_ids is not None:
        query = query.where(UsageRecord.job_id.in_(list(job_ids)))
    totals = []
    for row in session.execute(query):
        key = tuple(str(value) for value in row[: len(columns)])
        calls, billable, hits, prompt_sum, output_sum, cost = row[len(columns) :]
        totals.append(
            UsageTotal(
                key,
                int(calls),
                int(billable),
                int(hits),
                int(prompt_sum),
                int(output_sum),
                Decimal(cost),
            )
        )
    return totals


def job_counts(session: Session) -> dict[tuple[str, str, str], int]:
    """Count jobs by (tenant, agent, status)."""
    query = select(Job.tenant_id, Job.agent, Job.status, func.count()).group_by(
        Job.tenant_id, Job.agent, Job.status
    )
    return {
        (tenant, agent, status): count for tenant, agent, status, count in session.execute(query)
    }
