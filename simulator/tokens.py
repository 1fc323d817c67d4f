"""Deterministic token counts for the simulator.

The count is one token per word and one per punctuation mark, which lands close to
what BPE tokenizers report for English prose without needing a vocabulary.
"""

import re
from collections.abc import Iterable, Mapping

_TOKEN = re.compile(r"\w+|[^\w\s]")
# Per-message and per-reply overhead in tokens, as chat formats add role markers.
MESSAGE_OVERHEAD = 4
REPLY_PRIMING = 3


def count_text(text: str) -> int:
    return len(_TOKEN.findall(text))


def count_messages(messages: Iterable[Mapping[str, object]]) -> int:
    total = REPLY_PRIMING
    for message in messages:
        total += MESSAGE_OVERHEAD + count_text(content_text(message.get("content")))
    return total


def content_text(content: object) -> str:
    """Return the text of a message content given as a string or as a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def truncate(text: str, max_tokens: int) -> tuple[str, bool]:
    """Cut text after ``max_tokens`` tokens; return the text and whether it was cut."""
    matches = list(_TOKEN.finditer(text))
    if len(matches) <= max_tokens:
        return text, False
    return text[: matches[max_tokens - 1].end()], True


def chunks(text: str, tokens_per_chunk: int = 4) -> list[str]:
    """Split text into stream pieces of a few tokens each; joined, they give the text back."""
    ends = [match.end() for match in _TOKEN.finditer(text)][
        tokens_per_chunk - 1 :: tokens_per_chunk
    ]
    pieces, start = [], 0
    for end in ends:
        pieces.append(text[start:end])
        start = end
    if start < len(text):
        pieces.append(text[start:])
    return pieces
