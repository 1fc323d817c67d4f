"""Usage totals for operators and for reconciling the ledger with a provider's own counts."""

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.models import Attempt, AttemptStatus, Job, UsageRecord


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
    # Attempts whose worker died mid-call: the provider may have served and charged them,
    # but their usage never reached the ledger.
    orphaned: int = 0


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


# The same groups for attempts, whose tenant and agent are the job's.
ATTEMPT_GROUPINGS = {
    "model": (Attempt.provider, Attempt.model),
    "tenant": (Job.tenant_id,),
    "tenant-agent-model": (Job.tenant_id, Job.agent, Attempt.provider, Attempt.model),
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
    orphaned = orphaned_attempts(session, by, job_ids)
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
                orphaned.pop(key, 0),
            )
        )
    for key, count in orphaned.items():
        totals.append(UsageTotal(key, 0, 0, 0, 0, 0, Decimal(0), count))
    return sorted(totals, key=lambda total: total.key)


def orphaned_attempts(
    session: Session, by: str, job_ids: Sequence[str] | None = None
) -> dict[tuple[str, ...], int]:
    """Count orphaned attempts grouped as ``by`` names, optionally of the given jobs only."""
    columns = ATTEMPT_GROUPINGS[by]
    query = (
        select(*columns, func.count())
        .select_from(Attempt)
        .join(Job, Job.id == Attempt.job_id)
        .where(Attempt.status == AttemptStatus.ORPHANED.value)
        .group_by(*columns)
    )
    if job_ids is not None:
        query = query.where(Attempt.job_id.in_(list(job_ids)))
    return {
        tuple(str(value) for value in row[: len(columns)]): int(row[-1])
        for row in session.execute(query)
    }


def job_counts(session: Session) -> dict[tuple[str, str, str], int]:
    """Count jobs by (tenant, agent, status)."""
    query = select(Job.tenant_id, Job.agent, Job.status, func.count()).group_by(
        Job.tenant_id, Job.agent, Job.status
    )
    return {
        (tenant, agent, status): count for tenant, agent, status, count in session.execute(query)
    }
