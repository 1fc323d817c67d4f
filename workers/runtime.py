"""Per-process resources of a worker: settings, agents, database, prices and HTTP clients.

They are built once per worker process on first use and shared by all pool threads.
"""

import logging
import threading
from dataclasses import dataclass
from functools import cached_property

import redis
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from agentfleet.fleet import Target, load_agents, resolve_alias
from agentfleet.settings import Settings, get_settings
from agents import AgentCatalog
from ledger.db import make_engine, session_factory
from ledger.prices import PriceBook
from workers.cache import NoCache, RedisResponseCache, ResponseCache
from workers.commit_group import CommitGroup
from workers.crashpoint import CrashPoint
from workers.providers.anthropic_messages import AnthropicMessagesClient
from workers.providers.base import ProviderClient
from workers.providers.openai_chat import OpenAIChatClient
from workers.providers.pool import ClientPool
from workers.ratelimit import Limiter, NoLimits, RedisRateLimiter

log = logging.getLogger(__name__)


@dataclass
class WorkerRuntime:
    settings: Settings

    @cached_property
    def crash_point(self) -> CrashPoint:
        return CrashPoint.from_environ()

    @cached_property
    def agents(self) -> AgentCatalog:
        return load_agents(self.settings)

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings.database_url, pool_size=self.settings.db_pool_size)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return session_factory(self.engine)

    @cached_property
    def commit_group(self) -> CommitGroup | None:
        """Shared ledger transactions for the pool threads' writes; None when the process
        runs one job at a time or batching is turned off."""
        threads = pool_threads or self.settings.worker_concurrency
        if self.settings.ledger_batch_max <= 1 or threads <= 1:
            return None
        return CommitGroup(self.sessions, self.settings.ledger_batch_max)

    @cached_property
    def prices(self) -> PriceBook:
        with self.sessions() as session:
            return PriceBook.from_session(session)

    @cached_property
    def http(self) -> ClientPool:
        """HTTP clients of the process, so calls to a provider reuse their connections.

        They have a connection for every pool thread, so no call waits for one.
        """
        size = max(
            self.settings.http_max_connections, pool_threads or self.settings.worker_concurrency
        )
        return ClientPool(size)

    @cached_property
    def redis(self) -> redis.Redis | None:
        url = self.settings.shared_redis_url
        return redis.Redis.from_url(url) if url else None

    @cached_property
    def limiter(self) -> Limiter:
        """Fleet-wide limits through Redis; without Redis, 429 pauses are not shared."""
        if self.redis is None:
            return NoLimits()
        return RedisRateLimiter(self.redis, self.settings.rate_limits)

    @cached_property
    def cache(self) -> ResponseCache:
        return NoCache() if self.redis is None else RedisResponseCache(self.redis)

    def provider_client(self, provider: str) -> ProviderClient:
        config = self.settings.providers[provider]
        key = config.api_key.get_secret_value()
        if config.api == "anthropic":
            return AnthropicMessagesClient(self.http, config.base_url, key)
        return OpenAIChatClient(self.http, config.base_url, key)

    def targets(self, alias: str) -> list[Target]:
        return resolve_alias(self.settings, alias)

    def close(self) -> None:
        group = self.__dict__.get("commit_group")
        if group is not None:
            group.close()
        if "http" in self.__dict__:
            self.http.close()
        if "engine" in self.__dict__:
            self.engine.dispose()
        client = self.__dict__.get("redis")
        if client is not None:
            client.close()


_runtime: WorkerRuntime | None = None
# The worker's pool size as started (celery -c), which can differ from the settings.
pool_threads: int | None = None
_lock = threading.Lock()


def get_runtime() -> WorkerRuntime:
    global _runtime
    with _lock:
        if _runtime is None:
            runtime = WorkerRuntime(get_settings())
            # Build every shared resource now, under the lock, so pool threads never race
            # to create two of them.
            _ = (
                runtime.agents,
                runtime.sessions,
                runtime.commit_group,
                runtime.prices,
                runtime.http,
                runtime.limiter,
                runtime.cache,
                runtime.crash_point,
            )
            _runtime = runtime
        return _runtime


def reset_runtime() -> None:
    """Drop the process's resources, for a forked child or a test with new settings."""
    global _runtime
    with _lock:
        if _runtime is not None:
            _runtime.close()
        _runtime = None
