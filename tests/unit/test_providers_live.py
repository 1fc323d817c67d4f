"""Provider clients and the job runner over real HTTP against the simulator."""

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agentfleet.settings import ProviderSettings, Settings
from ledger.calls import attempts_of
from ledger.db import transaction
from ledger.jobs import NewJob, get_job, insert_jobs
from ledger.models import UsageRecord
from ledger.usage import TokenUsage
from simulator.app import SimulatorConfig
from tests.support import add_tenant, migrated_sessions, simulator_stats, simulator_thread
from workers.providers.anthropic_messages import AnthropicMessagesClient
from workers.providers.base import ChatRequest
from workers.providers.errors import ProviderUnavailable
from workers.providers.openai_chat import OpenAIChatClient
from workers.runner import JobRunner, RequeueJob
from workers.runtime import WorkerRuntime

NARRATIVE = "The collector calls my workplace every day about a debt I already paid."
REQUEST = ChatRequest(
    model="gpt-4o-mini",
    messages=[{"role": "system", "content": "Summarize."}, {"role": "user", "content": NARRATIVE}],
    max_tokens=100,
    temperature=0.0,
)


def script(tmp_path: Path, *steps: dict[str, object]) -> Path:
    path = tmp_path / "script.jsonl"
    path.write_text("".join(json.dumps(step) + "\n" for step in steps), encoding="utf-8")
    return path


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_stream_and_plain_usage_agree(api: str, http: httpx.Client) -> None:
    with simulator_thread() as base:
        client = (
            OpenAIChatClient(http, f"{base}/v1", "k")
            if api == "openai"
            else AnthropicMessagesClient(http, base, "k")
        )
        plain = client.complete(REQUEST, timeout_s=10)
        streamed = client.complete(
            ChatRequest(**{**REQUEST.__dict__, "stream": True}), timeout_s=10
        )
    assert streamed.content == plain.content
    assert streamed.usage == plain.usage
    assert plain.usage.output_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_simulator_logs_each_request_by_its_id(api: str, stream: bool, http: httpx.Client) -> None:
    with simulator_thread() as base:
        client = (
            OpenAIChatClient(http, f"{base}/v1", "k")
            if api == "openai"
            else AnthropicMessagesClient(http, base, "k")
        )
        request = ChatRequest(**{**REQUEST.__dict__, "stream": stream, "request_id": "attempt-1"})
        reply = client.complete(request, timeout_s=10)
        logged = httpx.get(f"{base}/stats/requests", timeout=5).json()
    assert logged["requests"] == {
        "attempt-1": {
            "model": "gpt-4o-mini",
            "answered": True,
            "prompt_tokens": reply.usage.prompt_tokens,
            "completion_tokens": reply.usage.output_tokens,
        }
    }


def test_anthropic_usage_kinds(http: httpx.Client, tmp_path: Path) -> None:
    steps = script(
        tmp_path,
        {
            "usage": {
                "input_tokens": 40,
                "cache_read_input_tokens": 2048,
                "cache_creation_input_tokens": 512,
                "output_tokens": 90,
            }
        },
    )
    with simulator_thread(SimulatorConfig(script=steps)) as base:
        reply = AnthropicMessagesClient(http, base, "k").complete(REQUEST, timeout_s=10)
    # Anthropic's input_tokens already excludes cache reads and writes.
    assert reply.usage == TokenUsage(
        input_tokens=40, cached_input_tokens=2048, cache_write_tokens=512, output_tokens=90
    )


def test_cut_anthropic_stream_keeps_partial_usage(http: httpx.Client, tmp_path: Path) -> None:
    steps = script(tmp_path, {"fault": "cut", "after_events": 3})
    with simulator_thread(SimulatorConfig(script=steps)) as base:
        client = AnthropicMessagesClient(http, base, "k")
        with pytest.raises(ProviderUnavailable, match="stream ended before message_stop") as caught:
            client.complete(ChatRequest(**{**REQUEST.__dict__, "stream": True}), timeout_s=10)
        served = simulator_stats(base)["models"]["gpt-4o-mini"]
    usage = caught.value.usage
    assert usage is not None
    # message_start reported the prompt and one output token before the stream broke off.
    assert (usage.prompt_tokens, usage.output_tokens) == (served["prompt_tokens"], 1)
    assert served["completion_tokens"] == 1


def test_cut_openai_stream_has_no_usage(http: httpx.Client, tmp_path: Path) -> None:
    steps = script(tmp_path, {"fault": "cut", "after_events": 2})
    with (
        simulator_thread(SimulatorConfig(script=steps)) as base,
        pytest.raises(ProviderUnavailable, match="stream ended without its usage chunk") as caught,
    ):
        OpenAIChatClient(http, f"{base}/v1", "k").complete(
            ChatRequest(**{**REQUEST.__dict__, "stream": True}), timeout_s=10
        )
    assert caught.value.usage is None


def test_hang_times_out(http: httpx.Client, tmp_path: Path) -> None:
    steps = script(tmp_path, {"fault": "hang"})
    with (
        simulator_thread(SimulatorConfig(script=steps)) as base,
        pytest.raises(ProviderUnavailable, match=r"timed out after 0\.5 s"),
    ):
        OpenAIChatClient(http, f"{base}/v1", "k").complete(REQUEST, timeout_s=0.5)


@pytest.fixture
def ledger(sqlite_url: str) -> sessionmaker[Session]:
    sessions = migrated_sessions(sqlite_url)
    add_tenant(sessions, "acme")
    return sessions


def runtime_for(
    base: str, sqlite_url: str, ledger: sessionmaker[Session], **settings: object
) -> WorkerRuntime:
    providers = {
        "openai": ProviderSettings(base_url=f"{base}/v1", api_key="simulator"),  # type: ignore[arg-type]
        "anthropic": ProviderSettings(
            api="anthropic",
            base_url=base,
            api_key="simulator",  # type: ignore[arg-type]
            stream=True,
        ),
    }
    runtime = WorkerRuntime(
        Settings(
            database_url=sqlite_url,
            providers=providers,
            backoff_base_s=0.01,
            backoff_cap_s=0.02,
            **settings,
        )
    )  # type: ignore[arg-type]
    runtime.__dict__["sessions"] = ledger
    return runtime


def submit(ledger: sessionmaker[Session], agent: str, job_input: dict[str, str]) -> str:
    with transaction(ledger) as session:
        return insert_jobs(session, [NewJob("acme", agent, job_input)])[0].job.id


def test_fallback_to_next_target(
    tmp_path: Path, sqlite_url: str, ledger: sessionmaker[Session]
) -> None:
    steps = script(tmp_path, {"status": 503}, {"status": 529})
    aliases = {"balanced": ["openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"]}
    with simulator_thread(SimulatorConfig(script=steps)) as base:
        runtime = runtime_for(base, sqlite_url, ledger, model_aliases=aliases, max_attempts=2)
        job_id = submit(ledger, "triage", {"narrative": NARRATIVE})
        assert JobRunner(runtime).run(job_id, "triage") == "succeeded"
        stats = simulator_stats(base)
        runtime.close()
    with ledger() as session:
        attempts = [(a.provider, a.model, a.status) for a in attempts_of(session, job_id)]
        job = get_job(session, job_id)
        record = session.scalars(select(UsageRecord)).one()
    assert attempts == [
        ("openai", "gpt-4o-mini", "failed"),
        ("openai", "gpt-4o-mini", "failed"),
        ("anthropic", "claude-haiku-4-5", "succeeded"),
    ]
    # The streamed Anthropic reply came from a forced tool call, as JSON.
    assert job.result["issue_category"] == "collection_practices"
    served = stats["models"]["claude-haiku-4-5"]
    assert (
        record.provider,
        record.input_tokens + record.cached_input_tokens + record.cache_write_tokens,
        record.output_tokens,
    ) == ("anthropic", served["prompt_tokens"], served["completion_tokens"])
    # claude-haiku-4-5 list prices: 1.00 per million input tokens, 5.00 per million output tokens
    assert (
        record.cost
        == (Decimal(record.input_tokens) * 1 + Decimal(record.output_tokens) * 5) / 1_000_000
    )


def test_partial_usage_is_cost_not_billed(
    tmp_path: Path, sqlite_url: str, ledger: sessionmaker[Session]
) -> None:
    steps = script(tmp_path, {"fault": "cut", "after_events": 4})
    with simulator_thread(SimulatorConfig(script=steps)) as base:
        runtime = runtime_for(
            base, sqlite_url, ledger, model_aliases={"fast": ["anthropic:claude-haiku-4-5"]}
        )
        job_id = submit(ledger, "summarize", {"narrative": NARRATIVE})
        assert JobRunner(runtime).run(job_id, "summarize") == "succeeded"
        stats = simulator_stats(base)
        runtime.close()
    with ledger() as session:
        records = session.scalars(select(UsageRecord).order_by(UsageRecord.id)).all()
    assert [(r.partial, r.billable) for r in records] == [(True, False), (False, True)]
    served = stats["models"]["claude-haiku-4-5"]
    assert sum(r.output_tokens for r in records) == served["completion_tokens"]
    assert (
        sum(r.input_tokens + r.cache_write_tokens + r.cached_input_tokens for r in records)
        == served["prompt_tokens"]
    )


def test_long_wait_requeues_job(
    tmp_path: Path, sqlite_url: str, ledger: sessionmaker[Session]
) -> None:
    steps = script(tmp_path, {"status": 429, "headers": {"retry-after": "30"}})
    with simulator_thread(SimulatorConfig(script=steps)) as base:
        runtime = runtime_for(base, sqlite_url, ledger, requeue_after_s=5)
        job_id = submit(ledger, "triage", {"narrative": NARRATIVE})
        with pytest.raises(RequeueJob) as caught:
            JobRunner(runtime).run(job_id, "triage")
        assert caught.value.countdown_s == 30
        # The next delivery resumes with the attempts already made.
        assert JobRunner(runtime).run(job_id, "triage") == "succeeded"
        runtime.close()
    with ledger() as session:
        assert [a.number for a in attempts_of(session, job_id)] == [1, 2]
        job = get_job(session, job_id)
    assert job.status == "succeeded"
    # Waiting in the queue is not a lost delivery.
    assert job.deliveries == 1


@pytest.mark.parametrize(
    ("headers", "expected_s"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after-ms": "3500"}, 3.5),
        ({"retry-after": "Fri, 04 Dec 2026 12:00:05 GMT"}, 5.0),
        ({"retry-after": "soon"}, None),
    ],
)
def test_retry_waits_with_frozen_clock(
    headers: dict[str, str],
    expected_s: float | None,
    tmp_path: Path,
    sqlite_url: str,
    ledger: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import UTC, datetime

    monkeypatch.setattr(
        "workers.providers.base.utcnow", lambda: datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)
    )
    sleeps: list[float] = []
    steps = script(tmp_path, {"status": 429, "headers": headers})
    with simulator_thread(SimulatorConfig(script=steps)) as base:
        runtime = runtime_for(base, sqlite_url, ledger)
        job_id = submit(ledger, "triage", {"narrative": NARRATIVE})
        assert JobRunner(runtime, sleep=sleeps.append).run(job_id, "triage") == "succeeded"
        runtime.close()
    if expected_s is None:
        # Without a usable Retry-After the wait is the first backoff, at most the 0.01 s base.
        assert 0 <= sleeps[0] <= 0.01
    else:
        assert sleeps[0] == expected_s
    # A kept-alive connection the server closed meanwhile costs at most a backoff-sized retry.
    assert all(wait <= 0.02 for wait in sleeps[1:])
