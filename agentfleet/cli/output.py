"""Printing listings as a table for people or as JSON for programs."""

import json
import sys
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import click
from rich.console import Console
from rich.table import Table

FORMAT_OPTION = click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people, json for programs",
)

# Output piped to a file or another program is not cut to 80 columns.
PIPED_WIDTH = 200
console = Console(highlight=False, width=None if sys.stdout.isatty() else PIPED_WIDTH)
err_console = Console(stderr=True, highlight=False)


def to_jsonable(value: Any) -> Any:
    """Decimals become strings so no digit is lost; dates become ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, default=to_jsonable, indent=2))


def emit(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    output_format: str,
    title: str | None = None,
) -> None:
    if output_format == "json":
        emit_json(list(rows))
        return
    table = Table(title=title, show_lines=False)
    for column in columns:
        # Ids stay on one line so they can be copied.
        table.add_column(column, overflow="fold", no_wrap=column in ("id", "invoice"))
    for row in rows:
        table.add_row(*(_cell(row.get(column)) for column in columns))
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (dict, list)):
        return json.dumps(value)[:80]
    return str(value)
