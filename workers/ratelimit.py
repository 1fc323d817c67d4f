"""Fleet-wide request and token limits per provider model, kept in Redis.

Every worker checks with Redis right before each call. A sliding one-minute log of admitted calls
(and of the tokens they reserved) decides, in one Lua script, whether the call may go
now or how long it must wait, so however many workers run, no 60-second window holds
more calls or tokens than the limits allow. A 429 with Retry-After pauses the target
for every worker until that time.
"""

import logging
import uuid
from typing import Protocol

import redis

from agentfleet.fleet import Target
from agentfleet.settings import RateLimit

log = logging.getLogger(__name__)

# The log spans a second more than a minute: a call reaches the provider a little after
# it was admitted, and that delay must not let the provider count more than the limit in
# one of its own minutes.
WINDOW_MS = 61_000

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local paused = redis.call('PTTL', KEYS[4])
if paused > 0 then return paused end
local window = tonumber(ARGV[1])
local rpm = tonumber(ARGV[2])
local tpm = tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])
local cutoff = now - window
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff)
local freed = 0
for _, member in ipairs(expired) do
  freed = freed + tonumber(string.match(member, ':(%d+)$'))
end
if freed > 0 then redis.call('DECRBY', KEYS[3], freed) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', cutoff)
if rpm > 0 and redis.call('ZCARD', KEYS[1]) >= rpm then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now + 1)
end
if tpm > 0 then
  local used = tonumber(redis.call('GET', KEYS[3]) or '0')
  if used > 0 and used + tokens > tpm then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    return math.max(1, tonumber(oldest[2]) + window - now + 1)
  end
  redis.call('ZADD', KEYS[2], now, ARGV[5] .. ':' .. tokens)
  redis.call('INCRBY', KEYS[3], tokens)
end
redis.call('ZADD', KEYS[1], now, ARGV[5])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], window) end
return 0
"""

_PAUSE = """
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
end
return 0
"""


class Limiter(Protocol):
    def acquire(self, target: Target, tokens: int) -> float:
        """Admit one call of about ``tokens`` tokens; return 0, or the seconds to wait first."""
        ...

    def pause(self, target: Target, seconds: float) -> None:
        """Hold every call to the target for ``seconds``."""
        ...


class NoLimits:
    """Admits every call; for a fleet without configured limits."""

    def acquire(self, target: Target, tokens: int) -> float:
        return 0.0

    def pause(self, target: Target, seconds: float) -> None:
        return None


class RedisRateLimiter:
    def __init__(
        self, client: redis.Redis, limits: dict[str, RateLimit], prefix: str = "agentfleet:rl"
    ) -> None:
        self._client = client
        self._limits = limits
        self._prefix = prefix
        self._acquire = client.register_script(_ACQUIRE)
        self._pause = client.register_script(_PAUSE)

    def _keys(self, target: Target) -> list[str]:
        # One hash tag per target keeps its keys in one Redis Cluster slot.
        base = f"{self._prefix}:{{{target}}}"
        return [f"{base}:requests", f"{base}:tokens", f"{base}:token_sum", f"{base}:paused"]

    def acquire(self, target: Target, tokens: int) -> float:
        """Admit a call now (0) or return the seconds to wait.

        While Redis is unreachable calls are admitted: the provider's own 429 replies,
        retried with backoff, still hold the fleet back, and jobs keep moving.
        """
        limit = self._limits.get(str(target)) or RateLimit()
        try:
            wait_ms = self._acquire(
                keys=self._keys(target),
                args=[WINDOW_MS, limit.rpm, limit.tpm, tokens, uuid.uuid4().hex],
            )
        except redis.RedisError as exc:
            log.warning("rate limiter unreachable (%s); admitting a call to %s", exc, target)
            return 0.0
        return int(wait_ms) / 1000

    def pause(self, target: Target, seconds: float) -> None:
        try:
            self._pause(keys=[self._keys(target)[3]], args=[int(seconds * 1000)])
        except redis.RedisError as exc:
            log.warning("rate limiter unreachable (%s); %s not paused fleet-wide", exc, target)
