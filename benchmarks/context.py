"""Settings shared by the scenarios (workload size, servers, log folder) and a ledger per
scenario."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import psycopg
import redis
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from benchmarks.sizes import Size
from ledger.db import make_engine, session_factory, transaction
from ledger.migrate import upgrade
from ledger.plans import create_plan, create_tenant
from ledger.prices import load_price_catalog, sync_prices
from ledger.usage import TokenKind

REPO_ROOT = Path(__file__).resolve().parents[1]
TENANT = "bench"
AGENT = "triage"
QUEUE = f"agent.{AGENT}"
PLAN_RATES = {TokenKind.INPUT: Decimal("0.30"), TokenKind.OUTPUT: Decimal("1.20")}


@dataclass(frozen=True)
class Ledger:
    """A migrated ledger database with prices and the tenant ``bench``."""

    url: str
    engine: Engine
    sessions: sessionmaker[Session]

    @property
    def psycopg_url(self) -> str:
        return make_url(self.url).set(drivername="postgresql").render_as_string(False)


@dataclass(frozen=True)
class BenchContext:
    size: Size
    pg_url: str
    database_prefix: str
    redis_url: str
    workdir: Path

    def log_dir(self, scenario: str) -> Path:
        path = self.workdir / scenario
        path.mkdir(parents=True, exist_ok=True)
        return path

    def redis_client(self) -> redis.Redis:
        """Return a client of the benchmark Redis database, flushed of earlier runs."""
        client = redis.Redis.from_url(self.redis_url)
        client.flushdb()
        return client

    @contextmanager
    def ledger(self, scenario: str, pool_size: int = 10) -> Iterator[Ledger]:
        """Create a ledger database for one scenario and drop it afterwards."""
        name = f"{self.database_prefix}_{scenario}"
        admin = psycopg_url(self.pg_url)
        _recreate_database(admin, name)
        url = make_url(self.pg_url).set(drivername="postgresql+psycopg", database=name)
        engine = make_engine(url.render_as_string(False), pool_size=pool_size)
        try:
            upgrade(engine)
            sessions = session_factory(engine)
            _add_prices_and_tenant(sessions)
            yield Ledger(url.render_as_string(False), engine, sessions)
        finally:
            engine.dispose()
            _drop_database(admin, name)

    def fleet_env(self, ledger: Ledger, simulator_port: int, **settings: str) -> dict[str, str]:
        """Return the environment of a fleet process: this ledger and broker, the simulator
        as the OpenAI provider, and ``settings`` as AGENTFLEET_<NAME> variables."""
        return {
            **os.environ,
            "PYTHONPATH": _python_path(),
            "AGENTFLEET_DATABASE_URL": ledger.url,
            "AGENTFLEET_BROKER_URL": self.redis_url,
            "AGENTFLEET_PROVIDERS__OPENAI__BASE_URL": f"http://127.0.0.1:{simulator_port}/v1",
            "AGENTFLEET_PROVIDERS__OPENAI__API_KEY": "simulator",
            **{f"AGENTFLEET_{name.upper()}": value for name, value in settings.items()},
        }


def plain_env() -> dict[str, str]:
    """Return this process's environment with the repository on PYTHONPATH."""
    return {**os.environ, "PYTHONPATH": _python_path()}


def _python_path() -> str:
    current = os.environ.get("PYTHONPATH")
    return f"{REPO_ROOT}{os.pathsep}{current}" if current else str(REPO_ROOT)


def psycopg_url(url: str) -> str:
    """Return ``url`` in the form psycopg connects with (no SQLAlchemy driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(False)


def _recreate_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _add_prices_and_tenant(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        sync_prices(session, load_price_catalog())
        create_plan(session, f"plan-{TENANT}", rates_per_mtok=PLAN_RATES)
        create_tenant(session, TENANT, f"plan-{TENANT}")
