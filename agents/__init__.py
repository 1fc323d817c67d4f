"""The agent catalog: what each agent is, pure data and validation with no I/O beyond reading it."""

from agents.catalog import AgentCatalog, load_catalog, parse_catalog
from agents.errors import AgentError, CatalogError, InvalidInput, InvalidOutput, UnknownAgent
from agents.jobinput import render_messages, validate_input
from agents.output import parse_output
from agents.routing import MAINTENANCE_QUEUE, RUN_TASK_NAME, queue_for, route_task
from agents.spec import AgentSpec, OutputSpec

__all__ = [
    "MAINTENANCE_QUEUE",
    "RUN_TASK_NAME",
    "AgentCatalog",
    "AgentError",
    "AgentSpec",
    "CatalogError",
    "InvalidInput",
    "InvalidOutput",
    "OutputSpec",
    "UnknownAgent",
    "load_catalog",
    "parse_catalog",
    "parse_output",
    "queue_for",
    "render_messages",
    "route_task",
    "validate_input",
]
