"""Client overhead: latency the worker's provider client adds to a call, against a bare
httpx call to the same zero-latency simulator, one call at a time.

The worker's path is what a job runs per attempt outside the ledger: build the
ChatRequest, OpenAIChatClient.complete (request body, POST, status check, JSON and usage
parsing) and PriceBook.cost. The bare call is httpx.Client.post of the same body followed
by response.json(). The two alternate call by call, so drift on a shared machine affects
both alike.
"""

import time
from collections.abc import Callable
from typing import Any

import httpx

from agentfleet.settings import Settings
from benchmarks.chat import MODEL, triage_body, triage_messages, triage_request, triage_spec
from benchmarks.context import BenchContext
from benchmarks.fleet import simulator
from benchmarks.results import Row, ScenarioResult, Target
from benchmarks.stats import percentile
from ledger.prices import PriceBook
from ledger.types import utcnow
from workers.providers.openai_chat import OpenAIChatClient

SCENARIO = "client_overhead"
PROVIDER = "openai"
WARM_UP = 50
TIMEOUT_S = 60.0
P50_TARGET = Target("difference", "<", 1.0)
P99_TARGET = Target("difference", "<", 2.0)


def run(ctx: BenchContext) -> ScenarioResult:
    with ctx.ledger(SCENARIO) as ledger, simulator(ctx, SCENARIO, latency_ms=0) as port:
        with ledger.sessions() as session:
            prices = PriceBook.from_session(session)
        base_url = f"http://127.0.0.1:{port}/v1"
        with httpx.Client(timeout=TIMEOUT_S) as product_http, httpx.Client() as bare_http:
            product = _product_call(product_http, base_url, prices)
            bare = _bare_call(bare_http, base_url)
            product_ms, bare_ms = _alternate(product, bare, ctx.size.client_calls)
    result = ScenarioResult(SCENARIO, "Client overhead, one call at a time")
    figures = {"worker_client": _percentiles(product_ms), "bare_httpx": _percentiles(bare_ms)}
    result.details = {"calls": ctx.size.client_calls, "ms": figures}
    result.rows = [
        Row(f"client_overhead.{pct}", f"worker provider client, {pct}", "ms",
            figures["worker_client"][pct], f"bare httpx post, {pct}", figures["bare_httpx"][pct],
            target)
        for pct, target in (("p50", P50_TARGET), ("p99", P99_TARGET))
    ]  # fmt: skip
    return result


def _percentiles(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 50), "p99": percentile(values, 99)}


def _product_call(http: httpx.Client, base_url: str, prices: PriceBook) -> Callable[[], object]:
    spec = triage_spec(Settings())
    messages = triage_messages(spec)
    client = OpenAIChatClient(http, base_url, "simulator")

    def call() -> object:
        request = triage_request(spec, messages, job_id="bench-job")
        reply = client.complete(request, TIMEOUT_S)
        return prices.cost(PROVIDER, MODEL, reply.usage, utcnow())

    return call


def _bare_call(http: httpx.Client, base_url: str) -> Callable[[], object]:
    url = f"{base_url}/chat/completions"
    body: dict[str, Any] = triage_body(Settings())
    headers = {"Authorization": "Bearer simulator"}

    def call() -> object:
        response = http.post(url, json=body, headers=headers)
        response.raise_for_status()
        return response.json()

    return call


def _alternate(
    product: Callable[[], object], bare: Callable[[], object], calls: int
) -> tuple[list[float], list[float]]:
    """Time ``calls`` calls of each, alternating, and return both lists of latencies in ms."""
    for _ in range(WARM_UP):
        product()
        bare()
    product_ms: list[float] = []
    bare_ms: list[float] = []
    for _ in range(calls):
        product_ms.append(_time_ms(product))
        bare_ms.append(_time_ms(bare))
    return product_ms, bare_ms


def _time_ms(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000
