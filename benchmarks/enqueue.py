"""Enqueue: jobs/s through JobClient.submit and submit_many, against Celery apply_async and
Redis LPUSH of the same message bytes.

No worker runs, so every message stays queued; each phase starts on an empty queue.
"""

import time
from collections.abc import Callable

import redis

from benchmarks.context import AGENT, QUEUE, TENANT, BenchContext
from benchmarks.fleet import complaint_inputs, job_client, job_requests, submit_jobs
from benchmarks.noop_app import NOOP_QUEUE, NOOP_TASK, create_noop_app
from benchmarks.results import Row, ScenarioResult
from producer import JobClient

WARM_UP = 20
PIPELINE_DEPTH = 500


def run(ctx: BenchContext) -> ScenarioResult:
    result = ScenarioResult("enqueue", "Enqueue: jobs/s through the producer")
    with ctx.ledger("enqueue") as ledger:
        broker = ctx.redis_client()
        client = job_client(ctx, ledger)
        try:
            figures = _measure(ctx, client, broker)
        finally:
            client.close()
            broker.flushdb()
            broker.close()
    result.details = {
        "single_jobs": ctx.size.enqueue_single,
        "batch_jobs": ctx.size.enqueue_batch,
        "jobs_per_s": figures,
    }
    result.rows = _rows(figures)
    return result


def _measure(ctx: BenchContext, client: JobClient, broker: redis.Redis) -> dict[str, float]:
    single, batch = ctx.size.enqueue_single, ctx.size.enqueue_batch
    submit_jobs(client, WARM_UP)
    message = broker.lindex(QUEUE, 0)
    if not isinstance(message, bytes):
        raise RuntimeError(f"no message on {QUEUE} after submitting {WARM_UP} jobs")
    inputs = complaint_inputs()
    figures: dict[str, float] = {}

    def submit_one_by_one() -> None:
        for i in range(single):
            client.submit(TENANT, AGENT, inputs[i % len(inputs)])

    requests = job_requests(batch)
    figures["submit"] = _rate(broker, single, submit_one_by_one)
    figures["submit_many"] = _rate(
        broker, batch, lambda: client.submit_many(TENANT, AGENT, requests)
    )
    figures.update(_celery_rates(ctx, broker, single, batch))
    figures["lpush"] = _rate(broker, single, lambda: _lpush_each(broker, message, single))
    figures["lpush_pipelined"] = _rate(
        broker, batch, lambda: _lpush_pipelined(broker, message, batch)
    )
    return figures


def _celery_rates(
    ctx: BenchContext, broker: redis.Redis, single: int, batch: int
) -> dict[str, float]:
    app = create_noop_app(ctx.redis_url)
    task = app.tasks[NOOP_TASK]
    try:
        for _ in range(WARM_UP):
            task.apply_async(queue=NOOP_QUEUE)

        def send_each() -> None:
            for _ in range(single):
                task.apply_async(queue=NOOP_QUEUE)

        def send_with_one_producer() -> None:
            with app.producer_or_acquire() as producer:
                for _ in range(batch):
                    task.apply_async(queue=NOOP_QUEUE, producer=producer)

        return {
            "apply_async": _rate(broker, single, send_each),
            "apply_async_one_producer": _rate(broker, batch, send_with_one_producer),
        }
    finally:
        app.close()


def _lpush_each(broker: redis.Redis, message: bytes, count: int) -> None:
    for _ in range(count):
        broker.lpush("bench.lpush", message)


def _lpush_pipelined(broker: redis.Redis, message: bytes, count: int) -> None:
    for start in range(0, count, PIPELINE_DEPTH):
        pipe = broker.pipeline(transaction=False)
        for _ in range(min(PIPELINE_DEPTH, count - start)):
            pipe.lpush("bench.lpush", message)
        pipe.execute()


def _rate(broker: redis.Redis, count: int, action: Callable[[], object]) -> float:
    """Run ``action`` on empty queues and return ``count`` divided by its duration."""
    broker.delete(QUEUE, NOOP_QUEUE, "bench.lpush")
    started = time.perf_counter()
    action()
    return count / (time.perf_counter() - started)


def _rows(figures: dict[str, float]) -> list[Row]:
    single = "JobClient.submit, one job a call"
    batch = "JobClient.submit_many, one call"
    return [
        Row("enqueue.single.celery", single, "jobs/s", figures["submit"],
            "Celery apply_async, one a call", figures["apply_async"]),
        Row("enqueue.single.redis", single, "jobs/s", figures["submit"],
            "Redis LPUSH, one a call", figures["lpush"]),
        Row("enqueue.batch.celery", batch, "jobs/s", figures["submit_many"],
            "Celery apply_async, one producer", figures["apply_async_one_producer"]),
        Row("enqueue.batch.redis", batch, "jobs/s", figures["submit_many"],
            f"Redis LPUSH, pipelined {PIPELINE_DEPTH} deep", figures["lpush_pipelined"]),
    ]  # fmt: skip
