"""The agent catalog, model targets and broker options that producers and workers share."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kombu.entity import Exchange, Queue

from agentfleet.redis_broker import TRANSPORT as REDIS_TRANSPORT
from agentfleet.settings import Settings
from agents import MAINTENANCE_QUEUE, AgentCatalog, CatalogError, load_catalog

# Seconds between polls of the filesystem broker's message folder.
FILESYSTEM_POLL_INTERVAL_S = 0.1


@dataclass(frozen=True)
class Target:
    """A provider and one of its models, which a model alias resolves to."""

    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


def resolve_alias(settings: Settings, alias: str) -> list[Target]:
    """Return the alias's targets in the order they are tried."""
    targets = settings.model_aliases.get(alias)
    if targets is None:
        raise CatalogError(
            f"unknown model alias {alias!r}; configured aliases: "
            f"{', '.join(sorted(settings.model_aliases))} (AGENTFLEET_MODEL_ALIASES)"
        )
    return [Target(*target.split(":", 1)) for target in targets]


def load_agents(settings: Settings) -> AgentCatalog:
    """Load the catalog, apply AGENTFLEET_AGENT_OVERRIDES and check every model alias resolves."""
    catalog = load_catalog(settings.agents_file)
    agents = dict(catalog.agents)
    for name, override in settings.agent_overrides.items():
        if name not in agents:
            raise CatalogError(
                f"agent_overrides names agent {name!r}, which {catalog.source} does not define; "
                f"known agents: {', '.join(sorted(agents))}"
            )
        changes = override.model_dump(exclude_none=True)
        agents[name] = agents[name].model_copy(update=changes)
    for agent in agents.values():
        try:
            resolve_alias(settings, agent.model)
        except CatalogError as exc:
            raise CatalogError(f"agent {agent.name!r}: {exc}") from None
    return AgentCatalog(agents=agents, source=catalog.source)


def broker_config(settings: Settings) -> dict[str, Any]:
    """Return the Celery settings that connect to the configured broker."""
    if settings.uses_filesystem_broker:
        return {
            "broker_url": "filesystem://localhost/",
            "broker_transport_options": filesystem_options(settings.broker_dir),
        }
    config: dict[str, Any] = {
        "broker_url": settings.broker_url,
        "broker_transport_options": {"visibility_timeout": settings.broker_visibility_timeout_s},
    }
    if settings.broker_url.startswith("redis://"):
        config["broker_transport"] = REDIS_TRANSPORT
    return config


def filesystem_options(folder: Path) -> dict[str, Any]:
    """Transport options of kombu's filesystem broker, creating its folders.

    Consumed messages are moved to a folder on the same file system, so the move is an
    atomic rename and two workers never take the same message.
    """
    root = folder.resolve()
    messages, processed, control = root / "messages", root / "processed", root / "control"
    for path in (messages, processed, control):
        path.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(messages),
        "data_folder_out": str(messages),
        "processed_folder": str(processed),
        "control_folder": str(control),
        "store_processed": True,
        "polling_interval": FILESYSTEM_POLL_INTERVAL_S,
    }


def celery_queues(catalog: AgentCatalog) -> list[Queue]:
    """Return one durable direct queue per agent, and the maintenance queue."""
    names = [*catalog.queues, MAINTENANCE_QUEUE]
    return [Queue(name, Exchange(name, type="direct"), routing_key=name) for name in names]
