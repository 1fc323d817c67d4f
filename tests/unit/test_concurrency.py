"""One worker process keeps hundreds of provider calls in flight through its shared client."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from agentfleet.settings import ProviderSettings, Settings
from simulator.app import SimulatorConfig
from tests.support import simulator_stats, simulator_thread
from workers import runtime as runtime_module
from workers.providers.base import ChatRequest
from workers.runtime import WorkerRuntime

CALLS = 300
REQUEST = ChatRequest(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Summarize: a fee."}],
    max_tokens=20,
    temperature=0.0,
)


def test_pool_holds_every_thread_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime_module, "pool_threads", CALLS)
    with simulator_thread(SimulatorConfig(latency_ms=1000)) as base:
        providers = {"openai": ProviderSettings(base_url=f"{base}/v1", api_key="simulator")}  # type: ignore[arg-type]
        runtime = WorkerRuntime(Settings(providers=providers, http_max_connections=10))  # type: ignore[arg-type]
        client = runtime.provider_client("openai")
        try:
            with ThreadPoolExecutor(max_workers=CALLS) as pool:
                replies = list(
                    pool.map(lambda _: client.complete(REQUEST, timeout_s=30), range(CALLS))
                )
        finally:
            runtime.close()
        stats = simulator_stats(base)
    assert len(replies) == CALLS
    assert all(reply.usage.output_tokens > 0 for reply in replies)
    assert stats["models"]["gpt-4o-mini"]["calls"] == CALLS
    # The pool grew to the thread count, so the calls were in flight together.
    assert stats["max_in_flight"] >= CALLS * 0.9


def test_client_pool_spreads_threads_over_small_clients() -> None:
    from collections import Counter
    from threading import Barrier

    from workers.providers.pool import ClientPool

    pool = ClientPool(100)
    barrier = Barrier(100)

    def pick(_: int) -> int:
        first = pool.client()
        barrier.wait()
        assert pool.client() is first
        return id(first)

    try:
        with ThreadPoolExecutor(max_workers=100) as threads:
            per_client = Counter(threads.map(pick, range(100)))
    finally:
        pool.close()
    # 100 connections as four clients of 25: each client serves 25 threads.
    assert len(pool.clients) == 4
    assert sorted(per_client.values()) == [25, 25, 25, 25]
    assert all(c._transport._pool._max_connections == 25 for c in pool.clients)  # type: ignore[attr-defined]
