"""Claims of jobs by deliveries of their messages: one holder per running job.

The statements are SQLAlchemy Core over the tables, built once at import: they run
for every job a worker takes, where building ORM statements per call would cost
several times the database's own work.
"""

import enum
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from ledger.models import Attempt, AttemptStatus, Job, JobStatus
from ledger.sql import rowcount
from ledger.types import utcnow

log = logging.getLogger(__name__)

CLAIMABLE = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)

JOB_TABLE = cast(Table, Job.__table__)
ATTEMPT_TABLE = cast(Table, Attempt.__table__)
JOBS = JOB_TABLE.c
ATTEMPTS = ATTEMPT_TABLE.c


@dataclass(frozen=True)
class ClaimedJob:
    id: str
    tenant_id: str
    agent: str
    input: dict[str, Any]
    deadline_at: datetime
    deliveries: int = 1
    # Attempts made by earlier deliveries.
    attempts: int = 0


class Skip(enum.Enum):
    """Reason a delivery of a job was not claimed."""

    UNKNOWN = "unknown"
    FINISHED = "finished"
    # Another delivery claimed the job and its deadline has not passed.
    HELD = "held"


CLAIMED_COLUMNS = (
    JOBS.id,
    JOBS.tenant_id,
    JOBS.agent,
    JOBS.input,
    JOBS.deadline_at,
    JOBS.deliveries,
    JOBS.attempts,
)
_NOW = bindparam("b_now", type_=JOBS.started_at.type)
_DEADLINE = bindparam("b_deadline", type_=JOBS.deadline_at.type)
_CLAIM_VALUES: dict[str, Any] = {
    "status": JobStatus.RUNNING.value,
    "started_at": func.coalesce(JOBS.started_at, _NOW),
    "deliveries": JOBS.deliveries + 1,
    "claim_token": bindparam("b_token", type_=JOBS.claim_token.type),
}
# A job that no delivery has claimed: queued, or released to wait, which keeps its first
# deadline.
_CLAIM_FREE = (
    update(JOB_TABLE)
    .where(JOBS.id == bindparam("b_id"), JOBS.status.in_(CLAIMABLE), JOBS.deliveries == 0)
    .values(deadline_at=func.coalesce(JOBS.deadline_at, _DEADLINE), **_CLAIM_VALUES)
    .returning(*CLAIMED_COLUMNS)
)
# A job whose holder let its deadline pass, as read under the row lock.
_TAKE_OVER = (
    update(JOB_TABLE)
    .where(
        JOBS.id == bindparam("b_id"),
        JOBS.status == JobStatus.RUNNING.value,
        JOBS.deliveries == bindparam("b_deliveries"),
        JOBS.deadline_at < _NOW,
    )
    .values(deadline_at=_DEADLINE, **_CLAIM_VALUES)
    .returning(*CLAIMED_COLUMNS)
)
_LOCK = (
    select(JOBS.status, JOBS.deliveries, JOBS.deadline_at, JOBS.claim_token)
    .where(JOBS.id == bindparam("b_id"))
    .with_for_update()
)
_CLAIMED = select(*CLAIMED_COLUMNS).where(JOBS.id == bindparam("b_id"))
_ORPHAN = (
    update(ATTEMPT_TABLE)
    .where(ATTEMPTS.job_id == bindparam("b_job"), ATTEMPTS.status == AttemptStatus.STARTED.value)
    .values(
        status=AttemptStatus.ORPHANED.value,
        finished_at=bindparam("b_now", type_=ATTEMPTS.finished_at.type),
    )
)
_RELEASE = update(JOB_TABLE).where(JOBS.id == bindparam("b_id")).values(deliveries=0)


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
    params = {
        "b_id": job_id,
        "b_now": now,
        "b_deadline": now + timedelta(seconds=time_limit_s),
        "b_token": token,
    }
    claimed = session.execute(_CLAIM_FREE, params).one_or_none()
    if claimed is not None:
        return claimed_job(claimed)
    return _claim_held(session, params, token)


def _claim_held(session: Session, params: dict[str, Any], token: str | None) -> ClaimedJob | Skip:
    """Claim a job that a delivery holds: its own retried claim, or one past its deadline."""
    job_id, now = params["b_id"], params["b_now"]
    row = session.execute(_LOCK, params).one_or_none()
    if row is None:
        return Skip.UNKNOWN
    if row.status not in CLAIMABLE:
        return Skip.FINISHED
    if row.deliveries == 0:
        # Released between the two statements; the next delivery takes it.
        return Skip.HELD
    if token is not None and row.claim_token == token:
        return claimed_job(session.execute(_CLAIMED, params).one())
    if row.deadline_at is None or row.deadline_at >= now:
        return Skip.HELD
    claimed = session.execute(_TAKE_OVER, {**params, "b_deliveries": row.deliveries}).one_or_none()
    if claimed is None:
        # Another delivery took it over between the read and the update (SQLite has no
        # row lock).
        return Skip.HELD
    orphaned = orphan_open_attempts(session, job_id, now)
    log.warning(
        "job %s: its deadline passed under an earlier delivery; %d open attempt(s) "
        "orphaned, running it again with a new deadline",
        job_id,
        orphaned,
    )
    return claimed_job(claimed)


def claimed_job(row: Any) -> ClaimedJob:
    """Return the claimed job of a row of ``CLAIMED_COLUMNS``."""
    return ClaimedJob(
        row.id, row.tenant_id, row.agent, row.input, row.deadline_at, row.deliveries, row.attempts
    )


def orphan_open_attempts(session: Session, job_id: str, now: datetime) -> int:
    """Mark attempts that were opened but never closed: their calls' outcome is unknown."""
    return rowcount(session.execute(_ORPHAN, {"b_job": job_id, "b_now": now}))


def release_for_requeue(session: Session, job_id: str) -> None:
    """Release a job that re-enqueues itself to wait, so its next delivery may claim it and
    the wait is not mistaken for a worker that died."""
    session.execute(_RELEASE, {"b_id": job_id})
