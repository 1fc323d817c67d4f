"""Operator commands: database migrations, the simulator, the agent list and the demo."""

import time
from pathlib import Path

import click

from agentfleet.cli.context import CliContext, pass_context
from agentfleet.cli.output import FORMAT_OPTION, console, emit
from agentfleet.fleet import load_agents, resolve_alias
from ledger.db import make_engine, session_factory, transaction
from ledger.migrate import current_revision, downgrade, head_revision, upgrade
from ledger.prices import load_price_catalog, sync_prices
from simulator.faults import RetryAfterStyle


@click.group()
def db() -> None:
    """Create or migrate the ledger database."""


@db.command("upgrade")
@click.option(
    "--revision", default="head", show_default=True, help="Alembic revision to upgrade to"
)
@pass_context
def db_upgrade(ctx: CliContext, revision: str) -> None:
    """Create the ledger if needed, apply migrations, then add new prices from the catalog."""
    engine = make_engine(ctx.settings.database_url, create=True)
    try:
        upgrade(engine, revision)
        with transaction(session_factory(engine)) as session:
            added = sync_prices(session, load_price_catalog(ctx.settings.price_catalog_file))
        click.echo(f"ledger at revision {current_revision(engine)}; {added} new price rows")
    finally:
        engine.dispose()


@db.command("downgrade")
@click.argument("revision")
@click.confirmation_option(
    prompt="Downgrading drops the tables and columns of later revisions, with their data. Go on?"
)
@pass_context
def db_downgrade(ctx: CliContext, revision: str) -> None:
    """Revert migrations down to REVISION ('base' removes every table)."""
    downgrade(ctx.engine, revision)
    click.echo(f"ledger at revision {current_revision(ctx.engine) or 'base'}")


@db.command("current")
@pass_context
def db_current(ctx: CliContext) -> None:
    """Print the ledger's revision and the newest one available."""
    click.echo(
        f"current: {current_revision(ctx.engine) or 'none'}; head: {head_revision(ctx.engine)}"
    )


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=8088, show_default=True, help="TCP port"
)
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="fixed delay before each reply, in milliseconds",
)
@click.option(
    "--jitter-ms",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="extra random delay of up to this many milliseconds",
)
@click.option("--seed", type=int, help="seed of jitter and drawn faults, for repeatable runs")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="KIND=RATE",
    help="fraction of requests that get a fault: 429, 500, 503, 529, hang, malformed, "
    "cut or slow (repeatable), e.g. --fault 429=0.2",
)
@click.option(
    "--script",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="JSON Lines file of exact responses to serve first, one per request",
)
@click.option(
    "--retry-after",
    "retry_after_s",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="seconds a drawn 429 asks the client to wait",
)
@click.option(
    "--retry-after-style",
    type=click.Choice(["seconds", "date", "ms", "none"]),
    default="seconds",
    show_default=True,
    help="header format of a drawn 429: Retry-After seconds or HTTP date, or retry-after-ms",
)
@click.option(
    "--slow-ms",
    type=click.FloatRange(min=0),
    default=5000.0,
    show_default=True,
    help="extra delay of a 'slow' fault",
)
def simulator(
    host: str,
    port: int,
    latency_ms: float,
    jitter_ms: float,
    seed: int | None,
    faults: tuple[str, ...],
    script: Path | None,
    retry_after_s: float,
    retry_after_style: RetryAfterStyle,
    slow_ms: float,
) -> None:
    """Serve a provider simulator: OpenAI chat completions at /v1/chat/completions and
    Anthropic Messages at /v1/messages, with GET /stats of everything it served."""
    from simulator.app import SimulatorConfig
    from simulator.faults import ScriptError, load_script, parse_rates
    from simulator.server import listen_error, serve

    try:
        rates = parse_rates(list(faults))
        if script is not None:
            load_script(script)
    except (ValueError, ScriptError) as exc:
        raise click.BadParameter(str(exc)) from None
    if (error := listen_error(host, port)) is not None:
        option, message = error
        raise click.BadParameter(message, param_hint=option)
    config = SimulatorConfig(
        latency_ms, jitter_ms, seed, rates, script, retry_after_s, retry_after_style, slow_ms
    )
    click.echo(
        f"simulator on http://{host}:{port} (OpenAI /v1/chat/completions, "
        "Anthropic /v1/messages, stats at /stats)",
        err=True,
    )
    serve(host, port, config)


@click.command("agents")
@FORMAT_OPTION
@pass_context
def agents_command(ctx: CliContext, output_format: str) -> None:
    """List the agents, their queues and the provider models they call."""
    catalog = load_agents(ctx.settings)
    rows = [
        {
            "agent": a.name,
            "queue": a.queue,
            "model": a.model,
            "targets": ", ".join(str(t) for t in resolve_alias(ctx.settings, a.model)),
            "max_tokens": a.max_tokens,
            "time_limit_s": a.time_limit_s,
            "description": a.description,
        }
        for a in catalog.values()
    ]
    emit(
        rows,
        ("agent", "queue", "model", "targets", "max_tokens", "time_limit_s", "description"),
        output_format,
    )


@click.command()
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="simulated provider latency",
)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    help="folder for the SQLite ledger, broker files and logs (default: a new temporary folder)",
)
@click.option("--keep", is_flag=True, help="keep the work folder after the demo")
@pass_context
def demo(ctx: CliContext, latency_ms: float, workdir: Path | None, keep: bool) -> None:
    """Run the fleet on this machine: simulator, one worker per agent, jobs for two tenants,
    rollup, and tables of jobs, usage and invoices.

    With no --broker and --database it needs no servers: SQLite and a file-system broker.
    """
    from agentfleet import demo as demo_run
    from agentfleet.demo_report import report

    started = time.monotonic()
    run = demo_run.prepare(
        workdir, ctx.overrides.get("broker_url"), ctx.overrides.get("database_url"), latency_ms
    )
    keep = keep or workdir is not None
    finished = False
    try:
        console.print(
            f"ledger {run.settings.database_url}, broker {run.settings.broker_url}, work folder "
            f"{run.workdir} ({'kept' if keep else 'removed at the end; --keep keeps it'})"
        )
        demo_run.start_workers(run)
        console.print(
            f"simulator and {len(run.processes) - 1} workers running; submitting jobs ..."
        )
        demo_run.submit_and_wait(run)
        matches = report(run, console)
        finished = True
    finally:
        demo_run.clean_up(run, keep or not finished)
        if not finished:
            click.echo(f"the demo stopped early; its logs are in {run.workdir / 'logs'}", err=True)
    verdict = "equal the simulator's counts" if matches else "DIFFER from the simulator's counts"
    elapsed_s = time.monotonic() - started
    console.print(f"{len(run.jobs)} jobs in {elapsed_s:.0f} s; ledger token totals {verdict}.")
    if not matches:
        raise SystemExit(1)
