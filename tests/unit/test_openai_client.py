import json
from collections.abc import Callable

import httpx
import pytest

from ledger.usage import TokenUsage
from workers.providers.errors import ProviderRejected, ProviderUnavailable
from workers.providers.openai_chat import ChatRequest, OpenAIChatClient

REQUEST = ChatRequest(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "hi"}],
    max_tokens=20,
    temperature=0.0,
)


def client_for(handler: Callable[[httpx.Request], httpx.Response]) -> OpenAIChatClient:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return OpenAIChatClient(http, "https://provider.test/v1", "sk-test")


def completion(usage: dict[str, object], content: str = "hello") -> dict[str, object]:
    return {"choices": [{"message": {"content": content}, "finish_reason": "stop"}], "usage": usage}


def test_usage_kinds_are_split() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200,
            json=completion(
                {
                    "prompt_tokens": 1200,
                    "completion_tokens": 300,
                    "prompt_tokens_details": {"cached_tokens": 1024},
                    "completion_tokens_details": {"reasoning_tokens": 120},
                }
            ),
        )

    reply = client_for(handler).complete(REQUEST, timeout_s=5)
    assert reply.content == "hello"
    assert reply.usage == TokenUsage(
        input_tokens=176, cached_input_tokens=1024, output_tokens=300, reasoning_tokens=120
    )
    assert seen[0].url == "https://provider.test/v1/chat/completions"
    assert seen[0].headers["authorization"] == "Bearer sk-test"
    assert json.loads(seen[0].content)["max_tokens"] == 20


def test_rate_limit_is_retryable_with_wait() -> None:
    client = client_for(
        lambda _: httpx.Response(
            429, headers={"retry-after": "3"}, json={"error": {"message": "Rate limit reached"}}
        )
    )
    with pytest.raises(ProviderUnavailable) as caught:
        client.complete(REQUEST, timeout_s=5)
    assert caught.value.status == 429
    assert caught.value.retry_after_s == 3.0
    assert "Rate limit reached" in str(caught.value)


@pytest.mark.parametrize("status", [408, 409, 500, 502, 503, 504, 529])
def test_transient_statuses_are_retryable(status: int) -> None:
    with pytest.raises(ProviderUnavailable):
        client_for(lambda _: httpx.Response(status, text="busy")).complete(REQUEST, timeout_s=5)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_final(status: int) -> None:
    client = client_for(lambda _: httpx.Response(status, json={"error": {"message": "bad model"}}))
    with pytest.raises(ProviderRejected, match=f"HTTP {status}: bad model"):
        client.complete(REQUEST, timeout_s=5)


@pytest.mark.parametrize(
    "body", [b"not json", b'{"choices": []}', b'{"choices": [{"message": {}}]}']
)
def test_malformed_body_is_retryable(body: bytes) -> None:
    with pytest.raises(ProviderUnavailable, match="malformed response body"):
        client_for(lambda _: httpx.Response(200, content=body)).complete(REQUEST, timeout_s=5)


def test_cached_above_prompt_is_malformed() -> None:
    body = completion(
        {
            "prompt_tokens": 10,
            "completion_tokens": 1,
            "prompt_tokens_details": {"cached_tokens": 11},
        }
    )
    with pytest.raises(ProviderUnavailable, match="input_tokens is negative"):
        client_for(lambda _: httpx.Response(200, json=body)).complete(REQUEST, timeout_s=5)


def test_timeout_and_connection_errors_are_retryable() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ProviderUnavailable, match=r"timed out after 2\.0 s"):
        client_for(timeout).complete(REQUEST, timeout_s=2)
    with pytest.raises(ProviderUnavailable, match="connection failed"):
        client_for(refused).complete(REQUEST, timeout_s=2)
