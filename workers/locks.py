"""A Redis lock that lets one process at a time run a periodic task.

Two beat processes would send every periodic task twice; the copies find the lock
taken and skip, so the work runs once. Without Redis there is no lock, and each copy
runs: rollup and recovery are safe to run twice, only wasteful.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@contextmanager
def single_run(client: redis.Redis | None, name: str, ttl_s: int) -> Iterator[bool]:
    """Yield True if this process holds the lock ``name`` (or there is no Redis), else False.

    The lock expires after ``ttl_s`` in case its holder dies.
    """
    if client is None:
        yield True
        return
    key = f"agentfleet:lock:{name}"
    token = uuid.uuid4().hex
    acquired = bool(client.set(key, token, nx=True, ex=ttl_s))
    try:
        yield acquired
    finally:
        if acquired:
            client.eval(_RELEASE, 1, key, token)
