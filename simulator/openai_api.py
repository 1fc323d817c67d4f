"""The OpenAI chat completions API as the simulator speaks it, streaming included."""

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.datastructures import Headers

from simulator.replies import PromptCache, Reply, SimUsage, build_reply
from simulator.tokens import chunks, content_text, count_messages

ERROR_TYPES = {
    429: "requests",
    500: "server_error",
    502: "server_error",
    503: "server_error",
    529: "server_error",
    400: "invalid_request_error",
    401: "invalid_request_error",
}


def auth_problem(headers: Headers) -> str | None:
    if not headers.get("authorization", "").startswith("Bearer "):
        return "missing bearer token in the Authorization header"
    return None


def request_problem(body: Any) -> str | None:
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


def error_body(status: int, message: str) -> dict[str, Any]:
    code = "rate_limit_exceeded" if status == 429 else None
    return {
        "error": {
            "message": message,
            "type": ERROR_TYPES.get(status, "server_error"),
            "param": None,
            "code": code,
        }
    }


def make_reply(body: dict[str, Any], cache: PromptCache) -> Reply:
    messages = body["messages"]
    system = "\n".join(
        content_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer")
    )
    user = "\n".join(content_text(m.get("content")) for m in messages if m.get("role") == "user")
    return build_reply(
        model=body["model"],
        prompt_tokens=count_messages(messages),
        prefix=system,
        user_text=user,
        schema=_json_schema(body.get("response_format")),
        max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
        cache=cache,
        explicit_cache=None,
    )


def usage_object(usage: SimUsage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.prompt_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def response_body(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": reply.text,
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "length" if reply.truncated else "stop",
            }
        ],
        "usage": usage_object(reply.usage),
        "service_tier": "default",
        "system_fingerprint": "fp_agentfleet_simulator",
    }


async def stream_events(
    body: dict[str, Any], reply: Reply, cut_after: int | None, on_usage: Callable[[SimUsage], None]
) -> AsyncIterator[bytes]:
    """Yield server-sent events; with ``cut_after``, stop after that many events, as a
    dropped connection would, before the usage event."""
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    base = {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body["model"],
        "system_fingerprint": "fp_agentfleet_simulator",
        "service_tier": "default",
    }
    events = [
        _chunk(base, {"role": "assistant", "content": "", "refusal": None}, None, include_usage)
    ]
    events += [
        _chunk(base, {"content": piece}, None, include_usage) for piece in chunks(reply.text)
    ]
    events.append(_chunk(base, {}, "length" if reply.truncated else "stop", include_usage))
    if include_usage:
        events.append({**base, "choices": [], "usage": usage_object(reply.usage)})

    for number, event in enumerate(events, 1):
        if cut_after is not None and number > cut_after:
            return
        if "usage" in event and event["usage"] is not None:
            on_usage(reply.usage)
        yield f"data: {json.dumps(event)}\n\n".encode()
    yield b"data: [DONE]\n\n"


def _chunk(
    base: dict[str, Any], delta: dict[str, Any], finish: str | None, include_usage: bool
) -> dict[str, Any]:
    chunk = {
        **base,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if include_usage:
        chunk["usage"] = None
    return chunk


def _json_schema(response_format: Any) -> dict[str, Any] | None:
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    schema = response_format.get("json_schema", {}).get("schema")
    return schema if isinstance(schema, dict) else None
