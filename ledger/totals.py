"""Running totals of each period's billable usage, advanced by the rows committed since
the period's last rollup.

Each usage row has a sequence value: on PostgreSQL the id of the transaction that wrote
it (``txid``), on SQLite its row id. A rollup counts the rows whose value lies between
the period's stored horizon and a new horizon below which every writing transaction has
ended, so each row is counted exactly once:

- PostgreSQL: the new horizon is the oldest transaction id still running
  (``pg_snapshot_xmin``). A row written by a transaction that is still open, or by a
  later one, waits for a later rollup even if an aggregate could already see it.
- SQLite: a rollup holds the database's write lock, so no row is being written while
  it runs, and the new horizon is one past the highest row id.

NOTE: on PostgreSQL a transaction left open anywhere in the cluster holds the horizon
back, and with it the draft invoices, until it ends; nothing is lost or counted twice.
Usage rows stored before the column existed have no ``txid`` and are counted by the
first rollup of their period.
"""

from typing import cast

from sqlalchemy import ColumnElement, Table, and_, delete, func, or_, select, text
from sqlalchemy.orm import Session

from ledger.models import RollupHorizon, UsageRecord, UsageTotal
from ledger.periods import Period
from ledger.sql import dialect_of

TOTALS_TABLE = cast(Table, UsageTotal.__table__)
HORIZONS_TABLE = cast(Table, RollupHorizon.__table__)
KEY_COLUMNS = ("tenant_id", "agent", "model", "cache_hit")
SUM_COLUMNS = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "cost",
)
_PG_HORIZON = text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")


def advance_totals(session: Session, period: Period, full: bool = False) -> None:
    """Add the period's usage rows committed since its last rollup to its totals.

    With ``full``, or on the period's first rollup, the totals are computed again from
    all of the period's rows. The caller must have taken the period's rollup turn first.
    """
    postgres = session.get_bind().dialect.name == "postgresql"
    old = None
    if full:
        _forget(session, period)
    else:
        old = session.scalar(
            select(RollupHorizon.horizon).where(RollupHorizon.period_start == period.start)
        )
        if old is None:
            _forget(session, period)
    new = _new_horizon(session, postgres)
    if old is not None and new <= old:
        return
    _add_rows(session, period, _window(postgres, old, new))
    _save_horizon(session, period, new)


def _window(postgres: bool, old: int | None, new: int) -> ColumnElement[bool]:
    """Select the rows between the two horizons, and on a first rollup also the rows
    stored before the ``txid`` column existed."""
    sequence = UsageRecord.txid if postgres else UsageRecord.id
    if old is not None:
        return and_(sequence >= old, sequence < new)
    return or_(sequence.is_(None), sequence < new) if postgres else sequence < new


def _forget(session: Session, period: Period) -> None:
    session.execute(delete(UsageTotal).where(UsageTotal.period_start == period.start))
    session.execute(delete(RollupHorizon).where(RollupHorizon.period_start == period.start))


def _new_horizon(session: Session, postgres: bool) -> int:
    if postgres:
        return int(session.scalar(_PG_HORIZON) or 0)
    return int(session.scalar(select(func.coalesce(func.max(UsageRecord.id), 0))) or 0) + 1


def _add_rows(session: Session, period: Period, window: ColumnElement[bool]) -> None:
    """Sum the rows in ``window`` by key and add the sums to the period's totals.

    The aggregate is a plain SELECT, which PostgreSQL may run with parallel workers; an
    INSERT ... SELECT would run it in one process. Its result has one row per tenant,
    agent, model and cache hit, so sending it back costs little.
    """
    usage = UsageRecord
    keys = [getattr(usage, name) for name in KEY_COLUMNS]
    aggregate = (
        select(
            *keys,
            func.count().label("calls"),
            *(func.sum(getattr(usage, name)).label(name) for name in SUM_COLUMNS),
        )
        .where(
            usage.billable,
            usage.created_at >= period.start_at,
            usage.created_at < period.end_at,
            window,
        )
        .group_by(*keys)
    )
    sums = [{"period_start": period.start, **row._asdict()} for row in session.execute(aggregate)]
    if not sums:
        return
    insert = dialect_of(session).insert(TOTALS_TABLE)
    added = {
        name: TOTALS_TABLE.c[name] + getattr(insert.excluded, name)
        for name in ("calls", *SUM_COLUMNS)
    }
    upsert = insert.on_conflict_do_update(index_elements=["period_start", *KEY_COLUMNS], set_=added)
    session.execute(upsert, sums)


def _save_horizon(session: Session, period: Period, horizon: int) -> None:
    insert = (
        dialect_of(session)
        .insert(HORIZONS_TABLE)
        .values(period_start=period.start, horizon=horizon)
    )
    session.execute(
        insert.on_conflict_do_update(
            index_elements=["period_start"], set_={"horizon": insert.excluded.horizon}
        )
    )
