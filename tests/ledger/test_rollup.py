import threading
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from ledger.calls import CallRecord, complete_job, open_attempt, record_usage
from ledger.claims import ClaimedJob, claim_job
from ledger.db import transaction
from ledger.invoices import invoice_lines, list_invoices
from ledger.jobs import NewJob, insert_jobs
from ledger.models import Invoice, InvoiceStatus
from ledger.periods import Period
from ledger.prices import CallCost
from ledger.rollup import rollup_period
from ledger.usage import TokenKind, TokenUsage
from tests.support import add_tenant, migrated_sessions

DECEMBER = Period.parse("2026-12")
IN_DECEMBER = datetime(2026, 12, 10, 9, 30, tzinfo=UTC)
IN_NOVEMBER = datetime(2026, 11, 30, 23, 59, tzinfo=UTC)


def record_job(
    sessions: sessionmaker[Session],
    tenant: str,
    agent: str,
    model: str,
    usage: TokenUsage,
    cost: str,
    at: datetime = IN_DECEMBER,
    billable: bool = True,
) -> None:
    """Store one job with one call: completed and billed, or failed output kept as cost only."""
    with transaction(sessions) as session:
        job_id = insert_jobs(session, [NewJob(tenant, agent, {"narrative": "x"})])[0].job.id
        job = claim_job(session, job_id, time_limit_s=60)
        attempt = open_attempt(session, job_id, "openai", model)
    assert isinstance(job, ClaimedJob)
    call = CallRecord(attempt, "openai", model, usage, CallCost(Decimal(cost), "USD"), at)
    with transaction(sessions) as session:
        if billable:
            complete_job(session, job, call, {"ok": True})
        else:
            record_usage(session, job, call, billable=False)


def seed(sessions: sessionmaker[Session]) -> None:
    add_tenant(
        sessions,
        "acme",
        rates_per_mtok={TokenKind.INPUT: Decimal("0.50"), TokenKind.OUTPUT: Decimal("2.00")},
    )
    add_tenant(sessions, "globex", markup=Decimal("1.25"))
    # acme, triage on gpt-4o-mini: 250,000 input tokens at 0.50 = 0.125, plus a second call.
    record_job(sessions, "acme", "triage", "gpt-4o-mini", TokenUsage(input_tokens=200_000), "0.03")
    record_job(
        sessions,
        "acme",
        "triage",
        "gpt-4o-mini",
        TokenUsage(input_tokens=30_000, cached_input_tokens=20_000),
        "0.0060",
    )
    # acme, summarize: 10,000 output tokens at 2.00 = 0.02
    record_job(
        sessions, "acme", "summarize", "gpt-4.1-nano", TokenUsage(output_tokens=10_000), "0.004"
    )
    # A call whose output was invalid: cost of goods, never billed.
    record_job(
        sessions,
        "acme",
        "triage",
        "gpt-4o-mini",
        TokenUsage(input_tokens=9_000_000),
        "1.35",
        billable=False,
    )
    # Usage of another month stays out of December's invoice.
    record_job(
        sessions,
        "acme",
        "triage",
        "gpt-4o-mini",
        TokenUsage(input_tokens=1_000_000),
        "0.15",
        at=IN_NOVEMBER,
    )
    # globex, clause-review on gpt-4.1: provider cost 0.036 x 1.25 = 0.045
    record_job(
        sessions,
        "globex",
        "clause-review",
        "gpt-4.1",
        TokenUsage(input_tokens=10_000, output_tokens=2_000),
        "0.036",
    )


def invoice_of(
    sessions: sessionmaker[Session], tenant: str
) -> tuple[Invoice, list[tuple[str, str, int, Decimal]]]:
    with sessions() as session:
        (invoice,) = list_invoices(session, tenant_id=tenant, period=DECEMBER)
        lines = [
            (line.agent, line.model, line.calls, line.amount)
            for line in invoice_lines(session, invoice.id)
        ]
    return invoice, lines


def test_rollup_prices_lines_by_hand(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    seed(sessions)
    results = rollup_period(sessions, DECEMBER)
    assert [(r.tenant_id, r.lines) for r in results] == [("acme", 2), ("globex", 1)]

    acme, acme_lines = invoice_of(sessions, "acme")
    # 250,000 input-rate tokens x 0.50 = 0.125, rounded half up once to 0.13
    assert acme_lines == [
        ("summarize", "gpt-4.1-nano", 1, Decimal("0.02")),
        ("triage", "gpt-4o-mini", 2, Decimal("0.13")),
    ]
    assert acme.total == Decimal("0.15")
    assert (acme.status, acme.currency) == (InvoiceStatus.DRAFT, "USD")

    globex, globex_lines = invoice_of(sessions, "globex")
    assert globex_lines == [("clause-review", "gpt-4.1", 1, Decimal("0.05"))]
    assert globex.total == Decimal("0.05")


def test_rollup_twice_changes_nothing(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    seed(sessions)
    rollup_period(sessions, DECEMBER)
    first = invoice_of(sessions, "acme")
    rollup_period(sessions, DECEMBER)
    second = invoice_of(sessions, "acme")
    assert second[0].id == first[0].id
    assert second[1] == first[1]
    with sessions() as session:
        assert len(session.scalars(select(Invoice)).all()) == 2


def test_rollup_picks_up_new_usage(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    seed(sessions)
    rollup_period(sessions, DECEMBER)
    record_job(
        sessions, "acme", "summarize", "gpt-4.1-nano", TokenUsage(output_tokens=40_000), "0.016"
    )
    rollup_period(sessions, DECEMBER)
    acme, lines = invoice_of(sessions, "acme")
    assert lines[0] == ("summarize", "gpt-4.1-nano", 2, Decimal("0.10"))
    assert acme.total == Decimal("0.23")


def test_final_invoice_never_changes(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    seed(sessions)
    rollup_period(sessions, DECEMBER)
    with transaction(sessions) as session:
        session.execute(
            update(Invoice)
            .where(Invoice.tenant_id == "acme")
            .values(status=InvoiceStatus.FINAL.value)
        )
    record_job(
        sessions, "acme", "summarize", "gpt-4.1-nano", TokenUsage(output_tokens=40_000), "0.016"
    )
    results = {r.tenant_id: r for r in rollup_period(sessions, DECEMBER)}
    assert results["acme"].skipped_final
    acme, lines = invoice_of(sessions, "acme")
    assert acme.total == Decimal("0.15")
    assert len(lines) == 2


def test_concurrent_rollups_agree(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    seed(sessions)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for _ in range(5):
                rollup_period(sessions, DECEMBER)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    acme, lines = invoice_of(sessions, "acme")
    assert acme.total == Decimal("0.15")
    assert len(lines) == 2


def test_invoice_ids_have_no_gaps(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    seed(sessions)
    rollup_period(sessions, DECEMBER)
    rollup_period(sessions, DECEMBER)
    add_tenant(sessions, "initech")
    record_job(sessions, "initech", "triage", "gpt-4o-mini", TokenUsage(input_tokens=10), "0.01")
    rollup_period(sessions, DECEMBER)
    with sessions() as session:
        ids = session.execute(select(Invoice.tenant_id, Invoice.id).order_by(Invoice.id)).all()
    assert [tuple(row) for row in ids] == [("acme", 1), ("globex", 2), ("initech", 3)]
