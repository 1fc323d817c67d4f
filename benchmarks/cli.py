"""Command line of the benchmark suite: run the scenarios, print the table, write JSON."""

import argparse
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import redis
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from benchmarks import (
    client_overhead,
    enqueue,
    inflight,
    ingest,
    latency,
    memory,
    rollup,
    throughput,
)
from benchmarks.context import BenchContext, psycopg_url
from benchmarks.machine import describe_machine
from benchmarks.report import markdown_table, text_table
from benchmarks.results import ScenarioResult
from benchmarks.sizes import SIZES

log = logging.getLogger("benchmarks")

Scenario = Callable[[BenchContext], ScenarioResult]
SCENARIOS: dict[str, Scenario] = {
    "enqueue": enqueue.run,
    "throughput": throughput.run,
    "inflight": inflight.run,
    "client_overhead": client_overhead.run,
    "ingest": ingest.run,
    "rollup": rollup.run,
    "latency": latency.run,
    "memory": memory.run,
}
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results.json"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/12"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run the agentfleet benchmarks; each figure is compared with a baseline "
        "measured on this machine in the same run.",
    )
    parser.add_argument(
        "--size",
        choices=sorted(SIZES),
        default="full",
        help="workload size: tiny (smoke test), quick (under five minutes) or full (default)",
    )
    parser.add_argument(
        "--quick", dest="size", action="store_const", const="quick", help="same as --size quick"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this scenario; repeat it or give a comma-separated "
        f"list (scenarios: {', '.join(SCENARIOS)})",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"results JSON file (default: {DEFAULT_OUTPUT})",
    )
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print the results table of --output as Markdown and exit",
    )
    parser.add_argument(
        "--pg-url",
        default=DEFAULT_PG_URL,
        help="PostgreSQL database to connect to for creating and dropping "
        f"the benchmark databases (default: {DEFAULT_PG_URL})",
    )
    parser.add_argument(
        "--database-prefix",
        default="agentfleet_bench",
        help="name prefix of the databases created, one per scenario (default: agentfleet_bench)",
    )
    parser.add_argument(
        "--redis-url",
        default=DEFAULT_REDIS_URL,
        help=f"Redis database for the broker; the suite flushes it (default: {DEFAULT_REDIS_URL})",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="folder for process logs (default: a temporary folder, deleted "
        "unless a scenario failed)",
    )
    return parser.parse_args(argv)


def selected_scenarios(only: list[str]) -> list[str]:
    names = [name.strip() for value in only for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise SystemExit(
            f"unknown scenario {unknown[0]!r}; the scenarios are {', '.join(SCENARIOS)}"
        )
    return [name for name in SCENARIOS if not names or name in names]


def read_results(path: Path) -> dict[str, Any]:
    """Read a results file that the suite wrote, or exit with a message saying what to do."""
    try:
        results: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SystemExit(
            f"no results at {path}; run 'python -m benchmarks' (or --quick) first, or give "
            "--output PATH of an earlier run"
        ) from None
    except (OSError, ValueError) as exc:
        raise SystemExit(f"cannot read results from {path}: {exc}") from None
    if not isinstance(results, dict) or "scenarios" not in results:
        raise SystemExit(f"{path} is not a results file of 'python -m benchmarks'")
    return results


def check_output(path: Path) -> None:
    """Exit with a message, before any scenario runs, when ``path`` cannot be written."""
    if path.is_dir():
        raise SystemExit(f"--output {path} is a folder; give a file, such as {path}/results.json")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise SystemExit(
            f"cannot create the folder of --output {path}: a part of its path is a file; give "
            "a path in a folder"
        ) from None
    except OSError as exc:
        raise SystemExit(
            f"cannot create the folder of --output {path}: {exc.strerror}; give a path in a "
            "folder you can write to"
        ) from None
    if not os.access(path.parent, os.W_OK):
        raise SystemExit(f"cannot write to {path.parent}; give --output a folder you can write to")


def check_servers(pg_url: str, redis_url: str) -> None:
    """Exit with a message naming the option when PostgreSQL or Redis cannot be reached."""
    try:
        with psycopg.connect(psycopg_url(pg_url), connect_timeout=5):
            pass
    except (psycopg.Error, ArgumentError) as exc:
        raise SystemExit(
            f"cannot connect to PostgreSQL at {_shown(pg_url)}: {_first_line(exc)}; start "
            "PostgreSQL or correct --pg-url"
        ) from None
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=5).ping()
    except (redis.RedisError, ValueError) as exc:
        raise SystemExit(
            f"cannot connect to Redis at {_shown(redis_url)}: {_first_line(exc)}; start Redis "
            "or correct --redis-url"
        ) from None


def _shown(url: str) -> str:
    """Return ``url`` with any password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return repr(url)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.markdown:
        print(markdown_table(read_results(args.output)))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    # httpx logs every request and alembic every migration at INFO.
    for noisy in ("httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    names = selected_scenarios(args.only)
    check_output(args.output)
    check_servers(args.pg_url, args.redis_url)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="agentfleet-bench-"))
    ctx = BenchContext(SIZES[args.size], args.pg_url, args.database_prefix, args.redis_url,
                       workdir)  # fmt: skip
    results = run_suite(ctx, names, args.output)
    print(text_table(results))
    failed = [s["name"] for s in results["scenarios"] if s["error"]]
    if failed:
        log.error("scenarios failed: %s; process logs are in %s", ", ".join(failed), workdir)
        return 1
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def run_suite(ctx: BenchContext, names: list[str], output: Path) -> dict[str, Any]:
    """Run the scenarios in order, rewriting ``output`` after each one."""
    started = time.monotonic()
    pg_url = psycopg_url(ctx.pg_url)
    results: dict[str, Any] = {
        "suite": "agentfleet benchmarks",
        "size": ctx.size.name,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "redis_url": ctx.redis_url,
        "machine": describe_machine(pg_url, ctx.redis_url),
        "scenarios": [],
    }
    for name in names:
        results["scenarios"].append(run_scenario(ctx, name).to_dict())
        results["duration_s"] = round(time.monotonic() - started, 1)
        results["machine"]["load_average_at_end"] = list(os.getloadavg())
        write_results(results, output)
    return results


def run_scenario(ctx: BenchContext, name: str) -> ScenarioResult:
    log.info("%s: started (size %s)", name, ctx.size.name)
    started = time.monotonic()
    try:
        result = SCENARIOS[name](ctx)
    except Exception as exc:
        # One failed scenario is recorded, and the others still run.
        log.exception("%s: failed", name)
        result = ScenarioResult(name, name, error=f"{type(exc).__name__}: {exc}")
    result.duration_s = round(time.monotonic() - started, 1)
    log.info("%s: finished in %.1f s", name, result.duration_s)
    return result


def write_results(results: dict[str, Any], output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
