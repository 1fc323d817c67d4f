"""Engines and sessions for the ledger database, PostgreSQL or SQLite."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from ledger.errors import LedgerConfigError

SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(database_url: str, pool_size: int = 10, create: bool = False) -> Engine:
    """Create an engine for a ledger URL.

    A SQLite file (and its folder) is created only with ``create``, as migrations do;
    otherwise a missing file raises LedgerConfigError. SQLite runs in WAL mode with each
    transaction taking the write lock at BEGIN, so many worker processes can share one
    file without "database is locked" failures.
    """
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise LedgerConfigError(
            f"invalid database URL {database_url!r}; expected for example "
            "'postgresql+psycopg://user@127.0.0.1/agentfleet' or 'sqlite:///ledger.db'"
        ) from None

    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url.database, create)
    if url.get_backend_name() != "postgresql":
        raise LedgerConfigError(
            f"unsupported database {url.get_backend_name()!r} in {url.render_as_string()}; "
            "use postgresql+psycopg:// or sqlite://"
        )
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def _sqlite_engine(path: str | None, create: bool) -> Engine:
    if path and path != ":memory:":
        if create:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        elif not Path(path).exists():
            raise LedgerConfigError(
                f"no ledger at {path}; run 'agentfleet db upgrade' to create it"
            )
    engine = create_engine(f"sqlite:///{path or ''}")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Yield a session whose work is committed on success and rolled back on error."""
    with factory() as session, session.begin():
        yield session
