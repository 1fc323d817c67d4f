"""Ledger ingest: usage rows/s written through the worker's own ledger functions, against
psycopg COPY into the same table with the same indexes and foreign keys.

The worker's path per provider call is what JobRunner does: a claim, an attempt row,
then the completion (which stores the usage row), each handed to the worker's
LedgerWriter from a pool of threads as in a worker, so that the writes waiting at the
same time share a transaction and, on PostgreSQL, set-based statements (the commit
group). A second figure times only the
complete_job step, for jobs already claimed with their attempt open; a third runs the
full path with each write committed alone (AGENTFLEET_LEDGER_BATCH_MAX=1). A fourth runs
the same three writes of STATEMENT_BATCH jobs at a time from one thread, in one
transaction per batch and without the hand-over to a writer thread: what the database
work of the path allows. COPY writes
only the usage rows, for jobs and attempts inserted beforehand, and checks the same
foreign keys and unique indexes.
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
from ledger.batches import (
    AttemptRequest,
    ClaimRequest,
    Completion,
    claim_jobs,
    complete_jobs,
    open_attempts,
)
from ledger.calls import CallRecord
from ledger.claims import ClaimedJob
from ledger.db import transaction
from ledger.jobs import NewJob, insert_jobs
from ledger.prices import PriceBook
from ledger.types import utcnow
from ledger.usage import TokenUsage
from workers.commit_group import CommitGroup
from workers.ledger_writes import CLAIM, COMPLETE, OPEN_ATTEMPT, LedgerWriter

SCENARIO = "ingest"
TARGET = Target("ratio", ">=", 0.3)
TIME_LIMIT_S = 120.0
RETRY_S = 60.0
INSERT_CHUNK = 1_000
BATCH_MAX = 64
STATEMENT_BATCH = 50
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
    threads = size.ingest_threads
    with ctx.ledger(SCENARIO, pool_size=threads) as ledger:
        with ledger.sessions() as session:
            prices = PriceBook.from_session(session)
        alone = LedgerWriter(ledger.sessions, None, RETRY_S)
        group = CommitGroup(ledger.sessions, BATCH_MAX)
        grouped = LedgerWriter(ledger.sessions, group, RETRY_S)
        try:
            full_path = _full_path_rate(grouped, ledger, prices, size.ingest_rows, threads)
            record_only = _record_only_rate(grouped, ledger, prices, size.ingest_rows, threads)
        finally:
            group.close()
        group_stats = {"batches": group.batches, "writes": group.writes}
        unbatched = _full_path_rate(alone, ledger, prices, size.ingest_rows, threads)
        statements = _statements_rate(ledger, prices, size.ingest_rows)
        copy = _copy_rate(ledger, size.ingest_copy_rows)
    result = ScenarioResult(SCENARIO, "Ledger ingest")
    result.details = {"rows": size.ingest_rows, "copy_rows": size.ingest_copy_rows,
                      "threads": threads, "commit_group": group_stats,
                      "rows_per_s": {"worker_path": full_path, "complete_job_only": record_only,
                                     "each_write_alone": unbatched,
                                     "statements_one_thread": statements,
                                     "copy": copy}}  # fmt: skip
    label = f"{threads} threads"
    result.rows = [
        Row("ingest.worker_path", f"claim, open attempt, complete: {label}", "rows/s",
            full_path, "psycopg COPY of usage rows", copy, TARGET),
        Row("ingest.complete_job", f"complete_job step only: {label}", "rows/s", record_only,
            "psycopg COPY of usage rows", copy),
        Row("ingest.each_write_alone", f"claim, open attempt, complete, each write its own "
            f"transaction: {label}", "rows/s", unbatched, "psycopg COPY of usage rows", copy),
        Row("ingest.statements", f"claim, open attempt, complete: {STATEMENT_BATCH} jobs a "
            "transaction, one thread", "rows/s", statements, "psycopg COPY of usage rows", copy),
    ]  # fmt: skip
    return result


def _full_path_rate(
    writer: LedgerWriter, ledger: Ledger, prices: PriceBook, rows: int, threads: int
) -> float:
    job_ids = _queued_jobs(ledger, rows)

    def record(job_id: str) -> None:
        job = _claim(writer, job_id)
        _complete(writer, prices, job, _open_attempt(writer, job))

    return _timed_rate(record, job_ids, threads)


def _record_only_rate(
    writer: LedgerWriter, ledger: Ledger, prices: PriceBook, rows: int, threads: int
) -> float:
    job_ids = _queued_jobs(ledger, rows)

    def prepare(job_id: str) -> tuple[ClaimedJob, str]:
        job = _claim(writer, job_id)
        return job, _open_attempt(writer, job)

    with ThreadPoolExecutor(threads) as pool:
        prepared = list(pool.map(prepare, job_ids))
    return _timed_rate(lambda item: _complete(writer, prices, *item), prepared, threads)


def _statements_rate(ledger: Ledger, prices: PriceBook, rows: int) -> float:
    """Run the three writes of STATEMENT_BATCH jobs at a time in one transaction per batch,
    from this thread, and return usage rows/s."""
    job_ids = _queued_jobs(ledger, rows)
    started = time.perf_counter()
    for start in range(0, rows, STATEMENT_BATCH):
        with transaction(ledger.sessions) as session:
            _write_batch(session, prices, job_ids[start : start + STATEMENT_BATCH])
    return rows / (time.perf_counter() - started)


def _write_batch(session: Session, prices: PriceBook, job_ids: list[str]) -> None:
    claims = claim_jobs(
        session, [ClaimRequest(job_id, TIME_LIMIT_S, str(uuid.uuid4())) for job_id in job_ids]
    )
    jobs = [job for job in claims if isinstance(job, ClaimedJob)]
    requests = [AttemptRequest(job.id, PROVIDER, MODEL, str(uuid.uuid4())) for job in jobs]
    attempt_ids = open_attempts(session, requests)
    at = utcnow()
    cost = prices.cost(PROVIDER, MODEL, USAGE, at)
    completions = [
        Completion(job, CallRecord(attempt_id, PROVIDER, MODEL, USAGE, cost, at), RESULT)
        for job, attempt_id in zip(jobs, attempt_ids, strict=True)
    ]
    if len(jobs) != len(job_ids) or not all(complete_jobs(session, completions)):
        raise RuntimeError(f"a batch of {len(job_ids)} jobs was not completed in full")


def _claim(writer: LedgerWriter, job_id: str) -> ClaimedJob:
    job = writer.write_batched(job_id, CLAIM, ClaimRequest(job_id, TIME_LIMIT_S, str(uuid.uuid4())))
    if not isinstance(job, ClaimedJob):
        raise RuntimeError(f"job {job_id} could not be claimed: {job}")
    return job


def _open_attempt(writer: LedgerWriter, job: ClaimedJob) -> str:
    request = AttemptRequest(job.id, PROVIDER, MODEL, str(uuid.uuid4()))
    return writer.write_batched(job.id, OPEN_ATTEMPT, request)


def _complete(writer: LedgerWriter, prices: PriceBook, job: ClaimedJob, attempt_id: str) -> None:
    at = utcnow()
    cost = prices.cost(PROVIDER, MODEL, USAGE, at)
    call = CallRecord(attempt_id, PROVIDER, MODEL, USAGE, cost, at)
    if not writer.write_batched(job.id, COMPLETE, Completion(job, call, RESULT)):
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
