"""Simulated model replies and the tokens of each kind that each reply used."""

import json
import re
from dataclasses import dataclass
from typing import Any

from simulator.content import reply_text
from simulator.tokens import count_text, truncate

# Prompt caching as the providers document it: prefixes of 1,024 tokens or more, and on
# OpenAI in steps of 128 tokens above that.
CACHE_MIN_TOKENS = 1024
OPENAI_CACHE_STEP = 128
# Models that spend hidden reasoning tokens; the simulator spends twice the visible reply.
REASONING_MODEL = re.compile(r"^(o\d|gpt-5)")
REASONING_FACTOR = 2


@dataclass(frozen=True)
class SimUsage:
    """Tokens of one reply. The kinds are disjoint except reasoning, which is part of output."""

    input_tokens: int
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        return self.input_tokens + self.cached_tokens + self.cache_write_tokens


@dataclass(frozen=True)
class Reply:
    text: str
    usage: SimUsage
    truncated: bool
    json_value: Any = None


class PromptCache:
    """Prefixes the simulated provider has seen, per model, to report cached input tokens."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()

    def check_and_store(self, model: str, prefix: str) -> bool:
        """Return True if this model has seen the prefix before, and remember it either way."""
        key = (model, prefix)
        seen = key in self._seen
        self._seen.add(key)
        return seen


def build_reply(
    *,
    model: str,
    prompt_tokens: int,
    prefix: str,
    user_text: str,
    schema: dict[str, Any] | None,
    max_tokens: int | None,
    cache: PromptCache,
    explicit_cache: bool | None,
) -> Reply:
    """Write the reply and count its usage.

    ``explicit_cache`` is None for OpenAI's automatic caching of long prefixes, and for
    Anthropic whether the request marked its prefix with ``cache_control``.
    """
    text = reply_text(user_text, schema)
    truncated = False
    if max_tokens:
        text, truncated = truncate(text, max_tokens)
    json_value = json.loads(text) if schema is not None and not truncated else None

    visible = count_text(text)
    reasoning = visible * REASONING_FACTOR if REASONING_MODEL.match(model) else 0
    cached, written = _cache_split(model, prefix, cache, explicit_cache)
    usage = SimUsage(
        input_tokens=prompt_tokens - cached - written,
        cached_tokens=cached,
        cache_write_tokens=written,
        output_tokens=visible + reasoning,
        reasoning_tokens=reasoning,
    )
    return Reply(text, usage, truncated, json_value)


def _cache_split(
    model: str, prefix: str, cache: PromptCache, explicit: bool | None
) -> tuple[int, int]:
    """Return (cached, written) input tokens of the prefix."""
    prefix_tokens = count_text(prefix)
    if prefix_tokens < CACHE_MIN_TOKENS or explicit is False:
        return 0, 0
    seen = cache.check_and_store(model, prefix)
    if explicit is None:
        steps = (prefix_tokens - CACHE_MIN_TOKENS) // OPENAI_CACHE_STEP
        return (CACHE_MIN_TOKENS + steps * OPENAI_CACHE_STEP if seen else 0), 0
    return (prefix_tokens, 0) if seen else (0, prefix_tokens)
