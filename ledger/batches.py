"""The hot ledger writes of many jobs at once: claims, attempt rows and completions.

Each function takes the requests of several jobs and returns one result per request in
order, the same result the single-job functions would give run one after the other. On
PostgreSQL the common case of every request is one set-based statement for all of them
(an UPDATE ... FROM VALUES, an INSERT of many rows). A request that the common case
does not cover falls back to the single-job function in the same transaction. Such
requests are a job held by another delivery, a write retried after a lost commit, and
a second request for a job already in the batch. On SQLite each request runs the
single-job function.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import JSON, String, column, func, insert, select, update, values
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from ledger.calls import (
    USAGE_TABLE,
    CallRecord,
    close_succeeded_attempts,
    complete_job,
    open_attempt,
    usage_row,
)
from ledger.claims import (
    ATTEMPT_TABLE,
    ATTEMPTS,
    CLAIMABLE,
    CLAIMED_COLUMNS,
    JOB_TABLE,
    JOBS,
    ClaimedJob,
    Skip,
    claim_job,
    claimed_job,
)
from ledger.models import AttemptStatus, JobStatus
from ledger.types import UTCDateTime, utcnow

RequestT = TypeVar("RequestT")


@dataclass(frozen=True)
class ClaimRequest:
    job_id: str
    time_limit_s: float
    token: str


@dataclass(frozen=True)
class AttemptRequest:
    job_id: str
    provider: str
    model: str
    attempt_id: str


@dataclass(frozen=True)
class Completion:
    job: ClaimedJob
    call: CallRecord
    result: Any


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _first_per_job(
    requests: Sequence[RequestT], job_of: Callable[[RequestT], str]
) -> list[RequestT]:
    """Return the first request of each job. Two deliveries of one job can share a batch,
    and a set-based statement would apply only one of them to the job's row."""
    seen: set[str] = set()
    firsts = []
    for request in requests:
        if job_of(request) not in seen:
            seen.add(job_of(request))
            firsts.append(request)
    return firsts


def claim_jobs(session: Session, requests: Sequence[ClaimRequest]) -> list[ClaimedJob | Skip]:
    """Claim each request's job as ``claim_job`` does."""
    now = utcnow()
    claimed: dict[str, ClaimedJob] = {}
    if _postgres(session) and len(requests) > 1:
        claimed = _claim_free_jobs(session, _first_per_job(requests, lambda r: r.job_id), now)
    return [
        claimed.get(r.token) or claim_job(session, r.job_id, r.time_limit_s, now, r.token)
        for r in requests
    ]


def _claim_free_jobs(
    session: Session, requests: Sequence[ClaimRequest], now: datetime
) -> dict[str, ClaimedJob]:
    """Claim the jobs that no delivery holds, and return them by the claiming token."""
    locked = _lock_jobs(session, [r.job_id for r in requests])
    free = [
        r
        for r in requests
        if (job := locked.get(r.job_id)) is not None
        and job.status in CLAIMABLE
        and job.deliveries == 0
    ]
    if not free:
        return {}
    rows = values(
        column("b_id", String),
        column("b_token", String),
        column("b_deadline", UTCDateTime()),
        name="claims",
    ).data([(r.job_id, r.token, now + timedelta(seconds=r.time_limit_s)) for r in free])
    claim = (
        update(JOB_TABLE)
        .where(JOBS.id == rows.c.b_id)
        .values(
            status=JobStatus.RUNNING.value,
            started_at=func.coalesce(JOBS.started_at, now),
            deadline_at=func.coalesce(JOBS.deadline_at, rows.c.b_deadline),
            deliveries=JOBS.deliveries + 1,
            claim_token=rows.c.b_token,
        )
        .returning(*CLAIMED_COLUMNS, JOBS.claim_token)
    )
    return {row.claim_token: claimed_job(row) for row in session.execute(claim)}


def _lock_jobs(session: Session, job_ids: Sequence[str]) -> dict[str, Any]:
    """Lock the jobs' rows for the transaction, in id order, and return their state.

    The set-based statements that follow select rows by primary key only: a condition on
    ``status`` beside the join lets PostgreSQL scan the status index instead, which takes
    every queued job when the table's statistics are older than its rows.
    """
    lock = (
        select(JOBS.id, JOBS.status, JOBS.deliveries)
        .where(JOBS.id.in_(sorted(job_ids)))
        .order_by(JOBS.id)
        .with_for_update()
    )
    return {row.id: row for row in session.execute(lock)}


def open_attempts(session: Session, requests: Sequence[AttemptRequest]) -> list[str]:
    """Write each request's attempt row as ``open_attempt`` does, and return the ids."""
    opened: set[str] = set()
    if _postgres(session) and len(requests) > 1:
        opened = _open_new_attempts(session, _first_per_job(requests, lambda r: r.job_id))
    return [
        r.attempt_id
        if r.attempt_id in opened
        else open_attempt(session, r.job_id, r.provider, r.model, r.attempt_id)
        for r in requests
    ]


def _open_new_attempts(session: Session, requests: Sequence[AttemptRequest]) -> set[str]:
    """Count and insert the attempts not written yet, and return their ids."""
    by_job = {r.job_id: r for r in requests}
    rows = values(column("b_job", String), column("b_attempt", String), name="opens").data(
        [(r.job_id, r.attempt_id) for r in requests]
    )
    written = ATTEMPT_TABLE.select().where(ATTEMPTS.id == rows.c.b_attempt).exists()
    count = (
        update(JOB_TABLE)
        .where(JOBS.id == rows.c.b_job, ~written)
        .values(attempts=JOBS.attempts + 1)
        .returning(JOBS.id, JOBS.attempts)
    )
    numbers: dict[str, int] = {job_id: number for job_id, number in session.execute(count)}
    if not numbers:
        return set()
    started_at = utcnow()
    session.execute(
        insert(ATTEMPT_TABLE),
        [
            {"id": by_job[job_id].attempt_id, "job_id": job_id, "number": number,
             "provider": by_job[job_id].provider, "model": by_job[job_id].model,
             "status": AttemptStatus.STARTED.value, "started_at": started_at}
            for job_id, number in numbers.items()
        ],
    )  # fmt: skip
    return {by_job[job_id].attempt_id for job_id in numbers}


def complete_jobs(session: Session, completions: Sequence[Completion]) -> list[bool]:
    """Store each job's result and bill its call as ``complete_job`` does."""
    if not _postgres(session) or len(completions) < 2:
        return [complete_job(session, c.job, c.call, c.result) for c in completions]
    firsts = _first_per_job(completions, lambda c: c.job.id)
    finished = _finish_running(session, firsts)
    billed = _insert_usage(session, firsts, finished)
    close_succeeded_attempts(session, [c.call for c in firsts if c.call.attempt_id in billed])
    first_attempts = {c.call.attempt_id for c in firsts}
    results = []
    for completion in completions:
        job, call = completion.job, completion.call
        if call.attempt_id in billed:
            results.append(job.id in finished)
        elif call.attempt_id in first_attempts and job.id in finished:
            # No single-job write leaves a usage row for a running job's attempt, so the
            # error rolls the batch back and each write runs again alone.
            raise RuntimeError(
                f"attempt {call.attempt_id} of running job {job.id} already has a usage row"
            )
        else:
            # A retried write whose first commit went through, or a second completion of
            # a job in this batch: the single-job write records it as it would alone.
            results.append(complete_job(session, job, call, completion.result))
    return results


def _finish_running(session: Session, completions: Sequence[Completion]) -> set[str]:
    """Mark the jobs still running as succeeded with their results, and return their ids."""
    locked = _lock_jobs(session, [c.job.id for c in completions])
    running = [
        c
        for c in completions
        if (job := locked.get(c.job.id)) is not None and job.status == JobStatus.RUNNING.value
    ]
    if not running:
        return set()
    rows = values(column("b_job", String), column("b_result", JSON), name="results").data(
        [(c.job.id, c.result) for c in running]
    )
    finish = (
        update(JOB_TABLE)
        .where(JOBS.id == rows.c.b_job)
        .values(
            status=JobStatus.SUCCEEDED.value,
            result=rows.c.b_result,
            error=None,
            finished_at=utcnow(),
        )
        .returning(JOBS.id)
    )
    return set(session.scalars(finish))


def _insert_usage(
    session: Session, completions: Sequence[Completion], finished: set[str]
) -> set[str]:
    """Insert the calls' usage rows, billable for the jobs this batch finished, and return
    the attempt ids whose rows this statement inserted."""
    insert_usage = (
        postgresql.insert(USAGE_TABLE)
        .on_conflict_do_nothing(index_elements=["attempt_id"])
        .returning(USAGE_TABLE.c.attempt_id)
    )
    rows = [usage_row(c.job, c.call, billable=c.job.id in finished) for c in completions]
    return set(session.scalars(insert_usage, rows))
