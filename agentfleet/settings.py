"""Every setting of agentfleet in one typed place.

Values come from ``AGENTFLEET_*`` environment variables, then a ``.env`` file in the
working directory, then the defaults below. The defaults run the embedded fleet: a
SQLite ledger and a file-system broker under ``.agentfleet/``, and the bundled
provider simulator on 127.0.0.1:8088.
"""

import difflib
import os
from functools import cache
from ipaddress import ip_address
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SIMULATOR_API_KEY = "simulator"
ENV_PREFIX = "AGENTFLEET_"
# Variables with this prefix belong to the test suite, not to the settings.
TEST_PREFIX = "AGENTFLEET_TEST_"
FILESYSTEM_BROKER = "filesystem://"
BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp", "filesystem")


class ProviderSettings(BaseModel):
    """How to reach one LLM provider."""

    model_config = ConfigDict(extra="forbid")

    api: Literal["openai", "anthropic"] = Field(
        default="openai", description="openai (chat completions) or anthropic (Messages API)"
    )
    base_url: str = Field(
        description="API root: https://api.openai.com/v1 or https://api.anthropic.com"
    )
    api_key: SecretStr
    timeout_s: float = Field(default=60.0, gt=0, description="per-request timeout")
    stream: bool = Field(default=False, description="stream replies as server-sent events")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _anthropic_root(self) -> "ProviderSettings":
        if self.api == "anthropic" and self.base_url.endswith("/v1"):
            raise ValueError(
                f"base_url {self.base_url} ends in /v1, but the anthropic client adds "
                "/v1/messages itself; give the API root, e.g. https://api.anthropic.com"
            )
        return self

    @model_validator(mode="after")
    def _real_key_for_real_host(self) -> "ProviderSettings":
        if self.api_key.get_secret_value() == SIMULATOR_API_KEY and not _is_loopback(self.base_url):
            raise ValueError(
                f"api_key is the simulator placeholder but base_url {self.base_url} is not on "
                "this machine; set the provider's real API key"
            )
        return self


class RateLimit(BaseModel):
    """Fleet-wide limits of one provider model; 0 or unset means no limit."""

    model_config = ConfigDict(extra="forbid")

    rpm: int = Field(default=0, ge=0, description="requests per minute")
    tpm: int = Field(default=0, ge=0, description="tokens per minute, prompt and output")


class AgentOverride(BaseModel):
    """Operator overrides of one catalog agent, applied without editing the catalog."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    max_tokens: int | None = Field(default=None, gt=0)
    time_limit_s: float | None = Field(default=None, gt=0, le=3600)


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _default_providers() -> dict[str, ProviderSettings]:
    """Both APIs of the bundled simulator on its default port."""
    key = SecretStr(SIMULATOR_API_KEY)
    return {
        "openai": ProviderSettings(base_url="http://127.0.0.1:8088/v1", api_key=key),
        "anthropic": ProviderSettings(
            api="anthropic", base_url="http://127.0.0.1:8088", api_key=key
        ),
    }


def _default_aliases() -> dict[str, list[str]]:
    return {
        "fast": ["openai:gpt-4.1-nano"],
        "balanced": ["openai:gpt-4o-mini"],
        "smart": ["openai:gpt-4.1"],
        "claude": ["anthropic:claude-haiku-4-5"],
    }


def _configured_variables(env_file: object) -> list[tuple[str, str]]:
    """Return each variable name with its source: '' for the environment, ' in FILE'."""
    variables = [(name, "") for name in os.environ]
    if isinstance(env_file, str | Path) and Path(env_file).is_file():
        variables += [(name, f" in {env_file}") for name in dotenv_values(env_file)]
    return variables


class Settings(BaseSettings):
    """agentfleet settings; see the README's settings reference for each variable."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", env_nested_delimiter="__", extra="ignore"
    )

    broker_url: str = Field(
        default=FILESYSTEM_BROKER,
        description="Celery broker: redis://, amqp://, or filesystem:// (the embedded broker)",
    )
    broker_dir: Path = Field(
        default=Path(".agentfleet/broker"), description="message folder of the filesystem:// broker"
    )
    database_url: str = Field(
        default="sqlite:///.agentfleet/ledger.db",
        description="SQLAlchemy URL of the ledger, for example postgresql+psycopg://user@host/db",
    )
    agents_file: Path | None = Field(
        default=None, description="agent catalog YAML; the built-in catalog when unset"
    )
    price_catalog_file: Path | None = Field(
        default=None, description="provider price catalog TOML; the built-in catalog when unset"
    )
    providers: dict[str, ProviderSettings] = Field(default_factory=_default_providers)
    model_aliases: dict[str, list[str]] = Field(
        default_factory=_default_aliases,
        description="alias -> ordered 'provider:model' targets; later ones are fallbacks",
    )
    agent_overrides: dict[str, AgentOverride] = Field(default_factory=dict)
    max_attempts: int = Field(
        default=4, ge=1, le=20, description="attempts per provider target of a job"
    )
    max_deliveries: int = Field(
        default=3,
        ge=1,
        le=100,
        description="a job whose worker died this many times mid-job is failed, not run again",
    )
    max_recoveries: int = Field(
        default=2,
        ge=0,
        le=100,
        description="times a job stuck running past its deadline is sent again before failing",
    )
    recovery_interval_s: float = Field(
        default=60.0, gt=0, description="beat period of the task that recovers lost jobs"
    )
    recovery_grace_s: float = Field(
        default=60.0,
        ge=0,
        description="a job still running this long past its deadline is taken for lost",
    )
    resend_queued_after_s: float = Field(
        default=600.0,
        gt=0,
        description="a job queued this long while its agent's queue is empty is sent again",
    )
    ledger_retry_s: float = Field(
        default=600.0,
        gt=0,
        description="how long a worker retries recording a finished call while the ledger is down",
    )
    ledger_batch_max: int = Field(
        default=64,
        ge=1,
        le=1000,
        description="most ledger writes of a worker's concurrent jobs that share one "
        "transaction; 1 commits each write alone",
    )
    requeue_after_s: float = Field(
        default=10.0,
        gt=0,
        description="a retry or rate-limit wait longer than this re-enqueues the job",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis for rate limits and the response cache; the broker if it is Redis",
    )
    rate_limits: dict[str, RateLimit] = Field(
        default_factory=dict, description="'provider:model' -> requests and tokens per minute"
    )
    backoff_base_s: float = Field(default=0.5, gt=0, description="first retry delay before jitter")
    backoff_cap_s: float = Field(default=20.0, gt=0, description="maximum retry delay")
    worker_concurrency: int = Field(
        default=50,
        ge=1,
        description="pool threads or greenlets per worker process (celery -c overrides it)",
    )
    worker_task_events: bool = Field(
        default=False,
        description="send Celery task events from the start, not only once a monitor such as "
        "Flower turns them on",
    )
    http_max_connections: int = Field(
        default=100,
        ge=1,
        description="provider connections per worker process, at least one per thread",
    )
    db_pool_size: int = Field(
        default=20, ge=1, description="database connections per process, and as many overflow"
    )
    rollup_interval_s: float = Field(default=300.0, gt=0, description="beat period of the rollup")
    broker_visibility_timeout_s: int = Field(
        default=3600, ge=10, description="Redis redelivery timeout of unacknowledged jobs"
    )

    @field_validator("providers", mode="before")
    @classmethod
    def _keep_default_providers(cls, value: object) -> object:
        """Fill what the given providers leave out from the defaults of the same name, and
        keep the default providers that none replaces."""
        if not isinstance(value, dict):
            return value
        merged: dict[str, object] = {n: p.model_dump() for n, p in _default_providers().items()}
        for name, given in value.items():
            base = merged.get(name)
            merged[name] = (
                {**base, **given} if isinstance(base, dict) and isinstance(given, dict) else given
            )
        return merged

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_variables(cls, data: object) -> object:
        """Reject AGENTFLEET_ variables, in the environment or the .env file, that name no
        setting, so a typo is not ignored."""
        known = {name.upper() for name in cls.model_fields}
        for variable, source in _configured_variables(cls.model_config.get("env_file")):
            if not variable.startswith(ENV_PREFIX) or variable.startswith(TEST_PREFIX):
                continue
            name = variable[len(ENV_PREFIX) :].split("__")[0].upper()
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"; did you mean {ENV_PREFIX}{close[0]}?" if close else ""
                raise ValueError(f"unknown setting {variable}{source}{hint}")
        return data

    @field_validator("model_aliases", mode="before")
    @classmethod
    def _single_targets_as_lists(cls, value: object) -> object:
        """Accept one target as a string, and keep the default aliases none replaces."""
        if isinstance(value, dict):
            given = {alias: [t] if isinstance(t, str) else t for alias, t in value.items()}
            return {**_default_aliases(), **given}
        return value

    @model_validator(mode="after")
    def _aliases_name_providers(self) -> "Settings":
        for alias, targets in self.model_aliases.items():
            if not targets:
                raise ValueError(f"model_aliases[{alias!r}] is empty; give at least one target")
            for target in targets:
                self._check_target(alias, target)
        return self

    @model_validator(mode="after")
    def _rate_limits_need_redis(self) -> "Settings":
        for target in self.rate_limits:
            provider, sep, _ = target.partition(":")
            if not sep or provider not in self.providers:
                raise ValueError(
                    f"rate_limits key {target!r}: expected 'provider:model' "
                    "with a configured provider"
                )
        if self.rate_limits and self.shared_redis_url is None:
            raise ValueError(
                "rate_limits are enforced through Redis; set AGENTFLEET_REDIS_URL "
                "or use a redis:// broker"
            )
        return self

    def _check_target(self, alias: str, target: str) -> None:
        provider, sep, model = target.partition(":")
        if not sep or not model:
            raise ValueError(
                f"model_aliases[{alias!r}] target {target!r}; expected 'provider:model', "
                "for example 'openai:gpt-4o-mini'"
            )
        if provider not in self.providers:
            raise ValueError(
                f"model_aliases[{alias!r}] names provider {provider!r}; "
                f"configured providers: {', '.join(sorted(self.providers))}"
            )

    @field_validator("broker_url")
    @classmethod
    def _known_broker(cls, value: str) -> str:
        scheme = value.partition("://")[0]
        if "://" not in value or scheme not in BROKER_SCHEMES:
            raise ValueError(
                f"{value!r} is not a supported broker URL; use redis://host:6379/0, "
                "amqp://user:password@host:5672//, or filesystem:// for the embedded broker"
            )
        return value

    @property
    def shared_redis_url(self) -> str | None:
        """The Redis that stores fleet-wide state: redis_url, else a Redis broker."""
        if self.redis_url:
            return self.redis_url
        return self.broker_url if self.broker_url.startswith(("redis://", "rediss://")) else None

    @property
    def uses_filesystem_broker(self) -> bool:
        return self.broker_url.startswith(FILESYSTEM_BROKER)


@cache
def get_settings() -> Settings:
    """Return the process's settings, read once from the environment."""
    return Settings()
