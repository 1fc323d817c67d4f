"""2,000 jobs against a simulator that fails a quarter of its calls.

The simulator replies to 20% of requests with 429 and Retry-After, 5% with 500 or 503 and
hangs on 2%. Two Celery workers on the real Redis and PostgreSQL must still finish every
job, never call before a Retry-After passed, never exceed the configured requests per
minute of a model, and record exactly the usage the simulator served.
"""

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from agentfleet.processes import (
    ManagedProcess,
    free_port,
    start_simulator,
    start_worker,
    wait_ready,
)
from agentfleet.settings import Settings
from ledger.models import Attempt, UsageRecord
from producer import JobClient, JobRequest
from tests.support import add_tenant, fleet_env, migrated_sessions

pytestmark = pytest.mark.integration

COMPLAINTS = 1000
AGENTS = ("triage", "summarize")
RPM = 900
FAULTS = [
    "--fault",
    "429=0.20",
    "--fault",
    "500=0.03",
    "--fault",
    "503=0.02",
    "--fault",
    "hang=0.02",
]


@pytest.fixture
def faulty_fleet(
    pg_url: str, redis_url: str, tmp_path: Path
) -> Iterator[tuple[dict[str, str], int]]:
    port = free_port()
    limits = {f"openai:{m}": {"rpm": RPM} for m in ("gpt-4o-mini", "gpt-4.1-nano")}
    env = fleet_env(
        pg_url,
        redis_url,
        port,
        providers__openai__timeout_s="5",
        max_attempts="12",
        backoff_base_s="0.2",
        backoff_cap_s="2",
        rate_limits=json.dumps(limits),
    )
    migrated_sessions(pg_url)
    logs = tmp_path / "logs"
    simulator = start_simulator(
        port,
        logs,
        latency_ms=20,
        jitter_ms=20,
        env=env,
        extra_args=[*FAULTS, "--seed", "7", "--retry-after", "1"],
    )
    processes: list[ManagedProcess] = [simulator]
    try:
        workers = [start_worker(f"agent.{agent}", env, logs, concurrency=64) for agent in AGENTS]
        processes.extend(workers)
        for worker in workers:
            wait_ready(worker)
        yield env, port
    finally:
        for process in reversed(processes):
            process.stop()


def test_every_job_survives_faults(
    faulty_fleet: tuple[dict[str, str], int], complaints_file: Path
) -> None:
    env, port = faulty_fleet
    sessions = migrated_sessions(env["AGENTFLEET_DATABASE_URL"])
    add_tenant(sessions, "acme")
    client = JobClient(
        Settings(
            database_url=env["AGENTFLEET_DATABASE_URL"], broker_url=env["AGENTFLEET_BROKER_URL"]
        ),
        sessions=sessions,
    )
    rows = [json.loads(line) for line in complaints_file.read_text(encoding="utf-8").splitlines()]
    requests = [
        JobRequest({"narrative": r["narrative"], "company": r["company"]})
        for r in rows[:COMPLAINTS]
    ]
    ids = [s.job.id for agent in AGENTS for s in client.submit_many("acme", agent, requests)]
    jobs = client.wait(ids, timeout_s=900, poll_s=2.0)
    client.close()

    assert [(j.id, j.error) for j in jobs if j.status != "succeeded"] == []
    stats = httpx.get(f"http://127.0.0.1:{port}/stats", timeout=5).json()
    assert stats["faults"]["429"] > 0.15 * len(ids)
    assert stats["faults"]["hang"] > 0
    assert stats["early_calls"] == 0
    for model, served in stats["models"].items():
        assert served["max_requests_per_minute"] <= RPM, model

    with sessions() as session:
        rows_by_model = session.execute(
            select(
                UsageRecord.model,
                func.count(),
                func.sum(UsageRecord.input_tokens),
                func.sum(UsageRecord.output_tokens),
                func.count().filter(UsageRecord.billable),
            ).group_by(UsageRecord.model)
        ).all()
        attempts = session.scalar(select(func.count()).select_from(Attempt)) or 0
        unsent = (
            session.scalar(
                select(func.count())
                .select_from(Attempt)
                .where(
                    Attempt.status == "failed",
                    Attempt.http_status.is_(None),
                    Attempt.error.like("timed out%") | Attempt.error.like("connection failed%"),
                )
            )
            or 0
        )
    ledger = {
        m: {"calls": c, "prompt_tokens": int(p), "completion_tokens": int(o)}
        for m, c, p, o, _ in rows_by_model
    }
    served_totals = {
        m: {k: s[k] for k in ("calls", "prompt_tokens", "completion_tokens")}
        for m, s in stats["models"].items()
    }
    assert ledger == served_totals
    assert sum(billable for *_, billable in rows_by_model) == len(ids)
    # Every request the simulator saw is an attempt in the ledger, failed ones included.
    # Attempts it never saw timed out or failed to connect before the request arrived.
    requests = sum(s["requests"] for s in stats["models"].values())
    assert requests <= attempts
    assert attempts - requests <= unsent
