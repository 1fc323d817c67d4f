"""The benchmark command's handling of results files and of mistakes in its options, without
running any scenario."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]


def markdown(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", "--markdown", "--output", str(path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_markdown_without_results(tmp_path: Path) -> None:
    done = markdown(tmp_path / "results.json")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"no results at {tmp_path / 'results.json'}; run 'python -m benchmarks' (or --quick) "
        "first, or give --output PATH of an earlier run"
    )


def test_markdown_of_other_json(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps([1, 2]), encoding="utf-8")
    done = markdown(path)
    assert done.returncode == 1
    assert done.stderr.strip() == f"{path} is not a results file of 'python -m benchmarks'"


def test_markdown_names_size_and_start(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    results = {"size": "quick", "started_at": "2026-12-05T01:17:25+00:00", "duration_s": 132.3,
               "scenarios": []}  # fmt: skip
    path.write_text(json.dumps(results), encoding="utf-8")
    done = markdown(path)
    assert done.returncode == 0
    assert (
        done.stdout.splitlines()[0]
        == "Size quick, started 2026-12-05T01:17:25+00:00, 132 s in all."
    )
    assert done.stdout.splitlines()[2].startswith("| scenario |")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def failure(*args: str) -> str:
    """Run the command with ``args`` and return the message it stops with."""
    with pytest.raises(SystemExit) as stopped:
        main(["--size", "tiny", "--only", "client_overhead", *args])
    return str(stopped.value.code)


def test_unreachable_postgres_names_option(tmp_path: Path) -> None:
    url = f"postgresql://postgres:secret@127.0.0.1:{closed_port()}/postgres"
    message = failure("--pg-url", url, "--output", str(tmp_path / "r.json"))

    assert message.startswith("cannot connect to PostgreSQL at postgresql://postgres:***@")
    assert "secret" not in message
    assert message.endswith("start PostgreSQL or correct --pg-url")


def test_unparsable_postgres_url_is_named(tmp_path: Path) -> None:
    message = failure("--pg-url", "not-a-url", "--output", str(tmp_path / "r.json"))

    assert message.startswith("cannot connect to PostgreSQL at 'not-a-url'")


def test_output_under_a_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text("{}", encoding="utf-8")
    message = failure("--output", str(tmp_path / "results.json" / "x.json"))

    assert "a part of its path is a file" in message


def test_output_folder_is_rejected(tmp_path: Path) -> None:
    message = failure("--output", str(tmp_path))

    assert (
        message == f"--output {tmp_path} is a folder; give a file, such as {tmp_path}/results.json"
    )
