"""Celery task events on the real Redis: a worker sends none by default, starts when a
monitor sends the ``enable_events`` command, as Flower does, and stops on
``disable_events``."""

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from agentfleet.processes import free_port, start_simulator, start_worker, wait_ready
from agentfleet.settings import Settings
from producer import JobClient
from tests.support import add_tenant, fleet_env, migrated_sessions
from workers.app import create_app

pytestmark = pytest.mark.integration

JOB_INPUT = {"narrative": "I was charged twice for one order.", "company": "Acme"}


class EventLog:
    """Task events of the fleet, read from the broker by a receiver thread."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self.succeeded: list[str] = []
        self.changed = threading.Condition()
        self.listening = threading.Event()
        self.heartbeat_seen = threading.Event()
        self.thread = threading.Thread(target=self._receive, daemon=True)

    def _receive(self) -> None:
        with self.app.connection_for_read() as connection:
            self.receiver = self.app.events.Receiver(
                connection,
                handlers={
                    "task-succeeded": self._on_succeeded,
                    "worker-heartbeat": lambda _: self.heartbeat_seen.set(),
                },
            )
            self.listening.set()
            self.receiver.capture(limit=None, timeout=None, wakeup=False)

    def close(self) -> None:
        self.receiver.should_stop = True
        self.thread.join(timeout=5)

    def _on_succeeded(self, event: dict[str, Any]) -> None:
        with self.changed:
            self.succeeded.append(event["uuid"])
            self.changed.notify_all()

    def wait_for(self, count: int, timeout_s: float) -> list[str]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.succeeded) >= count, timeout=timeout_s)
            return list(self.succeeded)


@pytest.fixture
def worker_env(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    port = free_port()
    env = fleet_env(pg_url, redis_url, port)
    migrated_sessions(pg_url)
    simulator = start_simulator(port, tmp_path, env=env)
    worker = start_worker("agent.triage", env, tmp_path, concurrency=4)
    try:
        wait_ready(worker)
        yield env
    finally:
        worker.stop()
        simulator.stop()


def test_task_events_follow_monitor_commands(worker_env: dict[str, str]) -> None:
    settings = Settings(
        database_url=worker_env["AGENTFLEET_DATABASE_URL"],
        broker_url=worker_env["AGENTFLEET_BROKER_URL"],
    )
    sessions = migrated_sessions(settings.database_url)
    add_tenant(sessions, "acme")
    client = JobClient(settings, sessions=sessions)
    app = create_app(settings)
    events = EventLog(app)
    events.thread.start()
    assert events.listening.wait(timeout=10)
    # A worker heartbeat arriving shows the receiver is subscribed before the first job.
    assert events.heartbeat_seen.wait(timeout=30)
    try:
        quiet = client.submit("acme", "triage", JOB_INPUT).id
        assert client.wait([quiet], timeout_s=60)[0].status == "succeeded"
        assert events.wait_for(1, timeout_s=2) == []

        replies = app.control.enable_events(reply=True, timeout=5)
        assert replies, "the worker did not answer the enable_events command"
        watched = client.submit("acme", "triage", JOB_INPUT).id
        assert client.wait([watched], timeout_s=60)[0].status == "succeeded"
        assert len(events.wait_for(1, timeout_s=30)) == 1

        assert app.control.disable_events(reply=True, timeout=5)
        quiet_again = client.submit("acme", "triage", JOB_INPUT).id
        assert client.wait([quiet_again], timeout_s=60)[0].status == "succeeded"
        assert len(events.wait_for(2, timeout_s=2)) == 1
    finally:
        events.close()
        client.close()
        app.close()
