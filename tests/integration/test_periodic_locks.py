"""Periodic tasks run once even when two beat processes send them."""

import pytest
import redis

from agentfleet.settings import Settings
from tests.support import migrated_sessions
from workers import tasks
from workers.locks import single_run
from workers.runtime import WorkerRuntime

pytestmark = pytest.mark.integration


def test_second_copy_is_skipped(
    pg_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sessions = migrated_sessions(pg_url)
    runtime = WorkerRuntime(Settings(database_url=pg_url, broker_url=redis_url))
    runtime.__dict__["sessions"] = sessions
    monkeypatch.setattr(tasks, "get_runtime", lambda: runtime)
    client = redis.Redis.from_url(redis_url)
    try:
        with (
            caplog.at_level("INFO", logger="workers.tasks"),
            single_run(client, "rollup", 60) as first,
            single_run(client, "recover_stuck_jobs", 60) as second,
        ):
            assert first and second
            assert tasks.rollup.run() == 0
            assert tasks.recover_stuck_jobs.run() == 0
        assert [r.getMessage() for r in caplog.records] == [
            "another process is rolling usage up; this run is skipped",
            "another process is recovering stuck jobs; this run is skipped",
        ]
        # Released: the next run takes the lock again and finds nothing to do.
        with single_run(client, "rollup", 60) as again:
            assert again
        assert client.exists("agentfleet:lock:rollup") == 0
    finally:
        client.close()
        runtime.close()
