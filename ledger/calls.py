"""Recording of provider calls: claim a job, open an attempt before each call, then store
the call's usage and the job's outcome."""

import enum
import logging
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

log = logging.getLogger(__name__)

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


class Skip(enum.Enum):
    """Reason a delivery of a job was not claimed."""

    UNKNOWN = "unknown"
    FINISHED = "finished"
    # Another delivery claimed the job and its deadline has not passed.
    HELD = "held"


def claim_job(
    session: Session,
    job_id: str,
    time_limit_s: float,
    now: datetime | None = None,
    token: str | None = None,
) -> ClaimedJob | Skip:
    """Mark a job as running under this delivery, or return why this delivery skips it.

    A running job is held by the delivery that claimed it until its deadline. A later
    delivery takes it only once it was released (``release_for_requeue`` or the recovery
    task) or once its deadline passed: then the holder is taken for dead, its open
    attempts are orphaned and the job gets a new deadline. A duplicate that arrives while
    the holder still has time is skipped, so it never makes a second call.

    ``token`` names the delivery: a claim retried with the same token after its commit
    was lost on the way back finds the job already its own.
    """
    now = now or utcnow()
    row = session.execute(
        select(Job.status, Job.deliveries, Job.deadline_at, Job.claim_token)
        .where(Job.id == job_id)
        .with_for_update()
    ).one_or_none()
    if row is None:
        return Skip.UNKNOWN
    if row.status not in CLAIMABLE:
        return Skip.FINISHED
    held = row.status == JobStatus.RUNNING.value and row.deliveries > 0
    if held and token is not None and row.claim_token == token:
        return _claimed(session.execute(select(*CLAIMED_COLUMNS).where(Job.id == job_id)).one())
    expired = held and row.deadline_at is not None and row.deadline_at < now
    if held and not expired:
        return Skip.HELD
    new_deadline = now + timedelta(seconds=time_limit_s)
    deadline: Any = new_deadline
    claim = update(Job).where(Job.id == job_id, Job.status == row.status)
    if expired:
        claim = claim.where(Job.deliveries == row.deliveries, Job.deadline_at < now)
        orphaned = orphan_open_attempts(session, job_id, now)
        log.warning(
            "job %s: its deadline passed under an earlier delivery; %d open attempt(s) "
            "orphaned, running it again with a new deadline",
            job_id,
            orphaned,
        )
    else:
        claim = claim.where(Job.deliveries == 0)
        # A job released to wait keeps the deadline its first claim set.
        deadline = func.coalesce(Job.deadline_at, new_deadline)
    claimed = session.execute(
        claim.values(
            status=JobStatus.RUNNING.value,
            started_at=func.coalesce(Job.started_at, now),
            deadline_at=deadline,
            deliveries=Job.deliveries + 1,
            claim_token=token,
        ).returning(*CLAIMED_COLUMNS)
    ).one_or_none()
    if claimed is None:
        # Another delivery claimed it between the read and the update (SQLite has no row lock).
        return Skip.HELD
    return _claimed(claimed)


CLAIMED_COLUMNS = (Job.id, Job.tenant_id, Job.agent, Job.input, Job.deadline_at, Job.deliveries)


def _claimed(row: Any) -> ClaimedJob:
    return ClaimedJob(row.id, row.tenant_id, row.agent, row.input, row.deadline_at, row.deliveries)


def orphan_open_attempts(session: Session, job_id: str, now: datetime) -> int:
    """Mark attempts that were opened but never closed: their calls' outcome is unknown."""
    orphan = (
        update(Attempt)
        .where(Attempt.job_id == job_id, Attempt.status == AttemptStatus.STARTED.value)
        .values(status=AttemptStatus.ORPHANED.value, finished_at=now)
    )
    return rowcount(session.execute(orphan))


def release_for_requeue(session: Session, job_id: str) -> None:
    """Release a job that re-enqueues itself to wait, so its next delivery may claim it and
    the wait is not mistaken for a worker that died."""
    session.execute(update(Job).where(Job.id == job_id).values(deliveries=0))


def open_attempt(
    session: Session, job_id: str, provider: str, model: str, attempt_id: str | None = None
) -> str:
    """Write the attempt row for a call about to be made; return its id.

    Given the id of a row already written, as when a write is retried after its commit
    was lost on the way back, it writes nothing more.
    """
    if attempt_id is not None and session.get(Attempt, attempt_id) is not None:
        return attempt_id
    number = session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(attempts=Job.attempts + 1)
        .returning(Job.attempts)
    ).scalar_one()
    attempt_id = attempt_id or str(uuid.uuid4())
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
    second records its call as cost only. Returns True if this call completed the job,
    also when a retried write finds its first commit done.
    """
    finish = (
        update(Job)
        .where(Job.id == job.id, Job.status == JobStatus.RUNNING.value)
        .values(status=JobStatus.SUCCEEDED.value, result=result, error=None, finished_at=utcnow())
    )
    completed = rowcount(session.execute(finish)) == 1
    if not record_usage(session, job, call, billable=completed):
        completed = bool(
            session.scalar(
                select(UsageRecord.billable).where(UsageRecord.attempt_id == call.attempt_id)
            )
        )
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
