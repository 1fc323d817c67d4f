"""The tables ``agentfleet demo`` prints: jobs, usage checked against the simulator, invoices."""

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime
from statistics import median

from rich.console import Console
from rich.table import Table

from agentfleet.demo import DemoRun
from ledger.invoices import invoice_lines, list_invoices
from ledger.periods import Period
from ledger.plans import list_tenants
from ledger.reports import usage_totals
from ledger.rollup import rollup_period
from producer import JobView

DEMO_TENANT_PREFIX = "demo-"


def report(run: DemoRun, console: Console) -> bool:
    """Roll up, print the three tables, and return whether the ledger matches the simulator."""
    console.print(jobs_table(run))
    example_results(run, console)
    usage, matches = usage_table(run)
    console.print(usage)
    rollup_period(run.sessions, Period.month_of(datetime.now(UTC)))
    console.print(invoices_table(run))
    return matches


def jobs_table(run: DemoRun) -> Table:
    table = Table(title="Jobs")
    for column in ("tenant", "agent", "succeeded", "failed", "attempts", "median s"):
        table.add_column(column)
    groups: dict[tuple[str, str], list[JobView]] = defaultdict(list)
    for job in run.jobs:
        groups[(job.tenant, job.agent)].append(job)
    for (tenant, agent), jobs in sorted(groups.items()):
        statuses = Counter(job.status for job in jobs)
        seconds = [(j.finished_at - j.created_at).total_seconds() for j in jobs if j.finished_at]
        table.add_row(
            tenant,
            agent,
            str(statuses["succeeded"]),
            str(len(jobs) - statuses["succeeded"]),
            str(sum(j.attempts for j in jobs)),
            f"{median(seconds):.2f}" if seconds else "",
        )
    return table


def example_results(run: DemoRun, console: Console) -> None:
    """Print the first result of each agent, so the reader sees what agents return."""
    seen = set()
    for job in run.jobs:
        if job.agent in seen or job.result is None:
            continue
        seen.add(job.agent)
        console.print(f"[bold]{job.agent}[/bold] result of job {job.id}:")
        console.print(
            json.dumps(job.result, indent=2) if isinstance(job.result, dict) else job.result
        )


def usage_table(run: DemoRun) -> tuple[Table, bool]:
    """Tokens per model in the ledger beside the counts the simulator reports."""
    served = run.simulator_stats()["models"]
    with run.sessions() as session:
        totals = usage_totals(session, "model", job_ids=[job.id for job in run.jobs])
    table = Table(title="Usage by model, checked against the simulator's /stats")
    for column in (
        "model",
        "calls",
        "prompt tokens",
        "output tokens",
        "cost USD",
        "simulator agrees",
    ):
        table.add_column(column)
    all_match = len(totals) == len(served)
    for total in totals:
        model = total.key[1]
        sim = served.get(model, {})
        match = (sim.get("calls"), sim.get("prompt_tokens"), sim.get("completion_tokens")) == (
            total.calls,
            total.prompt_tokens,
            total.output_tokens,
        )
        all_match = all_match and match
        agrees = (
            "yes"
            if match
            else (
                f"NO: {sim.get('calls')} calls, "
                f"{sim.get('prompt_tokens')}+{sim.get('completion_tokens')} tokens"
            )
        )
        table.add_row(
            model,
            str(total.calls),
            str(total.prompt_tokens),
            str(total.output_tokens),
            f"{total.cost:.6f}",
            agrees,
        )
    return table, all_match


def invoices_table(run: DemoRun) -> Table:
    table = Table(title="Draft invoices (this month)")
    for column in ("tenant", "plan", "agent", "model", "calls", "amount", "invoice total"):
        table.add_column(column)
    period = Period.month_of(datetime.now(UTC))
    with run.sessions() as session:
        plans = {tenant.id: plan.name for tenant, plan in list_tenants(session)}
        for invoice in list_invoices(session, period=period):
            if not invoice.tenant_id.startswith(DEMO_TENANT_PREFIX):
                continue
            for number, line in enumerate(invoice_lines(session, invoice.id)):
                first = number == 0
                table.add_row(
                    invoice.tenant_id if first else "",
                    plans[invoice.tenant_id] if first else "",
                    line.agent,
                    line.model,
                    str(line.calls),
                    f"{line.amount} {invoice.currency}",
                    f"{invoice.total} {invoice.currency}" if first else "",
                )
    return table
