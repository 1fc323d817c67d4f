"""Celery tasks: the agent job and the periodic rollup."""

import logging
from datetime import UTC, datetime

from celery import Task, shared_task

from agents import RUN_TASK_NAME, queue_for
from ledger.db import transaction
from ledger.periods import Period
from ledger.recovery import RecoveryResult, resend_lost_queued_jobs
from ledger.recovery import recover_stuck_jobs as recover
from ledger.rollup import rollup_period
from ledger.types import utcnow
from workers.app import RECOVERY_TASK_NAME, ROLLUP_TASK_NAME
from workers.locks import single_run
from workers.queues import empty_queues
from workers.runner import JobRunner, RequeueJob
from workers.runtime import WorkerRuntime, get_runtime

log = logging.getLogger(__name__)

# Periodic tasks hold their lock at most this long, in case the holder dies.
LOCK_TTL_S = 600


@shared_task(name=RUN_TASK_NAME, bind=True)
def run_job(self: Task, job_id: str, agent: str) -> str:
    """Run one agent job; its outcome is written to the ledger, not returned to Celery.

    A job that must wait long is sent back to its queue with a countdown, so the wait
    takes no worker thread; its attempts so far are in the ledger.
    """
    try:
        return JobRunner(get_runtime()).run(job_id, agent)
    except RequeueJob as exc:
        log.info("job %s agent %s %s", job_id, agent, exc)
        raise self.retry(countdown=exc.countdown_s, max_retries=None) from None


@shared_task(name=RECOVERY_TASK_NAME)
def recover_stuck_jobs() -> int:
    """Send again, or fail, jobs whose message is gone; return how many."""
    runtime = get_runtime()
    with single_run(runtime.redis, "recover_stuck_jobs", LOCK_TTL_S) as mine:
        if not mine:
            log.info("another process is recovering stuck jobs; this run is skipped")
            return 0
        return _recover_running(runtime) + _recover_queued(runtime)


def _recover_running(runtime: WorkerRuntime) -> int:
    settings = runtime.settings
    with transaction(runtime.sessions) as session:
        result = recover(session, utcnow(), settings.recovery_grace_s, settings.max_recoveries)
    return _send_again(result, "stuck running past their deadline")


def _recover_queued(runtime: WorkerRuntime) -> int:
    settings = runtime.settings
    queues = {queue_for(name): name for name in runtime.agents}
    empty = [queues[queue] for queue in empty_queues(run_job.app, queues)]
    with transaction(runtime.sessions) as session:
        result = resend_lost_queued_jobs(
            session, utcnow(), settings.resend_queued_after_s, empty, settings.max_recoveries
        )
    return _send_again(result, "queued with their message lost")


def _send_again(result: RecoveryResult, kind: str) -> int:
    for job_id, agent in result.resent:
        run_job.apply_async(kwargs={"job_id": job_id, "agent": agent})
    if result.resent or result.failed:
        log.warning(
            "recovered jobs %s: %d sent again, %d failed, %d attempts orphaned; failed: %s",
            kind,
            len(result.resent),
            len(result.failed),
            result.orphaned_attempts,
            ", ".join(result.failed) or "none",
        )
    return len(result.resent) + len(result.failed)


@shared_task(name=ROLLUP_TASK_NAME)
def rollup() -> int:
    """Refresh the draft invoices of the current and the previous month."""
    runtime = get_runtime()
    with single_run(runtime.redis, "rollup", LOCK_TTL_S) as mine:
        if not mine:
            log.info("another process is rolling usage up; this run is skipped")
            return 0
        current = Period.month_of(datetime.now(UTC))
        results = []
        for period in (current.previous(), current):
            results.extend(rollup_period(runtime.sessions, period))
    log.info("rollup refreshed %d invoices", sum(not r.skipped_final for r in results))
    return len(results)
