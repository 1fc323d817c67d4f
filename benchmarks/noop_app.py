"""A plain Celery app with one no-op task: the baseline of the enqueue and throughput
scenarios.

It has the agent workers' delivery settings (late acknowledgement, one reserved message
per pool thread, no result backend), so comparing the two measures the work of a job.
The worker command reads the broker from BENCHMARKS_BROKER_URL.
"""

import os

from celery import Celery

BROKER_VARIABLE = "BENCHMARKS_BROKER_URL"
NOOP_QUEUE = "bench.noop"
NOOP_TASK = "benchmarks.noop"


def create_noop_app(broker_url: str, set_as_current: bool = False) -> Celery:
    noop_app = Celery("benchmarks-noop", broker=broker_url, set_as_current=set_as_current)
    noop_app.conf.update(
        task_ignore_result=True,
        task_acks_late=True,
        worker_prefetch_multiplier=1,
        task_default_queue=NOOP_QUEUE,
        broker_connection_retry_on_startup=True,
    )
    noop_app.task(name=NOOP_TASK)(_noop)
    return noop_app


def _noop() -> None:
    return None


app = create_noop_app(os.environ.get(BROKER_VARIABLE, "redis://127.0.0.1:6379/12"))
