"""A plain Celery app with a no-op task, the baseline of the enqueue and throughput
scenarios, and a task that makes one bare httpx call to the simulator.

It has the agent workers' delivery settings (late acknowledgement, one reserved message
per pool thread, no result backend), so comparing the two measures the work of a job.
The worker command reads the broker from BENCHMARKS_BROKER_URL; the call task reads
the simulator's chat completions URL from BENCHMARKS_CHAT_URL and the JSON request body
from the file BENCHMARKS_CHAT_BODY names.
"""

import itertools
import json
import os
import threading
from typing import Any

import httpx
from celery import Celery

BROKER_VARIABLE = "BENCHMARKS_BROKER_URL"
CHAT_URL_VARIABLE = "BENCHMARKS_CHAT_URL"
CHAT_BODY_VARIABLE = "BENCHMARKS_CHAT_BODY"
NOOP_QUEUE = "bench.noop"
NOOP_TASK = "benchmarks.noop"
CALL_QUEUE = "bench.call"
CALL_TASK = "benchmarks.call"
# Connections per client, as in the workers' client pool.
CLIENT_CONNECTIONS = 32
# Clients, taken in turn by threads or greenlets: 512 connections in all.
CLIENTS = 16


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
    noop_app.task(name=CALL_TASK)(_call)
    return noop_app


def _noop() -> None:
    return None


_clients: list[httpx.Client] = []
_clients_lock = threading.Lock()
_turn = itertools.count()
_local = threading.local()
_body: dict[str, Any] | None = None


def _call() -> None:
    """POST the triage request to the simulator and parse the reply, with nothing else."""
    response = _client().post(os.environ[CHAT_URL_VARIABLE], json=_request_body())
    response.raise_for_status()
    response.json()


def _request_body() -> dict[str, Any]:
    global _body
    if _body is None:
        with open(os.environ[CHAT_BODY_VARIABLE], encoding="utf-8") as file:
            _body = json.load(file)
    return _body


def _client() -> httpx.Client:
    """Return the client of this thread or greenlet. Clients are made as threads or
    greenlets first need one, up to CLIENTS, then shared in turn, as the agent workers'
    client pool shares its clients."""
    client: httpx.Client | None = getattr(_local, "client", None)
    if client is None:
        index = next(_turn) % CLIENTS
        with _clients_lock:
            while len(_clients) <= index:
                limits = httpx.Limits(max_connections=CLIENT_CONNECTIONS)
                _clients.append(httpx.Client(limits=limits))
            client = _local.client = _clients[index]
    return client


app = create_noop_app(os.environ.get(BROKER_VARIABLE, "redis://127.0.0.1:6379/12"))
