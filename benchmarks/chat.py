"""The chat request a triage job sends, built by the product's own code."""

from typing import Any

from agentfleet.fleet import load_agents
from agentfleet.settings import Settings
from agents import AgentSpec, render_messages
from benchmarks.context import AGENT
from benchmarks.fleet import complaint_inputs
from workers.providers.base import ChatRequest
from workers.providers.openai_chat import request_body

MODEL = "gpt-4o-mini"


def triage_spec(settings: Settings) -> AgentSpec:
    return load_agents(settings)[AGENT]


def triage_messages(spec: AgentSpec) -> list[dict[str, str]]:
    return render_messages(spec, complaint_inputs()[0])


def triage_request(
    spec: AgentSpec, messages: list[dict[str, str]], job_id: str | None = None
) -> ChatRequest:
    """Build the request as JobRunner._request does for one attempt."""
    return ChatRequest(
        model=MODEL,
        messages=messages,
        max_tokens=spec.max_tokens,
        temperature=spec.temperature,
        json_schema=spec.output.json_schema,
        schema_name=spec.name.replace("-", "_"),
        job_id=job_id,
    )


def triage_body(settings: Settings) -> dict[str, Any]:
    """Return the JSON body of a triage job's chat completion request."""
    spec = triage_spec(settings)
    return request_body(triage_request(spec, triage_messages(spec)))
