"""Recovery of jobs whose message is gone: jobs left running past their deadline, as
when a worker died mid-job, and queued jobs whose message the broker lost."""

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.claims import orphan_open_attempts
from ledger.models import Job, JobStatus


@dataclass
class RecoveryResult:
    """Jobs sent again as (job id, agent), and jobs failed for good."""

    resent: list[tuple[str, str]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    orphaned_attempts: int = 0


def recover_stuck_jobs(
    session: Session, now: datetime, grace_s: float, max_recoveries: int
) -> RecoveryResult:
    """Find running jobs past their deadline by more than ``grace_s``, mark their open
    attempts orphaned, and queue each again to be sent, or fail it once it was recovered
    ``max_recoveries`` times.

    A job sent again is ``queued`` with no deadline, so its time limit starts when a
    worker takes it, however long it waits behind other jobs. Rows are locked and
    skipped when locked, so two recovery runs never take one job.
    """
    stuck = session.scalars(
        select(Job)
        .where(
            Job.status == JobStatus.RUNNING.value,
            Job.deadline_at < now - timedelta(seconds=grace_s),
        )
        .with_for_update(skip_locked=True)
    ).all()
    result = RecoveryResult()
    for job in stuck:
        result.orphaned_attempts += orphan_open_attempts(session, job.id, now)
        if job.recoveries < max_recoveries:
            job.recoveries += 1
            job.status = JobStatus.QUEUED.value
            job.deliveries = 0
            job.deadline_at = None
            result.resent.append((job.id, job.agent))
        else:
            job.status = JobStatus.FAILED.value
            job.finished_at = now
            job.error = (
                f"still running {grace_s:g} s past its deadline after {job.recoveries} "
                "recoveries; its workers stopped without finishing it"
            )
            result.failed.append(job.id)
    return result


# At most this many lost queued jobs are sent again per run, oldest first.
RESEND_BATCH = 10_000


def resend_lost_queued_jobs(
    session: Session,
    now: datetime,
    older_than_s: float,
    empty_agents: Collection[str],
    max_recoveries: int,
) -> RecoveryResult:
    """Send again the jobs still queued ``older_than_s`` after submission while their
    agent's queue is empty. No worker took their message and none is waiting, so the
    broker lost it: a broker restart without persistence, or a dead worker's prefetched
    messages. A job whose message was lost ``max_recoveries`` times is failed.

    Sending a job that does have a message somewhere is harmless: the delivery that
    comes second finds the job held or finished and skips it.
    """
    result = RecoveryResult()
    if not empty_agents:
        return result
    lost = session.scalars(
        select(Job)
        .where(
            Job.status == JobStatus.QUEUED.value,
            Job.agent.in_(list(empty_agents)),
            Job.created_at < now - timedelta(seconds=older_than_s),
        )
        .order_by(Job.created_at)
        .limit(RESEND_BATCH)
        .with_for_update(skip_locked=True)
    ).all()
    for job in lost:
        if job.recoveries < max_recoveries:
            job.recoveries += 1
            result.resent.append((job.id, job.agent))
        else:
            job.status = JobStatus.FAILED.value
            job.finished_at = now
            job.error = (
                f"queued for more than {older_than_s:g} s with its queue empty, after being "
                f"sent {job.recoveries + 1} times; the broker lost its messages"
            )
            result.failed.append(job.id)
    return result
