"""Test helpers: a simulator served on loopback from a thread, and ledger set-up."""

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import httpx
import uvicorn
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from agentfleet.processes import free_port
from ledger.db import make_engine, session_factory, transaction
from ledger.migrate import upgrade
from ledger.plans import create_plan, create_tenant
from ledger.prices import load_price_catalog, sync_prices
from ledger.usage import TokenKind
from simulator.app import SimulatorConfig, create_app


@contextmanager
def simulator_thread(config: SimulatorConfig | None = None) -> Iterator[str]:
    """Serve the simulator on 127.0.0.1 from a background thread; yield its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("simulator thread did not start")
        time.sleep(0.01)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(10)


OPEN_ENGINES: list[Engine] = []


def migrated_sessions(database_url: str) -> sessionmaker[Session]:
    """Create the ledger schema and load the built-in prices; the engine is disposed after
    the test by the ``_dispose_engines`` fixture."""
    engine = make_engine(database_url, create=True)
    OPEN_ENGINES.append(engine)
    upgrade(engine)
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        sync_prices(session, load_price_catalog())
    return sessions


PER_TOKEN_RATES = {TokenKind.INPUT: Decimal("0.30"), TokenKind.OUTPUT: Decimal("1.20")}


def add_tenant(sessions: sessionmaker[Session], tenant: str, **plan: object) -> None:
    """Create a tenant on its own plan; without plan terms, on per-token rates 0.30/1.20."""
    terms = plan or {"rates_per_mtok": PER_TOKEN_RATES}
    with transaction(sessions) as session:
        create_plan(session, f"plan-{tenant}", **terms)  # type: ignore[arg-type]
        create_tenant(session, tenant, f"plan-{tenant}")


def fleet_env(
    database_url: str, broker_url: str, simulator_port: int, **settings: str
) -> dict[str, str]:
    """Environment for fleet processes started by a test: this process's environment, the
    ledger and broker, the simulator as the OpenAI provider, and ``settings`` as
    ``AGENTFLEET_<NAME>`` variables."""
    return {
        **os.environ,
        "AGENTFLEET_DATABASE_URL": database_url,
        "AGENTFLEET_BROKER_URL": broker_url,
        "AGENTFLEET_PROVIDERS__OPENAI__BASE_URL": f"http://127.0.0.1:{simulator_port}/v1",
        "AGENTFLEET_PROVIDERS__OPENAI__API_KEY": "simulator",
        **{f"AGENTFLEET_{name.upper()}": value for name, value in settings.items()},
    }


def simulator_stats(base_url: str) -> dict[str, object]:
    return dict(httpx.get(f"{base_url}/stats", timeout=5).json())
