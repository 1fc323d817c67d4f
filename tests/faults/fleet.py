"""A fleet for fault tests, and the check that its ledger stayed exact.

The fleet is real: the simulator, Celery workers and beat as separate processes on
Redis and PostgreSQL. Deadlines, the recovery period and the redelivery timeout are
short, so lost jobs come back within seconds instead of an hour.
"""

import json
import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from agentfleet.processes import (
    ManagedProcess,
    free_port,
    start_beat,
    start_simulator,
    start_worker,
    wait_ready,
)
from agentfleet.settings import Settings
from ledger.models import Attempt, Job, UsageRecord
from ledger.reports import usage_totals
from producer import JobClient, JobRequest
from tests.support import add_tenant, fleet_env, migrated_sessions

TENANT = "acme"
AGENT = "triage"
TIME_LIMIT_S = 15
FAULT_SETTINGS = {
    "agent_overrides": json.dumps(
        {name: {"time_limit_s": TIME_LIMIT_S} for name in ("triage", "summarize", "clause-review")}
    ),
    "recovery_interval_s": "2",
    "recovery_grace_s": "3",
    "resend_queued_after_s": "15",
    # At least the deadline plus the recovery grace, as workers check at start-up.
    "broker_visibility_timeout_s": "20",
    "rollup_interval_s": "3600",
    "providers__openai__timeout_s": "5",
}


@dataclass
class FaultFleet:
    env: dict[str, str]
    logs: Path
    simulator_url: str
    sessions: sessionmaker[Session]
    processes: list[ManagedProcess] = field(default_factory=list)
    workers_started: int = 0

    def start_worker(self, concurrency: int = 10, **extra_env: str) -> ManagedProcess:
        """Start one more worker on the agent's queue and wait until it consumes."""
        self.workers_started += 1
        name = f"worker-{self.workers_started}"
        worker = start_worker(
            f"agent.{AGENT}", {**self.env, **extra_env}, self.logs, concurrency, name=name
        )
        self.processes.append(worker)
        wait_ready(worker)
        return worker

    def kill(self, process: ManagedProcess) -> None:
        process.popen.send_signal(signal.SIGKILL)
        process.popen.wait(10)

    def client(self) -> JobClient:
        settings = Settings(
            database_url=self.env["AGENTFLEET_DATABASE_URL"],
            broker_url=self.env["AGENTFLEET_BROKER_URL"],
        )
        return JobClient(settings, sessions=self.sessions)

    def submit(self, count: int) -> list[str]:
        requests = [
            JobRequest({"narrative": f"Complaint {n}: I was charged a late fee of {n} dollars."})
            for n in range(count)
        ]
        client = self.client()
        try:
            return [s.job.id for s in client.submit_many(TENANT, AGENT, requests)]
        finally:
            client.close()

    def finished(self, job_ids: list[str]) -> int:
        with self.sessions() as session:
            return (
                session.scalar(
                    select(func.count())
                    .select_from(Job)
                    .where(Job.id.in_(job_ids), Job.status.in_(("succeeded", "failed")))
                )
                or 0
            )

    def wait(self, job_ids: list[str], timeout_s: float = 300) -> dict[str, int]:
        client = self.client()
        try:
            jobs = client.wait(job_ids, timeout_s=timeout_s, poll_s=1.0)
        finally:
            client.close()
        return dict(Counter(job.status for job in jobs))

    def worker_logs(self) -> str:
        return "\n".join(p.log_text() for p in self.processes if p.name.startswith("worker-"))


@contextmanager
def fault_fleet(
    database_url: str, broker_url: str, tmp_path: Path, latency_ms: float = 200
) -> Iterator[FaultFleet]:
    """Run the simulator, a maintenance worker and beat; agent workers are started by
    the test with ``start_worker``."""
    port = free_port()
    env = fleet_env(database_url, broker_url, port, **FAULT_SETTINGS)
    sessions = migrated_sessions(database_url)
    add_tenant(sessions, TENANT)
    logs = tmp_path / "logs"
    fleet = FaultFleet(env, logs, f"http://127.0.0.1:{port}", sessions)
    fleet.processes.append(start_simulator(port, logs, latency_ms=latency_ms, env=env))
    try:
        maintenance = start_worker("agentfleet.maintenance", env, logs, concurrency=2)
        fleet.processes.append(maintenance)
        wait_ready(maintenance)
        fleet.processes.append(start_beat(env, logs, "beat"))
        yield fleet
    finally:
        for process in reversed(fleet.processes):
            process.stop()


@dataclass
class LedgerCheck:
    statuses: dict[str, int]
    served: int
    orphaned: int
    orphaned_answered: int


def check_ledger_exact(fleet: FaultFleet, job_ids: list[str]) -> LedgerCheck:
    """Assert the ledger invariants after a run with faults, and return what was counted.

    Every job is final. Each succeeded job has exactly one billable usage row, and a
    failed one has none. Every request the simulator replied to is either a usage row
    with the same tokens or an orphaned attempt, whose worker died before the write.
    Every request it received has an attempt row, and every usage row has its request.
    """
    served = httpx.get(f"{fleet.simulator_url}/stats/requests", timeout=10).json()
    assert served["untracked_requests"] == 0
    requests: dict[str, dict[str, object]] = served["requests"]
    with fleet.sessions() as session:
        jobs = dict(session.execute(select(Job.id, Job.status).where(Job.id.in_(job_ids))).all())
        billable = Counter(
            session.scalars(select(UsageRecord.job_id).where(UsageRecord.billable)).all()
        )
        usage = {
            row.attempt_id: row
            for row in session.scalars(select(UsageRecord).where(~UsageRecord.cache_hit))
        }
        attempts = {a.id: a for a in session.scalars(select(Attempt))}
        reported_orphans = sum(total.orphaned for total in usage_totals(session, "model"))

    statuses = dict(Counter(jobs.values()))
    assert set(statuses) <= {"succeeded", "failed"}, statuses
    assert {j for j, status in jobs.items() if status == "succeeded"} == set(billable)
    assert set(billable.values()) <= {1}, "a job was billed twice"

    assert set(requests) <= set(attempts), "the provider saw a call with no attempt row"
    answered = {rid for rid, r in requests.items() if r["answered"]}
    orphaned = {aid for aid, a in attempts.items() if a.status == "orphaned"}
    assert answered - set(usage) <= orphaned, "an answered call is neither recorded nor orphaned"
    # 'agentfleet usage' shows every orphaned attempt.
    assert reported_orphans == len(orphaned)
    assert set(usage) <= answered, "a usage row has no answered call behind it"
    for attempt_id, row in usage.items():
        reported = requests[attempt_id]
        assert (row.input_tokens, row.output_tokens) == (
            reported["prompt_tokens"],
            reported["completion_tokens"],
        ), attempt_id
    # Attempts the provider never saw died before the request left, or failed to send it.
    for attempt_id in set(attempts) - set(requests):
        assert attempts[attempt_id].status in ("orphaned", "failed"), attempt_id
    return LedgerCheck(statuses, len(answered), len(orphaned), len(answered - set(usage)))
