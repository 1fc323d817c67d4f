"""The Celery application: broker, queues, routing and delivery settings."""

import logging
from typing import Any

from celery import Celery, signals

from agentfleet.fleet import broker_config, celery_queues, load_agents
from agentfleet.settings import Settings
from agents import MAINTENANCE_QUEUE, route_task

ROLLUP_TASK_NAME = "agentfleet.rollup"
RECOVERY_TASK_NAME = "agentfleet.recover_stuck_jobs"


def create_app(settings: Settings) -> Celery:
    """Build the Celery app; every agent gets its own queue, agent.<name>."""
    catalog = load_agents(settings)
    app = Celery("agentfleet", set_as_current=True)
    app.conf.update(broker_config(settings))
    app.conf.update(
        # Results and job state live in the ledger, not in a Celery result backend.
        task_ignore_result=True,
        # A job's message is acknowledged after the task ran, so a worker that dies
        # mid-job leaves the message for the broker to deliver again.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        # Each pool slot reserves one message, so short jobs do not wait behind a long one.
        worker_prefetch_multiplier=1,
        task_queues=celery_queues(catalog),
        task_routes=(route_task,),
        task_default_queue=MAINTENANCE_QUEUE,
        task_create_missing_queues=False,
        # Provider calls wait on the network, so threads hold many calls per process;
        # `--pool gevent` on the command line runs a greenlet per job instead.
        worker_pool="threads",
        worker_concurrency=settings.worker_concurrency,
        # Three events per job took about a sixth of a worker's CPU in a profile. Flower
        # turns them on in running workers, so by default none are sent without it.
        worker_send_task_events=settings.worker_task_events,
        task_send_sent_event=True,
        broker_connection_retry_on_startup=True,
        # After a broker restart the worker reconnects by itself, however long it takes.
        broker_connection_max_retries=None,
        beat_schedule=_beat_schedule(settings),
        include=["workers.tasks"],
    )
    return app


@signals.celeryd_init.connect
def _check_before_consuming(
    sender: Any = None, instance: Any = None, conf: Any = None, options: Any = None, **_: Any
) -> None:
    """Refuse to start on an unknown -Q queue or a ledger this worker cannot write to."""
    from workers import runtime
    from workers.startup import check_worker

    known = [queue.name for queue in conf.task_queues] if conf is not None else []
    check_worker((options or {}).get("queues"), known)
    concurrency = (options or {}).get("concurrency") or (conf.worker_concurrency if conf else None)
    runtime.pool_threads = int(concurrency) if concurrency else None
    if conf is not None and runtime.pool_threads:
        _allow_a_broker_connection_per_slot(conf, runtime.pool_threads)


def _allow_a_broker_connection_per_slot(conf: Any, slots: int) -> None:
    """Raise the broker's connection limit so every pool slot can acknowledge at once.

    The gevent pool acknowledges from each task's greenlet, each over its own connection.
    kombu's Redis channel allows ten connections by default and raises on the eleventh.
    """
    options = dict(conf.broker_transport_options or {})
    options["max_connections"] = max(int(options.get("max_connections", 0)), slots + 10)
    conf.broker_transport_options = options


@signals.after_setup_logger.connect
def _quiet_http_client_logs(**_: Any) -> None:
    """Drop httpx's INFO line per request; the job log already records every call."""
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _beat_schedule(settings: Settings) -> dict[str, Any]:
    return {
        "rollup-usage-into-invoices": {
            "task": ROLLUP_TASK_NAME,
            "schedule": settings.rollup_interval_s,
        },
        "recover-stuck-jobs": {
            "task": RECOVERY_TASK_NAME,
            "schedule": settings.recovery_interval_s,
        },
    }
