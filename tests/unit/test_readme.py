from pathlib import Path

from agentfleet.cli import cli
from agentfleet.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_lists_every_setting() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"`AGENTFLEET_{name.upper()}`" not in text]
    assert missing == []


def test_readme_commands_exist() -> None:
    blocks = README.read_text(encoding="utf-8").split("```sh\n")[1:]
    lines = [line for block in blocks for line in block.split("```")[0].splitlines()]
    used = {line.split()[1] for line in lines if line.startswith("agentfleet ")}
    assert {"db", "plans", "tenants", "submit", "wait", "rollup", "invoices"} <= used
    assert used <= set(cli.commands)
