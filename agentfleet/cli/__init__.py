"""The ``agentfleet`` command line."""

import logging
from typing import Any

import click

from agentfleet import __version__
from agentfleet.cli.billing import invoices, plans, rollup, tenants, usage
from agentfleet.cli.context import CliContext
from agentfleet.cli.jobs import cancel, job, jobs, submit, wait
from agentfleet.cli.ops import agents_command, db, demo, simulator
from agentfleet.errors import describe


class FleetGroup(click.Group):
    """A command group that reports user errors in one line, without a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            cli_context = ctx.find_object(CliContext)
            database_url = _database_url(cli_context)
            message = describe(exc, database_url)
            if message is None:
                raise
            raise click.ClickException(message) from exc


def _database_url(cli_context: CliContext | None) -> str | None:
    if cli_context is None:
        return None
    try:
        return cli_context.settings.database_url
    except Exception:
        return cli_context.overrides.get("database_url")


@click.group(cls=FleetGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database",
    "database_url",
    metavar="URL",
    help="ledger URL (overrides AGENTFLEET_DATABASE_URL)",
)
@click.option(
    "--broker", "broker_url", metavar="URL", help="broker URL (overrides AGENTFLEET_BROKER_URL)"
)
@click.option("-v", "--verbose", is_flag=True, help="log INFO messages to stderr")
@click.version_option(__version__, prog_name="agentfleet")
@click.pass_context
def cli(
    ctx: click.Context, database_url: str | None, broker_url: str | None, verbose: bool
) -> None:
    """Run AI-agent jobs on Celery queues and bill tenants for the tokens they use."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    overrides = {"database_url": database_url, "broker_url": broker_url}
    ctx.obj = CliContext({key: value for key, value in overrides.items() if value})
    ctx.call_on_close(ctx.obj.close)


for command in (
    submit,
    wait,
    jobs,
    job,
    cancel,
    plans,
    tenants,
    rollup,
    invoices,
    usage,
    db,
    simulator,
    agents_command,
    demo,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="agentfleet")
