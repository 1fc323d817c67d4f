"""``agentfleet demo``: the whole fleet on one machine, from submission to invoices."""

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
from kombu.connection import Connection
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from agentfleet.errors import FleetError
from agentfleet.fleet import load_agents
from agentfleet.processes import (
    ManagedProcess,
    free_port,
    start_simulator,
    start_worker,
    wait_ready,
)
from agentfleet.settings import SIMULATOR_API_KEY, ProviderSettings, Settings
from ledger.db import make_engine, session_factory, transaction
from ledger.errors import NotFound
from ledger.migrate import upgrade
from ledger.plans import create_plan, create_tenant, get_plan, get_tenant
from ledger.prices import load_price_catalog, sync_prices
from ledger.usage import TokenKind
from producer import JobClient, JobRequest, JobView, WaitTimeout

WAIT_TIMEOUT_S = 120.0
WORKER_CONCURRENCY = 8

# Demo rates are high so that a few dozen small jobs add up to whole cents.
DEMO_PLANS = {
    "demo-per-token": {
        "rates_per_mtok": {TokenKind.INPUT: Decimal("20"), TokenKind.OUTPUT: Decimal("80")}
    },
    "demo-markup": {"markup": Decimal("3.0")},
}
DEMO_TENANTS = {"demo-acme": "demo-per-token", "demo-globex": "demo-markup"}
# (tenant, agent, example file) of every batch the demo submits.
DEMO_BATCHES = (
    ("demo-acme", "triage", "complaints.jsonl"),
    ("demo-acme", "summarize", "complaints.jsonl"),
    ("demo-globex", "triage", "complaints.jsonl"),
    ("demo-globex", "clause-review", "clauses.jsonl"),
)


@dataclass
class DemoRun:
    """The work folder, settings, child processes and jobs of one demo run."""

    workdir: Path
    settings: Settings
    env: dict[str, str]
    simulator_port: int
    processes: list[ManagedProcess] = field(default_factory=list)
    jobs: list[JobView] = field(default_factory=list)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return session_factory(make_engine(self.settings.database_url, create=True))

    def simulator_stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"http://127.0.0.1:{self.simulator_port}/stats", timeout=5).json())

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


class DemoError(FleetError):
    """Raised when the demo cannot reach its services or its jobs do not finish."""


def prepare(
    workdir: Path | None, broker_url: str | None, database_url: str | None, latency_ms: float
) -> DemoRun:
    """Choose URLs (embedded defaults under a work folder), set up the ledger and start the
    simulator. A work folder it created is removed again if that fails."""
    created = workdir is None
    workdir = workdir or Path(tempfile.mkdtemp(prefix="agentfleet-demo-"))
    try:
        return _prepare(workdir, broker_url, database_url, latency_ms)
    except BaseException:
        if created:
            shutil.rmtree(workdir, ignore_errors=True)
        raise


def _prepare(
    workdir: Path, broker_url: str | None, database_url: str | None, latency_ms: float
) -> DemoRun:
    if broker_url:
        check_broker(broker_url)
    port = free_port()
    env = {
        **os.environ,
        "AGENTFLEET_DATABASE_URL": database_url or f"sqlite:///{workdir / 'ledger.db'}",
        "AGENTFLEET_BROKER_URL": broker_url or "filesystem://",
        "AGENTFLEET_BROKER_DIR": str(workdir / "broker"),
        "AGENTFLEET_PROVIDERS__OPENAI__BASE_URL": f"http://127.0.0.1:{port}/v1",
        "AGENTFLEET_PROVIDERS__OPENAI__API_KEY": SIMULATOR_API_KEY,
    }
    settings = Settings(
        database_url=env["AGENTFLEET_DATABASE_URL"],
        broker_url=env["AGENTFLEET_BROKER_URL"],
        broker_dir=Path(env["AGENTFLEET_BROKER_DIR"]),
        providers={
            "openai": ProviderSettings(
                base_url=env["AGENTFLEET_PROVIDERS__OPENAI__BASE_URL"],
                api_key=SecretStr(SIMULATOR_API_KEY),
            )
        },
    )
    run = DemoRun(workdir, settings, env, port)
    set_up_ledger(run.sessions, settings)
    run.processes.append(start_simulator(port, workdir / "logs", latency_ms, latency_ms / 2, env))
    return run


def check_broker(url: str) -> None:
    """Raise DemoError unless the broker accepts a connection within a few seconds."""
    with Connection(url, connect_timeout=3) as connection:
        try:
            connection.ensure_connection(max_retries=1)
        except Exception as exc:
            raise DemoError(f"cannot reach the broker at {url}: {exc}") from None


def set_up_ledger(sessions: sessionmaker[Session], settings: Settings) -> None:
    """Migrate, load prices, and create the demo plans and tenants unless they exist."""
    engine = sessions.kw["bind"]
    upgrade(engine)
    with transaction(sessions) as session:
        sync_prices(session, load_price_catalog(settings.price_catalog_file))
        for name, terms in DEMO_PLANS.items():
            try:
                get_plan(session, name)
            except NotFound:
                create_plan(session, name, **terms)  # type: ignore[arg-type]
        for tenant, plan in DEMO_TENANTS.items():
            try:
                get_tenant(session, tenant)
            except NotFound:
                create_tenant(session, tenant, plan)


def start_workers(run: DemoRun) -> None:
    agents = sorted({agent for _, agent, _ in DEMO_BATCHES})
    catalog = load_agents(run.settings)
    started = [
        start_worker(catalog[a].queue, run.env, run.workdir / "logs", WORKER_CONCURRENCY)
        for a in agents
    ]
    run.processes.extend(started)
    for process in started:
        wait_ready(process)


def submit_and_wait(run: DemoRun) -> None:
    client = JobClient(run.settings, sessions=run.sessions)
    try:
        ids: list[str] = []
        for tenant, agent, example in DEMO_BATCHES:
            submitted = client.submit_many(tenant, agent, example_requests(example))
            ids.extend(item.job.id for item in submitted)
        try:
            run.jobs = client.wait(ids, timeout_s=WAIT_TIMEOUT_S)
        except WaitTimeout as exc:
            raise DemoError(
                f"{len(exc.pending)} of {len(ids)} jobs still pending after {WAIT_TIMEOUT_S:g} s "
                f"(first: {exc.pending[0]}); a worker of another fleet on the same broker may "
                "have taken them, so use a broker of the demo's own"
            ) from None
    finally:
        client.close()


def example_requests(name: str) -> list[JobRequest]:
    text = resources.files("agentfleet").joinpath("examples", name).read_text(encoding="utf-8")
    return [JobRequest(json.loads(line)) for line in text.splitlines() if line.strip()]


def clean_up(run: DemoRun, keep: bool) -> None:
    run.stop()
    if not keep:
        shutil.rmtree(run.workdir, ignore_errors=True)
