"""Dialect-specific SQL that SQLAlchemy Core spells differently for PostgreSQL and SQLite."""

from typing import Any

from sqlalchemy import CursorResult, Result
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignoring_conflicts(session: Session, table: Any, *conflict_columns: str) -> Any:
    """Return an INSERT that skips rows whose ``conflict_columns`` match an existing row.

    Only the unique constraint over those columns is ignored; any other violation
    still raises IntegrityError.
    """
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing(index_elements=list(conflict_columns))


def rowcount(result: Result[Any]) -> int:
    """Return the rows an UPDATE or DELETE matched (it was executed with one parameter set)."""
    assert isinstance(result, CursorResult)
    return int(result.rowcount)
