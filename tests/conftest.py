"""Shared fixtures. Integration tests use the real PostgreSQL and Redis on 127.0.0.1.

Without those services the integration tests are skipped with the reason, unless
AGENTFLEET_TEST_REQUIRE_SERVICES=1 is set (as CI sets it): then they fail instead.
"""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

PG_ADMIN_URL = os.environ.get("AGENTFLEET_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("AGENTFLEET_TEST_REDIS", "redis://127.0.0.1:6379/13")
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REQUIRE_SERVICES = os.environ.get("AGENTFLEET_TEST_REQUIRE_SERVICES") == "1"
REQUIRE_DATA = os.environ.get("AGENTFLEET_TEST_REQUIRE_DATA") == "1"


def _unavailable(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (AGENTFLEET_TEST_REQUIRE_SERVICES=1, so this is a failure)")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Run each test in its own folder, with no AGENTFLEET_* variables from the caller."""
    from agentfleet.settings import get_settings

    for name in list(os.environ):
        if name.startswith("AGENTFLEET_") and not name.startswith("AGENTFLEET_TEST"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("AGENTFLEET_TEST_REQUIRE_SERVICES", raising=False)
    monkeypatch.delenv("AGENTFLEET_TEST_REQUIRE_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def _dispose_engines() -> Iterator[None]:
    from tests.support import OPEN_ENGINES

    yield
    while OPEN_ENGINES:
        OPEN_ENGINES.pop().dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture(scope="session")
def pg_server() -> str:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3, autocommit=True):
            pass
    except psycopg.OperationalError as exc:
        _unavailable(f"PostgreSQL at {PG_ADMIN_URL} is not reachable: {exc}")
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"agentfleet_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = pg_server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{base}/{name}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The test Redis database, flushed before and after the test."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        _unavailable(f"Redis at {REDIS_URL} is not reachable: {exc}")
    client.flushdb()
    yield REDIS_URL
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def complaints_file() -> Path:
    path = SHARED_DATA / "complaints.jsonl"
    if not path.exists():
        reason = f"{path} is missing: this clone has no ../shared/data next to it"
        if REQUIRE_DATA:
            pytest.fail(f"{reason} (AGENTFLEET_TEST_REQUIRE_DATA=1, so this is a failure)")
        pytest.skip(reason)
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh ledger database: SQLite, then the real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("pg_url"))
