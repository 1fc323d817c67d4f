"""Fleet processes for the scenarios: the simulator, agent workers, the no-op worker, and
waiting for a queue to drain."""

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import redis

from agentfleet.processes import (
    ManagedProcess,
    free_port,
    start_simulator,
    start_worker,
    wait_ready,
)
from agentfleet.settings import Settings
from benchmarks.context import AGENT, QUEUE, REPO_ROOT, TENANT, BenchContext, Ledger, plain_env
from producer import JobClient, JobRequest

# kombu's Redis transport keeps each delivered, unacknowledged message in this hash.
UNACKED_KEY = "unacked"
DRAIN_POLL_S = 0.005


@dataclass(frozen=True)
class Drain:
    """When a worker took the first message of a full queue, and when the queue and its
    unacknowledged messages were both empty."""

    first_taken_at: float
    drained_at: float

    @property
    def elapsed_s(self) -> float:
        return self.drained_at - self.first_taken_at


def complaint_inputs() -> list[dict[str, str]]:
    """Return the bundled example complaints as triage inputs."""
    text = resources.files("agentfleet").joinpath("examples", "complaints.jsonl").read_text()
    rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [{"narrative": row["narrative"], "company": row["company"]} for row in rows]


def job_requests(count: int) -> list[JobRequest]:
    inputs = complaint_inputs()
    return [JobRequest(inputs[i % len(inputs)]) for i in range(count)]


def job_client(ctx: BenchContext, ledger: Ledger) -> JobClient:
    settings = Settings(database_url=ledger.url, broker_url=ctx.redis_url)
    return JobClient(settings, sessions=ledger.sessions)


def submit_jobs(client: JobClient, count: int) -> list[str]:
    submitted = client.submit_many(TENANT, AGENT, job_requests(count))
    return [s.job.id for s in submitted]


@contextmanager
def simulator(ctx: BenchContext, scenario: str, latency_ms: float) -> Iterator[int]:
    """Run the provider simulator with a fixed latency; yield its port."""
    port = free_port()
    process = start_simulator(port, ctx.log_dir(scenario), latency_ms=latency_ms, env=plain_env())
    try:
        yield port
    finally:
        process.stop()


@contextmanager
def agent_worker(
    ctx: BenchContext,
    scenario: str,
    env: dict[str, str],
    threads: int,
    ready: bool = True,
    pool: str = "threads",
) -> Iterator[ManagedProcess]:
    """Run one agent worker on the triage queue with a pool of this type and size."""
    log_dir = ctx.log_dir(scenario)
    name = f"{pool}-worker"
    process = start_worker(QUEUE, env, log_dir, concurrency=threads, name=name, pool=pool)
    try:
        if ready:
            wait_ready(process)
        yield process
    finally:
        process.stop()


@contextmanager
def noop_worker(
    ctx: BenchContext,
    scenario: str,
    threads: int,
    queue: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[ManagedProcess]:
    """Run a plain Celery worker of benchmarks.noop_app with a threads pool of this size,
    on the no-op task's queue unless ``queue`` is given.

    It yields without waiting for the worker's ready line, so a drain can be timed at once.
    """
    from benchmarks.noop_app import BROKER_VARIABLE, NOOP_QUEUE

    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "benchmarks.noop_app",
        "worker",
        "-Q",
        queue or NOOP_QUEUE,
        "--pool",
        "threads",
        "-c",
        str(threads),
        "-n",
        "noop@%h",
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
    ]
    env = {**plain_env(), BROKER_VARIABLE: ctx.redis_url, **(extra_env or {})}
    process = spawn(f"{queue or 'noop'}-worker", command, env, ctx.log_dir(scenario))
    try:
        yield process
    finally:
        process.stop()


def spawn(name: str, command: list[str], env: dict[str, str], log_dir: Path) -> ManagedProcess:
    """Start a process in the repository root with its output in ``log_dir/name.log``."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log_file:
        popen = subprocess.Popen(
            command,
            env=env,
            cwd=REPO_ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    return ManagedProcess(name, popen, log_path)


def wait_drained(
    client: redis.Redis, queue: str, total: int, timeout_s: float, process: ManagedProcess
) -> Drain:
    """Wait until a worker has taken and acknowledged every message of a full queue.

    Raises TimeoutError naming the messages left when ``timeout_s`` passes first.
    """
    deadline = time.monotonic() + timeout_s
    first_taken_at: float | None = None
    while time.monotonic() < deadline:
        queued, unacked = _queue_state(client, queue)
        now = time.time()
        if first_taken_at is None and queued < total:
            first_taken_at = now
        if first_taken_at is not None and queued == 0 and unacked == 0:
            return Drain(first_taken_at, now)
        if process.popen.poll() is not None:
            raise RuntimeError(f"{process.name} exited; see {process.log_path}")
        time.sleep(DRAIN_POLL_S)
    queued, unacked = _queue_state(client, queue)
    raise TimeoutError(
        f"{queue}: {queued} messages queued and {unacked} unacknowledged after {timeout_s:g} s; "
        f"see {process.log_path}"
    )


def _queue_state(client: redis.Redis, queue: str) -> tuple[int, int]:
    pipe = client.pipeline(transaction=False)
    pipe.llen(queue)
    pipe.hlen(UNACKED_KEY)
    queued, unacked = pipe.execute()
    return int(queued), int(unacked)


def simulator_stats(port: int) -> dict[str, Any]:
    return dict(httpx.get(f"http://127.0.0.1:{port}/stats", timeout=10).json())


def run_bare_client(
    url: str, body: dict[str, Any], concurrency: int, calls: int, cycle_s: float, log_dir: Path
) -> dict[str, float]:
    """Run benchmarks.bare_client in its own process and return the figures it printed."""
    body_file = log_dir / "bare-client-body.json"
    body_file.write_text(json.dumps(body), encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "benchmarks.bare_client",
        "--url",
        url,
        "--body",
        str(body_file),
        "--concurrency",
        str(concurrency),
        "--calls",
        str(calls),
        "--cycle",
        str(cycle_s),
    ]
    done = subprocess.run(
        command,
        env=plain_env(),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bare client exited with code {done.returncode}: {done.stderr[-2000:]}")
    figures: dict[str, float] = json.loads(done.stdout)
    return figures
