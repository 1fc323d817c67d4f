"""Fleet-wide rate limits on the real Redis: many threads, one budget."""

import threading
import time
from collections.abc import Iterator

import pytest
import redis

from agentfleet.fleet import Target
from agentfleet.settings import RateLimit
from workers.ratelimit import WINDOW_MS, RedisRateLimiter

pytestmark = pytest.mark.integration

TARGET = Target("openai", "gpt-4o-mini")


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_url)
    yield connection
    connection.close()


def test_requests_per_minute_hold_across_threads(client: redis.Redis) -> None:
    limiter = RedisRateLimiter(client, {str(TARGET): RateLimit(rpm=25)})
    admitted: list[float] = []
    waits: list[float] = []

    def worker() -> None:
        for _ in range(10):
            wait_s = limiter.acquire(TARGET, tokens=10)
            if wait_s == 0:
                admitted.append(time.monotonic())
            else:
                waits.append(wait_s)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(admitted) == 25
    assert len(waits) == 55
    assert all(0 < wait <= WINDOW_MS / 1000 + 0.01 for wait in waits)


def test_tokens_per_minute_hold(client: redis.Redis) -> None:
    limiter = RedisRateLimiter(client, {str(TARGET): RateLimit(tpm=1000)})
    assert limiter.acquire(TARGET, tokens=600) == 0
    assert limiter.acquire(TARGET, tokens=400) == 0
    assert limiter.acquire(TARGET, tokens=1) > 0
    other = Target("openai", "gpt-4.1")
    assert limiter.acquire(other, tokens=5000) == 0


def test_pause_holds_every_worker(client: redis.Redis) -> None:
    first = RedisRateLimiter(client, {})
    second = RedisRateLimiter(client, {})
    assert second.acquire(TARGET, tokens=1) == 0
    first.pause(TARGET, 2.0)
    wait_s = second.acquire(TARGET, tokens=1)
    assert 1.5 < wait_s <= 2.0
    first.pause(TARGET, 0.5)
    assert second.acquire(TARGET, tokens=1) > 1.0
