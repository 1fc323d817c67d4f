"""Workers killed with SIGKILL mid-run, and a worker killed between a provider's reply
and the ledger write. No usage is lost and none is counted twice."""

import time
from pathlib import Path

import pytest

from tests.faults.fleet import FaultFleet, check_ledger_exact, fault_fleet
from workers.crashpoint import CRASH_AFTER_ANSWERS

pytestmark = pytest.mark.integration

JOBS = 1000
KILLS = 3


def wait_for_progress(fleet: FaultFleet, job_ids: list[str], done: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while fleet.finished(job_ids) < done:
        assert time.monotonic() < deadline, f"fewer than {done} jobs finished in {timeout_s} s"
        time.sleep(0.2)


def test_three_worker_kills_lose_nothing(pg_url: str, redis_url: str, tmp_path: Path) -> None:
    with fault_fleet(pg_url, redis_url, tmp_path) as fleet:
        workers = [fleet.start_worker(), fleet.start_worker()]
        job_ids = fleet.submit(JOBS)
        for kill in range(KILLS):
            wait_for_progress(fleet, job_ids, (kill + 1) * JOBS // (KILLS + 2), timeout_s=120)
            victim = workers.pop(0)
            fleet.kill(victim)
            workers.append(fleet.start_worker())
        statuses = fleet.wait(job_ids, timeout_s=300)
        check = check_ledger_exact(fleet, job_ids)
        logs = fleet.worker_logs()

    print(check)
    assert statuses == {"succeeded": JOBS}
    assert check.statuses == {"succeeded": JOBS}
    # The killed workers held jobs mid-call: those attempts were orphaned and run again.
    assert check.orphaned > 0
    assert check.served >= JOBS
    assert "Traceback" not in logs


def test_worker_killed_before_ledger_write(pg_url: str, redis_url: str, tmp_path: Path) -> None:
    with fault_fleet(pg_url, redis_url, tmp_path) as fleet:
        doomed = fleet.start_worker(**{CRASH_AFTER_ANSWERS: "40"})
        fleet.start_worker()
        job_ids = fleet.submit(300)
        doomed.popen.wait(120)
        assert f"{CRASH_AFTER_ANSWERS} reached; killing this worker" in doomed.log_text()
        fleet.start_worker()
        statuses = fleet.wait(job_ids, timeout_s=300)
        check = check_ledger_exact(fleet, job_ids)

    print(check)
    assert statuses == {"succeeded": 300}
    # The provider replied to the call that triggered the kill, and the ledger never got
    # its usage. The call is visible as an orphaned attempt, and its job ran again.
    assert check.orphaned_answered >= 1
    assert check.orphaned >= check.orphaned_answered
