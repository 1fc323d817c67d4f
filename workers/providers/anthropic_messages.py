"""Client of the Anthropic Messages API, plain and streamed.

JSON agents get their schema as a single tool that the model must call, because that is
how the Messages API returns structured output. The tool's input is the reply.
"""

import json
from typing import Any

import httpx

from ledger.usage import TokenUsage
from workers.providers.base import (
    ChatReply,
    ChatRequest,
    HttpChatClient,
    event_json,
    open_stream,
    with_usage,
)
from workers.providers.errors import ProviderError, ProviderUnavailable
from workers.providers.pool import ClientPool

API_VERSION = "2023-06-01"


class AnthropicMessagesClient(HttpChatClient):
    """Sends messages to the Anthropic API; raises ProviderError subclasses on failure."""

    def __init__(self, http: httpx.Client | ClientPool, base_url: str, api_key: str) -> None:
        headers = {"x-api-key": api_key, "anthropic-version": API_VERSION}
        super().__init__(http, f"{base_url}/v1/messages", headers)

    def request_body(self, request: ChatRequest) -> dict[str, Any]:
        return request_body(request)

    def parse_reply(self, body: dict[str, Any]) -> ChatReply:
        return parse_reply(body)

    def stream(self, body: dict[str, Any], headers: dict[str, str], timeout_s: float) -> ChatReply:
        stream = _StreamState()
        try:
            with open_stream(self.http(), self._url, body, headers, timeout_s) as events:
                for event, data in events:
                    stream.apply(event, event_json(data))
                    if stream.stopped:
                        break
        except ProviderError as exc:
            raise with_usage(exc, stream.usage) from exc
        if not stream.stopped or stream.usage is None:
            raise with_usage(
                ProviderUnavailable("stream ended before message_stop", status=200), stream.usage
            )
        return ChatReply("".join(stream.pieces), stream.usage, stream.stop_reason)


class _StreamState:
    """Content, usage and stop reason reported so far by the events of one Messages stream."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.usage: TokenUsage | None = None
        self.stop_reason = ""
        self.stopped = False

    def apply(self, event: str, data: dict[str, Any]) -> None:
        kind = data.get("type", event)
        if kind == "message_start":
            self.usage = parse_usage(data.get("message", {}).get("usage") or {})
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            self.pieces.append(delta.get("text") or delta.get("partial_json") or "")
        elif kind == "message_delta":
            self.stop_reason = (data.get("delta") or {}).get("stop_reason") or self.stop_reason
            self.usage = _updated(self.usage, data.get("usage") or {})
        elif kind == "message_stop":
            self.stopped = True
        elif kind == "error":
            error = data.get("error") or {}
            raise ProviderUnavailable(
                f"stream error {error.get('type')}: {error.get('message')}", status=200
            )


def _updated(usage: TokenUsage | None, delta: dict[str, Any]) -> TokenUsage:
    """Apply a message_delta's usage; its counts are cumulative, so they replace earlier ones."""
    current = usage or TokenUsage()
    return parse_usage(
        {
            "input_tokens": delta.get("input_tokens", current.input_tokens),
            "cache_read_input_tokens": delta.get(
                "cache_read_input_tokens", current.cached_input_tokens
            ),
            "cache_creation_input_tokens": delta.get(
                "cache_creation_input_tokens", current.cache_write_tokens
            ),
            "output_tokens": delta.get("output_tokens", current.output_tokens),
        }
    )


def request_body(request: ChatRequest) -> dict[str, Any]:
    system = [m["content"] for m in request.messages if m["role"] == "system"]
    body: dict[str, Any] = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "messages": [m for m in request.messages if m["role"] != "system"],
    }
    if system:
        # A static system prompt is the prefix worth caching; the API ignores the mark
        # for prefixes below its minimum length.
        body["system"] = [
            {"type": "text", "text": "\n".join(system), "cache_control": {"type": "ephemeral"}}
        ]
    if request.json_schema is not None:
        body["tools"] = [
            {
                "name": request.schema_name,
                "description": "Record the result.",
                "input_schema": request.json_schema,
            }
        ]
        body["tool_choice"] = {"type": "tool", "name": request.schema_name}
    if request.stream:
        body["stream"] = True
    return body


def parse_reply(body: dict[str, Any]) -> ChatReply:
    try:
        blocks = body["content"]
        usage = parse_usage(body["usage"])
        parts = [
            json.dumps(b["input"]) if b["type"] == "tool_use" else b.get("text", "") for b in blocks
        ]
        return ChatReply("".join(parts), usage, str(body.get("stop_reason")))
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderUnavailable(f"malformed response body: {exc!r}", status=200) from exc


def parse_usage(usage: dict[str, Any]) -> TokenUsage:
    """Read Anthropic usage. Its ``input_tokens`` already excludes cache reads and writes,
    so the kinds are disjoint as reported; thinking tokens are inside ``output_tokens``."""
    try:
        return TokenUsage(
            input_tokens=int(usage.get("input_tokens") or 0),
            cached_input_tokens=int(usage.get("cache_read_input_tokens") or 0),
            cache_write_tokens=int(usage.get("cache_creation_input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
        )
    except (TypeError, ValueError) as exc:
        raise ProviderUnavailable(f"malformed usage: {exc!r}", status=200) from exc
