"""Client of the OpenAI-compatible chat completions API over a shared httpx client."""

import json
from dataclasses import dataclass
from typing import Any

import httpx

from ledger.types import utcnow
from ledger.usage import TokenUsage
from workers.providers.errors import ProviderError, ProviderRejected, ProviderUnavailable
from workers.retry import retry_after_s

RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float
    response_format: dict[str, Any] | None = None


@dataclass(frozen=True)
class ChatReply:
    content: str
    usage: TokenUsage
    finish_reason: str


class OpenAIChatClient:
    """Sends chat completions to one provider; raises ProviderError subclasses on failure."""

    def __init__(self, http: httpx.Client, base_url: str, api_key: str) -> None:
        self._http = http
        self._url = f"{base_url}/chat/completions"
        self._headers = {"Authorization": f"Bearer {api_key}"}

    def complete(self, request: ChatRequest, timeout_s: float) -> ChatReply:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        if request.response_format is not None:
            body["response_format"] = request.response_format
        try:
            response = self._http.post(
                self._url, json=body, headers=self._headers, timeout=timeout_s
            )
        except httpx.TimeoutException as exc:
            raise ProviderUnavailable(f"timed out after {timeout_s:.1f} s: {exc!r}") from exc
        except httpx.TransportError as exc:
            raise ProviderUnavailable(f"connection failed: {exc!r}") from exc
        if response.status_code != 200:
            raise _status_error(response)
        return parse_reply(response)


def _status_error(response: httpx.Response) -> ProviderError:
    status = response.status_code
    message = f"HTTP {status}: {_error_message(response)}"
    if status in RETRYABLE_STATUSES or status >= 500:
        return ProviderUnavailable(
            message, status=status, retry_after_s=retry_after_s(response.headers, utcnow())
        )
    return ProviderRejected(message, status=status)


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
        return str(error.get("message") or error)
    except (json.JSONDecodeError, AttributeError):
        return response.text[:200] or response.reason_phrase


def parse_reply(response: httpx.Response) -> ChatReply:
    """Read content and usage from a 200 response; a body without them is retryable."""
    try:
        body = response.json()
        choice = body["choices"][0]
        content = choice["message"]["content"]
        usage = parse_usage(body["usage"])
        if not isinstance(content, str):
            raise TypeError(f"content is {type(content).__name__}, expected a string")
        return ChatReply(
            content=content, usage=usage, finish_reason=str(choice.get("finish_reason"))
        )
    except (json.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise ProviderUnavailable(f"malformed response body: {exc!r}", status=200) from exc


def parse_usage(usage: dict[str, Any]) -> TokenUsage:
    """Split OpenAI usage into disjoint kinds.

    ``prompt_tokens`` includes ``prompt_tokens_details.cached_tokens``, and
    ``completion_tokens`` includes ``completion_tokens_details.reasoning_tokens``.
    """
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
