"""The results table, as plain text for the terminal and as Markdown, from results JSON."""

from typing import Any

from benchmarks.results import row_from_dict

HEADERS = ("scenario", "figure", "measured", "baseline", "baseline figure", "ratio", "target")


def number(value: float) -> str:
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def table_rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    """Return one tuple of cells per row, and one per scenario that failed."""
    cells: list[tuple[str, ...]] = []
    for scenario in results["scenarios"]:
        if scenario["error"]:
            first_line = scenario["error"].splitlines()[0][:100]
            cells.append((scenario["name"], f"failed: {first_line}", "", "", "", "", ""))
            continue
        for data in scenario["rows"]:
            row = row_from_dict(data)
            target = "-"
            if row.target is not None:
                target = f"{row.target.describe(row.unit)}: {'met' if row.met else 'MISSED'}"
            cells.append(
                (
                    row.name,
                    row.measure,
                    f"{number(row.figure)} {row.unit}",
                    row.baseline_name,
                    f"{number(row.baseline)} {row.unit}",
                    number(row.ratio),
                    target,
                )
            )
    return cells


def text_table(results: dict[str, Any]) -> str:
    rows = [HEADERS, *table_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADERS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
             for row in rows]  # fmt: skip
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(line.rstrip() for line in lines)


def markdown_table(results: dict[str, Any]) -> str:
    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    lines = [caption(results), "", line(HEADERS), "| " + " | ".join("---" for _ in HEADERS) + " |"]
    lines.extend(line(cells) for cells in table_rows(results))
    return "\n".join(lines)


def caption(results: dict[str, Any]) -> str:
    """Return a line naming the run's workload size, start time and duration."""
    duration = results.get("duration_s")
    took = f", {duration:,.0f} s in all" if isinstance(duration, int | float) else ""
    return (
        f"Size {results.get('size', 'unknown')}, started {results.get('started_at', 'unknown')}"
        f"{took}."
    )
