"""Rows generated inside PostgreSQL for the ledger scenarios, with generate_series."""

import psycopg

from benchmarks.chat import MODEL
from benchmarks.context import AGENT, TENANT

PROVIDER = "openai"

JOBS_SQL = """
INSERT INTO jobs (id, tenant_id, agent, input, status, priority, attempts, created_at)
SELECT %(prefix)s || '-j-' || i, %(tenant)s, %(agent)s, '{"narrative": "n"}',
       'running', 0, 1, now()
FROM generate_series(1, %(count)s) AS i
"""

ATTEMPTS_SQL = """
INSERT INTO attempts (id, job_id, number, provider, model, status, started_at)
SELECT %(prefix)s || '-a-' || i, %(prefix)s || '-j-' || i, 1, %(provider)s, %(model)s,
       'started', now()
FROM generate_series(1, %(count)s) AS i
"""


def insert_running_jobs(
    conn: psycopg.Connection[tuple[object, ...]], prefix: str, count: int
) -> None:
    """Insert ``count`` running jobs of the bench tenant, each with one open attempt.

    Job ids are ``{prefix}-j-{i}`` and attempt ids ``{prefix}-a-{i}``, for i from 1.
    """
    params = {"prefix": prefix, "count": count, "tenant": TENANT, "agent": AGENT,
              "provider": PROVIDER, "model": MODEL}  # fmt: skip
    with conn.transaction():
        conn.execute(JOBS_SQL, params)
        conn.execute(ATTEMPTS_SQL, params)


USAGE_SQL = """
INSERT INTO usage_records (
    attempt_id, job_id, tenant_id, agent, provider, model, input_tokens, cached_input_tokens,
    cache_write_tokens, output_tokens, reasoning_tokens, cost, currency, billable, partial,
    cache_hit, created_at)
SELECT 'r-' || i, 'r-' || i,
       %(tenant_prefix)s || lpad((i %% %(tenants)s)::text, 3, '0'),
       (ARRAY['triage', 'summarize', 'clause-review'])[1 + i %% 3],
       'openai',
       (ARRAY['gpt-4o-mini', 'gpt-4.1-nano', 'gpt-4.1', 'gpt-4o'])[1 + (i / 3) %% 4],
       100 + i %% 500, CASE WHEN i %% 10 = 0 THEN 1024 ELSE 0 END, 0, 20 + i %% 200, 0,
       ((100 + i %% 500) * 0.15 + (20 + i %% 200) * 0.6) / 1000000,
       'USD', i %% 23 <> 0, false, i %% 47 = 0,
       %(start)s + ((i::bigint * 7919) %% %(seconds)s) * interval '1 second'
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i
"""


def insert_usage_rows(
    conn: psycopg.Connection[tuple[object, ...]],
    first: int,
    last: int,
    tenants: int,
    tenant_prefix: str,
    period_start: object,
    period_seconds: int,
) -> None:
    """Insert usage rows ``first`` to ``last`` spread over one period and ``tenants`` tenants.

    The rows name jobs and attempts that do not exist: foreign-key triggers are off for
    the transaction (session_replication_role = replica), because the rollup reads only
    usage_records, tenants, plans and invoices. Every 23rd row is not billable and every
    47th is a cache hit.
    """
    params = {"first": first, "last": last, "tenants": tenants, "tenant_prefix": tenant_prefix,
              "start": period_start, "seconds": period_seconds}  # fmt: skip
    with conn.transaction():
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(USAGE_SQL, params)
