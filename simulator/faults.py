"""Faults the simulator injects: drawn at configured rates, or read in order from a script.

A script is a JSON Lines file; each line is the response to the next request, e.g.::

    {"status": 429, "headers": {"retry-after": "2"}}
    {"status": 503}
    {"fault": "hang"}
    {"fault": "malformed"}
    {"fault": "cut", "after_events": 2}
    {"fault": "slow", "delay_ms": 1500}
    {"usage": {"prompt_tokens": 1200, "completion_tokens": 40, "cached_tokens": 1024}}

A line without ``status`` or ``fault`` gets a normal reply, with its ``usage`` if given.
When the script runs out, the configured rates apply again.
"""

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Literal

FaultKind = Literal["status", "hang", "malformed", "cut", "slow"]
RATE_KINDS = ("429", "500", "503", "529", "hang", "malformed", "cut", "slow")
RetryAfterStyle = Literal["seconds", "date", "ms", "none"]


class ScriptError(ValueError):
    """Raised when a fault script line is not a valid step."""


@dataclass(frozen=True)
class Step:
    """The response to one request."""

    fault: FaultKind | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    usage: dict[str, int] | None = None
    delay_ms: float = 0.0
    after_events: int = 1


NORMAL = Step()


@dataclass
class FaultPlan:
    rates: dict[str, float] = field(default_factory=dict)
    script: list[Step] = field(default_factory=list)
    retry_after_s: float = 1.0
    retry_after_style: RetryAfterStyle = "seconds"
    slow_ms: float = 5000.0
    rng: random.Random = field(default_factory=random.Random)

    def next_step(self) -> Step:
        if self.script:
            return self.script.pop(0)
        draw = self.rng.random()
        for kind in RATE_KINDS:
            draw -= self.rates.get(kind, 0.0)
            if draw < 0:
                return self._drawn(kind)
        return NORMAL

    def _drawn(self, kind: str) -> Step:
        if kind.isdigit():
            headers = (
                retry_after_headers(self.retry_after_s, self.retry_after_style)
                if kind == "429"
                else {}
            )
            return Step(fault="status", status=int(kind), headers=headers)
        if kind == "slow":
            return Step(fault="slow", delay_ms=self.slow_ms)
        fault: FaultKind = "malformed"
        if kind == "hang":
            fault = "hang"
        elif kind == "cut":
            fault = "cut"
        return Step(fault=fault)


def retry_after_headers(seconds: float, style: RetryAfterStyle) -> dict[str, str]:
    if style == "ms":
        return {"retry-after-ms": str(int(seconds * 1000))}
    if style == "date":
        # HTTP dates have whole seconds, so the date is rounded up to keep the full wait.
        when = datetime.now(UTC) + timedelta(seconds=seconds + 1)
        return {"retry-after": format_datetime(when.replace(microsecond=0), usegmt=True)}
    if style == "seconds":
        return {"retry-after": str(max(1, round(seconds)))}
    return {}


def parse_rates(pairs: list[str]) -> dict[str, float]:
    """Parse ``KIND=RATE`` pairs such as ``429=0.2``; rates are fractions of requests."""
    rates: dict[str, float] = {}
    for pair in pairs:
        kind, sep, value = pair.partition("=")
        if not sep or kind not in RATE_KINDS:
            raise ValueError(
                f"fault {pair!r}: expected KIND=RATE with KIND one of {', '.join(RATE_KINDS)}"
            )
        try:
            rate = float(value)
        except ValueError:
            raise ValueError(f"fault {pair!r}: rate {value!r} is not a number") from None
        if not 0 <= rate <= 1:
            raise ValueError(f"fault {pair!r}: rate must be between 0 and 1")
        rates[kind] = rate
    if sum(rates.values()) > 1:
        raise ValueError(f"fault rates add up to {sum(rates.values()):g}, more than 1")
    return rates


def load_script(path: Path) -> list[Step]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(f"{path}: cannot read it as UTF-8 text: {exc}") from None
    steps = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            steps.append(parse_step(line, f"{path} line {number}"))
    return steps


def parse_step(line: str, where: str) -> Step:
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ScriptError(f"{where}: invalid JSON: {exc.msg}") from None
    if not isinstance(raw, dict):
        raise ScriptError(f"{where}: expected a JSON object")
    named = raw.get("fault")
    if named not in (None, "hang", "malformed", "cut", "slow"):
        raise ScriptError(f"{where}: unknown fault {named!r}; use hang, malformed, cut or slow")
    status = _integer(raw, "status", 200, where)
    if not 200 <= status <= 599:
        raise ScriptError(f"{where}: status {status} is not an HTTP status from 200 to 599")
    fault: FaultKind | None = named
    if fault is None and status != 200:
        fault = "status"
    headers = raw.get("headers", {})
    if not isinstance(headers, dict):
        raise ScriptError(f"{where}: headers must be an object of names to values")
    return Step(
        fault=fault,
        status=status,
        headers={str(k).lower(): str(v) for k, v in headers.items()},
        body=raw.get("body"),
        usage=_usage(raw.get("usage"), where),
        delay_ms=float(_integer(raw, "delay_ms", 5000, where)),
        after_events=_integer(raw, "after_events", 1, where),
    )


USAGE_FIELDS = {
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
}


def _integer(raw: dict[str, Any], name: str, default: int, where: str) -> int:
    value = raw.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ScriptError(f"{where}: {name} must be a whole number of zero or more, got {value!r}")
    return value


def _usage(usage: Any, where: str) -> dict[str, int] | None:
    if usage is None:
        return None
    if not isinstance(usage, dict) or not usage:
        raise ScriptError(f"{where}: usage must be an object of token counts")
    for name, count in usage.items():
        if name not in USAGE_FIELDS:
            raise ScriptError(
                f"{where}: unknown usage field {name!r}; use {', '.join(sorted(USAGE_FIELDS))}"
            )
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ScriptError(f"{where}: usage {name} must be a whole number of zero or more")
    if "prompt_tokens" in usage and usage.get("cached_tokens", 0) > usage["prompt_tokens"]:
        raise ScriptError(f"{where}: cached_tokens is more than prompt_tokens")
    return usage
