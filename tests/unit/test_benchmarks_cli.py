"""The benchmark command's handling of results files, without running any scenario."""

import json
import subprocess
import sys
from pathlib import Path

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
