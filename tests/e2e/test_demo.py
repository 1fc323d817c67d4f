"""The README's first command: the demo on the embedded default, with no servers."""

import subprocess
import sys
from pathlib import Path


def test_demo_runs_without_servers(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agentfleet", "demo", "--latency-ms", "20"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ledger sqlite:///" in done.stdout
    assert "broker filesystem://" in done.stdout
    assert "44 jobs in" in done.stdout
    assert "ledger token totals equal the simulator's counts." in done.stdout
    assert "Draft invoices" in done.stdout
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []
