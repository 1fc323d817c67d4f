import subprocess
import sys
from pathlib import Path

import pytest

from agentfleet.settings import Settings
from agents import MAINTENANCE_QUEUE, RUN_TASK_NAME, route_task
from workers.app import ROLLUP_TASK_NAME, _allow_a_broker_connection_per_slot, create_app


def test_app_routes_and_delivery_settings() -> None:
    app = create_app(Settings(rollup_interval_s=60))
    conf = app.conf
    assert [q.name for q in conf.task_queues] == [
        "agent.triage",
        "agent.summarize",
        "agent.clause-review",
        MAINTENANCE_QUEUE,
    ]
    assert conf.task_ignore_result is True
    assert conf.task_acks_late is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.worker_pool == "threads"
    assert conf.task_default_queue == MAINTENANCE_QUEUE
    assert conf.beat_schedule["rollup-usage-into-invoices"] == {
        "task": ROLLUP_TASK_NAME,
        "schedule": 60.0,
    }


def test_task_events_off_by_default() -> None:
    assert create_app(Settings()).conf.worker_send_task_events is False
    assert create_app(Settings(worker_task_events=True)).conf.worker_send_task_events is True


def test_broker_connection_per_pool_slot() -> None:
    app = create_app(Settings(broker_url="redis://127.0.0.1:6379/3"))
    _allow_a_broker_connection_per_slot(app.conf, 500)
    assert app.conf.broker_transport_options["max_connections"] == 510
    assert app.conf.broker_transport_options["visibility_timeout"] == 3600


def test_router_sends_jobs_to_agent_queue() -> None:
    assert route_task(RUN_TASK_NAME, (), {"job_id": "j", "agent": "clause-review"}, {}) == {
        "queue": "agent.clause-review"
    }
    assert route_task(ROLLUP_TASK_NAME, (), {}, {}) == {"queue": MAINTENANCE_QUEUE}


def start_celery(
    tmp_path: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    """Run ``celery -A workers ARGS`` in an empty folder with only PATH and ``env`` set."""
    return subprocess.run(
        [sys.executable, "-m", "celery", "-A", "workers", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"AGENTFLEET_MAX_ATTEMPTS": "0"},
            "invalid settings: AGENTFLEET_MAX_ATTEMPTS: '0' is not allowed; input should be "
            "greater than or equal to 1",
        ),
        ({"AGENTFLEET_AGENTS_FILE": "missing.yaml"}, "agent catalog missing.yaml: file not found"),
        ({}, "no ledger at .agentfleet/ledger.db; run 'agentfleet db upgrade' to create it"),
    ],
)
def test_worker_refuses_bad_config(tmp_path: Path, env: dict[str, str], message: str) -> None:
    done = start_celery(tmp_path, env, "worker", "-Q", "agent.triage")
    assert done.returncode == 2
    assert done.stderr.strip() == f"agentfleet worker cannot start: {message}"
    assert "Traceback" not in done.stderr


def test_worker_refuses_unknown_queue(tmp_path: Path) -> None:
    done = start_celery(tmp_path, {}, "worker", "-Q", "agent.triag")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "agentfleet worker cannot start: unknown queue 'agent.triag'; the queues are agent.triage, "
        "agent.summarize, agent.clause-review, agentfleet.maintenance (see 'agentfleet agents')"
    )


@pytest.mark.parametrize("command", ["beat", "flower", "inspect"])
def test_bad_config_names_celery_command(tmp_path: Path, command: str) -> None:
    done = start_celery(tmp_path, {"AGENTFLEET_MAX_ATTEMPTS": "0"}, command)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"agentfleet {command} cannot start: invalid settings: AGENTFLEET_MAX_ATTEMPTS: '0' is "
        "not allowed; input should be greater than or equal to 1"
    )


def test_bad_boolean_setting_message(tmp_path: Path) -> None:
    done = start_celery(tmp_path, {"AGENTFLEET_WORKER_TASK_EVENTS": "maybe"}, "worker")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "agentfleet worker cannot start: invalid settings: AGENTFLEET_WORKER_TASK_EVENTS: "
        "'maybe' is not true or false; set true or false"
    )


def test_requeue_becomes_celery_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    from celery.exceptions import Retry

    from workers import tasks
    from workers.runner import JobRunner, RequeueJob

    def wait_long(self: JobRunner, job_id: str, agent: str) -> str:
        raise RequeueJob(45.0, "rate limit of openai:gpt-4o-mini")

    retries: list[dict[str, object]] = []

    def retry(**options: object) -> Retry:
        retries.append(options)
        return Retry("re-enqueued")

    monkeypatch.setattr(JobRunner, "run", wait_long)
    monkeypatch.setattr(tasks, "get_runtime", lambda: None)
    monkeypatch.setattr(tasks.run_job, "retry", retry)
    with pytest.raises(Retry):
        tasks.run_job.run(job_id="job-1", agent="triage")
    assert retries == [{"countdown": 45.0, "max_retries": None}]


def test_worker_refuses_short_visibility_timeout(tmp_path: Path) -> None:
    env = {
        "AGENTFLEET_BROKER_URL": "redis://127.0.0.1:6379/13",
        "AGENTFLEET_BROKER_VISIBILITY_TIMEOUT_S": "200",
    }
    done = start_celery(tmp_path, env, "worker", "-Q", "agent.triage")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "agentfleet worker cannot start: AGENTFLEET_BROKER_VISIBILITY_TIMEOUT_S is 200 s, but agent "
        "'clause-review' may hold a job for 180 s, so Redis would deliver it twice; set it to at least 240 "
        "(the deadline plus AGENTFLEET_RECOVERY_GRACE_S)"
    )


def test_recovery_task_sends_stuck_jobs(monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from ledger.claims import claim_job
    from ledger.db import transaction
    from ledger.jobs import NewJob, insert_jobs
    from ledger.models import Job
    from ledger.types import utcnow
    from tests.support import add_tenant, migrated_sessions
    from workers import tasks
    from workers.runtime import WorkerRuntime

    sessions = migrated_sessions(sqlite_url)
    add_tenant(sessions, "acme")
    with transaction(sessions) as session:
        job_id = insert_jobs(session, [NewJob("acme", "summarize", {"narrative": "a"})])[0].job.id
        claim_job(session, job_id, time_limit_s=120)
        session.execute(update(Job).values(deadline_at=utcnow() - timedelta(minutes=10)))
    runtime = WorkerRuntime(Settings(database_url=sqlite_url))
    runtime.__dict__["sessions"] = sessions
    sent: list[dict[str, object]] = []
    monkeypatch.setattr(tasks, "get_runtime", lambda: runtime)
    monkeypatch.setattr(tasks.run_job, "apply_async", lambda **options: sent.append(options))
    try:
        assert tasks.recover_stuck_jobs.run() == 1
    finally:
        runtime.close()
    assert sent == [{"kwargs": {"job_id": job_id, "agent": "summarize"}}]
