"""Rollup: ledger.rollup.rollup_period over one month of usage rows, against one plain SQL
GROUP BY of the same rows. A second figure times the rollup again after 1% more rows,
against the full rollup.

The full figure runs rollup_period with ``full=True``, which computes the month's totals
again from all of its rows. The second figure is the ordinary rollup, which adds only
the rows committed since the last one to the month's totals.
"""

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import psycopg

from benchmarks.context import BenchContext, Ledger
from benchmarks.results import Row, ScenarioResult, Target
from benchmarks.sizes import Size
from benchmarks.stats import median
from benchmarks.synthetic import insert_usage_rows
from ledger.db import transaction
from ledger.periods import Period
from ledger.plans import create_plan, create_tenant
from ledger.rollup import rollup_period
from ledger.types import utcnow
from ledger.usage import TokenKind

SCENARIO = "rollup"
TENANTS = 20
TENANT_PREFIX = "rollup-"
LOAD_CHUNK = 1_000_000
DELTA_FRACTION = 0.01
FULL_TARGET = Target("ratio", "<=", 1.3)
DELTA_TARGET = Target("ratio", "<=", 0.05)
GROUP_BY_SQL = """
SELECT tenant_id, agent, model, count(*), sum(input_tokens), sum(cached_input_tokens),
       sum(cache_write_tokens), sum(output_tokens), sum(cost)
FROM usage_records
WHERE billable AND created_at >= %(start)s AND created_at < %(end)s
GROUP BY tenant_id, agent, model
"""


def run(ctx: BenchContext) -> ScenarioResult:
    size = ctx.size
    period = Period.month_of(utcnow())
    with ctx.ledger(SCENARIO) as ledger:
        _add_tenants(ledger)
        load_s = _load(ledger, period, 1, size.rollup_rows)
        times = _time_full(ledger, period, size.rollup_repeats)
        times["after_delta_s"] = _time_after_deltas(ledger, period, size)
        work_mem = _setting(ledger, "work_mem")
    full, group_by = median(times["rollup_s"]), median(times["group_by_s"])
    after_delta = median(times["after_delta_s"])
    result = ScenarioResult(SCENARIO, "Rollup of one month of usage")
    result.details = {"rows": size.rollup_rows, "tenants": TENANTS, "period": str(period),
                      "load_s": load_s, "work_mem": work_mem, **times}  # fmt: skip
    delta_rows = int(size.rollup_rows * DELTA_FRACTION)
    result.rows = [
        Row("rollup.full", f"rollup_period, {size.rollup_rows:,} rows", "s", full,
            "one SQL GROUP BY of the same rows", group_by, FULL_TARGET),
        Row("rollup.after_delta", f"rollup_period again after {delta_rows:,} more rows", "s",
            after_delta, "the full rollup", full, DELTA_TARGET),
    ]  # fmt: skip
    return result


def _add_tenants(ledger: Ledger) -> None:
    with transaction(ledger.sessions) as session:
        create_plan(session, "rollup-per-token",
                    rates_per_mtok={TokenKind.INPUT: Decimal("0.30"),
                                    TokenKind.OUTPUT: Decimal("1.20")})  # fmt: skip
        create_plan(session, "rollup-markup", markup=Decimal("1.25"))
        for i in range(TENANTS):
            plan = "rollup-per-token" if i % 2 else "rollup-markup"
            create_tenant(session, f"{TENANT_PREFIX}{i:03d}", plan)


def _load(ledger: Ledger, period: Period, first: int, last: int) -> float:
    """Insert usage rows first..last in chunks and VACUUM ANALYZE them; return the seconds."""
    started = time.perf_counter()
    seconds = int((period.end_at - period.start_at).total_seconds())
    with psycopg.connect(ledger.psycopg_url, autocommit=True) as conn:
        for chunk_first in range(first, last + 1, LOAD_CHUNK):
            chunk_last = min(chunk_first + LOAD_CHUNK - 1, last)
            insert_usage_rows(conn, chunk_first, chunk_last, TENANTS, TENANT_PREFIX,
                              period.start_at, seconds)  # fmt: skip
        conn.execute("VACUUM (ANALYZE) usage_records")
    return time.perf_counter() - started


def _time_full(ledger: Ledger, period: Period, repeats: int) -> dict[str, Any]:
    """Time the GROUP BY and the rollup, alternating, after one untimed run of each."""

    def group_by() -> None:
        with psycopg.connect(ledger.psycopg_url) as conn:
            conn.execute(GROUP_BY_SQL, {"start": period.start_at, "end": period.end_at}).fetchall()

    def rollup() -> None:
        results = rollup_period(ledger.sessions, period, full=True)
        if len(results) != TENANTS:
            raise RuntimeError(f"rollup wrote {len(results)} invoices, expected {TENANTS}")

    group_by()
    rollup()
    times: dict[str, list[float]] = {"group_by_s": [], "rollup_s": []}
    for _ in range(repeats):
        times["group_by_s"].append(_seconds(group_by))
        times["rollup_s"].append(_seconds(rollup))
    return times


def _time_after_deltas(ledger: Ledger, period: Period, size: Size) -> list[float]:
    """Time one rollup after each of ``rollup_repeats`` deltas of 1% more rows, each
    after a rollup that brought the totals up to date."""
    delta = max(1, int(size.rollup_rows * DELTA_FRACTION))
    times = []
    next_id = size.rollup_rows + 1
    rollup_period(ledger.sessions, period)
    for _ in range(size.rollup_repeats):
        _load(ledger, period, next_id, next_id + delta - 1)
        next_id += delta
        times.append(_seconds(lambda: rollup_period(ledger.sessions, period)))
    return times


def _seconds(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _setting(ledger: Ledger, name: str) -> str:
    with psycopg.connect(ledger.psycopg_url) as conn:
        row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
    return str(row[0]) if row else "unknown"
