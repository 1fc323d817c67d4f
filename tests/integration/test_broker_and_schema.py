from pathlib import Path

import pytest
import redis
from sqlalchemy import inspect

from agentfleet.processes import free_port
from agentfleet.settings import Settings
from ledger.db import make_engine
from ledger.migrate import current_revision, downgrade, upgrade
from producer import BrokerUnavailable, JobClient, JobRequest
from tests.support import OPEN_ENGINES, add_tenant, migrated_sessions

pytestmark = pytest.mark.integration

LEDGER_TABLES = {
    "plans",
    "plan_rates",
    "tenants",
    "jobs",
    "attempts",
    "usage_records",
    "prices",
    "invoices",
    "invoice_lines",
}


def test_jobs_reach_only_their_agent_queue(pg_url: str, redis_url: str) -> None:
    sessions = migrated_sessions(pg_url)
    add_tenant(sessions, "acme")
    client = JobClient(Settings(database_url=pg_url, broker_url=redis_url), sessions=sessions)
    try:
        triage = client.submit_many(
            "acme", "triage", [JobRequest({"narrative": f"n{i}"}) for i in range(5)]
        )
        summary = client.submit("acme", "summarize", {"narrative": "text"})
    finally:
        client.close()

    broker = redis.Redis.from_url(redis_url)
    assert broker.llen("agent.triage") == 5
    assert broker.llen("agent.summarize") == 1
    assert broker.exists("celery") == 0
    assert broker.llen("agent.clause-review") == 0
    queued = {client.get(s.job.id).status for s in triage} | {client.get(summary.id).status}
    assert queued == {"queued"}
    broker.close()


def test_broker_down_leaves_no_job(pg_url: str) -> None:
    sessions = migrated_sessions(pg_url)
    add_tenant(sessions, "acme")
    dead_broker = f"redis://127.0.0.1:{free_port()}/0"
    client = JobClient(Settings(database_url=pg_url, broker_url=dead_broker), sessions=sessions)
    try:
        with pytest.raises(
            BrokerUnavailable, match=r"broker redis://127\.0\.0\.1:\d+/0 is unavailable"
        ) as caught:
            client.submit_many("acme", "triage", [JobRequest({"narrative": "x"})] * 3)
        assert caught.value.sent_job_ids == []
        assert client.list_jobs(limit=None) == []
    finally:
        client.close()


def test_migrations_upgrade_and_downgrade(pg_url: str) -> None:
    engine = make_engine(pg_url)
    OPEN_ENGINES.append(engine)
    upgrade(engine)
    assert current_revision(engine) == "0005"
    assert set(inspect(engine).get_table_names()) >= LEDGER_TABLES
    assert "claim_token" in {column["name"] for column in inspect(engine).get_columns("jobs")}
    indexes = {ix["name"]: ix for ix in inspect(engine).get_indexes("usage_records")}
    assert indexes["uq_usage_records_billable_job_id"]["unique"]
    downgrade(engine, "0003")
    assert "claim_token" not in {column["name"] for column in inspect(engine).get_columns("jobs")}
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert not LEDGER_TABLES & set(inspect(engine).get_table_names())
    upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= LEDGER_TABLES


@pytest.mark.parametrize("broker", ["redis", "filesystem"])
def test_queue_lengths_count_waiting_messages(
    broker: str, pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    from workers.app import create_app
    from workers.queues import empty_queues, queue_length

    sessions = migrated_sessions(pg_url)
    add_tenant(sessions, "acme")
    settings = Settings(
        database_url=pg_url,
        broker_url=redis_url if broker == "redis" else "filesystem://localhost/",
        broker_dir=tmp_path / "broker",
    )
    client = JobClient(settings, sessions=sessions)
    try:
        client.submit_many("acme", "triage", [JobRequest({"narrative": f"n{i}"}) for i in range(3)])
    finally:
        client.close()
    app = create_app(settings)
    queues = ["agent.triage", "agent.summarize", "agent.clause-review"]
    # Redis has no key for a queue that never held a message; that is an empty queue.
    assert [queue_length(app, queue) for queue in queues] == [3, 0, 0]
    assert empty_queues(app, queues) == {"agent.summarize", "agent.clause-review"}
