"""Redis restarted without persistence, and PostgreSQL stopped for 20 s, during a run.

Each runs on servers of the test's own, so stopping them leaves the machine's alone.
"""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.fleet import LedgerCheck, check_ledger_exact, fault_fleet
from tests.faults.servers import PrivatePostgres, PrivateRedis
from tests.faults.test_worker_kills import wait_for_progress

pytestmark = pytest.mark.integration

JOBS = 600
REDIS_DOWN_S = 3
POSTGRES_DOWN_S = 20


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.create()
        yield server
    finally:
        server.destroy()


@dataclass
class OutageRun:
    statuses: dict[str, int]
    check: LedgerCheck
    worker_logs: str
    maintenance_log: str


def run_through_outage(
    database_url: str, broker_url: str, tmp_path: Path, outage: Callable[[], None]
) -> OutageRun:
    """Run JOBS jobs on two workers, with ``outage`` once a quarter of them finished;
    assert that both workers lived through it."""
    with fault_fleet(database_url, broker_url, tmp_path) as fleet:
        workers = [fleet.start_worker(), fleet.start_worker()]
        job_ids = fleet.submit(JOBS)
        wait_for_progress(fleet, job_ids, JOBS // 4, timeout_s=120)
        outage()
        statuses = fleet.wait(job_ids, timeout_s=300)
        check = check_ledger_exact(fleet, job_ids)
        dead = [worker for worker in workers if worker.popen.poll() is not None]
        run = OutageRun(statuses, check, fleet.worker_logs(), fleet.processes[1].log_text())
    print(check)
    assert dead == [], "\n".join(w.log_text()[-4000:] for w in dead)
    return run


def test_redis_restart_loses_no_job(
    private_redis: PrivateRedis, pg_url: str, tmp_path: Path
) -> None:
    def restart() -> None:
        # Every queued message, the unacknowledged ones and the locks go with it.
        private_redis.kill()
        time.sleep(REDIS_DOWN_S)
        private_redis.start()

    run = run_through_outage(pg_url, private_redis.url, tmp_path, restart)
    assert run.statuses == {"succeeded": JOBS}
    assert run.check.statuses == {"succeeded": JOBS}
    # The jobs whose messages Redis lost were found and sent again.
    assert "recovered jobs queued with their message lost" in run.maintenance_log
    assert "Connection to broker lost" in run.worker_logs


def test_postgres_outage_of_twenty_seconds(
    private_postgres: PrivatePostgres, redis_url: str, tmp_path: Path
) -> None:
    def outage() -> None:
        private_postgres.stop()
        time.sleep(POSTGRES_DOWN_S)
        private_postgres.start()

    run = run_through_outage(private_postgres.url, redis_url, tmp_path, outage)
    assert run.statuses == {"succeeded": JOBS}
    assert run.check.statuses == {"succeeded": JOBS}
    # Workers kept finished calls and wrote them once the database was back.
    assert "ledger unreachable" in run.worker_logs
    assert run.check.orphaned_answered == 0
