"""The simulator against the official openai and anthropic SDKs and their response types."""

import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import TypeAdapter

from agents import load_catalog, render_messages
from agents.output import response_format
from simulator.app import SimulatorConfig
from tests.support import simulator_stats, simulator_thread

COMPLAINT = {"narrative": "The collector calls my workplace every day about a debt I already paid."}
LONG_SYSTEM = "You review complaints. " + "Follow the house rules carefully. " * 260
STREAM_EVENT = TypeAdapter(RawMessageStreamEvent)


SDK_CLIENTS: list[openai.OpenAI | anthropic.Anthropic] = []


@pytest.fixture(autouse=True)
def _close_sdk_clients() -> Iterator[None]:
    yield
    while SDK_CLIENTS:
        SDK_CLIENTS.pop().close()


def openai_client(base: str) -> openai.OpenAI:
    client = openai.OpenAI(base_url=f"{base}/v1", api_key="sk-test", max_retries=0)
    SDK_CLIENTS.append(client)
    return client


def anthropic_client(base: str) -> anthropic.Anthropic:
    client = anthropic.Anthropic(base_url=base, api_key="sk-ant-test", max_retries=0)
    SDK_CLIENTS.append(client)
    return client


def test_openai_completion_validates() -> None:
    triage = load_catalog()["triage"]
    with simulator_thread() as base:
        raw = httpx.post(
            f"{base}/v1/chat/completions",
            headers={"Authorization": "Bearer k"},
            json={
                "model": "gpt-4o-mini",
                "messages": render_messages(triage, COMPLAINT),
                "response_format": response_format(triage),
            },
        ).json()
        sdk = openai_client(base).chat.completions.create(
            model="gpt-4o-mini", messages=render_messages(triage, COMPLAINT)
        )  # type: ignore[arg-type]
    completion = ChatCompletion.model_validate(raw)
    assert json.loads(completion.choices[0].message.content or "")["product"] == "debt_collection"
    assert sdk.usage is not None
    assert sdk.usage.total_tokens == sdk.usage.prompt_tokens + sdk.usage.completion_tokens


def test_openai_stream_matches_plain_reply() -> None:
    messages = [{"role": "user", "content": "Summarize: the bank charged a fee twice."}]
    with simulator_thread() as base:
        client = openai_client(base)
        plain = client.chat.completions.create(model="gpt-4.1-nano", messages=messages)  # type: ignore[arg-type]
        stream = client.chat.completions.create(
            model="gpt-4.1-nano",
            messages=messages,
            stream=True,  # type: ignore[arg-type]
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk.model_dump())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1
    assert usage_chunks[0].choices == []
    assert usage_chunks[0].usage == plain.usage


def test_openai_reasoning_and_cached_tokens() -> None:
    messages = [
        {"role": "system", "content": LONG_SYSTEM},
        {"role": "user", "content": "Triage this."},
    ]
    with simulator_thread() as base:
        client = openai_client(base)
        first = client.chat.completions.create(model="o4-mini", messages=messages)  # type: ignore[arg-type]
        second = client.chat.completions.create(model="o4-mini", messages=messages)  # type: ignore[arg-type]
    assert first.usage and second.usage
    assert first.usage.prompt_tokens_details and second.usage.prompt_tokens_details
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    cached = second.usage.prompt_tokens_details.cached_tokens or 0
    assert cached >= 1024
    assert (cached - 1024) % 128 == 0
    assert cached <= second.usage.prompt_tokens
    details = second.usage.completion_tokens_details
    assert details and details.reasoning_tokens
    visible = second.usage.completion_tokens - details.reasoning_tokens
    assert details.reasoning_tokens == 2 * visible


def test_anthropic_message_and_stream() -> None:
    system = [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}]
    messages = [{"role": "user", "content": "Summarize: my card was charged twice."}]
    with simulator_thread() as base:
        client = anthropic_client(base)
        first = client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=200,
            system=system,  # type: ignore[arg-type]
            messages=messages,
        )  # type: ignore[arg-type]
        second = client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=200,
            system=system,  # type: ignore[arg-type]
            messages=messages,
        )  # type: ignore[arg-type]
        raw = httpx.post(
            f"{base}/v1/messages",
            headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
            json={
                "model": "claude-haiku-4-5",
                "max_tokens": 200,
                "messages": messages,
                "stream": True,
            },
        )
    Message.model_validate(first.model_dump())
    assert (
        first.usage.cache_creation_input_tokens and first.usage.cache_creation_input_tokens > 1024
    )
    assert first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.input_tokens == first.usage.input_tokens
    payloads = [json.loads(line[6:]) for line in raw.text.splitlines() if line.startswith("data: ")]
    # Keep-alive pings are part of the stream but not of the SDK's event union.
    events = [STREAM_EVENT.validate_python(p) for p in payloads if p["type"] != "ping"]
    names = [event.type for event in events]
    assert names[0] == "message_start"
    assert names[-2:] == ["message_delta", "message_stop"]
    streamed = "".join(
        e.delta.text
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    assert streamed == first.content[0].text  # type: ignore[union-attr]


def test_anthropic_forced_tool_returns_json() -> None:
    review = load_catalog()["clause-review"]
    tool = {
        "name": "record_review",
        "description": "Record the review.",
        "input_schema": review.output.json_schema,
    }
    with simulator_thread() as base:
        message = anthropic_client(base).messages.create(
            model="claude-sonnet-4-5",
            max_tokens=300,
            tools=[tool],  # type: ignore[list-item]
            tool_choice={"type": "tool", "name": "record_review"},
            messages=[
                {"role": "user", "content": "This Agreement renews automatically each year."}
            ],
        )
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use"
    assert block.input["clause_type"] == "renewal_term"  # type: ignore[index]


def test_anthropic_errors_use_its_format() -> None:
    with simulator_thread(SimulatorConfig(fault_rates={"529": 1.0})) as base:
        with pytest.raises(anthropic.InternalServerError) as caught:
            anthropic_client(base).messages.create(
                model="claude-haiku-4-5",
                max_tokens=10,
                messages=[{"role": "user", "content": "hi"}],
            )
        missing_version = httpx.post(f"{base}/v1/messages", headers={"x-api-key": "k"}, json={})
    assert caught.value.status_code == 529
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "simulated HTTP 529"},
    }
    assert missing_version.status_code == 401
    assert missing_version.json()["error"]["message"] == "missing anthropic-version header"


@pytest.mark.parametrize(
    ("style", "header"),
    [("seconds", "retry-after"), ("date", "retry-after"), ("ms", "retry-after-ms")],
)
def test_rate_limit_headers(style: str, header: str) -> None:
    config = SimulatorConfig(fault_rates={"429": 1.0}, retry_after_s=2.0, retry_after_style=style)  # type: ignore[arg-type]
    with simulator_thread(config) as base:
        response = httpx.post(
            f"{base}/v1/chat/completions",
            headers={"Authorization": "Bearer k"},
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        )
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert header in response.headers
    if style == "seconds":
        assert response.headers["retry-after"] == "2"
    if style == "ms":
        assert response.headers["retry-after-ms"] == "2000"


def test_script_serves_steps_in_order(tmp_path: Path) -> None:
    script = tmp_path / "script.jsonl"
    script.write_text(
        "\n".join(
            [
                '{"status": 503}',
                '{"status": 429, "headers": {"retry-after": "7"}}',
                '{"fault": "malformed"}',
                '{"usage": {"prompt_tokens": 1500, "completion_tokens": 40, "cached_tokens": 1024, "reasoning_tokens": 12}}',
                '{"fault": "cut", "after_events": 2}',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    headers = {"Authorization": "Bearer k", "x-agentfleet-job": "job-1"}
    with simulator_thread(SimulatorConfig(script=script)) as base:
        url = f"{base}/v1/chat/completions"
        responses = [httpx.post(url, headers=headers, json=body) for _ in range(4)]
        cut = httpx.post(
            url,
            headers=headers,
            json={**body, "stream": True, "stream_options": {"include_usage": True}},
        )
        normal = httpx.post(url, headers=headers, json=body)
        stats = simulator_stats(base)
    assert [r.status_code for r in responses] == [503, 429, 200, 200]
    assert responses[1].headers["retry-after"] == "7"
    with pytest.raises(json.JSONDecodeError):
        responses[2].json()
    usage = responses[3].json()["usage"]
    assert (usage["prompt_tokens"], usage["prompt_tokens_details"]["cached_tokens"]) == (1500, 1024)
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 12
    assert "[DONE]" not in cut.text
    assert len([line for line in cut.text.splitlines() if line.startswith("data: ")]) == 2
    assert normal.status_code == 200
    assert stats["faults"] == {"503": 1, "429": 1, "malformed": 1, "cut": 1}
    assert stats["models"]["m"]["calls"] == 2
    assert stats["models"]["m"]["requests"] == 6
    assert stats["models"]["m"]["prompt_tokens"] == 1500 + normal.json()["usage"]["prompt_tokens"]
    # All four requests after the 429 came before its 7 seconds had passed.
    assert stats["early_calls"] == 4


def test_seed_repeats_fault_sequence() -> None:
    config = SimulatorConfig(seed=42, fault_rates={"429": 0.3, "500": 0.2})
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    runs = []
    for _ in range(2):
        with simulator_thread(config) as base:
            runs.append(
                [
                    httpx.post(
                        f"{base}/v1/chat/completions",
                        headers={"Authorization": "Bearer k"},
                        json=body,
                    ).status_code
                    for _ in range(30)
                ]
            )
    assert runs[0] == runs[1]
    assert {200, 429, 500} == set(runs[0])
