import shlex
from pathlib import Path

import click

from agentfleet.cli import cli
from agentfleet.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_lists_every_setting() -> None:
    text = README.read_text(encoding="utf-8")
    missing = [name for name in Settings.model_fields if f"`AGENTFLEET_{name.upper()}`" not in text]
    assert missing == []


def readme_command_lines() -> list[list[str]]:
    """The words of every ``agentfleet`` line in the README's shell blocks, without
    comments and redirections."""
    blocks = README.read_text(encoding="utf-8").split("```sh\n")[1:]
    lines = [line for block in blocks for line in block.split("```")[0].splitlines()]
    return [
        shlex.split(line.split(" #")[0].split(" > ")[0])[1:]
        for line in lines
        if line.startswith("agentfleet ")
    ]


def split_root_options(words: list[str]) -> tuple[list[str], list[str]]:
    """Split leading options of the ``agentfleet`` group from the command and its arguments."""
    takes_value = {opt for p in cli.params if not getattr(p, "is_flag", False) for opt in p.opts}
    root: list[str] = []
    while words and words[0].startswith("-"):
        root.append(words.pop(0))
        if root[-1] in takes_value:
            root.append(words.pop(0))
    return root, words


def test_readme_commands_parse() -> None:
    """Every documented command line names real commands and options, in the right places."""
    root_options = {opt for p in cli.params for opt in p.opts}
    used = set()
    for words in readme_command_lines():
        root, rest = split_root_options(words)
        assert {w for w in root if w.startswith("-")} <= root_options, words
        command: click.Command = cli
        name = "agentfleet"
        while isinstance(command, click.Group) and rest and rest[0] in command.commands:
            name = rest.pop(0)
            command = command.commands[name]
            used.add(name)
        # Parsing checks every option and argument without running the command.
        command.make_context(name, [w for w in rest if "$(" not in w] or rest)
    assert {"db", "plans", "tenants", "submit", "wait", "rollup", "invoices", "demo"} <= used
