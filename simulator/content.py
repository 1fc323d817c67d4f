"""Plausible replies: JSON that matches the requested schema, or a short summary."""

import hashlib
import json
import re
from typing import Any

_WORD = re.compile(r"[a-z]+")
_LEVELS = ("low", "medium", "high")
_HIGH_CUES = (
    "fraud",
    "identity theft",
    "stolen",
    "foreclos",
    "reposs",
    "garnish",
    "frozen",
    "lawsuit",
    "unlimited",
    "sole discretion",
    "indemnif",
    "exclusive",
    "irrevocable",
    "perpetual",
)
_LONG_TEXT_CHARS = 600
_HEADER = re.compile(r"^[A-Z][a-z]+:( .{0,120})?$")


def reply_text(user_text: str, json_schema: dict[str, Any] | None) -> str:
    """Return a reply to the user's text: a JSON document for a schema, else a summary."""
    if json_schema is not None:
        return json.dumps(instance_for(json_schema, user_text), separators=(", ", ": "))
    return summary(user_text)


def instance_for(schema: dict[str, Any], text: str) -> Any:
    """Build a value that matches a JSON schema, choosing enum values the text supports."""
    if "enum" in schema:
        return choose_option([str(option) for option in schema["enum"]], text)
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: instance_for(sub, text) for name, sub in properties.items()}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    return _sentence(text, int(schema.get("maxLength", 200)))


def choose_option(options: list[str], text: str) -> str:
    lowered = text.lower()
    if set(options) == set(_LEVELS):
        return _level(lowered)
    words = _WORD.findall(lowered)
    scores = {option: _score(option, words) for option in options}
    best = max(scores.values())
    if best > 0:
        return next(option for option in options if scores[option] == best)
    if "other" in options:
        return "other"
    digest = hashlib.sha256(text.encode()).digest()
    return options[digest[0] % len(options)]


def _score(option: str, words: list[str]) -> int:
    stems = [part[:5] for part in option.lower().split("_") if len(part) > 2]
    return sum(1 for word in words for stem in stems if word.startswith(stem))


def _level(lowered: str) -> str:
    if any(cue in lowered for cue in _HIGH_CUES):
        return "high"
    return "medium" if len(lowered) > _LONG_TEXT_CHARS else "low"


def summary(text: str) -> str:
    body = _body(text)
    sentences = re.split(r"(?<=[.!?])\s+", body)
    picked = " ".join(sentences[:2])
    words = picked.split()
    if len(words) > 60:
        picked = " ".join(words[:60]) + " ..."
    return f"The consumer reports: {picked}"


def _sentence(text: str, max_chars: int) -> str:
    first = re.split(r"(?<=[.!?])\s+", _body(text))[0]
    sentence = f"Based on the text: {first}"
    return sentence if len(sentence) <= max_chars else sentence[: max_chars - 3].rstrip() + "..."


def _body(text: str) -> str:
    """Drop 'Label: value' header lines that prompt templates put before the content."""
    lines = [line for line in text.splitlines() if not _HEADER.match(line)]
    return " ".join(" ".join(lines).split())
