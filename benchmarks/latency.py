"""Orchestration latency: the time from the start of JobClient.submit until the job's
result is committed to the ledger. Jobs go one at a time to an idle worker with a
zero-latency simulator. The baseline is a Redis LPUSH to BRPOP round trip through a
consumer process.

The submitter detects the commit by polling the job's status every POLL_S, so the figure
includes up to POLL_S of polling delay.
"""

import sys
import time

import psycopg
import redis

from benchmarks.context import AGENT, TENANT, BenchContext, Ledger, plain_env
from benchmarks.fleet import agent_worker, complaint_inputs, job_client, simulator, spawn
from benchmarks.redis_echo import REPLIES, REQUESTS
from benchmarks.results import Row, ScenarioResult, Target
from benchmarks.stats import percentile
from producer import JobClient

SCENARIO = "latency"
THREADS = 8
WARM_UP = 10
POLL_S = 0.0005
PAUSE_S = 0.01
TIMEOUT_S = 30.0
P50_TARGET = Target("ratio", "<=", 40.0)
STATUS_SQL = "SELECT status FROM jobs WHERE id = %s"


def run(ctx: BenchContext) -> ScenarioResult:
    samples = ctx.size.latency_samples
    with ctx.ledger(SCENARIO) as ledger, simulator(ctx, SCENARIO, latency_ms=0) as port:
        broker = ctx.redis_client()
        env = ctx.fleet_env(ledger, port)
        try:
            with agent_worker(ctx, SCENARIO, env, THREADS):
                job_ms = _job_latencies(ctx, ledger, samples)
        finally:
            broker.flushdb()
            broker.close()
    redis_ms = _redis_round_trips(ctx, samples)
    figures = {"job": _percentiles(job_ms), "redis": _percentiles(redis_ms)}
    result = ScenarioResult(SCENARIO, "Orchestration latency, idle fleet")
    result.details = {"samples": samples, "threads": THREADS, "poll_ms": POLL_S * 1000,
                      "ms": figures}  # fmt: skip
    result.rows = [
        Row(f"latency.{pct}", f"submit to ledger commit, {pct}", "ms", figures["job"][pct],
            f"Redis LPUSH to BRPOP round trip, {pct}", figures["redis"][pct], target)
        for pct, target in (("p50", P50_TARGET), ("p99", None))
    ]  # fmt: skip
    return result


def _percentiles(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p99": percentile(values, 99)}


def _job_latencies(ctx: BenchContext, ledger: Ledger, samples: int) -> list[float]:
    client = job_client(ctx, ledger)
    job_input = complaint_inputs()[0]
    try:
        with psycopg.connect(ledger.psycopg_url, autocommit=True) as conn:
            for _ in range(WARM_UP):
                _one_job_ms(client, conn, job_input)
            return [_one_job_ms(client, conn, job_input) for _ in range(samples)]
    finally:
        client.close()


def _one_job_ms(
    client: JobClient, conn: psycopg.Connection[tuple[object, ...]], job_input: dict[str, str]
) -> float:
    time.sleep(PAUSE_S)
    started = time.perf_counter()
    job = client.submit(TENANT, AGENT, job_input)
    deadline = started + TIMEOUT_S
    while time.perf_counter() < deadline:
        row = conn.execute(STATUS_SQL, (job.id,), prepare=True).fetchone()
        status = row[0] if row else None
        if status == "succeeded":
            return (time.perf_counter() - started) * 1000
        if status in ("failed", "cancelled"):
            raise RuntimeError(f"job {job.id} ended {status}; see the worker log")
        time.sleep(POLL_S)
    raise TimeoutError(f"job {job.id} did not succeed within {TIMEOUT_S:g} s")


def _redis_round_trips(ctx: BenchContext, samples: int) -> list[float]:
    total = WARM_UP + samples
    client = ctx.redis_client()
    command = [sys.executable, "-m", "benchmarks.redis_echo", "--url", ctx.redis_url,
               "--count", str(total)]  # fmt: skip
    echo = spawn("redis-echo", command, plain_env(), ctx.log_dir(SCENARIO))
    try:
        times = [_round_trip_ms(client) for _ in range(total)]
    finally:
        echo.stop()
        client.close()
    return times[WARM_UP:]


def _round_trip_ms(client: redis.Redis) -> float:
    time.sleep(PAUSE_S)
    started = time.perf_counter()
    client.lpush(REQUESTS, b"x" * 64)
    if client.brpop([REPLIES], timeout=TIMEOUT_S) is None:
        raise TimeoutError(f"no echo from benchmarks.redis_echo within {TIMEOUT_S:g} s")
    return (time.perf_counter() - started) * 1000
