"""Dialect-specific SQL that SQLAlchemy Core spells differently for PostgreSQL and SQLite."""

from typing import Any

from sqlalchemy import CursorResult, Result
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def dialect_of(session: Session) -> Any:
    """Return SQLAlchemy's dialect module for the session's database, for its INSERT with
    ON CONFLICT clauses."""
    return postgresql if session.get_bind().dialect.name == "postgresql" else sqlite


def insert_ignoring_conflicts(session: Session, table: Any, *conflict_columns: str) -> Any:
    """Return an INSERT that skips rows whose ``conflict_columns`` match an existing row.

    Only the unique constraint over those columns is ignored; any other violation
    still raises IntegrityError.
    """
    return (
        dialect_of(session)
        .insert(table)
        .on_conflict_do_nothing(index_elements=list(conflict_columns))
    )


def rowcount(result: Result[Any]) -> int:
    """Return the rows an UPDATE or DELETE matched (it was executed with one parameter set)."""
    assert isinstance(result, CursorResult)
    return int(result.rowcount)
