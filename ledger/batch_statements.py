"""PostgreSQL statements of the batched writes: one statement per kind of write, whatever
the number of jobs in the batch.

Each statement takes the batch as arrays, one per column, and turns them into rows with
``unnest``. The SQL text does not change with the batch size, so SQLAlchemy compiles it
once and psycopg prepares it on the server from its sixth run (psycopg's default
``prepare_threshold`` is 5). The claim and the completion first lock the jobs' rows in id
order, so two batches that share a job wait for each other instead of deadlocking. That
lock selects by primary key alone: with a condition on ``status`` beside it, PostgreSQL
can scan the status index for every queued job when the table's statistics are older
than its rows. The caller handles the requests these statements leave out, such as a
job held by another delivery or a retried write, with the single-job functions.
"""

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import text
from sqlalchemy.orm import Session

from ledger.calls import USAGE, CallRecord
from ledger.claims import CLAIMABLE, CLAIMED_COLUMNS, JOBS, ClaimedJob
from ledger.models import AttemptStatus, JobStatus
from ledger.types import ExactDecimal

RUNNING = JobStatus.RUNNING.value
_COST_TYPE = cast(ExactDecimal, USAGE.cost.type)
CLAIMABLE_SQL = "(" + ", ".join(f"'{status}'" for status in CLAIMABLE) + ")"

# Claims the jobs that no delivery holds: queued, or released to wait.
_CLAIM_FREE = text(f"""
WITH batch AS (
    SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:tokens AS text[]),
                         CAST(:deadlines AS timestamptz[])) AS b (id, token, deadline)
), locked AS MATERIALIZED (
    SELECT id, status, deliveries FROM jobs
    WHERE id = ANY(CAST(:ids AS text[])) ORDER BY id FOR UPDATE
)
UPDATE jobs SET status = '{RUNNING}', started_at = coalesce(jobs.started_at, :now),
    deadline_at = coalesce(jobs.deadline_at, batch.deadline),
    deliveries = jobs.deliveries + 1, claim_token = batch.token
FROM batch JOIN locked ON locked.id = batch.id
WHERE jobs.id = batch.id AND locked.status IN {CLAIMABLE_SQL} AND locked.deliveries = 0
RETURNING jobs.id, jobs.tenant_id, jobs.agent, jobs.input, jobs.deadline_at,
    jobs.deliveries, jobs.attempts, jobs.claim_token
""").columns(*CLAIMED_COLUMNS, JOBS.claim_token)

# Counts each new attempt on its job and writes its row; an attempt already written, as
# by a retried write, is left alone.
_OPEN_NEW = text(f"""
WITH batch AS (
    SELECT * FROM unnest(CAST(:job_ids AS text[]), CAST(:attempt_ids AS text[]),
                         CAST(:providers AS text[]), CAST(:models AS text[]))
        AS b (job_id, attempt_id, provider, model)
), counted AS (
    UPDATE jobs SET attempts = jobs.attempts + 1 FROM batch
    WHERE jobs.id = batch.job_id
        AND NOT EXISTS (SELECT FROM attempts WHERE attempts.id = batch.attempt_id)
    RETURNING batch.attempt_id, batch.job_id, jobs.attempts AS number, batch.provider,
        batch.model
)
INSERT INTO attempts (id, job_id, number, provider, model, status, started_at)
SELECT attempt_id, job_id, number, provider, model, '{AttemptStatus.STARTED.value}',
    CAST(:now AS timestamptz)
FROM counted
RETURNING id
""")

# Finishes the running jobs with their results, stores every call's usage (billable for
# the jobs this statement finished) and closes the attempts whose usage it stored.
# Returns a row per finished job and per stored usage row.
_COMPLETE = text(f"""
WITH batch AS (
    SELECT * FROM unnest(
        CAST(:job_ids AS text[]), CAST(:results AS text[]), CAST(:attempt_ids AS text[]),
        CAST(:tenant_ids AS text[]), CAST(:agents AS text[]), CAST(:providers AS text[]),
        CAST(:models AS text[]), CAST(:input_tokens AS integer[]),
        CAST(:cached_input_tokens AS integer[]), CAST(:cache_write_tokens AS integer[]),
        CAST(:output_tokens AS integer[]), CAST(:reasoning_tokens AS integer[]),
        CAST(:costs AS numeric[]), CAST(:currencies AS text[]), CAST(:partials AS boolean[]),
        CAST(:cache_hits AS boolean[]), CAST(:created_ats AS timestamptz[])
    ) AS b (job_id, result, attempt_id, tenant_id, agent, provider, model, input_tokens,
            cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost,
            currency, partial, cache_hit, created_at)
), locked AS MATERIALIZED (
    SELECT id, status FROM jobs
    WHERE id = ANY(CAST(:job_ids AS text[])) ORDER BY id FOR UPDATE
), finished AS (
    UPDATE jobs SET status = '{JobStatus.SUCCEEDED.value}',
        result = CAST(batch.result AS json), error = NULL, finished_at = :now
    FROM batch JOIN locked ON locked.id = batch.job_id
    WHERE jobs.id = batch.job_id AND locked.status = '{RUNNING}'
    RETURNING jobs.id
), billed AS (
    INSERT INTO usage_records (attempt_id, job_id, tenant_id, agent, provider, model,
        input_tokens, cached_input_tokens, cache_write_tokens, output_tokens,
        reasoning_tokens, cost, currency, billable, partial, cache_hit, created_at)
    SELECT attempt_id, job_id, tenant_id, agent, provider, model, input_tokens,
        cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens, cost,
        currency, job_id IN (SELECT id FROM finished), partial, cache_hit, created_at
    FROM batch
    ON CONFLICT (attempt_id) DO NOTHING
    RETURNING attempt_id
), closed AS (
    UPDATE attempts SET http_status = NULL, error = NULL, finished_at = :now,
        status = CASE WHEN batch.cache_hit THEN '{AttemptStatus.CACHE_HIT.value}'
                      ELSE '{AttemptStatus.SUCCEEDED.value}' END
    FROM batch
    WHERE attempts.id = batch.attempt_id
        AND batch.attempt_id IN (SELECT attempt_id FROM billed)
)
SELECT 'finished' AS kind, id FROM finished
UNION ALL SELECT 'billed', attempt_id FROM billed
""")


def claim_free_jobs(
    session: Session, ids: Sequence[str], tokens: Sequence[str], deadlines: Sequence[datetime],
    now: datetime,
) -> list[Any]:  # fmt: skip
    """Claim the jobs that no delivery holds and return their rows with the claim token."""
    params = {"ids": list(ids), "tokens": list(tokens), "deadlines": list(deadlines), "now": now}
    return list(session.execute(_CLAIM_FREE, params))


def open_new_attempts(
    session: Session, rows: Sequence[tuple[str, str, str, str]], now: datetime
) -> set[str]:
    """Write the attempts of ``rows`` (job id, attempt id, provider, model) that are not
    written yet, and return the ids of those written."""
    job_ids, attempt_ids, providers, models = (list(c) for c in zip(*rows, strict=True))
    params = {"job_ids": job_ids, "attempt_ids": attempt_ids, "providers": providers,
              "models": models, "now": now}  # fmt: skip
    return set(session.scalars(_OPEN_NEW, params))


def complete(
    session: Session, completions: Sequence[tuple[ClaimedJob, CallRecord, Any]], now: datetime
) -> tuple[set[str], set[str]]:
    """Finish the running jobs and store the calls' usage. Return the ids of the jobs
    finished and the attempt ids whose usage rows were stored."""
    cost_of = _COST_TYPE.process_bind_param
    dialect = session.get_bind().dialect
    calls = [call for _, call, _ in completions]
    params = {
        "job_ids": [job.id for job, _, _ in completions],
        "results": [json.dumps(result) for _, _, result in completions],
        "attempt_ids": [call.attempt_id for call in calls],
        "tenant_ids": [job.tenant_id for job, _, _ in completions],
        "agents": [job.agent for job, _, _ in completions],
        "providers": [call.provider for call in calls],
        "models": [call.model for call in calls],
        "input_tokens": [call.usage.input_tokens for call in calls],
        "cached_input_tokens": [call.usage.cached_input_tokens for call in calls],
        "cache_write_tokens": [call.usage.cache_write_tokens for call in calls],
        "output_tokens": [call.usage.output_tokens for call in calls],
        "reasoning_tokens": [call.usage.reasoning_tokens for call in calls],
        "costs": [cost_of(call.cost.amount, dialect) for call in calls],
        "currencies": [call.cost.currency for call in calls],
        "partials": [call.partial for call in calls],
        "cache_hits": [call.cache_hit for call in calls],
        "created_ats": [call.at for call in calls],
        "now": now,
    }
    finished: set[str] = set()
    billed: set[str] = set()
    for kind, key in session.execute(_COMPLETE, params):
        (finished if kind == "finished" else billed).add(key)
    return finished, billed
