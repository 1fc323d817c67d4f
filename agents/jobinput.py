"""Check a job's input against its agent and turn it into chat messages."""

import json
from functools import cache
from typing import Any

import jinja2
from jsonschema import Draft202012Validator

from agents.errors import InvalidInput
from agents.spec import AgentSpec

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
MAX_REPORTED_PROBLEMS = 5


@cache
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))


def validate_input(agent: AgentSpec, job_input: Any) -> dict[str, Any]:
    """Return the input unchanged if it matches the agent's input schema.

    Raises InvalidInput listing up to five problems, each with the field path.
    """
    if not isinstance(job_input, dict):
        raise InvalidInput(agent.name, [f"expected a JSON object, got {type(job_input).__name__}"])
    errors = sorted(
        _validator(json.dumps(agent.input_schema, sort_keys=True)).iter_errors(job_input),
        key=lambda e: list(e.path),
    )
    if errors:
        problems = [_describe(error.json_path, error.message) for error in errors]
        raise InvalidInput(agent.name, problems[:MAX_REPORTED_PROBLEMS])
    return job_input


def _describe(path: str, message: str) -> str:
    return message if path == "$" else f"{path.removeprefix('$.')}: {message}"


def render_messages(agent: AgentSpec, job_input: dict[str, Any]) -> list[dict[str, str]]:
    """Render the agent's prompt template into chat messages after its system prompt.

    Raises InvalidInput when the template cannot be rendered from this input.
    """
    try:
        user = _template(agent.prompt).render(**job_input)
    except jinja2.TemplateError as exc:
        raise InvalidInput(agent.name, [f"prompt template failed: {exc}"]) from exc
    return [{"role": "system", "content": agent.system_prompt}, {"role": "user", "content": user}]


@cache
def _template(source: str) -> jinja2.Template:
    return _ENV.from_string(source)
