"""Ledger ingest: usage rows/s written through the worker's own ledger functions, against
psycopg COPY into the same table with the same indexes and foreign keys.

The worker's path per provider call is what JobRunner does: claim_job with attempts_of,
open_attempt, then complete_job (which stores the usage row), each through
write_after_call in its own transaction, from a pool of threads as in a worker. A second
figure times only the complete_job step, for jobs already claimed with their attempt
open. COPY writes only the usage rows, for jobs and attempts inserted beforehand, and
checks the same foreign keys and unique indexes.
"""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
from sqlalchemy.orm import Session

from benchmarks.chat import MODEL
from benchmarks.context import AGENT, TENANT, BenchContext, Ledger
from benchmarks.results import Row, ScenarioResult, Target
from benchmarks.synthetic import PROVIDER, insert_running_jobs
from ledger.calls import (
    CallRecord,
    ClaimedJob,
    attempts_of,
    claim_job,
    complete_job,
    open_attempt,
)
from ledger.db import transaction
from ledger.jobs import NewJob, insert_jobs
from ledger.prices import PriceBook
from ledger.types import utcnow
from ledger.usage import TokenUsage
from workers.ledger_writes import write_after_call

SCENARIO = "ingest"
TARGET = Target("ratio", ">=", 0.3)
TIME_LIMIT_S = 120.0
RETRY_S = 60.0
INSERT_CHUNK = 1_000
USAGE = TokenUsage(input_tokens=180, output_tokens=40)
RESULT = {"product": "credit_reporting", "issue_category": "incorrect_information",
          "urgency": "high", "rationale": "identity theft"}  # fmt: skip
USAGE_COLUMNS = (
    "attempt_id", "job_id", "tenant_id", "agent", "provider", "model", "input_tokens",
    "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens", "cost",
    "currency", "billable", "partial", "cache_hit", "created_at",
)  # fmt: skip


def run(ctx: BenchContext) -> ScenarioResult:
    size = ctx.size
    with ctx.ledger(SCENARIO, pool_size=size.ingest_threads) as ledger:
        with ledger.sessions() as session:
            prices = PriceBook.from_session(session)
        full_path = _full_path_rate(ledger, prices, size.ingest_rows, size.ingest_threads)
        record_only = _record_only_rate(ledger, prices, size.ingest_rows, size.ingest_threads)
        copy = _copy_rate(ledger, size.ingest_copy_rows)
    result = ScenarioResult(SCENARIO, "Ledger ingest")
    result.details = {"rows": size.ingest_rows, "copy_rows": size.ingest_copy_rows,
                      "threads": size.ingest_threads,
                      "rows_per_s": {"worker_path": full_path, "complete_job_only": record_only,
                                     "copy": copy}}  # fmt: skip
    threads = f"{size.ingest_threads} threads"
    result.rows = [
        Row("ingest.worker_path", f"claim, open attempt, complete: {threads}", "rows/s",
            full_path, "psycopg COPY of usage rows", copy, TARGET),
        Row("ingest.complete_job", f"complete_job step only: {threads}", "rows/s", record_only,
            "psycopg COPY of usage rows", copy),
    ]  # fmt: skip
    return result


def _full_path_rate(ledger: Ledger, prices: PriceBook, rows: int, threads: int) -> float:
    job_ids = _queued_jobs(ledger, rows)

    def record(job_id: str) -> None:
        job = _claim(ledger, job_id)
        _complete(ledger, prices, job, _open_attempt(ledger, job))

    return _timed_rate(record, job_ids, threads)


def _record_only_rate(ledger: Ledger, prices: PriceBook, rows: int, threads: int) -> float:
    job_ids = _queued_jobs(ledger, rows)

    def prepare(job_id: str) -> tuple[ClaimedJob, str]:
        job = _claim(ledger, job_id)
        return job, _open_attempt(ledger, job)

    with ThreadPoolExecutor(threads) as pool:
        prepared = list(pool.map(prepare, job_ids))
    return _timed_rate(lambda item: _complete(ledger, prices, *item), prepared, threads)


def _claim(ledger: Ledger, job_id: str) -> ClaimedJob:
    token = str(uuid.uuid4())

    def claim(session: Session) -> ClaimedJob:
        job = claim_job(session, job_id, TIME_LIMIT_S, token=token)
        if not isinstance(job, ClaimedJob):
            raise RuntimeError(f"job {job_id} could not be claimed: {job}")
        attempts_of(session, job_id)
        return job

    return write_after_call(ledger.sessions, job_id, claim, give_up_after_s=RETRY_S)


def _open_attempt(ledger: Ledger, job: ClaimedJob) -> str:
    attempt_id = str(uuid.uuid4())
    return write_after_call(
        ledger.sessions,
        job.id,
        lambda session: open_attempt(session, job.id, PROVIDER, MODEL, attempt_id),
        give_up_after_s=RETRY_S,
    )


def _complete(ledger: Ledger, prices: PriceBook, job: ClaimedJob, attempt_id: str) -> None:
    at = utcnow()
    cost = prices.cost(PROVIDER, MODEL, USAGE, at)
    call = CallRecord(attempt_id, PROVIDER, MODEL, USAGE, cost, at)
    completed = write_after_call(
        ledger.sessions,
        job.id,
        lambda session: complete_job(session, job, call, RESULT),
        give_up_after_s=RETRY_S,
    )
    if not completed:
        raise RuntimeError(f"job {job.id} was not completed")


def _timed_rate(work: Any, items: list[Any], threads: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(work, items):
            pass
    return len(items) / (time.perf_counter() - started)


def _queued_jobs(ledger: Ledger, count: int) -> list[str]:
    new_jobs = [NewJob(TENANT, AGENT, {"narrative": f"complaint {i}"}) for i in range(count)]
    for start in range(0, count, INSERT_CHUNK):
        with transaction(ledger.sessions) as session:
            insert_jobs(session, new_jobs[start : start + INSERT_CHUNK])
    return [job.id for job in new_jobs]


def _copy_rate(ledger: Ledger, rows: int) -> float:
    """COPY ``rows`` usage rows in one transaction; return rows/s including the commit."""
    with psycopg.connect(ledger.psycopg_url) as conn:
        insert_running_jobs(conn, "copy", rows)
        at = datetime.now(UTC)
        cost = Decimal("0.000051")
        columns = ", ".join(USAGE_COLUMNS)
        started = time.perf_counter()
        statement = f"COPY usage_records ({columns}) FROM STDIN"
        with conn.transaction(), conn.cursor() as cursor, cursor.copy(statement) as copy:
            for i in range(1, rows + 1):
                copy.write_row(_usage_row(i, cost, at))
        return rows / (time.perf_counter() - started)


def _usage_row(i: int, cost: Decimal, at: datetime) -> tuple[object, ...]:
    job, attempt = f"copy-j-{i}", f"copy-a-{i}"
    return (attempt, job, TENANT, AGENT, PROVIDER, MODEL, 180, 0, 0, 40, 0, cost, "USD", True,
            False, False, at)  # fmt: skip
