"""Counts of the calls, tokens and faults the simulator served.

Tokens are counted as reported to the client: a stream cut before its usage event, a
malformed body and an error response report no usage, so they count no tokens.
"""

import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

from simulator.replies import SimUsage

WINDOW_S = 60.0
# Requests remembered by id for /stats/requests; later ones are only counted.
MAX_TRACKED_REQUESTS = 200_000


@dataclass
class ModelStats:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    requests: int = 0
    max_requests_per_minute: int = 0


@dataclass
class ServedStats:
    """Usage served per model, faults per kind, and calls made before a Retry-After passed."""

    models: dict[str, ModelStats] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    early_calls: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    # Request id (the X-Client-Request-Id header) -> model and the tokens reported for it.
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    untracked_requests: int = 0
    _arrivals: dict[str, deque[float]] = field(default_factory=dict)
    _not_before: dict[str, float] = field(default_factory=dict)

    def arrival(self, model: str, job_id: str | None, request_id: str | None = None) -> None:
        """Count a request, track the busiest minute, and flag a retry that came too early."""
        now = time.monotonic()
        if request_id is not None:
            if len(self.requests) < MAX_TRACKED_REQUESTS:
                self.requests[request_id] = {"model": model, "answered": False}
            else:
                self.untracked_requests += 1
        stats = self.models.setdefault(model, ModelStats())
        stats.requests += 1
        window = self._arrivals.setdefault(model, deque())
        window.append(now)
        while window[0] <= now - WINDOW_S:
            window.popleft()
        stats.max_requests_per_minute = max(stats.max_requests_per_minute, len(window))
        if job_id is not None and now < self._not_before.get(job_id, 0.0):
            self.early_calls += 1

    def started(self) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def finished(self) -> None:
        self.in_flight -= 1

    def asked_to_wait(self, job_id: str | None, seconds: float) -> None:
        if job_id is not None:
            self._not_before[job_id] = time.monotonic() + seconds

    def fault(self, kind: str) -> None:
        self.faults[kind] = self.faults.get(kind, 0) + 1

    def served(self, model: str, usage: SimUsage, request_id: str | None = None) -> None:
        record = self.requests.get(request_id) if request_id is not None else None
        if record is not None:
            record.update(
                answered=True,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.output_tokens,
            )
        stats = self.models.setdefault(model, ModelStats())
        stats.calls += 1
        stats.prompt_tokens += usage.prompt_tokens
        stats.completion_tokens += usage.output_tokens
        stats.input_tokens += usage.input_tokens
        stats.cached_tokens += usage.cached_tokens
        stats.cache_write_tokens += usage.cache_write_tokens
        stats.reasoning_tokens += usage.reasoning_tokens

    def reset(self) -> None:
        self.models.clear()
        self.faults.clear()
        self.early_calls = 0
        self.max_in_flight = self.in_flight
        self._arrivals.clear()
        self._not_before.clear()
        self.requests.clear()
        self.untracked_requests = 0

    def as_dict(self) -> dict[str, Any]:
        models = {name: asdict(stats) for name, stats in sorted(self.models.items())}
        return {
            "calls": sum(stats.calls for stats in self.models.values()),
            "faults": dict(sorted(self.faults.items())),
            "early_calls": self.early_calls,
            "max_in_flight": self.max_in_flight,
            "models": models,
        }
