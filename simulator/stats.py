"""Counts of the calls and tokens the simulator served, per model."""

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ModelStats:
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass
class ServedStats:
    """Every response the simulator sent; ``errors`` counts the ones without usage."""

    models: dict[str, ModelStats] = field(default_factory=dict)
    errors: int = 0

    def record(
        self, model: str, prompt: int, completion: int, cached: int = 0, reasoning: int = 0
    ) -> None:
        stats = self.models.setdefault(model, ModelStats())
        stats.calls += 1
        stats.prompt_tokens += prompt
        stats.completion_tokens += completion
        stats.cached_tokens += cached
        stats.reasoning_tokens += reasoning

    def as_dict(self) -> dict[str, Any]:
        models = {name: asdict(stats) for name, stats in sorted(self.models.items())}
        return {
            "calls": sum(stats.calls for stats in self.models.values()),
            "errors": self.errors,
            "models": models,
        }
