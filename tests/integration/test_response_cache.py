"""The response cache on the real Redis: a hit makes no provider call and costs nothing,
and tenants never share entries."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from agentfleet.settings import ProviderSettings, Settings
from ledger.calls import attempts_of
from ledger.db import transaction
from ledger.invoices import invoice_lines, list_invoices
from ledger.jobs import NewJob, insert_jobs
from ledger.models import UsageRecord
from ledger.periods import Period
from ledger.plans import create_plan, create_tenant
from ledger.rollup import rollup_period
from ledger.usage import TokenKind
from tests.support import migrated_sessions, simulator_stats, simulator_thread
from workers.runner import JobRunner
from workers.runtime import WorkerRuntime

pytestmark = pytest.mark.integration

CLAUSE = {"text": "This Agreement shall be governed by the laws of the State of New York."}
RATES = {TokenKind.INPUT: Decimal("100"), TokenKind.OUTPUT: Decimal("100")}


def test_cache_hit_is_free_and_billed_by_plan(pg_url: str, redis_url: str) -> None:
    sessions = migrated_sessions(pg_url)
    with transaction(sessions) as session:
        create_plan(session, "pays-hits", rates_per_mtok=RATES)
        create_plan(session, "free-hits", rates_per_mtok=RATES, bill_cache_hits=False)
        create_tenant(session, "acme", "pays-hits")
        create_tenant(session, "globex", "free-hits")
        jobs = insert_jobs(
            session,
            [NewJob(t, "clause-review", CLAUSE) for t in ("acme", "acme", "globex", "globex")],
        )

    with simulator_thread() as base:
        providers = {"openai": ProviderSettings(base_url=f"{base}/v1", api_key="simulator")}  # type: ignore[arg-type]
        runtime = WorkerRuntime(
            Settings(database_url=pg_url, broker_url=redis_url, providers=providers)
        )  # type: ignore[arg-type]
        runtime.__dict__["sessions"] = sessions
        try:
            outcomes = [JobRunner(runtime).run(s.job.id, "clause-review") for s in jobs]
        finally:
            runtime.close()
        served = simulator_stats(base)["models"]["gpt-4.1"]

    assert outcomes == ["succeeded"] * 4
    # One call per tenant: globex does not get acme's cached reply.
    assert served["calls"] == 2
    with sessions() as session:
        records = session.scalars(select(UsageRecord).order_by(UsageRecord.id)).all()
        statuses = [attempts_of(session, s.job.id)[0].status for s in jobs]
    assert statuses == ["succeeded", "cache_hit", "succeeded", "cache_hit"]
    assert [(r.tenant_id, r.cache_hit) for r in records] == [
        ("acme", False),
        ("acme", True),
        ("globex", False),
        ("globex", True),
    ]
    assert all(r.billable for r in records)
    assert records[0].cost == records[2].cost > 0
    assert records[1].cost == records[3].cost == 0
    assert {(r.input_tokens, r.output_tokens) for r in records} == {
        (served["prompt_tokens"] // 2, served["completion_tokens"] // 2)
    }

    rollup_period(sessions, Period.month_of(datetime.now(UTC)))
    with sessions() as session:
        invoices = {i.tenant_id: i for i in list_invoices(session)}
        lines = {tenant: invoice_lines(session, i.id) for tenant, i in invoices.items()}
    tokens = (served["prompt_tokens"] + served["completion_tokens"]) // 2
    # acme's plan bills the cache hit's tokens like the call it replaced.
    assert [line.calls for line in lines["acme"]] == [2]
    assert invoices["acme"].total == (Decimal(2 * tokens) * 100 / 1_000_000).quantize(
        Decimal("0.01")
    )
    # globex's plan bills its one provider call, not its cache hit.
    assert [line.calls for line in lines["globex"]] == [1]
    assert invoices["globex"].total == (Decimal(tokens) * 100 / 1_000_000).quantize(Decimal("0.01"))
