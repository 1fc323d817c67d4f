"""Token usage of one provider call, split into disjoint token kinds."""

from dataclasses import dataclass, fields
from enum import StrEnum


class TokenKind(StrEnum):
    INPUT = "input"
    CACHED_INPUT = "cached_input"
    CACHE_WRITE = "cache_write"
    OUTPUT = "output"


@dataclass(frozen=True)
class TokenUsage:
    """Tokens of one call. The kinds do not overlap, except ``reasoning_tokens``,
    which counts the part of ``output_tokens`` that the model spent reasoning."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    def __post_init__(self) -> None:
        for field in fields(self):
            if getattr(self, field.name) < 0:
                raise ValueError(f"{field.name} is negative: {getattr(self, field.name)}")
        if self.reasoning_tokens > self.output_tokens:
            raise ValueError(
                f"reasoning_tokens {self.reasoning_tokens} exceeds "
                f"output_tokens {self.output_tokens}"
            )

    @property
    def prompt_tokens(self) -> int:
        """All input tokens, cached and cache-write included, as providers report them."""
        return self.input_tokens + self.cached_input_tokens + self.cache_write_tokens

    def by_kind(self) -> dict[TokenKind, int]:
        return {
            TokenKind.INPUT: self.input_tokens,
            TokenKind.CACHED_INPUT: self.cached_input_tokens,
            TokenKind.CACHE_WRITE: self.cache_write_tokens,
            TokenKind.OUTPUT: self.output_tokens,
        }
