"""Running usage totals: each usage row is counted once, whenever its transaction commits."""

from decimal import Decimal

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from ledger.calls import CallRecord, complete_job, open_attempt
from ledger.claims import ClaimedJob, claim_job
from ledger.jobs import NewJob, insert_jobs
from ledger.models import UsageRecord, UsageTotal
from ledger.prices import CallCost
from ledger.rollup import rollup_period
from ledger.usage import TokenUsage
from tests.ledger.test_rollup import DECEMBER, IN_DECEMBER, invoice_of, record_job, seed
from tests.support import migrated_sessions

SUMMARIZE = ("summarize", "gpt-4.1-nano")


def summarize_calls(sessions: sessionmaker[Session]) -> int:
    _, lines = invoice_of(sessions, "acme")
    return next(calls for agent, model, calls, _ in lines if (agent, model) == SUMMARIZE)


def totals(sessions: sessionmaker[Session]) -> list[tuple[object, ...]]:
    with sessions() as session:
        rows = session.execute(select(UsageTotal).order_by(*UsageTotal.__table__.primary_key))
        return [
            (t.tenant_id, t.agent, t.model, t.cache_hit, t.calls, t.input_tokens, t.cost)
            for (t,) in rows
        ]


def write_summarize_call(session: Session) -> None:
    """Write one completed summarize job and its usage in the caller's transaction."""
    job_id = insert_jobs(session, [NewJob("acme", "summarize", {"text": "x"})])[0].job.id
    job = claim_job(session, job_id, time_limit_s=60)
    assert isinstance(job, ClaimedJob)
    attempt = open_attempt(session, job_id, "openai", "gpt-4.1-nano")
    usage = TokenUsage(output_tokens=10_000)
    call = CallRecord(attempt, "openai", "gpt-4.1-nano", usage, CallCost(Decimal("0.004"), "USD"),
                      IN_DECEMBER)  # fmt: skip
    assert complete_job(session, job, call, {"ok": True})


@pytest.mark.integration
def test_open_transaction_rows_counted_later(pg_url: str) -> None:
    sessions = migrated_sessions(pg_url)
    seed(sessions)
    rollup_period(sessions, DECEMBER)
    assert summarize_calls(sessions) == 1

    open_session = sessions()
    open_session.begin()
    write_summarize_call(open_session)
    # A call committed after the open transaction began waits for it too.
    record_job(sessions, "acme", "summarize", "gpt-4.1-nano", TokenUsage(output_tokens=1), "0")
    rollup_period(sessions, DECEMBER)
    assert summarize_calls(sessions) == 1

    open_session.commit()
    open_session.close()
    rollup_period(sessions, DECEMBER)
    assert summarize_calls(sessions) == 3
    counted = totals(sessions)
    rollup_period(sessions, DECEMBER)
    assert totals(sessions) == counted
    rollup_period(sessions, DECEMBER, full=True)
    assert totals(sessions) == counted


def test_full_matches_incremental(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    seed(sessions)
    for output_tokens in (40_000, 5_000, 123):
        rollup_period(sessions, DECEMBER)
        record_job(sessions, "acme", "summarize", "gpt-4.1-nano",
                   TokenUsage(output_tokens=output_tokens), "0.001")  # fmt: skip
    incremental = {r.tenant_id: r.total for r in rollup_period(sessions, DECEMBER)}
    counted = totals(sessions)
    full = {r.tenant_id: r.total for r in rollup_period(sessions, DECEMBER, full=True)}
    assert full == incremental
    assert totals(sessions) == counted
    assert summarize_calls(sessions) == 4


def test_rows_without_txid_counted_first(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    seed(sessions)
    with sessions.begin() as session:
        session.execute(update(UsageRecord).values(txid=None))
    rollup_period(sessions, DECEMBER)
    rollup_period(sessions, DECEMBER)
    acme, _ = invoice_of(sessions, "acme")
    assert acme.total == Decimal("0.15")
    assert summarize_calls(sessions) == 1
