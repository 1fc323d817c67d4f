from decimal import Decimal

from ledger.calls import open_attempt
from ledger.claims import orphan_open_attempts
from ledger.db import transaction
from ledger.jobs import NewJob, insert_jobs
from ledger.reports import usage_totals
from ledger.types import utcnow
from ledger.usage import TokenUsage
from tests.ledger.test_rollup import record_job
from tests.support import add_tenant, migrated_sessions


def test_usage_counts_orphaned_attempts(ledger_url: str) -> None:
    sessions = migrated_sessions(ledger_url)
    add_tenant(sessions, "acme")
    record_job(sessions, "acme", "triage", "gpt-4o-mini", TokenUsage(100, 0, 0, 20), "0.0001")
    with transaction(sessions) as session:
        job_id = insert_jobs(session, [NewJob("acme", "summarize", {"narrative": "x"})])[0].job.id
        open_attempt(session, job_id, "openai", "gpt-4o-mini")
        open_attempt(session, job_id, "openai", "gpt-4.1")
        # The worker died during both calls.
        assert orphan_open_attempts(session, job_id, utcnow()) == 2

    with sessions() as session:
        by_model = {t.key: (t.calls, t.orphaned, t.cost) for t in usage_totals(session, "model")}
        by_tenant = {t.key: (t.calls, t.orphaned) for t in usage_totals(session, "tenant")}
        detailed = [(t.key, t.orphaned) for t in usage_totals(session, "tenant-agent-model")]
    assert by_model == {
        ("openai", "gpt-4.1"): (0, 1, Decimal(0)),
        ("openai", "gpt-4o-mini"): (1, 1, Decimal("0.0001")),
    }
    assert by_tenant == {("acme",): (1, 2)}
    assert detailed == [
        (("acme", "summarize", "openai", "gpt-4.1"), 1),
        (("acme", "summarize", "openai", "gpt-4o-mini"), 1),
        (("acme", "triage", "openai", "gpt-4o-mini"), 0),
    ]
