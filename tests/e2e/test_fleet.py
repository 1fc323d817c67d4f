"""The whole fleet on the real Redis and PostgreSQL: simulator, Celery workers for two agents
(one with the threads pool, one with gevent), 510 jobs built from real consumer complaints
for three tenants, then rollup and invoices."""

import json
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from agentfleet.processes import (
    ManagedProcess,
    free_port,
    start_simulator,
    start_worker,
    wait_ready,
)
from agentfleet.settings import Settings
from ledger.models import UsageRecord
from ledger.usage import TokenKind
from producer import JobClient, JobRequest
from tests.support import add_tenant, fleet_env, migrated_sessions

pytestmark = pytest.mark.integration

COMPLAINTS_PER_AGENT = 255
AGENTS = ("triage", "summarize")
POOLS = ("threads", "gevent")
# How the worker's start-up banner names each pool.
POOL_BANNERS = {"threads": "16 (thread)", "gevent": "16 (gevent)"}
# Provider list prices per million tokens (input, output) of the models the two agents use.
LIST_PRICES = {
    "gpt-4o-mini": (Decimal("0.15"), Decimal("0.60")),
    "gpt-4.1-nano": (Decimal("0.10"), Decimal("0.40")),
}
PLANS = {
    "acme": {
        "rates_per_mtok": {TokenKind.INPUT: Decimal("0.30"), TokenKind.OUTPUT: Decimal("1.20")}
    },
    "globex": {"markup": Decimal("1.25")},
    "initech": {
        "rates_per_mtok": {TokenKind.INPUT: Decimal("0.25"), TokenKind.OUTPUT: Decimal("2.00")}
    },
}
MILLION = Decimal(1_000_000)


@pytest.fixture
def fleet(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[tuple[dict[str, str], int]]:
    port = free_port()
    env = fleet_env(pg_url, redis_url, port)
    # Workers refuse to start on a ledger without the current schema.
    migrated_sessions(pg_url)
    logs = tmp_path / "logs"
    processes: list[ManagedProcess] = [
        start_simulator(port, logs, latency_ms=20, jitter_ms=20, env=env)
    ]
    try:
        # One agent's worker runs Celery's threads pool and the other's the gevent pool.
        workers = [
            start_worker(f"agent.{agent}", env, logs, concurrency=16, pool=pool)
            for agent, pool in zip(AGENTS, POOLS, strict=True)
        ]
        processes.extend(workers)
        for worker, pool in zip(workers, POOLS, strict=True):
            wait_ready(worker)
            assert POOL_BANNERS[pool] in worker.log_path.read_text(encoding="utf-8")
        yield env, port
    finally:
        for process in reversed(processes):
            process.stop()


def complaint_inputs(path: Path) -> list[dict[str, str]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [
        {"narrative": r["narrative"], "company": r["company"]} for r in rows[:COMPLAINTS_PER_AGENT]
    ]


def cli_json(env: dict[str, str], *args: str) -> object:
    done = subprocess.run(
        [sys.executable, "-m", "agentfleet", *args, "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)


def test_fleet_end_to_end(fleet: tuple[dict[str, str], int], complaints_file: Path) -> None:
    env, port = fleet
    sessions = migrated_sessions(env["AGENTFLEET_DATABASE_URL"])
    for tenant, terms in PLANS.items():
        add_tenant(sessions, tenant, **terms)
    settings = Settings(
        database_url=env["AGENTFLEET_DATABASE_URL"], broker_url=env["AGENTFLEET_BROKER_URL"]
    )
    client = JobClient(settings, sessions=sessions)

    inputs = complaint_inputs(complaints_file)
    tenants = list(PLANS)
    ids = []
    for agent in AGENTS:
        for index, tenant in enumerate(tenants):
            batch = [JobRequest(row) for row in inputs[index :: len(tenants)]]
            ids.extend(s.job.id for s in client.submit_many(tenant, agent, batch))
    assert len(ids) == 510

    jobs = client.wait(ids, timeout_s=420, poll_s=1.0)
    client.close()
    failed = [(job.id, job.error) for job in jobs if job.status != "succeeded"]
    assert failed == []

    check_ledger_matches_simulator(sessions, port)
    check_invoices_match_hand_pricing(sessions, env)


def check_ledger_matches_simulator(sessions: sessionmaker[Session], port: int) -> None:
    served = httpx.get(f"http://127.0.0.1:{port}/stats", timeout=5).json()
    with sessions() as session:
        rows = session.execute(
            select(
                UsageRecord.model,
                func.count(),
                func.sum(UsageRecord.input_tokens),
                func.sum(UsageRecord.output_tokens),
                func.count().filter(UsageRecord.billable),
            ).group_by(UsageRecord.model)
        ).all()
    ledger = {
        model: {"calls": calls, "prompt_tokens": int(prompt), "completion_tokens": int(output)}
        for model, calls, prompt, output, _ in rows
    }
    simulator = {
        model: {key: stats[key] for key in ("calls", "prompt_tokens", "completion_tokens")}
        for model, stats in served["models"].items()
    }
    assert ledger == simulator
    assert {model: billable for model, *_, billable in rows} == {
        "gpt-4o-mini": 255,
        "gpt-4.1-nano": 255,
    }


def check_invoices_match_hand_pricing(sessions: sessionmaker[Session], env: dict[str, str]) -> None:
    first = cli_json(env, "rollup")
    second = cli_json(env, "rollup")
    assert first == second
    invoices = {row["tenant"]: row for row in cli_json(env, "invoices")}  # type: ignore[union-attr]
    assert set(invoices) == set(PLANS)

    with sessions() as session:
        rows = session.execute(
            select(
                UsageRecord.tenant_id,
                UsageRecord.agent,
                UsageRecord.model,
                UsageRecord.input_tokens,
                UsageRecord.output_tokens,
            ).where(UsageRecord.billable)
        ).all()
    tokens: dict[str, dict[tuple[str, str], list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0, 0])
    )
    for tenant, agent, model, input_tokens, output_tokens in rows:
        tokens[tenant][(agent, model)][0] += input_tokens
        tokens[tenant][(agent, model)][1] += output_tokens

    for tenant, lines in tokens.items():
        expected = sum(
            (hand_priced_line(tenant, model, *counts) for (_, model), counts in lines.items()),
            Decimal("0.00"),
        )
        assert expected > 0
        assert Decimal(invoices[tenant]["total"]) == expected, tenant


def hand_priced_line(tenant: str, model: str, input_tokens: int, output_tokens: int) -> Decimal:
    plan = PLANS[tenant]
    if "markup" in plan:
        list_input, list_output = LIST_PRICES[model]
        cost = (input_tokens * list_input + output_tokens * list_output) / MILLION
        amount = cost * plan["markup"]  # type: ignore[operator]
    else:
        rates = plan["rates_per_mtok"]
        amount = (
            input_tokens * rates[TokenKind.INPUT] + output_tokens * rates[TokenKind.OUTPUT]
        ) / MILLION  # type: ignore[index]
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
