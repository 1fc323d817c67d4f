"""Retry timing: exponential backoff with jitter, and the provider's Retry-After headers."""

import random
from datetime import datetime
from email.utils import parsedate_to_datetime

from httpx import Headers


def backoff_delay_s(
    attempt: int, base_s: float, cap_s: float, rng: random.Random | None = None
) -> float:
    """Return the wait before retry number ``attempt`` (1 for the first retry).

    Full jitter: a uniform draw between zero and ``base_s * 2**(attempt - 1)``, capped at ``cap_s``.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be 1 or more, got {attempt}")
    ceiling = min(cap_s, base_s * 2 ** (attempt - 1))
    return (rng or random).uniform(0, ceiling)


def retry_after_s(headers: Headers, now: datetime) -> float | None:
    """Return the wait a provider requests, or None when it requests none or an invalid one.

    ``retry-after-ms`` (milliseconds) wins over ``Retry-After``, which is either seconds or an
    HTTP date. Negative, unparsable and past values are ignored.
    """
    millis = _number(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    wait = (when - now).total_seconds()
    return wait if wait > 0 else None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number >= 0 and number == number and number != float("inf") else None
