"""Commands for plans, tenants, rollup, invoices and usage."""

from datetime import UTC, datetime
from decimal import Decimal

import click

from agentfleet.cli.context import CliContext, pass_context
from agentfleet.cli.output import FORMAT_OPTION, emit, emit_json
from ledger.db import transaction
from ledger.invoices import get_invoice, invoice_lines, list_invoices
from ledger.money import parse_decimal
from ledger.periods import Period
from ledger.plans import create_plan, create_tenant, list_plans, list_tenants
from ledger.reports import GROUPINGS, usage_totals
from ledger.rollup import rollup_period
from ledger.usage import TokenKind


class PeriodParam(click.ParamType):  # type: ignore[type-arg]
    name = "YYYY-MM"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> Period:
        if isinstance(value, Period):
            return value
        try:
            return Period.parse(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@click.group()
def plans() -> None:
    """Create and list pricing plans."""


@plans.command("create")
@click.argument("name")
@click.option(
    "--rate",
    "rates",
    multiple=True,
    metavar="KIND=PRICE",
    help="price per million tokens of a kind: input, output, cached_input or cache_write",
)
@click.option("--markup", metavar="FACTOR", help="bill provider cost times FACTOR, e.g. 1.3")
@click.option("--currency", default="USD", show_default=True, help="ISO 4217 currency of the plan")
@click.option(
    "--bill-cache-hits/--no-bill-cache-hits",
    default=True,
    show_default=True,
    help="bill the tokens of replies served from the response cache (per-token plans)",
)
@pass_context
def plans_create(
    ctx: CliContext,
    name: str,
    rates: tuple[str, ...],
    markup: str | None,
    currency: str,
    bill_cache_hits: bool,
) -> None:
    """Create plan NAME billed per million tokens (--rate) or at a markup on cost (--markup)."""
    parsed_rates = _parse_rates(rates) if rates else None
    parsed_markup = None
    if markup is not None:
        try:
            parsed_markup = parse_decimal(markup, "--markup", positive=True)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--markup") from None
    with transaction(ctx.sessions) as session:
        create_plan(
            session,
            name,
            rates_per_mtok=parsed_rates,
            markup=parsed_markup,
            currency=currency,
            bill_cache_hits=bill_cache_hits,
        )
    click.echo(f"created plan {name}")


def _parse_rates(rates: tuple[str, ...]) -> dict[TokenKind, Decimal]:
    parsed = {}
    kinds = ", ".join(kind.value for kind in TokenKind)
    for text in rates:
        kind, sep, price = text.partition("=")
        if not sep or kind not in {k.value for k in TokenKind}:
            raise click.BadParameter(
                f"{text!r}: expected KIND=PRICE with KIND one of {kinds}", param_hint="--rate"
            )
        if TokenKind(kind) in parsed:
            raise click.BadParameter(f"{kind} is given twice", param_hint="--rate")
        parsed[TokenKind(kind)] = _decimal_option("--rate", price, kind)
    return parsed


def _decimal_option(option: str, text: str, label: str | None = None) -> Decimal:
    try:
        return parse_decimal(text, label or option)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


@plans.command("list")
@FORMAT_OPTION
@pass_context
def plans_list(ctx: CliContext, output_format: str) -> None:
    """List plans with their rates or markup."""
    with ctx.sessions() as session:
        rows = [
            {
                "name": p.name,
                "kind": p.kind.value,
                "currency": p.currency,
                "markup": p.markup,
                "rates_per_mtok": {k.value: str(v) for k, v in p.rates_per_mtok.items()},
            }
            for p in list_plans(session)
        ]
    emit(rows, ("name", "kind", "currency", "markup", "rates_per_mtok"), output_format)


@click.group()
def tenants() -> None:
    """Create and list tenants."""


@tenants.command("create")
@click.argument("tenant_id")
@click.option("--plan", required=True, help="name of the plan the tenant is billed under")
@pass_context
def tenants_create(ctx: CliContext, tenant_id: str, plan: str) -> None:
    """Create tenant TENANT_ID on a plan."""
    with transaction(ctx.sessions) as session:
        create_tenant(session, tenant_id, plan)
    click.echo(f"created tenant {tenant_id} on plan {plan}")


@tenants.command("list")
@FORMAT_OPTION
@pass_context
def tenants_list(ctx: CliContext, output_format: str) -> None:
    """List tenants and their plans."""
    with ctx.sessions() as session:
        rows = [
            {"tenant": t.id, "plan": p.name, "created_at": t.created_at}
            for t, p in list_tenants(session)
        ]
    emit(rows, ("tenant", "plan", "created_at"), output_format)


@click.command()
@click.option(
    "--period", type=PeriodParam(), help="month to roll up, YYYY-MM (default: this month)"
)
@click.option("--tenant", help="only this tenant")
@click.option(
    "--full",
    is_flag=True,
    help="sum the period's usage totals again from every usage row, instead of adding "
    "only the rows written since the last rollup",
)
@FORMAT_OPTION
@pass_context
def rollup(
    ctx: CliContext, period: Period | None, tenant: str | None, full: bool, output_format: str
) -> None:
    """Write or refresh draft invoices from billable usage; running it again gives the same
    invoices."""
    period = period or Period.month_of(datetime.now(UTC))
    if tenant is not None:
        ctx.client.check_tenant(tenant)
    results = rollup_period(ctx.sessions, period, tenant, full=full)
    rows = [
        {
            "tenant": r.tenant_id,
            "period": str(r.period),
            "invoice": r.invoice_id,
            "lines": r.lines,
            "total": r.total,
            "currency": r.currency,
            "state": "final, unchanged" if r.skipped_final else "draft",
        }
        for r in results
    ]
    emit(
        rows,
        ("tenant", "period", "invoice", "lines", "total", "currency", "state"),
        output_format,
        title=f"rollup of {period}",
    )


@click.group(invoke_without_command=True)
@click.option("--tenant", help="only this tenant's invoices")
@click.option("--period", type=PeriodParam(), help="only this month, YYYY-MM")
@FORMAT_OPTION
@click.pass_context
def invoices(
    click_ctx: click.Context, tenant: str | None, period: Period | None, output_format: str
) -> None:
    """List invoices; 'invoices show ID' prints one with its lines."""
    if click_ctx.invoked_subcommand is not None:
        return
    ctx = click_ctx.ensure_object(CliContext)
    if tenant is not None:
        ctx.client.check_tenant(tenant)
    with ctx.sessions() as session:
        rows = [
            {
                "id": i.id,
                "tenant": i.tenant_id,
                "period": f"{i.period_start:%Y-%m}",
                "status": i.status,
                "total": i.total,
                "currency": i.currency,
                "updated_at": i.updated_at,
            }
            for i in list_invoices(session, tenant_id=tenant, period=period)
        ]
    emit(
        rows, ("id", "tenant", "period", "status", "total", "currency", "updated_at"), output_format
    )


@invoices.command("show")
@click.argument("invoice_id", type=int)
@click.option(
    "--tenant", help="the tenant that owns the invoice; other tenants' invoices are not found"
)
@FORMAT_OPTION
@pass_context
def invoices_show(ctx: CliContext, invoice_id: int, tenant: str | None, output_format: str) -> None:
    """Show invoice INVOICE_ID with a line per agent and model."""
    with ctx.sessions() as session:
        invoice = get_invoice(session, invoice_id, tenant)
        lines = [
            {
                "agent": line.agent,
                "model": line.model,
                "calls": line.calls,
                "input_tokens": line.input_tokens,
                "cached_input_tokens": line.cached_input_tokens,
                "cache_write_tokens": line.cache_write_tokens,
                "output_tokens": line.output_tokens,
                "amount": line.amount,
            }
            for line in invoice_lines(session, invoice.id)
        ]
    header = {
        "id": invoice.id,
        "tenant": invoice.tenant_id,
        "period": f"{invoice.period_start:%Y-%m}",
        "status": invoice.status,
        "currency": invoice.currency,
        "total": invoice.total,
    }
    if output_format == "json":
        emit_json({**header, "lines": lines})
        return
    title = (
        f"invoice {invoice.id}: {invoice.tenant_id}, {header['period']}, {invoice.status}, "
        f"total {invoice.total} {invoice.currency}"
    )
    emit(
        lines,
        (
            "agent",
            "model",
            "calls",
            "input_tokens",
            "cached_input_tokens",
            "output_tokens",
            "amount",
        ),
        "table",
        title=title,
    )


@click.command()
@click.option(
    "--by",
    type=click.Choice(sorted(GROUPINGS)),
    default="model",
    show_default=True,
    help="how to group the recorded calls",
)
@FORMAT_OPTION
@pass_context
def usage(ctx: CliContext, by: str, output_format: str) -> None:
    """Show recorded provider calls, tokens and provider cost (USD), billable or not.

    ORPHANED counts attempts whose worker died mid-call: their usage is not in the
    ledger, and the provider may have charged them.
    """
    with ctx.sessions() as session:
        totals = usage_totals(session, by)
    rows = [
        {
            "group": "/".join(t.key),
            "calls": t.calls,
            "billable_calls": t.billable_calls,
            "cache_hits": t.cache_hits,
            "prompt_tokens": t.prompt_tokens,
            "output_tokens": t.output_tokens,
            "cost_usd": t.cost,
            "orphaned": t.orphaned,
        }
        for t in totals
    ]
    emit(
        rows,
        (
            "group",
            "calls",
            "billable_calls",
            "cache_hits",
            "prompt_tokens",
            "output_tokens",
            "cost_usd",
            "orphaned",
        ),
        output_format,
    )
