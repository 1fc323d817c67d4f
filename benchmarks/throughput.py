"""Throughput: jobs/s one agent worker completes with a zero-latency simulator, against a
plain Celery no-op task drained by the same pool type and concurrency.

Both queues are full before the worker starts. The time runs from the first message
taken to the moment the queue and its unacknowledged messages are empty. An agent job's
message is acknowledged after its result and usage are committed to the ledger.

A third drain shows the ceiling that the simulator and httpx set on this machine: a
plain Celery task that makes one bare httpx call with a triage job's request body to
the same kind of simulator, and nothing else.
"""

import json
from typing import Any

import redis

from agentfleet.processes import ManagedProcess
from agentfleet.settings import Settings
from benchmarks.chat import triage_body
from benchmarks.context import QUEUE, BenchContext
from benchmarks.fleet import (
    agent_worker,
    job_client,
    noop_worker,
    simulator,
    submit_jobs,
    wait_drained,
)
from benchmarks.ledger_checks import check_jobs_succeeded
from benchmarks.noop_app import (
    CALL_QUEUE,
    CALL_TASK,
    CHAT_BODY_VARIABLE,
    CHAT_URL_VARIABLE,
    NOOP_QUEUE,
    NOOP_TASK,
    create_noop_app,
)
from benchmarks.results import Row, ScenarioResult, Target
from benchmarks.sampling import ProcessSampler

SCENARIO = "throughput"
TARGET = Target("ratio", ">=", 0.6)


def run(ctx: BenchContext) -> ScenarioResult:
    jobs, threads = ctx.size.throughput_jobs, ctx.size.throughput_threads
    broker = ctx.redis_client()
    try:
        product = _product_drain(ctx, broker)
        noop = _noop_drain(ctx, broker)
        call_only = _call_drain(ctx, broker)
    finally:
        broker.flushdb()
        broker.close()
    result = ScenarioResult(SCENARIO, "Throughput with a zero-latency simulator")
    result.details = {"jobs": jobs, "threads": threads, "agent_worker": product,
                      "noop_worker": noop, "call_only_worker": call_only}  # fmt: skip
    noop_label = f"Celery no-op task, threads -c {threads}"
    call_label = f"Celery task making one bare httpx call, threads -c {threads}"
    result.rows = [
        Row("throughput", f"completed jobs/s, one worker, threads -c {threads}", "jobs/s",
            product["jobs_per_s"], noop_label, noop["jobs_per_s"], TARGET),
        Row("throughput.call_only", call_label, "jobs/s", call_only["jobs_per_s"],
            noop_label, noop["jobs_per_s"]),
        Row("throughput.vs_call_only", f"completed jobs/s, one worker, threads -c {threads}",
            "jobs/s", product["jobs_per_s"], call_label, call_only["jobs_per_s"]),
    ]  # fmt: skip
    return result


def _product_drain(ctx: BenchContext, broker: redis.Redis) -> dict[str, Any]:
    jobs, threads = ctx.size.throughput_jobs, ctx.size.throughput_threads
    with ctx.ledger(SCENARIO) as ledger, simulator(ctx, SCENARIO, latency_ms=0) as port:
        client = job_client(ctx, ledger)
        try:
            submit_jobs(client, jobs)
        finally:
            client.close()
        env = ctx.fleet_env(ledger, port)
        with agent_worker(ctx, SCENARIO, env, threads, ready=False) as worker:
            figures = _drain(broker, QUEUE, jobs, worker)
        check_jobs_succeeded(ledger, jobs)
    return figures


def _fill_plain_queue(ctx: BenchContext, task: str, queue: str) -> None:
    """Send ``throughput_jobs`` messages of a benchmarks.noop_app task to its queue."""
    app = create_noop_app(ctx.redis_url)
    try:
        with app.producer_or_acquire() as producer:
            for _ in range(ctx.size.throughput_jobs):
                app.tasks[task].apply_async(queue=queue, producer=producer)
    finally:
        app.close()


def _noop_drain(ctx: BenchContext, broker: redis.Redis) -> dict[str, Any]:
    jobs, threads = ctx.size.throughput_jobs, ctx.size.throughput_threads
    _fill_plain_queue(ctx, NOOP_TASK, NOOP_QUEUE)
    with noop_worker(ctx, SCENARIO, threads) as worker:
        return _drain(broker, NOOP_QUEUE, jobs, worker)


def _call_drain(ctx: BenchContext, broker: redis.Redis) -> dict[str, Any]:
    jobs, threads = ctx.size.throughput_jobs, ctx.size.throughput_threads
    body_file = ctx.log_dir(SCENARIO) / "chat-body.json"
    body_file.write_text(json.dumps(triage_body(Settings())), encoding="utf-8")
    _fill_plain_queue(ctx, CALL_TASK, CALL_QUEUE)
    with simulator(ctx, SCENARIO, latency_ms=0) as port:
        env = {CHAT_URL_VARIABLE: f"http://127.0.0.1:{port}/v1/chat/completions",
               CHAT_BODY_VARIABLE: str(body_file)}  # fmt: skip
        with noop_worker(ctx, SCENARIO, threads, CALL_QUEUE, env) as worker:
            return _drain(broker, CALL_QUEUE, jobs, worker)


def _drain(broker: redis.Redis, queue: str, jobs: int, worker: ManagedProcess) -> dict[str, Any]:
    sampler = ProcessSampler(worker.popen.pid).start()
    drain = wait_drained(broker, queue, jobs, timeout_s=120 + jobs / 20, process=worker)
    sampler.stop()
    return {
        "jobs_per_s": jobs / drain.elapsed_s,
        "elapsed_s": drain.elapsed_s,
        "worker_cores": sampler.cores_between(drain.first_taken_at, drain.drained_at),
        "worker_max_rss_mib": sampler.max_rss_between(drain.first_taken_at, drain.drained_at)
        / 2**20,
    }
