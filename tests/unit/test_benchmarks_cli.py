"""Mistakes in the benchmark command's options stop it with one line before any work."""

import socket
from pathlib import Path

import pytest

from benchmarks.cli import main


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
