"""Turn a model's reply into the job's result, checked against the agent's output spec."""

import json
from typing import Any

from jsonschema import Draft202012Validator

from agents.errors import InvalidOutput
from agents.spec import AgentSpec


def parse_output(agent: AgentSpec, content: str) -> Any:
    """Return the reply as text, or as parsed JSON that matches the output schema.

    Raises InvalidOutput when a JSON agent's reply is not JSON or breaks the schema.
    """
    if agent.output.format == "text":
        return content.strip()

    try:
        value = json.loads(content)
    except json.JSONDecodeError as exc:
        raise InvalidOutput(f"agent {agent.name!r} replied with invalid JSON: {exc}") from exc

    error = next(Draft202012Validator(agent.output.json_schema or {}).iter_errors(value), None)
    if error is not None:
        raise InvalidOutput(f"agent {agent.name!r} reply breaks its output schema: {error.message}")
    return value


def response_format(agent: AgentSpec) -> dict[str, Any] | None:
    """Return the OpenAI ``response_format`` that requests the agent's JSON schema, if any."""
    if agent.output.format != "json":
        return None
    return {
        "type": "json_schema",
        "json_schema": {
            "name": agent.name.replace("-", "_"),
            "strict": True,
            "schema": agent.output.json_schema,
        },
    }
