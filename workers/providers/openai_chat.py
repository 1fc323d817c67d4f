"""Client of the OpenAI-compatible chat completions API, plain and streamed."""

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


class OpenAIChatClient(HttpChatClient):
    """Sends chat completions to one provider; raises ProviderError subclasses on failure."""

    def __init__(self, http: httpx.Client | ClientPool, base_url: str, api_key: str) -> None:
        super().__init__(
            http, f"{base_url}/chat/completions", {"Authorization": f"Bearer {api_key}"}
        )

    def request_body(self, request: ChatRequest) -> dict[str, Any]:
        return request_body(request)

    def parse_reply(self, body: dict[str, Any]) -> ChatReply:
        return parse_reply(body)

    def stream(self, body: dict[str, Any], headers: dict[str, str], timeout_s: float) -> ChatReply:
        pieces: list[str] = []
        finish = ""
        usage: TokenUsage | None = None
        try:
            with open_stream(self.http(), self._url, body, headers, timeout_s) as events:
                for _, data in events:
                    if data == "[DONE]":
                        break
                    chunk = event_json(data)
                    for choice in chunk.get("choices") or []:
                        pieces.append((choice.get("delta") or {}).get("content") or "")
                        finish = choice.get("finish_reason") or finish
                    if chunk.get("usage"):
                        usage = parse_usage(chunk["usage"])
        except ProviderError as exc:
            raise with_usage(exc, usage) from exc
        if usage is None:
            raise ProviderUnavailable("stream ended without its usage chunk", status=200)
        return ChatReply("".join(pieces), usage, finish)


def request_body(request: ChatRequest) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": request.model,
        "messages": request.messages,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
    }
    if request.json_schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": request.schema_name,
                "strict": True,
                "schema": request.json_schema,
            },
        }
    if request.stream:
        body["stream"] = True
        # Without this option a streamed response carries no usage at all.
        body["stream_options"] = {"include_usage": True}
    return body


def parse_reply(body: dict[str, Any]) -> ChatReply:
    """Read content and usage from a completion; a body without them is retryable."""
    try:
        choice = body["choices"][0]
        content = choice["message"]["content"]
        usage = parse_usage(body["usage"])
        if not isinstance(content, str):
            raise TypeError(f"content is {type(content).__name__}, expected a string")
        return ChatReply(
            content=content, usage=usage, finish_reason=str(choice.get("finish_reason"))
        )
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ProviderUnavailable(f"malformed response body: {exc!r}", status=200) from exc


def parse_usage(usage: dict[str, Any]) -> TokenUsage:
    """Split OpenAI usage into disjoint kinds.

    ``prompt_tokens`` includes ``prompt_tokens_details.cached_tokens``, and
    ``completion_tokens`` includes ``completion_tokens_details.reasoning_tokens``.
    """
    try:
        prompt = int(usage["prompt_tokens"])
        completion = int(usage["completion_tokens"])
        cached = int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
        reasoning = int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
        return TokenUsage(
            input_tokens=prompt - cached,
            cached_input_tokens=cached,
            output_tokens=completion,
            reasoning_tokens=reasoning,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProviderUnavailable(f"malformed usage: {exc!r}", status=200) from exc
