"""Requests, replies and the HTTP call path shared by every provider client."""

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from ledger.types import utcnow
from ledger.usage import TokenUsage
from workers.providers.errors import ProviderError, ProviderRejected, ProviderUnavailable
from workers.providers.pool import ClientPool
from workers.retry import retry_after_s

RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
JOB_HEADER = "X-Agentfleet-Job"
# The attempt id goes with each call, so a provider's request log can be matched with
# the ledger's attempt rows; OpenAI keeps it as the request's client id.
REQUEST_ID_HEADER = "X-Client-Request-Id"


@dataclass(frozen=True)
class ChatRequest:
    """One chat call: the system prompt as the first message, then the user's."""

    model: str
    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float
    json_schema: dict[str, Any] | None = None
    schema_name: str = "result"
    stream: bool = False
    job_id: str | None = field(default=None, compare=False)
    request_id: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ChatReply:
    content: str
    usage: TokenUsage
    finish_reason: str


class ProviderClient(Protocol):
    def complete(self, request: ChatRequest, timeout_s: float) -> ChatReply:
        """Make one call; raise a ProviderError subclass when it fails."""
        ...


class HttpChatClient:
    """A provider API over a shared httpx client: one POST per call, plain or streamed.

    Subclasses give the URL and auth headers, and turn requests and responses into the
    API's own bodies.
    """

    def __init__(self, http: httpx.Client | ClientPool, url: str, headers: dict[str, str]) -> None:
        self._http = http
        self._url = url
        self._headers = headers

    def complete(self, request: ChatRequest, timeout_s: float) -> ChatReply:
        headers = self._headers
        if request.job_id:
            headers = {**headers, JOB_HEADER: request.job_id}
        if request.request_id:
            headers = {**headers, REQUEST_ID_HEADER: request.request_id}
        body = self.request_body(request)
        if request.stream:
            return self.stream(body, headers, timeout_s)
        return self.parse_reply(post_json(self.http(), self._url, body, headers, timeout_s))

    def http(self) -> httpx.Client:
        """Return the httpx client for a call from this thread."""
        return self._http.client() if isinstance(self._http, ClientPool) else self._http

    def request_body(self, request: ChatRequest) -> dict[str, Any]:
        raise NotImplementedError

    def parse_reply(self, body: dict[str, Any]) -> ChatReply:
        raise NotImplementedError

    def stream(self, body: dict[str, Any], headers: dict[str, str], timeout_s: float) -> ChatReply:
        raise NotImplementedError


def status_error(response: httpx.Response) -> ProviderError:
    """Translate a non-200 response, with the provider's own message and Retry-After."""
    status = response.status_code
    message = f"HTTP {status}: {_error_message(response)}"
    if status == 404:
        message += f" ({response.request.method} {response.request.url})"
    if status in RETRYABLE_STATUSES or status >= 500:
        wait_s = retry_after_s(response.headers, utcnow())
        return ProviderUnavailable(message, status=status, retry_after_s=wait_s)
    return ProviderRejected(message, status=status)


def _error_message(response: httpx.Response) -> str:
    try:
        response.read()
        error = response.json().get("error", {})
        return str(error.get("message") or error) if isinstance(error, dict) else str(error)
    except (json.JSONDecodeError, AttributeError, httpx.HTTPError):
        return response.text[:200] if response.is_closed else response.reason_phrase


def post_json(
    http: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str], timeout_s: float
) -> dict[str, Any]:
    """POST and return the JSON body of a 200 response; anything else raises ProviderError."""
    try:
        response = http.post(url, json=body, headers=headers, timeout=timeout_s)
    except httpx.TimeoutException as exc:
        raise ProviderUnavailable(f"timed out after {timeout_s:.1f} s: {exc!r}") from exc
    except httpx.TransportError as exc:
        raise ProviderUnavailable(f"connection failed: {exc!r}") from exc
    if response.status_code != 200:
        raise status_error(response)
    try:
        data = response.json()
    except json.JSONDecodeError as exc:
        raise ProviderUnavailable(f"malformed response body: {exc}", status=200) from exc
    if not isinstance(data, dict):
        raise ProviderUnavailable("malformed response body: not a JSON object", status=200)
    return data


@contextmanager
def open_stream(
    http: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str], timeout_s: float
) -> Iterator[Iterator[tuple[str, str]]]:
    """POST and yield the (event, data) pairs of a server-sent event stream.

    The whole stream must finish within ``timeout_s``; a read that passes it raises
    ProviderUnavailable, as does a dropped connection.
    """
    deadline = time.monotonic() + timeout_s
    try:
        with http.stream("POST", url, json=body, headers=headers, timeout=timeout_s) as response:
            if response.status_code != 200:
                raise status_error(response)
            yield _events(response, deadline, timeout_s)
    except httpx.TimeoutException as exc:
        raise ProviderUnavailable(f"timed out after {timeout_s:.1f} s: {exc!r}") from exc
    except httpx.TransportError as exc:
        raise ProviderUnavailable(f"connection failed: {exc!r}") from exc


def _events(
    response: httpx.Response, deadline: float, timeout_s: float
) -> Iterator[tuple[str, str]]:
    event = ""
    try:
        for line in response.iter_lines():
            if time.monotonic() > deadline:
                raise ProviderUnavailable(f"timed out after {timeout_s:.1f} s while streaming")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                yield event, line[5:].strip()
            elif not line:
                event = ""
    except httpx.TimeoutException as exc:
        raise ProviderUnavailable(
            f"timed out after {timeout_s:.1f} s while streaming: {exc!r}"
        ) from exc
    except httpx.TransportError as exc:
        raise ProviderUnavailable(f"stream broke off: {exc!r}") from exc


def with_usage(exc: ProviderError, usage: TokenUsage | None) -> ProviderError:
    """Attach the usage a stream reported before it failed."""
    exc.usage = usage
    return exc


def event_json(data: str) -> dict[str, Any]:
    """Parse the data of one stream event; anything but a JSON object is a malformed stream."""
    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ProviderUnavailable(f"malformed stream event: {exc}", status=200) from exc
    if not isinstance(value, dict):
        raise ProviderUnavailable("malformed stream event: not a JSON object", status=200)
    return value
