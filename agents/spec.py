"""The shape of one agent in the catalog, validated with pydantic."""

from typing import Any, Literal

import jinja2
import jinja2.meta
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agents.routing import queue_for

AGENT_NAME_PATTERN = r"^[a-z][a-z0-9-]{0,62}$"

_TEMPLATE_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)


def _check_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValueError(f"not a valid JSON Schema: {exc.message}") from exc
    return schema


def _check_template(source: str) -> str:
    try:
        _TEMPLATE_ENV.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"template syntax error on line {exc.lineno}: {exc.message}") from exc
    return source


class OutputSpec(BaseModel):
    """What the model must reply: free text, or JSON matching a schema."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["text", "json"]
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else _check_json_schema(value)

    @model_validator(mode="after")
    def _schema_matches_format(self) -> "OutputSpec":
        if self.format == "json" and self.json_schema is None:
            raise ValueError("format 'json' needs a 'schema'")
        if self.format == "text" and self.json_schema is not None:
            raise ValueError("format 'text' takes no 'schema'; use format 'json'")
        return self


class AgentSpec(BaseModel):
    """One agent: its model alias, prompts, input and output contracts and limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=AGENT_NAME_PATTERN)
    description: str = Field(min_length=1)
    model: str = Field(min_length=1, description="model alias, resolved through the settings")
    system_prompt: str = Field(min_length=1)
    prompt: str = Field(min_length=1, description="Jinja2 template over the job's input fields")
    input_schema: dict[str, Any]
    output: OutputSpec
    max_tokens: int = Field(gt=0, le=200_000)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    time_limit_s: float = Field(gt=0, le=3600)
    cacheable: bool = Field(
        default=False,
        description="replies depend only on the request, so identical requests share one reply",
    )
    cache_ttl_s: int = Field(default=3600, gt=0, le=30 * 86400)

    @property
    def queue(self) -> str:
        return queue_for(self.name)

    @field_validator("input_schema")
    @classmethod
    def _valid_input_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        _check_json_schema(value)
        if value.get("type") != "object":
            raise ValueError("must describe a JSON object ('type': 'object')")
        return value

    @field_validator("prompt")
    @classmethod
    def _valid_template(cls, value: str) -> str:
        return _check_template(value)

    @model_validator(mode="after")
    def _prompt_uses_declared_fields(self) -> "AgentSpec":
        declared = set(self.input_schema.get("properties", {}))
        used = jinja2.meta.find_undeclared_variables(_TEMPLATE_ENV.parse(self.prompt))
        unknown = sorted(used - declared)
        if unknown:
            raise ValueError(
                f"prompt uses {', '.join(unknown)}, which input_schema.properties does not declare"
            )
        return self
