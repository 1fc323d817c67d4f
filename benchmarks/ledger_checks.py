"""Checks that a scenario's jobs finished, with their results and usage in the ledger."""

from sqlalchemy import func, select

from benchmarks.context import Ledger
from ledger.models import Job, JobStatus, UsageRecord


def check_jobs_succeeded(ledger: Ledger, expected: int) -> None:
    """Raise RuntimeError unless ``expected`` jobs succeeded, each with one billable usage row."""
    with ledger.sessions() as session:
        statuses = dict(
            session.execute(select(Job.status, func.count()).group_by(Job.status)).tuples().all()
        )
        billable = session.scalar(
            select(func.count()).select_from(UsageRecord).where(UsageRecord.billable)
        )
    succeeded = statuses.get(JobStatus.SUCCEEDED.value, 0)
    if succeeded != expected or billable != expected:
        raise RuntimeError(
            f"expected {expected} succeeded jobs with billable usage; the ledger has job "
            f"statuses {statuses} and {billable} billable usage rows"
        )
