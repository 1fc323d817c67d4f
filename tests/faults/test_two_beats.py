"""Two beat processes at once: the periodic rollup runs twice as often, invoices stay the same."""

import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentfleet.processes import (
    ManagedProcess,
    free_port,
    start_beat,
    start_simulator,
    start_worker,
    wait_ready,
)
from agentfleet.settings import Settings
from producer import JobClient, JobRequest
from tests.support import add_tenant, fleet_env, migrated_sessions

pytestmark = pytest.mark.integration

BEAT_PERIOD_S = 2
BEATS_RUN_S = 12


@pytest.fixture
def fleet_with_two_beats(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    port = free_port()
    env = fleet_env(pg_url, redis_url, port, rollup_interval_s=str(BEAT_PERIOD_S))
    migrated_sessions(pg_url)
    logs = tmp_path / "logs"
    processes: list[ManagedProcess] = [start_simulator(port, logs, latency_ms=10, env=env)]
    try:
        workers = [
            start_worker("agent.triage", env, logs, concurrency=16),
            start_worker("agentfleet.maintenance", env, logs, concurrency=4),
        ]
        processes.extend(workers)
        for worker in workers:
            wait_ready(worker)
        yield env
    finally:
        for process in reversed(processes):
            process.stop()


def invoices(env: dict[str, str]) -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "agentfleet", "invoices", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return list(json.loads(done.stdout))


def invoice_lines(env: dict[str, str], invoice_id: object) -> object:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "agentfleet",
            "invoices",
            "show",
            str(invoice_id),
            "--format",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def test_duplicate_beat_changes_no_invoice(
    fleet_with_two_beats: dict[str, str], tmp_path: Path
) -> None:
    env = fleet_with_two_beats
    sessions = migrated_sessions(env["AGENTFLEET_DATABASE_URL"])
    add_tenant(sessions, "acme")
    add_tenant(sessions, "globex")
    client = JobClient(
        Settings(
            database_url=env["AGENTFLEET_DATABASE_URL"], broker_url=env["AGENTFLEET_BROKER_URL"]
        ),
        sessions=sessions,
    )
    ids = []
    for tenant in ("acme", "globex"):
        requests = [
            JobRequest({"narrative": f"Complaint {n} about a late fee of {n} dollars."})
            for n in range(40)
        ]
        ids.extend(s.job.id for s in client.submit_many(tenant, "triage", requests))
    assert {job.status for job in client.wait(ids, timeout_s=120)} == {"succeeded"}
    client.close()

    subprocess.run(
        [sys.executable, "-m", "agentfleet", "rollup"],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    before = {row["tenant"]: invoice_lines(env, row["id"]) for row in invoices(env)}

    beats = [start_beat(env, tmp_path / "logs", f"beat-{n}") for n in (1, 2)]
    try:
        time.sleep(BEATS_RUN_S)
    finally:
        for beat in beats:
            beat.stop()
    maintenance_log = (tmp_path / "logs" / "agentfleet-maintenance.log").read_text(encoding="utf-8")

    after = {row["tenant"]: invoice_lines(env, row["id"]) for row in invoices(env)}
    assert sorted(before) == ["acme", "globex"]
    assert after == before
    # Both beats sent rollups, and the maintenance worker ran them.
    assert all("Sending due task rollup-usage-into-invoices" in beat.log_text() for beat in beats)
    rollups = re.findall(r"Task agentfleet\.rollup\[[0-9a-f-]+\] received", maintenance_log)
    # Two beats each send one every period; a loaded machine may delay a few.
    assert len(rollups) >= BEATS_RUN_S // BEAT_PERIOD_S // 2
    assert "Traceback" not in maintenance_log
