import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agentfleet.settings import Settings
from ledger.calls import attempts_of
from ledger.db import transaction
from ledger.jobs import NewJob, get_job, insert_jobs
from ledger.models import UsageRecord
from ledger.types import utcnow
from tests.support import add_tenant, migrated_sessions, simulator_stats, simulator_thread
from workers.runner import JobRunner
from workers.runtime import WorkerRuntime

NARRATIVE = "My credit report lists an account I never opened. This is identity theft."
TRIAGE_REPLY = {
    "product": "credit_reporting",
    "issue_category": "fraud_or_identity_theft",
    "urgency": "high",
    "rationale": "Identity theft on the report.",
}


def completion(content: str, prompt: int = 120, output: int = 30) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "choices": [{"message": {"content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": output},
        },
    )


@pytest.fixture
def ledger(sqlite_url: str) -> sessionmaker[Session]:
    sessions = migrated_sessions(sqlite_url)
    add_tenant(sessions, "acme")
    return sessions


@pytest.fixture
def runtime(sqlite_url: str, ledger: sessionmaker[Session]) -> Iterator[WorkerRuntime]:
    settings = Settings(database_url=sqlite_url, backoff_base_s=0.01, backoff_cap_s=0.02)
    runtime = WorkerRuntime(settings)
    runtime.__dict__["sessions"] = ledger
    yield runtime
    runtime.close()


def scripted(
    runtime: WorkerRuntime, responses: list[httpx.Response | Exception]
) -> list[httpx.Request]:
    """Reply to provider calls with the given responses in order; return the requests seen."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = responses[len(seen) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    runtime.__dict__["http"] = httpx.Client(transport=httpx.MockTransport(handler))
    return seen


def submit(ledger: sessionmaker[Session], agent: str = "triage") -> str:
    with transaction(ledger) as session:
        return insert_jobs(session, [NewJob("acme", agent, {"narrative": NARRATIVE})])[0].job.id


def usage_rows(ledger: sessionmaker[Session]) -> list[UsageRecord]:
    with ledger() as session:
        return list(session.scalars(select(UsageRecord).order_by(UsageRecord.id)))


def test_job_succeeds_against_simulator(
    runtime: WorkerRuntime, ledger: sessionmaker[Session]
) -> None:
    with simulator_thread() as base:
        runtime.settings.providers["openai"].base_url = f"{base}/v1"
        job_id = submit(ledger)
        assert JobRunner(runtime).run(job_id, "triage") == "succeeded"
        stats = simulator_stats(base)

    with ledger() as session:
        job = get_job(session, job_id)
    assert job.status == "succeeded"
    assert job.result["product"] == "credit_reporting"
    assert job.result["urgency"] == "high"
    (record,) = usage_rows(ledger)
    served = stats["models"]["gpt-4o-mini"]
    assert (record.input_tokens, record.output_tokens) == (
        served["prompt_tokens"],
        served["completion_tokens"],
    )
    assert record.billable
    # gpt-4o-mini list prices: 0.15 per million input tokens, 0.60 per million output tokens
    expected = (
        Decimal(record.input_tokens) * Decimal("0.15")
        + Decimal(record.output_tokens) * Decimal("0.60")
    ) / 1_000_000
    assert record.cost == expected


def test_retry_after_server_error(runtime: WorkerRuntime, ledger: sessionmaker[Session]) -> None:
    seen = scripted(
        runtime,
        [
            httpx.Response(503, text="overloaded"),
            httpx.ReadTimeout("slow"),
            completion(json.dumps(TRIAGE_REPLY)),
        ],
    )
    job_id = submit(ledger)
    assert JobRunner(runtime).run(job_id, "triage") == "succeeded"
    assert len(seen) == 3
    with ledger() as session:
        attempts = attempts_of(session, job_id)
        job = get_job(session, job_id)
    assert [(a.number, a.status, a.http_status) for a in attempts] == [
        (1, "failed", 503),
        (2, "failed", None),
        (3, "succeeded", None),
    ]
    assert "timed out" in (attempts[1].error or "")
    assert job.attempts == 3
    assert [(r.attempt_id, r.billable) for r in usage_rows(ledger)] == [(attempts[2].id, True)]


def test_client_error_fails_job_at_once(
    runtime: WorkerRuntime, ledger: sessionmaker[Session]
) -> None:
    seen = scripted(runtime, [httpx.Response(400, json={"error": {"message": "model not found"}})])
    job_id = submit(ledger)
    assert JobRunner(runtime).run(job_id, "triage") == "failed"
    assert len(seen) == 1
    with ledger() as session:
        job = get_job(session, job_id)
    assert job.status == "failed"
    assert job.error == "HTTP 400: model not found (gave up after 1 attempt)"
    assert usage_rows(ledger) == []


def test_invalid_output_is_cost_not_billed(
    runtime: WorkerRuntime, ledger: sessionmaker[Session]
) -> None:
    scripted(
        runtime,
        [completion("not json", prompt=100, output=3), completion(json.dumps(TRIAGE_REPLY))],
    )
    job_id = submit(ledger)
    assert JobRunner(runtime).run(job_id, "triage") == "succeeded"
    records = usage_rows(ledger)
    assert [(r.input_tokens, r.output_tokens, r.billable) for r in records] == [
        (100, 3, False),
        (120, 30, True),
    ]


def test_attempts_are_bounded(runtime: WorkerRuntime, ledger: sessionmaker[Session]) -> None:
    runtime.settings.max_attempts = 3
    seen = scripted(runtime, [httpx.Response(500, text="boom")] * 3)
    job_id = submit(ledger)
    assert JobRunner(runtime).run(job_id, "triage") == "failed"
    assert len(seen) == 3
    with ledger() as session:
        assert get_job(session, job_id).error == "HTTP 500: boom (gave up after 3 attempts)"


def test_finished_job_is_not_called_again(
    runtime: WorkerRuntime, ledger: sessionmaker[Session]
) -> None:
    seen = scripted(runtime, [completion(json.dumps(TRIAGE_REPLY))])
    job_id = submit(ledger)
    runner = JobRunner(runtime)
    assert runner.run(job_id, "triage") == "succeeded"
    assert runner.run(job_id, "triage") == "skipped"
    assert len(seen) == 1
    assert len(usage_rows(ledger)) == 1


def test_retry_waits_for_retry_after(
    runtime: WorkerRuntime, ledger: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    scripted(
        runtime,
        [
            httpx.Response(429, headers={"retry-after": "2"}, text="slow down"),
            completion(json.dumps(TRIAGE_REPLY)),
        ],
    )
    job_id = submit(ledger)
    assert JobRunner(runtime, sleep=sleeps.append).run(job_id, "triage") == "succeeded"
    assert sleeps == [2.0]


def test_wait_past_deadline_fails_job(
    runtime: WorkerRuntime, ledger: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []
    scripted(runtime, [httpx.Response(429, headers={"retry-after": "600"}, text="slow down")])
    job_id = submit(ledger)
    assert JobRunner(runtime, sleep=sleeps.append).run(job_id, "triage") == "failed"
    assert sleeps == []
    with ledger() as session:
        assert get_job(session, job_id).error == "HTTP 429: slow down (gave up after 1 attempt)"


def test_cancelled_job_is_skipped(runtime: WorkerRuntime, ledger: sessionmaker[Session]) -> None:
    from ledger.jobs import cancel_jobs

    seen = scripted(runtime, [completion(json.dumps(TRIAGE_REPLY))])
    job_id = submit(ledger)
    with transaction(ledger) as session:
        assert cancel_jobs(session, [job_id]) == 1
    assert JobRunner(runtime).run(job_id, "triage") == "skipped"
    assert seen == []
    assert usage_rows(ledger) == []


def test_rollup_task_writes_invoices(
    runtime: WorkerRuntime, ledger: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledger.invoices import list_invoices
    from workers import tasks

    scripted(runtime, [completion(json.dumps(TRIAGE_REPLY), prompt=1_000_000, output=0)])
    assert JobRunner(runtime).run(submit(ledger), "triage") == "succeeded"
    monkeypatch.setattr(tasks, "get_runtime", lambda: runtime)
    assert tasks.rollup.run() == 1
    with ledger() as session:
        (invoice,) = list_invoices(session)
    # One million input tokens at the tenant's 0.30 per million.
    assert (invoice.tenant_id, invoice.total, invoice.status) == ("acme", Decimal("0.30"), "draft")


def test_unpriced_model_fails_before_call(
    runtime: WorkerRuntime, ledger: sessionmaker[Session]
) -> None:
    runtime.settings.model_aliases["balanced"] = ["openai:gpt-unpriced"]
    seen = scripted(runtime, [completion(json.dumps(TRIAGE_REPLY))])
    job_id = submit(ledger)
    assert JobRunner(runtime).run(job_id, "triage") == "failed"
    assert seen == []
    with ledger() as session:
        job = get_job(session, job_id)
        assert attempts_of(session, job_id) == []
    assert job.error == (
        "no price for openai:gpt-unpriced; add it to the price catalog and run 'agentfleet db upgrade'"
    )


def test_log_lines_name_job_and_attempt(
    runtime: WorkerRuntime, ledger: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    scripted(
        runtime,
        [httpx.Response(502, text="bad gateway"), httpx.Response(400, text="no such model")],
    )
    job_id = submit(ledger)
    with caplog.at_level("INFO", logger="workers.runner"):
        JobRunner(runtime).run(job_id, "triage")
    records = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "workers.runner"]
    assert records == [
        (
            "INFO",
            f"job {job_id} tenant acme agent triage attempt 1 on openai:gpt-4o-mini failed: HTTP 502: bad gateway",
        ),
        (
            "INFO",
            f"job {job_id} tenant acme agent triage attempt 2 on openai:gpt-4o-mini failed: HTTP 400: no such model",
        ),
        (
            "WARNING",
            f"job {job_id} tenant acme agent triage failed: HTTP 400: no such model (gave up after 2 attempts)",
        ),
    ]
    assert "simulator" not in caplog.text


def test_unknown_job_is_logged_as_warning(
    runtime: WorkerRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="workers.runner"):
        assert JobRunner(runtime).run("no-such-job", "triage") == "skipped"
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            "job no-such-job is not in this worker's ledger; message dropped. Does another fleet, "
            "with another database, share this broker?",
        )
    ]


def test_rate_limit_past_deadline_is_no_attempt(
    runtime: WorkerRuntime, ledger: sessionmaker[Session]
) -> None:
    class Saturated:
        def acquire(self, target: object, tokens: int) -> float:
            return 500.0

        def pause(self, target: object, seconds: float) -> None:
            return None

    runtime.__dict__["limiter"] = Saturated()
    seen = scripted(runtime, [])
    job_id = submit(ledger)
    assert JobRunner(runtime, sleep=lambda _: None).run(job_id, "triage") == "failed"
    assert seen == []
    with ledger() as session:
        job = get_job(session, job_id)
        assert attempts_of(session, job_id) == []
    assert job.error == (
        "the rate limit of openai:gpt-4o-mini asks for a wait of 500.0 s, past the job's deadline of 120 s"
    )


def test_deliveries_are_bounded(runtime: WorkerRuntime, ledger: sessionmaker[Session]) -> None:
    from ledger.calls import open_attempt
    from ledger.claims import claim_job

    seen = scripted(runtime, [completion(json.dumps(TRIAGE_REPLY))])
    job_id = submit(ledger)
    first = utcnow() - timedelta(seconds=1000)
    for delivery in range(3):
        # Each delivery claims the job after the last one's deadline passed, opens an
        # attempt, then its worker dies.
        with transaction(ledger) as session:
            claim_job(session, job_id, 120, now=first + timedelta(seconds=200 * delivery))
            open_attempt(session, job_id, "openai", "gpt-4o-mini")
    assert JobRunner(runtime).run(job_id, "triage") == "failed"
    assert seen == []
    with ledger() as session:
        job = get_job(session, job_id)
        statuses = [a.status for a in attempts_of(session, job_id)]
    assert job.deliveries == 4
    assert statuses == ["orphaned"] * 3
    assert (
        job.error
        == "the worker died during each of 3 deliveries of this job (gave up after 3 attempts)"
    )


def test_duplicate_delivery_makes_no_call(
    runtime: WorkerRuntime, ledger: sessionmaker[Session]
) -> None:
    from ledger.calls import open_attempt
    from ledger.claims import claim_job

    seen = scripted(runtime, [completion(json.dumps(TRIAGE_REPLY))])
    job_id = submit(ledger)
    with transaction(ledger) as session:
        claim_job(session, job_id, 120)
        open_attempt(session, job_id, "openai", "gpt-4o-mini")
    # The first delivery is still within its deadline, so a second copy of the message
    # must leave the job to it.
    assert JobRunner(runtime).run(job_id, "triage") == "skipped"
    assert seen == []
    with ledger() as session:
        job = get_job(session, job_id)
        statuses = [a.status for a in attempts_of(session, job_id)]
    assert (job.status, job.deliveries, statuses) == ("running", 1, ["started"])


def test_late_delivery_runs_job_again(
    runtime: WorkerRuntime, ledger: sessionmaker[Session]
) -> None:
    from ledger.calls import open_attempt
    from ledger.claims import claim_job

    seen = scripted(runtime, [completion(json.dumps(TRIAGE_REPLY))])
    job_id = submit(ledger)
    with transaction(ledger) as session:
        claim_job(session, job_id, 120, now=utcnow() - timedelta(seconds=300))
        open_attempt(session, job_id, "openai", "gpt-4o-mini")
    # The broker delivers the message again after the dead worker's deadline.
    assert JobRunner(runtime).run(job_id, "triage") == "succeeded"
    assert len(seen) == 1
    with ledger() as session:
        job = get_job(session, job_id)
        statuses = [a.status for a in attempts_of(session, job_id)]
        billable = session.scalars(
            select(UsageRecord.attempt_id).where(UsageRecord.billable.is_(True))
        ).all()
    assert (job.status, job.deliveries, statuses) == ("succeeded", 2, ["orphaned", "succeeded"])
    assert job.deadline_at is not None and job.deadline_at > utcnow()
    assert len(billable) == 1


@pytest.mark.parametrize(
    ("batch_max", "expected_sleeps"),
    [
        # Each write commits alone: retried after 0.5 s, then 1 s.
        (1, [0.5, 1.0]),
        # The first failure rolls back the shared transaction; the write then runs alone
        # at once, and its retry waits 0.5 s.
        (64, [0.5]),
    ],
)
def test_ledger_outage_keeps_call_result(
    runtime: WorkerRuntime,
    ledger: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    batch_max: int,
    expected_sleeps: list[float],
) -> None:
    from sqlalchemy.exc import OperationalError

    from ledger import batches as batches_module
    from ledger import calls

    runtime.settings = runtime.settings.model_copy(update={"ledger_batch_max": batch_max})
    assert (runtime.commit_group is None) == (batch_max == 1)
    outages = [OperationalError("UPDATE jobs", {}, Exception("server closed the connection"))] * 2

    def flaky_complete(*args: object, **kwargs: object) -> bool:
        if outages:
            raise outages.pop()
        return calls.complete_job(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(batches_module, "complete_job", flaky_complete)
    seen = scripted(runtime, [completion(json.dumps(TRIAGE_REPLY))])
    sleeps: list[float] = []
    job_id = submit(ledger)
    assert JobRunner(runtime, sleep=sleeps.append).run(job_id, "triage") == "succeeded"
    assert len(seen) == 1
    assert sleeps == expected_sleeps
    assert [r.billable for r in usage_rows(ledger)] == [True]


def test_deadline_passed_while_opening_attempt(
    runtime: WorkerRuntime, ledger: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import update

    from ledger.models import Job

    seen = scripted(runtime, [completion(json.dumps(TRIAGE_REPLY))])
    job_id = submit(ledger)
    open_attempt = JobRunner._open_attempt

    def slow_open(self: JobRunner, ctx: object, target: object) -> str:
        # The ledger was unreachable long enough for the deadline to pass.
        attempt_id = open_attempt(self, ctx, target)  # type: ignore[arg-type]
        past = utcnow() - timedelta(seconds=1)
        with transaction(ledger) as session:
            session.execute(update(Job).where(Job.id == job_id).values(deadline_at=past))
        ctx.job = replace(ctx.job, deadline_at=past)  # type: ignore[attr-defined]
        return attempt_id

    monkeypatch.setattr(JobRunner, "_open_attempt", slow_open)
    assert JobRunner(runtime).run(job_id, "triage") == "left for recovery"
    assert seen == []
    with ledger() as session:
        job = get_job(session, job_id)
        attempts = [(a.status, a.error) for a in attempts_of(session, job_id)]
    # The job is not failed for the ledger's outage: recovery will queue it again.
    assert (job.status, job.error) == ("running", None)
    assert attempts == [("failed", "deadline of 120 s passed before the call was sent")]
