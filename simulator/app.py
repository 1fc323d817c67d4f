"""An OpenAI-compatible chat completions server that stands in for real LLM providers."""

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from simulator.content import reply_text
from simulator.stats import ServedStats
from simulator.tokens import count_messages, count_text, truncate


@dataclass(frozen=True)
class SimulatorConfig:
    """Latency of every reply: ``latency_ms`` plus a uniform random part up to ``jitter_ms``."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    seed: int | None = None


def create_app(config: SimulatorConfig | None = None) -> Starlette:
    config = config or SimulatorConfig()
    stats = ServedStats()
    rng = random.Random(config.seed)

    async def chat_completions(request: Request) -> JSONResponse:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            stats.errors += 1
            return _error(
                401, "missing bearer token in the Authorization header", "invalid_api_key"
            )
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            stats.errors += 1
            return _error(400, "request body is not valid JSON", "invalid_json")
        problem = _request_problem(body)
        if problem:
            stats.errors += 1
            return _error(400, problem, "invalid_request")

        delay_ms = config.latency_ms + rng.uniform(0, config.jitter_ms)
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)
        completion = _completion(body)
        usage = completion["usage"]
        stats.record(body["model"], usage["prompt_tokens"], usage["completion_tokens"])
        return JSONResponse(completion)

    async def get_stats(_: Request) -> JSONResponse:
        return JSONResponse(stats.as_dict())

    async def reset_stats(_: Request) -> JSONResponse:
        stats.models.clear()
        stats.errors = 0
        return JSONResponse(stats.as_dict())

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/stats", get_stats, methods=["GET"]),
            Route("/stats/reset", reset_stats, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )


def _request_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "'model' is required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty list"
    if not all(isinstance(m, dict) and "role" in m for m in messages):
        return "every message needs a 'role'"
    return None


def _completion(body: dict[str, Any]) -> dict[str, Any]:
    messages = body["messages"]
    user_text = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "user")
    text = reply_text(user_text, _json_schema(body.get("response_format")))
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    cut = False
    if isinstance(max_tokens, int) and max_tokens > 0:
        text, cut = truncate(text, max_tokens)

    prompt_tokens = count_messages(messages)
    completion_tokens = count_text(text)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "length" if cut else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "system_fingerprint": "fp_agentfleet_simulator",
    }


def _json_schema(response_format: Any) -> dict[str, Any] | None:
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    schema = response_format.get("json_schema", {}).get("schema")
    return schema if isinstance(schema, dict) else None


def _error(status: int, message: str, code: str) -> JSONResponse:
    kind = "authentication_error" if status == 401 else "invalid_request_error"
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": code}},
        status_code=status,
    )
