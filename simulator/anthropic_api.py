"""The Anthropic Messages API as the simulator speaks it, streaming included."""

import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.datastructures import Headers

from simulator.replies import PromptCache, Reply, SimUsage, build_reply
from simulator.tokens import MESSAGE_OVERHEAD, chunks, content_text, count_messages, count_text

ERROR_TYPES = {
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    529: "overloaded_error",
    400: "invalid_request_error",
    401: "authentication_error",
}


def auth_problem(headers: Headers) -> str | None:
    if not headers.get("x-api-key") and not headers.get("authorization", "").startswith("Bearer "):
        return "missing x-api-key header"
    if not headers.get("anthropic-version"):
        return "missing anthropic-version header"
    return None


def request_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int) or body["max_tokens"] < 1:
        return "max_tokens: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    return None


def error_body(status: int, message: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message},
    }


def make_reply(body: dict[str, Any], cache: PromptCache) -> Reply:
    system, marked = _system(body.get("system"))
    user = "\n".join(
        content_text(m.get("content")) for m in body["messages"] if m.get("role") == "user"
    )
    prompt_tokens = count_messages(body["messages"])
    if system:
        prompt_tokens += MESSAGE_OVERHEAD + count_text(system)
    return build_reply(
        model=body["model"],
        prompt_tokens=prompt_tokens,
        prefix=system,
        user_text=user,
        schema=_tool_schema(body),
        max_tokens=body["max_tokens"],
        cache=cache,
        explicit_cache=marked,
    )


def usage_object(usage: SimUsage) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "output_tokens": usage.output_tokens,
        "service_tier": "standard",
    }


def response_body(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [_content_block(body, reply)],
        "stop_reason": _stop_reason(body, reply),
        "stop_sequence": None,
        "usage": usage_object(reply.usage),
    }


async def stream_events(
    body: dict[str, Any], reply: Reply, cut_after: int | None, on_usage: Callable[[SimUsage], None]
) -> AsyncIterator[bytes]:
    """Yield the Messages stream; with ``cut_after``, stop after that many events.

    ``message_start`` reports the input tokens and one output token, and ``message_delta``
    the cumulative output tokens, as the API does. ``on_usage`` gets what was reported.
    """
    start_usage = SimUsage(
        reply.usage.input_tokens,
        reply.usage.cached_tokens,
        reply.usage.cache_write_tokens,
        output_tokens=min(1, reply.usage.output_tokens),
    )
    message = {
        **response_body(body, reply),
        "content": [],
        "stop_reason": None,
        "usage": usage_object(start_usage),
    }
    block = _content_block(body, reply)
    events: list[tuple[str, dict[str, Any], SimUsage | None]] = [
        ("message_start", {"type": "message_start", "message": message}, start_usage),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {**block, "text": ""}
                if block["type"] == "text"
                else {**block, "input": {}},
            },
            None,
        ),
        ("ping", {"type": "ping"}, None),
    ]
    for piece in chunks(reply.text):
        delta = (
            {"type": "text_delta", "text": piece}
            if block["type"] == "text"
            else {"type": "input_json_delta", "partial_json": piece}
        )
        events.append(
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": delta},
                None,
            )
        )
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}, None),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": _stop_reason(body, reply), "stop_sequence": None},
                "usage": {"output_tokens": reply.usage.output_tokens},
            },
            reply.usage,
        ),
        ("message_stop", {"type": "message_stop"}, None),
    ]

    reported: SimUsage | None = None
    for number, (name, data, usage) in enumerate(events, 1):
        if cut_after is not None and number > cut_after:
            break
        reported = usage or reported
        yield f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
    if reported is not None:
        on_usage(reported)


def _content_block(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    tool = _forced_tool(body)
    if tool is None:
        return {"type": "text", "text": reply.text}
    return {
        "type": "tool_use",
        "id": f"toolu_{uuid.uuid4().hex[:24]}",
        "name": tool["name"],
        "input": reply.json_value if reply.json_value is not None else {},
    }


def _stop_reason(body: dict[str, Any], reply: Reply) -> str:
    if reply.truncated:
        return "max_tokens"
    return "tool_use" if _forced_tool(body) else "end_turn"


def _forced_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    choice = body.get("tool_choice") or {}
    if choice.get("type") != "tool":
        return None
    return next((t for t in body.get("tools", []) if t.get("name") == choice.get("name")), None)


def _tool_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    tool = _forced_tool(body)
    return tool.get("input_schema") if tool else None


def _system(system: Any) -> tuple[str, bool]:
    """Return the system text and whether any of its blocks requests prompt caching."""
    if isinstance(system, str):
        return system, False
    if isinstance(system, list):
        text = " ".join(str(b.get("text", "")) for b in system if isinstance(b, dict))
        return text, any(isinstance(b, dict) and "cache_control" in b for b in system)
    return "", False
