import random
from datetime import UTC, datetime

import httpx
import pytest

from workers.retry import backoff_delay_s, retry_after_s

NOW = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)


class FixedRandom(random.Random):
    """Returns the top of every uniform range, so the cap and growth are visible."""

    def uniform(self, a: float, b: float) -> float:
        return b


def test_backoff_doubles_until_cap() -> None:
    rng = FixedRandom()
    delays = [backoff_delay_s(n, base_s=0.5, cap_s=5.0, rng=rng) for n in range(1, 7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_backoff_jitter_stays_in_range() -> None:
    rng = random.Random(7)
    delays = [backoff_delay_s(3, base_s=1.0, cap_s=60.0, rng=rng) for _ in range(200)]
    assert all(0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) > 150


def test_backoff_rejects_attempt_zero() -> None:
    with pytest.raises(ValueError, match="attempt must be 1 or more"):
        backoff_delay_s(0, 1.0, 10.0)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "Fri, 04 Dec 2026 12:00:30 GMT"}, 30.0),
        ({"retry-after": "Fri, 04 Dec 2026 11:59:00 GMT"}, None),
        ({"retry-after": "-3"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after-ms": "nan", "retry-after": "2"}, 2.0),
        ({}, None),
    ],
)
def test_retry_after_headers(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_s(httpx.Headers(headers), NOW) == expected
