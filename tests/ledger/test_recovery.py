from datetime import datetime, timedelta

from sqlalchemy import update

from ledger.calls import attempts_of, open_attempt
from ledger.claims import claim_job
from ledger.db import transaction
from ledger.jobs import NewJob, get_job, insert_jobs
from ledger.models import Job
from ledger.recovery import RecoveryResult, recover_stuck_jobs, resend_lost_queued_jobs
from ledger.types import utcnow
from tests.support import add_tenant, migrated_sessions


def test_stuck_job_is_sent_again_then_failed(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    add_tenant(sessions, "acme")
    with transaction(sessions) as session:
        stuck, fresh = (
            s.job.id
            for s in insert_jobs(
                session,
                [
                    NewJob("acme", "triage", {"narrative": "a"}),
                    NewJob("acme", "triage", {"narrative": "b"}),
                ],
            )
        )
        for job_id, limit_s in ((stuck, 120), (fresh, 600)):
            claim_job(session, job_id, time_limit_s=limit_s)
            open_attempt(session, job_id, "openai", "gpt-4o-mini")
        # The stuck job's worker died: its deadline passed five minutes ago.
        session.execute(
            update(Job).where(Job.id == stuck).values(deadline_at=utcnow() - timedelta(minutes=5))
        )

    now = utcnow()
    with transaction(sessions) as session:
        first = recover_stuck_jobs(session, now, grace_s=60, max_recoveries=1)
    assert first.resent == [(stuck, "triage")]
    assert (first.failed, first.orphaned_attempts) == ([], 1)
    with sessions() as session:
        job = get_job(session, stuck)
        assert [a.status for a in attempts_of(session, stuck)] == ["orphaned"]
        assert [a.status for a in attempts_of(session, fresh)] == ["started"]
    # Queued again with no deadline: the time limit starts when a worker takes it.
    assert (job.status, job.recoveries, job.deliveries) == ("queued", 1, 0)
    assert job.deadline_at is None

    later = now + timedelta(minutes=4)
    with transaction(sessions) as session:
        # The job's next worker takes it and dies too.
        claim_job(session, stuck, 120, now=later - timedelta(minutes=4))
        open_attempt(session, stuck, "openai", "gpt-4o-mini")
    with transaction(sessions) as session:
        second = recover_stuck_jobs(session, later, grace_s=60, max_recoveries=1)
    assert (second.resent, second.failed) == ([], [stuck])
    with sessions() as session:
        job = get_job(session, stuck)
        other = get_job(session, fresh)
    assert job.status == "failed"
    assert job.error == (
        "still running 60 s past its deadline after 1 recoveries; its workers stopped without finishing it"
    )
    assert other.status == "running"


def test_job_within_grace_is_left_alone(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    add_tenant(sessions, "acme")
    with transaction(sessions) as session:
        job_id = insert_jobs(session, [NewJob("acme", "triage", {"narrative": "a"})])[0].job.id
        claim_job(session, job_id, time_limit_s=120)
        session.execute(
            update(Job).where(Job.id == job_id).values(deadline_at=utcnow() - timedelta(seconds=30))
        )
    with transaction(sessions) as session:
        result = recover_stuck_jobs(session, utcnow(), grace_s=60, max_recoveries=1)
    assert (result.resent, result.failed) == ([], [])


def test_lost_queued_job_resent_then_failed(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    add_tenant(sessions, "acme")
    with transaction(sessions) as session:
        lost, busy_agent, recent = (
            s.job.id
            for s in insert_jobs(
                session,
                [
                    NewJob("acme", "triage", {"narrative": "a"}),
                    NewJob("acme", "summarize", {"text": "b"}),
                    NewJob("acme", "triage", {"narrative": "c"}),
                ],
            )
        )
        session.execute(
            update(Job)
            .where(Job.id.in_([lost, busy_agent]))
            .values(created_at=utcnow() - timedelta(minutes=20))
        )

    def resend(now: datetime) -> RecoveryResult:
        # The summarize queue still has messages, so its old job is waiting its turn.
        with transaction(sessions) as session:
            return resend_lost_queued_jobs(
                session, now, older_than_s=600, empty_agents={"triage"}, max_recoveries=1
            )

    first = resend(utcnow())
    assert (first.resent, first.failed) == ([(lost, "triage")], [])
    second = resend(utcnow())
    assert (second.resent, second.failed) == ([], [lost])
    with sessions() as session:
        failed, waiting, fresh = (get_job(session, i) for i in (lost, busy_agent, recent))
    assert (failed.status, failed.recoveries) == ("failed", 1)
    assert failed.error == (
        "queued for more than 600 s with its queue empty, after being sent 2 times; "
        "the broker lost its messages"
    )
    assert (waiting.status, fresh.status) == ("queued", "queued")
