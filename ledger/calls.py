"""Recording of provider calls: an attempt row before each call, then the call's usage
and the job's outcome.

Like the claims, the statements of this path are SQLAlchemy Core built once at import.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, exists, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledger.claims import ATTEMPT_TABLE, ATTEMPTS, CLAIMABLE, JOB_TABLE, JOBS, ClaimedJob
from ledger.models import Attempt, AttemptStatus, JobStatus, UsageRecord
from ledger.prices import CallCost
from ledger.sql import rowcount
from ledger.types import utcnow
from ledger.usage import TokenUsage

USAGE_TABLE = cast(Table, UsageRecord.__table__)
USAGE = USAGE_TABLE.c


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


# Counts the attempt on its job, unless a retried write already stored it.
_COUNT_ATTEMPT = (
    update(JOB_TABLE)
    .where(
        JOBS.id == bindparam("b_job"),
        ~exists().where(ATTEMPTS.id == bindparam("b_attempt")),
    )
    .values(attempts=JOBS.attempts + 1)
    .returning(JOBS.attempts)
)
_ATTEMPT_EXISTS = select(ATTEMPTS.id).where(ATTEMPTS.id == bindparam("b_attempt"))
_INSERT_ATTEMPT = insert(ATTEMPT_TABLE)
_CLOSE_ATTEMPT = update(ATTEMPT_TABLE).where(ATTEMPTS.id == bindparam("b_attempt"))
_INSERT_USAGE = {
    dialect.dialect.name: dialect.insert(USAGE_TABLE)
    .on_conflict_do_nothing(index_elements=["attempt_id"])
    .returning(USAGE.id)
    for dialect in (postgresql, sqlite)
}
_BILLABLE = select(USAGE.billable).where(USAGE.attempt_id == bindparam("b_attempt"))
_FINISH_RUNNING = update(JOB_TABLE).where(
    JOBS.id == bindparam("b_job"), JOBS.status == JobStatus.RUNNING.value
)
_FAIL = update(JOB_TABLE).where(JOBS.id == bindparam("b_job"), JOBS.status.in_(CLAIMABLE))


def open_attempt(
    session: Session, job_id: str, provider: str, model: str, attempt_id: str | None = None
) -> str:
    """Write the attempt row for a call about to be made; return its id.

    Given the id of a row already written, as when a write is retried after its commit
    was lost on the way back, it writes nothing more.
    """
    attempt_id = attempt_id or str(uuid.uuid4())
    params = {"b_job": job_id, "b_attempt": attempt_id}
    number = session.execute(_COUNT_ATTEMPT, params).scalar()
    if number is None:
        if session.execute(_ATTEMPT_EXISTS, params).first() is not None:
            return attempt_id
        raise LookupError(f"no job {job_id!r} in the ledger to open an attempt for")
    session.execute(
        _INSERT_ATTEMPT,
        {"id": attempt_id, "job_id": job_id, "number": number, "provider": provider,
         "model": model, "status": AttemptStatus.STARTED.value, "started_at": utcnow()},
    )  # fmt: skip
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
        _CLOSE_ATTEMPT,
        {"b_attempt": attempt_id, "status": status.value, "http_status": http_status,
         "error": error, "finished_at": utcnow()},
    )  # fmt: skip


def close_succeeded_attempts(session: Session, calls: Sequence[CallRecord]) -> None:
    """Close the attempts of calls that completed their jobs, in one executemany."""
    finished_at = utcnow()
    params = [
        {"b_attempt": call.attempt_id, "http_status": None, "error": None,
         "finished_at": finished_at,
         "status": (AttemptStatus.CACHE_HIT if call.cache_hit else AttemptStatus.SUCCEEDED).value}
        for call in calls
    ]  # fmt: skip
    if params:
        session.execute(_CLOSE_ATTEMPT, params)


def record_usage(session: Session, job: ClaimedJob, call: CallRecord, *, billable: bool) -> bool:
    """Store a call's usage once; replaying the same attempt changes nothing.

    Returns True when this call inserted the row.
    """
    insert_usage = _INSERT_USAGE[session.get_bind().dialect.name]
    return session.execute(insert_usage, usage_row(job, call, billable)).first() is not None


def usage_row(job: ClaimedJob, call: CallRecord, billable: bool) -> dict[str, Any]:
    """Return the usage_records row of a call, as a dict of column values."""
    return {
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


def complete_job(session: Session, job: ClaimedJob, call: CallRecord, result: Any) -> bool:
    """Store the job's result and bill the call that produced it, in one transaction.

    The job completes only if it is still running, so a duplicate delivery that finishes
    second records its call as cost only. Returns True if this call completed the job,
    also when a retried write finds its first commit done.
    """
    finish = {"b_job": job.id, "status": JobStatus.SUCCEEDED.value, "result": result,
              "error": None, "finished_at": utcnow()}  # fmt: skip
    completed = rowcount(session.execute(_FINISH_RUNNING, finish)) == 1
    if not record_usage(session, job, call, billable=completed):
        completed = bool(session.scalar(_BILLABLE, {"b_attempt": call.attempt_id}))
    close_succeeded_attempts(session, [call])
    return completed


def fail_job(session: Session, job_id: str, error: str) -> bool:
    """Mark a running job failed with the error; False if it had already finished."""
    fail = {"b_job": job_id, "status": JobStatus.FAILED.value, "error": error,
            "finished_at": utcnow()}  # fmt: skip
    return rowcount(session.execute(_FAIL, fail)) == 1


def attempts_of(session: Session, job_id: str) -> list[Attempt]:
    return list(
        session.scalars(select(Attempt).where(Attempt.job_id == job_id).order_by(Attempt.number))
    )
