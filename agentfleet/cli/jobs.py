"""Commands that submit jobs, wait for them and list them."""

from pathlib import Path

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agentfleet.cli.context import CliContext, pass_context
from agentfleet.cli.output import FORMAT_OPTION, emit, emit_json, err_console
from ledger.models import JobStatus
from producer import JobView, WaitTimeout
from producer.inputs import read_job_requests

JOB_COLUMNS = ("id", "tenant", "agent", "status", "attempts", "created_at", "finished_at", "error")
EXIT_SOME_FAILED = 1
EXIT_TIMEOUT = 3


def _progress(description: str) -> Progress:
    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    )


@click.command()
@click.option("--tenant", required=True, help="tenant the jobs belong to and are billed to")
@click.option("--agent", required=True, help="agent that runs the jobs (see 'agentfleet agents')")
@click.option(
    "--key-field",
    metavar="FIELD",
    help="input field whose value becomes each job's idempotency key",
)
@click.option(
    "--key-prefix",
    default="",
    metavar="TEXT",
    help="text put before each --key-field value, e.g. to submit one file to several agents",
)
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
@FORMAT_OPTION
@pass_context
def submit(
    ctx: CliContext,
    tenant: str,
    agent: str,
    key_field: str | None,
    key_prefix: str,
    file: Path,
    output_format: str,
) -> None:
    """Submit one job per line of a JSON Lines FILE (- for standard input); print the job ids.

    Every line is checked before any job is stored, so a bad line submits nothing.
    """
    if key_prefix and not key_field:
        raise click.UsageError("--key-prefix needs --key-field")
    client = ctx.client
    spec = client.catalog[agent]
    client.check_tenant(tenant)
    requests = read_job_requests(file, spec, key_field, key_prefix)
    with _progress(f"submitting to {agent}") as progress:
        task = progress.add_task("submit", total=len(requests))
        submitted = client.submit_many(
            tenant, agent, requests, on_progress=lambda n: progress.advance(task, n)
        )

    if output_format == "json":
        emit_json(
            [
                {"id": s.job.id, "created": s.created, "idempotency_key": s.job.idempotency_key}
                for s in submitted
            ]
        )
        return
    for item in submitted:
        click.echo(item.job.id)
    created = sum(item.created for item in submitted)
    reused = len(submitted) - created
    note = f"; {reused} already existed under their idempotency keys" if reused else ""
    click.echo(
        f"submitted {_count(created, 'new job')} for tenant {tenant} to agent {agent}{note}",
        err=True,
    )


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


@click.command()
@click.argument("job_ids", nargs=-1)
@click.option("--tenant", help="wait for every pending job of this tenant")
@click.option(
    "--timeout", "timeout_s", type=click.FloatRange(min=0), help="give up after this many seconds"
)
@FORMAT_OPTION
@pass_context
def wait(
    ctx: CliContext,
    job_ids: tuple[str, ...],
    tenant: str | None,
    timeout_s: float | None,
    output_format: str,
) -> None:
    """Wait until the given jobs, or all pending jobs of a tenant, are finished.

    Exits 0 when all succeeded, 1 when any failed or was cancelled, 3 on timeout.
    """
    if not job_ids and not tenant:
        raise click.UsageError("give job ids, or --tenant to wait for all of its pending jobs")
    client = ctx.client
    ids = list(job_ids) if job_ids else client.pending_ids(tenant or "")
    with _progress("waiting") as progress:
        task = progress.add_task("wait", total=len(ids))
        try:
            views = client.wait(ids, timeout_s, on_progress=lambda n: progress.advance(task, n))
        except WaitTimeout as exc:
            click.echo(f"timed out: {exc}", err=True)
            raise SystemExit(EXIT_TIMEOUT) from None
    _emit_jobs(views, output_format)
    if any(view.status != JobStatus.SUCCEEDED for view in views):
        raise SystemExit(EXIT_SOME_FAILED)


@click.command()
@click.option("--tenant", help="only this tenant's jobs")
@click.option("--agent", help="only this agent's jobs")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in JobStatus]),
    help="only jobs in this status (repeatable)",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="newest jobs to show",
)
@FORMAT_OPTION
@pass_context
def jobs(
    ctx: CliContext,
    tenant: str | None,
    agent: str | None,
    statuses: tuple[str, ...],
    limit: int,
    output_format: str,
) -> None:
    """List jobs, newest first."""
    if agent is not None:
        ctx.client.catalog[agent]
    if tenant is not None:
        ctx.client.check_tenant(tenant)
    found = ctx.client.list_jobs(tenant=tenant, agent=agent, statuses=statuses, limit=limit + 1)
    _emit_jobs(found[:limit], output_format)
    if len(found) > limit:
        click.echo(f"showing the newest {limit} jobs; more match (raise --limit)", err=True)


@click.command()
@click.argument("job_ids", nargs=-1, required=True)
@click.option("--tenant", help="the tenant that owns the jobs; other tenants' jobs are not found")
@FORMAT_OPTION
@pass_context
def cancel(
    ctx: CliContext, job_ids: tuple[str, ...], tenant: str | None, output_format: str
) -> None:
    """Cancel queued or running jobs; finished jobs keep their state."""
    views = ctx.client.cancel(list(job_ids), tenant)
    _emit_jobs(views, output_format)
    kept = [view for view in views if view.status != JobStatus.CANCELLED]
    if kept:
        state = "its state" if len(kept) == 1 else "their state"
        click.echo(f"{_count(len(kept), 'job')} had already finished and kept {state}", err=True)


@click.command()
@click.argument("job_id")
@click.option("--tenant", help="the tenant that owns the job; other tenants' jobs are not found")
@pass_context
def job(ctx: CliContext, job_id: str, tenant: str | None) -> None:
    """Show one job with its result or error and its provider attempts, as JSON."""
    view = ctx.client.get(job_id, tenant)
    emit_json({**view.to_dict(), "attempt_log": ctx.client.attempts(job_id, tenant)})


def _emit_jobs(views: list[JobView], output_format: str) -> None:
    if output_format == "json":
        emit_json([view.to_dict() for view in views])
    else:
        emit([view.__dict__ for view in views], JOB_COLUMNS, output_format)
