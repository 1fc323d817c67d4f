"""Jobs in the ledger: submission with idempotency keys, look-up and listing."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, tuple_, update
from sqlalchemy.orm import Session

from ledger.errors import IdempotencyConflict, NotFound
from ledger.models import Job, JobStatus
from ledger.sql import insert_ignoring_conflicts, rowcount
from ledger.types import utcnow


@dataclass(frozen=True)
class NewJob:
    tenant_id: str
    agent: str
    input: dict[str, Any]
    idempotency_key: str | None = None
    priority: int = 0
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass(frozen=True)
class SubmittedJob:
    job: Job
    created: bool
    """False when an earlier job with the same tenant and idempotency key was returned."""


def insert_jobs(session: Session, new_jobs: Sequence[NewJob]) -> list[SubmittedJob]:
    """Insert queued jobs; a job whose idempotency key its tenant already used returns the
    existing job instead. The result is in the order of ``new_jobs``."""
    if not new_jobs:
        return []
    check_key_conflicts(session, new_jobs)
    now = utcnow()
    rows = [_row(job, now) for job in new_jobs]
    session.execute(
        insert_ignoring_conflicts(session, Job.__table__, "tenant_id", "idempotency_key"), rows
    )

    created = {
        job.id: job
        for job in session.scalars(select(Job).where(Job.id.in_([j.id for j in new_jobs])))
    }
    by_key = _jobs_by_key(session, [j for j in new_jobs if j.id not in created])
    results = []
    for new in new_jobs:
        if new.id in created:
            results.append(SubmittedJob(created[new.id], created=True))
        else:
            results.append(
                SubmittedJob(by_key[(new.tenant_id, new.idempotency_key)], created=False)
            )
    return results


def check_key_conflicts(session: Session, new_jobs: Sequence[NewJob]) -> None:
    """Raise IdempotencyConflict if a key of these jobs names an earlier job of another agent."""
    wanted: dict[tuple[str, str | None], str] = {
        (j.tenant_id, j.idempotency_key): j.agent for j in new_jobs if j.idempotency_key
    }
    for key, job in _jobs_by_key(session, new_jobs).items():
        if job.agent != wanted[key]:
            raise IdempotencyConflict(
                f"idempotency key {key[1]!r} of tenant {key[0]!r} already names job {job.id} of "
                f"agent {job.agent!r}, not {wanted[key]!r}; give each agent's jobs their own keys"
            )


def _row(job: NewJob, now: datetime) -> dict[str, Any]:
    return {
        "id": job.id,
        "tenant_id": job.tenant_id,
        "agent": job.agent,
        "input": job.input,
        "idempotency_key": job.idempotency_key,
        "priority": job.priority,
        "status": JobStatus.QUEUED.value,
        "attempts": 0,
        "created_at": now,
    }


def _jobs_by_key(session: Session, jobs: Sequence[NewJob]) -> dict[tuple[str, str | None], Job]:
    keys = [(j.tenant_id, j.idempotency_key) for j in jobs if j.idempotency_key is not None]
    if not keys:
        return {}
    found = session.scalars(select(Job).where(tuple_(Job.tenant_id, Job.idempotency_key).in_(keys)))
    return {(job.tenant_id, job.idempotency_key): job for job in found}


def delete_unsent_jobs(session: Session, job_ids: Sequence[str]) -> int:
    """Delete queued jobs that never reached the broker, so none waits forever."""
    unsent = delete(Job).where(Job.id.in_(job_ids), Job.status == JobStatus.QUEUED.value)
    return rowcount(session.execute(unsent))


def cancel_jobs(session: Session, job_ids: Sequence[str], tenant_id: str | None = None) -> int:
    """Cancel jobs that are queued or running; return how many were cancelled.

    A worker skips a cancelled job it has not started. One already calling its provider
    finishes the call, which is recorded as provider cost and not billed.
    """
    cancel = (
        update(Job)
        .where(
            Job.id.in_(job_ids), Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value])
        )
        .values(
            status=JobStatus.CANCELLED.value, error="cancelled by request", finished_at=utcnow()
        )
    )
    if tenant_id is not None:
        cancel = cancel.where(Job.tenant_id == tenant_id)
    return rowcount(session.execute(cancel))


def get_job(session: Session, job_id: str, tenant_id: str | None = None) -> Job:
    """Return a job; with a tenant, another tenant's job is reported as not found."""
    query = select(Job).where(Job.id == job_id)
    if tenant_id is not None:
        query = query.where(Job.tenant_id == tenant_id)
    job = session.scalar(query)
    if job is None:
        raise NotFound(f"job {job_id!r} not found")
    return job


def get_jobs(session: Session, job_ids: Sequence[str]) -> list[Job]:
    """Return the jobs with these ids, in any order; unknown ids are left out."""
    jobs: list[Job] = []
    for start in range(0, len(job_ids), 500):
        chunk = job_ids[start : start + 500]
        jobs.extend(session.scalars(select(Job).where(Job.id.in_(chunk))))
    return jobs


def list_jobs(
    session: Session,
    *,
    tenant_id: str | None = None,
    agent: str | None = None,
    statuses: Sequence[str] = (),
    limit: int | None = 100,
) -> list[Job]:
    """Return jobs newest first, filtered by tenant, agent and status."""
    query = select(Job).order_by(Job.created_at.desc(), Job.id)
    if tenant_id is not None:
        query = query.where(Job.tenant_id == tenant_id)
    if agent is not None:
        query = query.where(Job.agent == agent)
    if statuses:
        query = query.where(Job.status.in_(list(statuses)))
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))
