"""Recording of provider calls: claim a job, open an attempt before each call, then store
the call's usage and the job's outcome."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ledger.models import Attempt, AttemptStatus, Job, JobStatus, UsageRecord
from ledger.prices import CallCost
from ledger.sql import insert_ignoring_conflicts, rowcount
from ledger.types import utcnow
from ledger.usage import TokenUsage

CLAIMABLE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


@dataclass(frozen=True)
class ClaimedJob:
    id: str
    tenant_id: str
    agent: str
    input: dict[str, Any]
    deadline_at: datetime
    deliveries: int = 1


@dataclass(frozen=True)
class CallRecord:
    """Usage and cost of one finished provider call; ``at`` is the time the call was made."""

    attempt_id: str
    provider: str
    model: str
    usage: TokenUsage
    cost: CallCost
    at: datetime
    partial: bool = False
    cache_hit: bool = False


def claim_job(session: Session, job_id: str, time_limit_s: float) -> ClaimedJob | None:
    """Mark a queued (or redelivered running) job as running; None if it is already final.

    The deadline is set by the first claim and kept by later ones.
    """
    now = utcnow()
    deadline = now + timedelta(seconds=time_limit_s)
    claimed = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(CLAIMABLE))
        .values(
            status=JobStatus.RUNNING.value,
            started_at=func.coalesce(Job.started_at, now),
            deadline_at=func.coalesce(Job.deadline_at, deadline),
            deliveries=Job.deliveries + 1,
        )
        .returning(Job.id, Job.tenant_id, Job.agent, Job.input, Job.deadline_at, Job.deliveries)
    ).one_or_none()
    if claimed is None:
        return None
    return ClaimedJob(
        claimed.id,
        claimed.tenant_id,
        claimed.agent,
        claimed.input,
        claimed.deadline_at,
        claimed.deliveries,
    )


def release_for_requeue(session: Session, job_id: str) -> None:
    """Take back the delivery of a job that re-enqueues itself to wait, so waiting is not
    mistaken for a worker that died."""
    session.execute(update(Job).where(Job.id == job_id).values(deliveries=Job.deliveries - 1))


def open_attempt(session: Session, job_id: str, provider: str, model: str) -> str:
    """Write the attempt row for a call about to be made; return its id."""
    number = session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(attempts=Job.attempts + 1)
        .returning(Job.attempts)
    ).scalar_one()
    attempt_id = str(uuid.uuid4())
    session.add(
        Attempt(id=attempt_id, job_id=job_id, number=number, provider=provider, model=model)
    )
    return attempt_id


def close_attempt(
    session: Session,
    attempt_id: str,
    status: AttemptStatus,
    *,
    http_status: int | None = None,
    error: str | None = None,
) -> None:
    session.execute(
        update(Attempt)
        .where(Attempt.id == attempt_id)
        .values(status=status.value, http_status=http_status, error=error, finished_at=utcnow())
    )


def record_usage(session: Session, job: ClaimedJob, call: CallRecord, *, billable: bool) -> bool:
    """Store a call's usage once; replaying the same attempt changes nothing.

    Returns True when this call inserted the row.
    """
    row = {
        "attempt_id": call.attempt_id,
        "job_id": job.id,
        "tenant_id": job.tenant_id,
        "agent": job.agent,
        "provider": call.provider,
        "model": call.model,
        "input_tokens": call.usage.input_tokens,
        "cached_input_tokens": call.usage.cached_input_tokens,
        "cache_write_tokens": call.usage.cache_write_tokens,
        "output_tokens": call.usage.output_tokens,
        "reasoning_tokens": call.usage.reasoning_tokens,
        "cost": call.cost.amount,
        "currency": call.cost.currency,
        "billable": billable,
        "partial": call.partial,
        "cache_hit": call.cache_hit,
        "created_at": call.at,
    }
    insert = insert_ignoring_conflicts(session, UsageRecord.__table__, "attempt_id").returning(
        UsageRecord.id
    )
    return session.execute(insert, row).first() is not None


def complete_job(session: Session, job: ClaimedJob, call: CallRecord, result: Any) -> bool:
    """Store the job's result and bill the call that produced it, in one transaction.

    The job completes only if it is still running, so a duplicate delivery that finishes
    second records its call as cost only. Returns True if this call completed the job.
    """
    finish = (
        update(Job)
        .where(Job.id == job.id, Job.status == JobStatus.RUNNING.value)
        .values(status=JobStatus.SUCCEEDED.value, result=result, error=None, finished_at=utcnow())
    )
    completed = rowcount(session.execute(finish)) == 1
    record_usage(session, job, call, billable=completed)
    status = AttemptStatus.CACHE_HIT if call.cache_hit else AttemptStatus.SUCCEEDED
    close_attempt(session, call.attempt_id, status)
    return completed


def fail_job(session: Session, job_id: str, error: str) -> bool:
    """Mark a running job failed with the error; False if it had already finished."""
    fail = (
        update(Job)
        .where(Job.id == job_id, Job.status.in_(CLAIMABLE))
        .values(status=JobStatus.FAILED.value, error=error, finished_at=utcnow())
    )
    return rowcount(session.execute(fail)) == 1


def attempts_of(session: Session, job_id: str) -> list[Attempt]:
    return list(
        session.scalars(select(Attempt).where(Attempt.job_id == job_id).order_by(Attempt.number))
    )
