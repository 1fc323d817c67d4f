"""The benchmark suite in its tiny size, end to end on the real PostgreSQL and Redis."""

import json
import math
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from benchmarks.cli import SCENARIOS, main

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_suite(pg_url: str, redis_url: str, tmp_path: Path, *args: str) -> str:
    database = make_url(pg_url).database
    command = [
        sys.executable, "-m", "benchmarks", "--size", "tiny",
        "--pg-url", pg_url, "--database-prefix", f"{database}_bench",
        "--redis-url", redis_url, "--workdir", str(tmp_path / "logs"),
        "--output", str(tmp_path / "results.json"), *args,
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.timeout(360)
def test_tiny_run_reports_every_scenario(pg_url: str, redis_url: str, tmp_path: Path) -> None:
    table = run_suite(pg_url, redis_url, tmp_path)
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))

    assert results["size"] == "tiny"
    assert [s["name"] for s in results["scenarios"]] == list(SCENARIOS)
    for scenario in results["scenarios"]:
        assert scenario["error"] is None, scenario["name"]
        assert scenario["rows"], scenario["name"]
        for row in scenario["rows"]:
            assert row["figure"] > 0, row["name"]
            assert row["baseline"] > 0, row["name"]
            assert 0 < row["ratio"] < math.inf, row["name"]
            assert row["met"] in ((None,) if row["target"] is None else (True, False)), row["name"]
            assert row["name"] in table


def test_only_runs_selected_scenario(pg_url: str, redis_url: str, tmp_path: Path) -> None:
    run_suite(pg_url, redis_url, tmp_path, "--only", "client_overhead")
    markdown = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--markdown", "--output", str(tmp_path / "results.json")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip

    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert [s["name"] for s in results["scenarios"]] == ["client_overhead"]
    assert markdown.splitlines()[0].startswith("Size tiny, started ")
    assert markdown.splitlines()[2].startswith("| scenario |")
    assert "| client_overhead.p50 |" in markdown
    assert "| client_overhead.p99 |" in markdown


def test_unreachable_redis_names_option(pg_url: str, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = ["--size", "tiny", "--pg-url", pg_url, "--redis-url", f"redis://127.0.0.1:{port}/6",
            "--output", str(tmp_path / "results.json")]  # fmt: skip
    with pytest.raises(SystemExit) as stopped:
        main(args)

    message = str(stopped.value.code)
    assert message.startswith(f"cannot connect to Redis at redis://127.0.0.1:{port}/6: ")
    assert message.endswith("start Redis or correct --redis-url")
    assert not (tmp_path / "results.json").exists()
