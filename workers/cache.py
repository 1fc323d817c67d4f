"""Response cache in Redis for agents whose replies depend only on their request.

The key is a hash of the tenant, the target, the messages and every parameter that
shapes the reply, so a hit returns what the same call of the same tenant returned
before, with its usage. Tenants never share entries.
"""

import hashlib
import json
import logging
from dataclasses import asdict
from typing import Protocol

import redis

from agentfleet.fleet import Target
from ledger.usage import TokenUsage
from workers.providers.base import ChatReply, ChatRequest

log = logging.getLogger(__name__)


class ResponseCache(Protocol):
    def get(self, tenant: str, target: Target, request: ChatRequest) -> ChatReply | None: ...

    def put(
        self, tenant: str, target: Target, request: ChatRequest, reply: ChatReply, ttl_s: int
    ) -> None: ...


class NoCache:
    """Stores nothing; for a fleet without Redis."""

    def get(self, tenant: str, target: Target, request: ChatRequest) -> ChatReply | None:
        return None

    def put(
        self, tenant: str, target: Target, request: ChatRequest, reply: ChatReply, ttl_s: int
    ) -> None:
        return None


class RedisResponseCache:
    def __init__(self, client: redis.Redis, prefix: str = "agentfleet:cache") -> None:
        self._client = client
        self._prefix = prefix

    def key(self, tenant: str, target: Target, request: ChatRequest) -> str:
        shape = {
            "tenant": tenant,
            "target": str(target),
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "json_schema": request.json_schema,
            "schema_name": request.schema_name,
        }
        digest = hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()
        return f"{self._prefix}:{digest}"

    def get(self, tenant: str, target: Target, request: ChatRequest) -> ChatReply | None:
        """The cached reply, or None; an unreachable Redis is a miss."""
        try:
            raw = self._client.get(self.key(tenant, target, request))
        except redis.RedisError as exc:
            log.warning("response cache unreachable (%s); calling the provider", exc)
            return None
        if raw is None:
            return None
        data = json.loads(raw)
        return ChatReply(data["content"], TokenUsage(**data["usage"]), data["finish_reason"])

    def put(
        self, tenant: str, target: Target, request: ChatRequest, reply: ChatReply, ttl_s: int
    ) -> None:
        value = {
            "content": reply.content,
            "usage": asdict(reply.usage),
            "finish_reason": reply.finish_reason,
        }
        try:
            self._client.set(self.key(tenant, target, request), json.dumps(value), ex=ttl_s)
        except redis.RedisError as exc:
            log.warning("response cache unreachable (%s); reply not cached", exc)
