"""The hot ledger writes of many jobs at once: claims, attempt rows and completions.

Each function takes the requests of several jobs and returns one result per request in
order, the same result the single-job functions would give run one after the other. On
PostgreSQL the common case of every request is one set-based statement for all of them
(see ``ledger.batch_statements``), also for a single attempt or completion, which the
single-job functions write in two or three statements. A claim of one job runs
``claim_job``, one statement as well. A request that the common case does not cover
falls back to the single-job function in the same transaction. Such requests are a job
held by another delivery, a write retried after a lost commit, and a second request for
a job already in the batch. On SQLite each request runs the single-job function.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from ledger import batch_statements
from ledger.calls import CallRecord, complete_job, open_attempt
from ledger.claims import ClaimedJob, Skip, claim_job, claimed_job
from ledger.types import utcnow

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
    deadlines = [now + timedelta(seconds=r.time_limit_s) for r in requests]
    rows = batch_statements.claim_free_jobs(
        session, [r.job_id for r in requests], [r.token for r in requests], deadlines, now
    )
    return {row.claim_token: claimed_job(row) for row in rows}


def open_attempts(session: Session, requests: Sequence[AttemptRequest]) -> list[str]:
    """Write each request's attempt row as ``open_attempt`` does, and return the ids."""
    opened: set[str] = set()
    if _postgres(session) and requests:
        firsts = _first_per_job(requests, lambda r: r.job_id)
        rows = [(r.job_id, r.attempt_id, r.provider, r.model) for r in firsts]
        opened = batch_statements.open_new_attempts(session, rows, utcnow())
    return [
        r.attempt_id
        if r.attempt_id in opened
        else open_attempt(session, r.job_id, r.provider, r.model, r.attempt_id)
        for r in requests
    ]


def complete_jobs(session: Session, completions: Sequence[Completion]) -> list[bool]:
    """Store each job's result and bill its call as ``complete_job`` does."""
    if not _postgres(session) or not completions:
        return [complete_job(session, c.job, c.call, c.result) for c in completions]
    firsts = _first_per_job(completions, lambda c: c.job.id)
    finished, billed = batch_statements.complete(
        session, [(c.job, c.call, c.result) for c in firsts], utcnow()
    )
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
