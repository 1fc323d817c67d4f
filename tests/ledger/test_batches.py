"""Ledger writes of many jobs at once give what the single-job writes give, case by case."""

from datetime import timedelta

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session, sessionmaker

from ledger.batches import (
    AttemptRequest,
    ClaimRequest,
    Completion,
    claim_jobs,
    complete_jobs,
    open_attempts,
)
from ledger.calls import attempts_of, fail_job, open_attempt
from ledger.claims import ClaimedJob, Skip, claim_job
from ledger.db import transaction
from ledger.jobs import NewJob, get_job, insert_jobs
from ledger.models import Job, UsageRecord
from ledger.types import utcnow
from tests.ledger.test_jobs_and_calls import call_for
from tests.support import add_tenant, migrated_sessions


def new_jobs(sessions: sessionmaker[Session], count: int) -> list[str]:
    with transaction(sessions) as session:
        jobs = [NewJob("acme", "triage", {"narrative": str(i)}) for i in range(count)]
        return [submitted.job.id for submitted in insert_jobs(session, jobs)]


def claimed(sessions: sessionmaker[Session], job_id: str, token: str) -> ClaimedJob:
    with transaction(sessions) as session:
        job = claim_job(session, job_id, 60, token=token)
    assert isinstance(job, ClaimedJob)
    return job


def test_claims_cover_every_case(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    add_tenant(sessions, "acme")
    free, other_free, finished, held_elsewhere, expired, own = new_jobs(sessions, 6)
    for job_id in (finished, held_elsewhere, expired, own):
        claimed(sessions, job_id, token=f"first-{job_id[:8]}")
    with transaction(sessions) as session:
        fail_job(session, finished, "failed before")
        past = utcnow() - timedelta(seconds=1)
        session.execute(update(Job).where(Job.id == expired).values(deadline_at=past))

    requests = [ClaimRequest(job_id, 60, f"second-{job_id[:8]}") for job_id in
                (free, other_free, finished, held_elsewhere, expired, "no-such-job")]  # fmt: skip
    requests.append(ClaimRequest(own, 60, f"first-{own[:8]}"))
    with transaction(sessions) as session:
        results = claim_jobs(session, requests)

    kinds = [r.deliveries if isinstance(r, ClaimedJob) else r for r in results]
    assert kinds == [1, 1, Skip.FINISHED, Skip.HELD, 2, Skip.UNKNOWN, 1]
    assert [r.id for r in results if isinstance(r, ClaimedJob)] == [free, other_free, expired, own]
    with sessions() as session:
        tokens = {
            job_id: get_job(session, job_id).claim_token for job_id in (free, held_elsewhere, own)
        }
    assert tokens == {
        free: f"second-{free[:8]}",
        held_elsewhere: f"first-{held_elsewhere[:8]}",
        own: f"first-{own[:8]}",
    }


def test_attempts_counted_once_each(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    add_tenant(sessions, "acme")
    first, second = new_jobs(sessions, 2)
    for job_id in (first, second):
        claimed(sessions, job_id, token=job_id)
    with transaction(sessions) as session:
        opened = open_attempts(
            session,
            [AttemptRequest(first, "openai", "gpt-4o-mini", "a-1"),
             AttemptRequest(second, "openai", "gpt-4o-mini", "b-1")],
        )  # fmt: skip
    assert opened == ["a-1", "b-1"]
    # b-1 again, as a write retried after its commit went through, beside a new attempt.
    with transaction(sessions) as session:
        again = open_attempts(
            session,
            [AttemptRequest(first, "anthropic", "claude-haiku-4-5", "a-2"),
             AttemptRequest(second, "openai", "gpt-4o-mini", "b-1")],
        )  # fmt: skip
    assert again == ["a-2", "b-1"]
    with sessions() as session:
        numbers = {
            job_id: [(a.id, a.number, a.provider) for a in attempts_of(session, job_id)]
            for job_id in (first, second)
        }
        counts = [get_job(session, job_id).attempts for job_id in (first, second)]
    assert numbers[first] == [("a-1", 1, "openai"), ("a-2", 2, "anthropic")]
    assert numbers[second] == [("b-1", 1, "openai")]
    assert counts == [2, 1]


def test_completions_bill_once(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    add_tenant(sessions, "acme")
    job_ids = new_jobs(sessions, 3)
    jobs = [claimed(sessions, job_id, token=job_id) for job_id in job_ids]
    with transaction(sessions) as session:
        for index, job in enumerate(jobs):
            open_attempt(session, job.id, "openai", "gpt-4o-mini", f"attempt-{index}")
        # Another delivery failed the third job first: its call is cost only.
        fail_job(session, jobs[2].id, "failed elsewhere")
    completions = [Completion(job, call_for(f"attempt-{index}"), {"n": index})
                   for index, job in enumerate(jobs)]  # fmt: skip

    with transaction(sessions) as session:
        first = complete_jobs(session, completions)
    # Every write again, as after a commit whose reply was lost.
    with transaction(sessions) as session:
        retried = complete_jobs(session, completions)

    assert first == [True, True, False]
    assert retried == first
    with sessions() as session:
        usage = session.execute(
            select(UsageRecord.attempt_id, UsageRecord.billable).order_by(UsageRecord.attempt_id)
        ).all()
        stored = [get_job(session, job_id) for job_id in job_ids]
        statuses = [a.status for job_id in job_ids for a in attempts_of(session, job_id)]
    assert [tuple(row) for row in usage] == [
        ("attempt-0", True), ("attempt-1", True), ("attempt-2", False)
    ]  # fmt: skip
    assert [(job.status, job.result) for job in stored] == [
        ("succeeded", {"n": 0}), ("succeeded", {"n": 1}), ("failed", None)
    ]  # fmt: skip
    assert statuses == ["succeeded"] * 3


@pytest.mark.integration
def test_postgres_batches_run_few_statements(pg_url: str) -> None:
    sessions = migrated_sessions(pg_url)
    add_tenant(sessions, "acme")
    job_ids = new_jobs(sessions, 20)
    statements: list[str] = []
    engine = sessions.kw["bind"]

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement.split(None, 1)[0])

    event.listen(engine, "before_cursor_execute", count)
    with transaction(sessions) as session:
        jobs = claim_jobs(session, [ClaimRequest(job_id, 60, job_id) for job_id in job_ids])
        claims = list(statements)
        statements.clear()
        requests = [AttemptRequest(job_id, "openai", "gpt-4o-mini", f"attempt-{job_id[:8]}")
                    for job_id in job_ids]  # fmt: skip
        attempt_ids = open_attempts(session, requests)
        opens = list(statements)
        statements.clear()
        completions = [Completion(job, call_for(attempt_id), {"ok": True})
                       for job, attempt_id in zip(jobs, attempt_ids, strict=True)
                       if isinstance(job, ClaimedJob)]  # fmt: skip
        completed = complete_jobs(session, completions)
    event.remove(engine, "before_cursor_execute", count)

    assert claims == ["WITH"]
    assert opens == ["WITH"]
    assert [s for s in statements if s != "COMMIT"] == ["WITH"]
    assert completed == [True] * 20


def test_two_deliveries_in_one_batch(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    add_tenant(sessions, "acme")
    (job_id,) = new_jobs(sessions, 1)
    with transaction(sessions) as session:
        claims = claim_jobs(
            session, [ClaimRequest(job_id, 60, "one"), ClaimRequest(job_id, 60, "two")]
        )
    assert isinstance(claims[0], ClaimedJob)
    assert claims[1] is Skip.HELD
    job = claims[0]

    # An expired holder and its successor can both open and complete in one batch.
    with transaction(sessions) as session:
        opened = open_attempts(
            session,
            [AttemptRequest(job_id, "openai", "gpt-4o-mini", "old"),
             AttemptRequest(job_id, "openai", "gpt-4o-mini", "new")],
        )  # fmt: skip
    with transaction(sessions) as session:
        completed = complete_jobs(
            session,
            [Completion(job, call_for("old"), {"by": "old"}),
             Completion(job, call_for("new"), {"by": "new"})],
        )  # fmt: skip

    assert opened == ["old", "new"]
    assert completed == [True, False]
    with sessions() as session:
        numbers = [(a.id, a.number) for a in attempts_of(session, job_id)]
        usage = dict(session.execute(select(UsageRecord.attempt_id, UsageRecord.billable)).all())
        stored = get_job(session, job_id)
    assert numbers == [("old", 1), ("new", 2)]
    assert usage == {"old": True, "new": False}
    assert (stored.status, stored.result, stored.claim_token) == ("succeeded", {"by": "old"}, "one")


def test_empty_batches_write_nothing(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    with transaction(sessions) as session:
        assert claim_jobs(session, []) == []
        assert open_attempts(session, []) == []
        assert complete_jobs(session, []) == []
