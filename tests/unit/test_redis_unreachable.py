"""The rate limiter and the response cache with Redis unreachable: calls go on."""

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from agentfleet.fleet import Target
from agentfleet.processes import free_port
from agentfleet.settings import RateLimit
from ledger.usage import TokenUsage
from workers.cache import RedisResponseCache
from workers.providers.base import ChatReply, ChatRequest
from workers.ratelimit import RedisRateLimiter

TARGET = Target("openai", "gpt-4o-mini")
REQUEST = ChatRequest("gpt-4o-mini", [{"role": "user", "content": "hi"}], 10, 0.0)


@pytest.fixture
def dead_redis() -> redis.Redis:
    # Nothing listens on a port just released by the OS; no retries, so each call fails
    # at once.
    return redis.Redis(port=free_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))


def test_limiter_admits_calls_while_redis_is_down(
    dead_redis: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    limiter = RedisRateLimiter(dead_redis, {str(TARGET): RateLimit(rpm=1)})
    assert [limiter.acquire(TARGET, 100) for _ in range(3)] == [0.0, 0.0, 0.0]
    limiter.pause(TARGET, 5)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("admitting a call to openai:gpt-4o-mini" in m for m in messages) == 3
    assert any("openai:gpt-4o-mini not paused fleet-wide" in m for m in messages)


def test_cache_misses_while_redis_is_down(
    dead_redis: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    cache = RedisResponseCache(dead_redis)
    reply = ChatReply("ok", TokenUsage(input_tokens=3, output_tokens=1), "stop")
    cache.put("acme", TARGET, REQUEST, reply, ttl_s=60)
    assert cache.get("acme", TARGET, REQUEST) is None
    messages = [r.getMessage() for r in caplog.records]
    assert any("reply not cached" in m for m in messages)
    assert any("calling the provider" in m for m in messages)
