from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ledger.calls import CallRecord, attempts_of, complete_job, fail_job, open_attempt, record_usage
from ledger.claims import ClaimedJob, Skip, claim_job, release_for_requeue
from ledger.db import transaction
from ledger.jobs import NewJob, delete_unsent_jobs, get_job, insert_jobs, list_jobs
from ledger.models import Attempt, JobStatus, UsageRecord
from ledger.prices import CallCost
from ledger.types import utcnow
from ledger.usage import TokenUsage
from tests.support import add_tenant, migrated_sessions

AT = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def call_for(attempt_id: str, tokens: int = 100) -> CallRecord:
    usage = TokenUsage(input_tokens=tokens, output_tokens=tokens // 2)
    return CallRecord(
        attempt_id, "openai", "gpt-4o-mini", usage, CallCost(Decimal("0.000045"), "USD"), AT
    )


def test_idempotency_key_returns_first_job(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    add_tenant(sessions, "acme")
    add_tenant(sessions, "globex")
    with transaction(sessions) as session:
        first = insert_jobs(session, [NewJob("acme", "triage", {"narrative": "a"}, "key-1")])
    with transaction(sessions) as session:
        again = insert_jobs(
            session,
            [
                NewJob("acme", "triage", {"narrative": "b"}, "key-1"),
                NewJob("acme", "triage", {"narrative": "c"}, "key-2"),
                NewJob("acme", "triage", {"narrative": "d"}, "key-2"),
                NewJob("globex", "triage", {"narrative": "e"}, "key-1"),
            ],
        )
    assert first[0].created
    assert [s.created for s in again] == [False, True, False, True]
    assert again[0].job.id == first[0].job.id
    assert again[0].job.input == {"narrative": "a"}
    assert again[2].job.id == again[1].job.id
    assert again[3].job.id != first[0].job.id
    with sessions() as session:
        assert len(list_jobs(session, limit=None)) == 3
        assert len(list_jobs(session, tenant_id="acme", limit=None)) == 2


def test_other_tenants_job_not_found(ledger_url: str) -> None:
    from ledger.errors import NotFound

    sessions = migrated_sessions(ledger_url)
    add_tenant(sessions, "acme")
    with transaction(sessions) as session:
        job = insert_jobs(session, [NewJob("acme", "triage", {"narrative": "a"})])[0].job
    with sessions() as session:
        assert get_job(session, job.id, "acme").id == job.id
        with pytest.raises(NotFound, match=f"job '{job.id}' not found"):
            get_job(session, job.id, "globex")


def test_success_bills_only_completing_call(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    add_tenant(sessions, "acme")
    with transaction(sessions) as session:
        job_id = insert_jobs(session, [NewJob("acme", "triage", {"narrative": "a"})])[0].job.id
    with transaction(sessions) as session:
        job = claim_job(session, job_id, time_limit_s=60)
        assert isinstance(job, ClaimedJob)
        first = open_attempt(session, job_id, "openai", "gpt-4o-mini")
        second = open_attempt(session, job_id, "openai", "gpt-4o-mini")
    with transaction(sessions) as session:
        record_usage(session, job, call_for(first), billable=False)
    with transaction(sessions) as session:
        assert complete_job(session, job, call_for(second), {"ok": True})
    with transaction(sessions) as session:
        # A duplicate delivery that finishes later records cost but bills nothing.
        third = open_attempt(session, job_id, "openai", "gpt-4o-mini")
    with transaction(sessions) as session:
        assert not complete_job(session, job, call_for(third), {"ok": False})
    with transaction(sessions) as session:
        assert claim_job(session, job_id, time_limit_s=60) is Skip.FINISHED

    with sessions() as session:
        stored = get_job(session, job_id)
        records = session.scalars(select(UsageRecord).order_by(UsageRecord.id)).all()
        numbers = session.scalars(select(Attempt.number).order_by(Attempt.number)).all()
    assert stored.status == JobStatus.SUCCEEDED
    assert stored.result == {"ok": True}
    assert stored.attempts == 3
    assert list(numbers) == [1, 2, 3]
    assert [(r.attempt_id, r.billable) for r in records] == [
        (first, False),
        (second, True),
        (third, False),
    ]


def test_usage_replay_changes_nothing(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    add_tenant(sessions, "acme")
    with transaction(sessions) as session:
        job_id = insert_jobs(session, [NewJob("acme", "triage", {"narrative": "a"})])[0].job.id
        job = claim_job(session, job_id, time_limit_s=60)
        attempt = open_attempt(session, job_id, "openai", "gpt-4o-mini")
    assert isinstance(job, ClaimedJob)
    with transaction(sessions) as session:
        assert record_usage(session, job, call_for(attempt), billable=False)
    with transaction(sessions) as session:
        assert not record_usage(session, job, call_for(attempt, tokens=999), billable=False)
    with sessions() as session:
        rows = session.scalars(select(UsageRecord)).all()
    assert [(r.input_tokens, r.cost) for r in rows] == [(100, Decimal("0.000045"))]


def test_database_allows_one_billable_record_per_job(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    add_tenant(sessions, "acme")
    with transaction(sessions) as session:
        job_id = insert_jobs(session, [NewJob("acme", "triage", {"narrative": "a"})])[0].job.id
        job = claim_job(session, job_id, time_limit_s=60)
        first = open_attempt(session, job_id, "openai", "gpt-4o-mini")
        second = open_attempt(session, job_id, "openai", "gpt-4o-mini")
    assert isinstance(job, ClaimedJob)
    with transaction(sessions) as session:
        record_usage(session, job, call_for(first), billable=True)
    with pytest.raises(IntegrityError), transaction(sessions) as session:
        record_usage(session, job, call_for(second), billable=True)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(UsageRecord)) == 1


def test_failed_job_keeps_error(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    add_tenant(sessions, "acme")
    with transaction(sessions) as session:
        job_id = insert_jobs(session, [NewJob("acme", "triage", {"narrative": "a"})])[0].job.id
        claim_job(session, job_id, time_limit_s=60)
        assert fail_job(session, job_id, "HTTP 400: bad model")
        assert not fail_job(session, job_id, "second failure")
    with sessions() as session:
        job = get_job(session, job_id)
    assert (job.status, job.error) == (JobStatus.FAILED, "HTTP 400: bad model")
    assert job.finished_at is not None


def test_unsent_jobs_are_deleted(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    add_tenant(sessions, "acme")
    with transaction(sessions) as session:
        jobs = insert_jobs(
            session, [NewJob("acme", "triage", {"narrative": str(n)}) for n in range(3)]
        )
    with transaction(sessions) as session:
        claim_job(session, jobs[0].job.id, time_limit_s=60)
        deleted = delete_unsent_jobs(session, [s.job.id for s in jobs])
    with sessions() as session:
        remaining = list_jobs(session, limit=None)
    assert deleted == 2
    assert [job.id for job in remaining] == [jobs[0].job.id]


def test_claim_until_release_or_deadline(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    add_tenant(sessions, "acme")
    start = utcnow()
    with transaction(sessions) as session:
        job_id = insert_jobs(session, [NewJob("acme", "triage", {"narrative": "a"})])[0].job.id
        first = claim_job(session, job_id, 60, now=start)
        open_attempt(session, job_id, "openai", "gpt-4o-mini")
    assert isinstance(first, ClaimedJob)
    with transaction(sessions) as session:
        # A copy of the message while the first delivery has time left is skipped.
        assert claim_job(session, job_id, 60, now=start + timedelta(seconds=59)) is Skip.HELD
        release_for_requeue(session, job_id)
        resumed = claim_job(session, job_id, 60, now=start + timedelta(seconds=59))
    # A released job keeps its first deadline and its open attempt.
    assert isinstance(resumed, ClaimedJob)
    assert (resumed.deadline_at, resumed.deliveries) == (first.deadline_at, 1)
    later = start + timedelta(seconds=90)
    with transaction(sessions) as session:
        taken_over = claim_job(session, job_id, 60, now=later)
        statuses = [a.status for a in attempts_of(session, job_id)]
    assert isinstance(taken_over, ClaimedJob)
    assert (taken_over.deadline_at, taken_over.deliveries) == (later + timedelta(seconds=60), 2)
    assert statuses == ["orphaned"]


def test_retried_writes_change_nothing(ledger_url: str) -> None:
    """A write whose commit succeeded but whose reply was lost is retried unchanged."""
    sessions = migrated_sessions(ledger_url)
    add_tenant(sessions, "acme")
    with transaction(sessions) as session:
        job_id = insert_jobs(session, [NewJob("acme", "triage", {"narrative": "a"})])[0].job.id
    claims, attempt_ids, completions = [], [], []
    for _ in range(2):
        with transaction(sessions) as session:
            claims.append(claim_job(session, job_id, 60, token="delivery-1"))
            attempt_ids.append(open_attempt(session, job_id, "openai", "gpt-4o-mini", "a-1"))
    job = claims[0]
    assert isinstance(job, ClaimedJob)
    for _ in range(2):
        with transaction(sessions) as session:
            completions.append(complete_job(session, job, call_for("a-1"), {"ok": True}))
    with sessions() as session:
        stored = get_job(session, job_id)
        attempts = [(a.id, a.number, a.status) for a in attempts_of(session, job_id)]
        usage = session.scalars(select(UsageRecord.billable)).all()
    # The retried claim finds the attempt its first transaction opened.
    assert claims[1] == replace(job, attempts=1)
    assert attempt_ids == ["a-1", "a-1"]
    assert completions == [True, True]
    assert (stored.status, stored.deliveries, stored.attempts) == ("succeeded", 1, 1)
    assert attempts == [("a-1", 1, "succeeded")]
    assert usage == [True]
