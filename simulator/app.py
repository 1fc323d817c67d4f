"""A local LLM provider: OpenAI chat completions and Anthropic Messages, with faults on demand."""

import asyncio
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from simulator import anthropic_api, openai_api
from simulator.faults import FaultPlan, RetryAfterStyle, Step, load_script
from simulator.replies import PromptCache, Reply, SimUsage
from simulator.stats import ServedStats

# A request the simulator does not reply to is kept open at most this long, then dropped.
HANG_LIMIT_S = 600.0
JOB_HEADER = "x-agentfleet-job"
REQUEST_ID_HEADER = "x-client-request-id"


@dataclass(frozen=True)
class SimulatorConfig:
    """Latency of every reply (``latency_ms`` plus up to ``jitter_ms`` at random) and faults.

    ``fault_rates`` maps a fault kind (429, 500, 503, 529, hang, malformed, cut, slow) to
    the fraction of requests that get it; ``script`` lists exact responses to serve first.
    ``seed`` makes jitter and drawn faults repeatable.
    """

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    seed: int | None = None
    fault_rates: dict[str, float] = field(default_factory=dict)
    script: Path | None = None
    retry_after_s: float = 1.0
    retry_after_style: RetryAfterStyle = "seconds"
    slow_ms: float = 5000.0


@dataclass
class Simulator:
    config: SimulatorConfig
    stats: ServedStats = field(default_factory=ServedStats)
    cache: PromptCache = field(default_factory=PromptCache)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.config.seed)
        self.plan = FaultPlan(
            rates=dict(self.config.fault_rates),
            script=load_script(self.config.script) if self.config.script else [],
            retry_after_s=self.config.retry_after_s,
            retry_after_style=self.config.retry_after_style,
            slow_ms=self.config.slow_ms,
            rng=random.Random(self.rng.random()),
        )

    async def handle(self, request: Request, api: ModuleType) -> Response:
        problem = api.auth_problem(request.headers)
        if problem:
            self.stats.fault("unauthorized")
            return JSONResponse(api.error_body(401, problem), status_code=401)
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        problem = (
            api.request_problem(body) if body is not None else "request body is not valid JSON"
        )
        if problem:
            self.stats.fault("invalid_request")
            return JSONResponse(api.error_body(400, problem), status_code=400)

        job_id = request.headers.get(JOB_HEADER)
        request_id = request.headers.get(REQUEST_ID_HEADER)
        self.stats.arrival(body["model"], job_id, request_id)
        # NOTE: a streamed reply stops counting as in flight when its stream starts.
        self.stats.started()
        try:
            step = self.plan.next_step()
            await self._delay(step)
            if step.fault == "status":
                return self._error(api, step, job_id)
            if step.fault == "hang":
                return await self._hang(request)
            return self._reply(api, body, step, request_id)
        finally:
            self.stats.finished()

    async def _delay(self, step: Step) -> None:
        delay_ms = self.config.latency_ms + self.rng.uniform(0, self.config.jitter_ms)
        if step.fault == "slow":
            self.stats.fault("slow")
            delay_ms += step.delay_ms
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)

    def _error(self, api: ModuleType, step: Step, job_id: str | None) -> Response:
        self.stats.fault(str(step.status))
        wait_s = _retry_after_s(step.headers)
        if wait_s is not None:
            self.stats.asked_to_wait(job_id, wait_s)
        body = (
            step.body
            if step.body is not None
            else api.error_body(step.status, f"simulated HTTP {step.status}")
        )
        return JSONResponse(body, status_code=step.status, headers=step.headers)

    async def _hang(self, request: Request) -> Response:
        self.stats.fault("hang")
        waited = 0.0
        while waited < HANG_LIMIT_S and not await request.is_disconnected():
            await asyncio.sleep(0.25)
            waited += 0.25
        return Response(status_code=504)

    def _reply(
        self, api: ModuleType, body: dict[str, Any], step: Step, request_id: str | None
    ) -> Response:
        model = body["model"]
        reply = api.make_reply(body, self.cache)
        if step.usage is not None:
            reply = Reply(
                reply.text, usage_from_script(step.usage), reply.truncated, reply.json_value
            )
        if step.fault == "malformed":
            self.stats.fault("malformed")
            return Response(b'{"id": "truncated', media_type="application/json")
        if body.get("stream"):
            cut_after = step.after_events if step.fault == "cut" else None
            if cut_after is not None:
                self.stats.fault("cut")
            events = api.stream_events(
                body, reply, cut_after, lambda usage: self.stats.served(model, usage, request_id)
            )
            return StreamingResponse(events, media_type="text/event-stream")
        full = api.response_body(body, reply)
        if step.fault == "cut":
            self.stats.fault("cut")
            text = json.dumps(full)
            return Response(text[: len(text) // 2].encode(), media_type="application/json")
        self.stats.served(model, reply.usage, request_id)
        return JSONResponse(full)


def usage_from_script(raw: dict[str, int]) -> SimUsage:
    """Read usage given in either API's field names."""
    if "prompt_tokens" in raw:
        cached = raw.get("cached_tokens", 0)
        return SimUsage(
            raw["prompt_tokens"] - cached,
            cached,
            0,
            raw.get("completion_tokens", 0),
            raw.get("reasoning_tokens", 0),
        )
    return SimUsage(
        raw.get("input_tokens", 0),
        raw.get("cache_read_input_tokens", 0),
        raw.get("cache_creation_input_tokens", 0),
        raw.get("output_tokens", 0),
        0,
    )


def _retry_after_s(headers: dict[str, str]) -> float | None:
    if "retry-after-ms" in headers:
        return float(headers["retry-after-ms"]) / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()


def create_app(config: SimulatorConfig | None = None) -> Starlette:
    simulator = Simulator(config or SimulatorConfig())

    async def chat_completions(request: Request) -> Response:
        return await simulator.handle(request, openai_api)

    async def messages(request: Request) -> Response:
        return await simulator.handle(request, anthropic_api)

    async def get_stats(_: Request) -> JSONResponse:
        return JSONResponse(simulator.stats.as_dict())

    async def get_requests(_: Request) -> JSONResponse:
        """List each request by its X-Client-Request-Id, with its model, whether its reply
        reported usage, and the tokens reported."""
        stats = simulator.stats
        return JSONResponse(
            {"requests": stats.requests, "untracked_requests": stats.untracked_requests}
        )

    async def reset_stats(_: Request) -> JSONResponse:
        simulator.stats.reset()
        return JSONResponse(simulator.stats.as_dict())

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/stats", get_stats, methods=["GET"]),
            Route("/stats/requests", get_requests, methods=["GET"]),
            Route("/stats/reset", reset_stats, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )
