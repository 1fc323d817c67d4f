"""Load the agent catalog file and look agents up by name."""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from agents.errors import CatalogError, UnknownAgent
from agents.spec import AgentSpec

DEFAULT_CATALOG = "catalog.yaml"


@dataclass(frozen=True)
class AgentCatalog(Mapping[str, AgentSpec]):
    """The agents an operator has defined, keyed by name."""

    agents: dict[str, AgentSpec]
    source: str

    def __getitem__(self, name: str) -> AgentSpec:
        try:
            return self.agents[name]
        except KeyError:
            raise UnknownAgent(name, sorted(self.agents)) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.agents)

    def __len__(self) -> int:
        return len(self.agents)

    @property
    def queues(self) -> list[str]:
        return [agent.queue for agent in self.agents.values()]


def load_catalog(path: Path | None = None) -> AgentCatalog:
    """Read and validate a catalog file; without a path, read the catalog shipped with agentfleet.

    Raises CatalogError naming the file, the agent and the field at fault.
    """
    if path is None:
        text = resources.files("agents").joinpath(DEFAULT_CATALOG).read_text(encoding="utf-8")
        source = f"built-in {DEFAULT_CATALOG}"
    else:
        text = _read(path)
        source = str(path)
    return parse_catalog(text, source)


def parse_catalog(text: str, source: str) -> AgentCatalog:
    """Validate catalog YAML text; ``source`` names it in error messages."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CatalogError(f"agent catalog {source}: not valid YAML: {exc}") from exc

    entries = document.get("agents") if isinstance(document, dict) else None
    if not isinstance(entries, dict) or not entries:
        raise CatalogError(
            f"agent catalog {source}: expected a top-level 'agents' mapping of name to agent"
        )
    agents = {name: _parse_agent(source, str(name), body) for name, body in entries.items()}
    return AgentCatalog(agents=agents, source=source)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(f"agent catalog {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"agent catalog {path}: cannot read it: {exc}") from exc


def _parse_agent(source: str, name: str, body: Any) -> AgentSpec:
    if not isinstance(body, dict):
        raise CatalogError(f"agent catalog {source}: agent {name!r}: expected a mapping of fields")
    try:
        return AgentSpec.model_validate({**body, "name": name})
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors())
        raise CatalogError(f"agent catalog {source}: agent {name!r}: {problems}") from None


def _describe(error: Mapping[str, Any]) -> str:
    location = ".".join(str(part) for part in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"field {location!r}: {message}" if location else message
