"""Every setting of agentfleet in one typed place.

Values come from ``AGENTFLEET_*`` environment variables, then a ``.env`` file in the
working directory, then the defaults below. The defaults run the embedded fleet: a
SQLite ledger and a file-system broker under ``.agentfleet/``, and the bundled
provider simulator on 127.0.0.1:8088.
"""

from functools import cache
from ipaddress import ip_address
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SIMULATOR_API_KEY = "simulator"
FILESYSTEM_BROKER = "filesystem://"


class ProviderSettings(BaseModel):
    """How to reach one LLM provider."""

    model_config = ConfigDict(extra="forbid")

    api: Literal["openai"] = "openai"
    base_url: str = Field(description="API root, for example https://api.openai.com/v1")
    api_key: SecretStr
    timeout_s: float = Field(default=60.0, gt=0, description="per-request timeout")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _real_key_for_real_host(self) -> "ProviderSettings":
        if self.api_key.get_secret_value() == SIMULATOR_API_KEY and not _is_loopback(self.base_url):
            raise ValueError(
                f"api_key is the simulator placeholder but base_url {self.base_url} is not on "
                "this machine; set the provider's real API key"
            )
        return self


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
    return {
        "openai": ProviderSettings(
            base_url="http://127.0.0.1:8088/v1", api_key=SecretStr(SIMULATOR_API_KEY)
        )
    }


def _default_aliases() -> dict[str, str]:
    return {
        "fast": "openai:gpt-4.1-nano",
        "balanced": "openai:gpt-4o-mini",
        "smart": "openai:gpt-4.1",
    }


class Settings(BaseSettings):
    """agentfleet settings; see the README's settings reference for each variable."""

    model_config = SettingsConfigDict(
        env_prefix="AGENTFLEET_", env_file=".env", env_nested_delimiter="__", extra="ignore"
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
    model_aliases: dict[str, str] = Field(
        default_factory=_default_aliases, description="alias -> 'provider:model'"
    )
    agent_overrides: dict[str, AgentOverride] = Field(default_factory=dict)
    max_attempts: int = Field(default=4, ge=1, le=20, description="provider attempts per job")
    backoff_base_s: float = Field(default=0.5, gt=0, description="first retry delay before jitter")
    backoff_cap_s: float = Field(default=20.0, gt=0, description="maximum retry delay")
    worker_concurrency: int = Field(
        default=50, ge=1, description="pool threads per worker process (celery -c overrides it)"
    )
    http_max_connections: int = Field(
        default=100, ge=1, description="connections of the shared provider client per process"
    )
    db_pool_size: int = Field(
        default=20, ge=1, description="database connections per process, and as many overflow"
    )
    rollup_interval_s: float = Field(default=300.0, gt=0, description="beat period of the rollup")
    broker_visibility_timeout_s: int = Field(
        default=3600, ge=60, description="Redis redelivery timeout of unacknowledged jobs"
    )

    @model_validator(mode="after")
    def _aliases_name_providers(self) -> "Settings":
        for alias, target in self.model_aliases.items():
            provider, sep, model = target.partition(":")
            if not sep or not model:
                raise ValueError(
                    f"model_aliases[{alias!r}] = {target!r}; expected 'provider:model', "
                    "for example 'openai:gpt-4o-mini'"
                )
            if provider not in self.providers:
                raise ValueError(
                    f"model_aliases[{alias!r}] names provider {provider!r}; "
                    f"configured providers: {', '.join(sorted(self.providers))}"
                )
        return self

    @property
    def uses_filesystem_broker(self) -> bool:
        return self.broker_url.startswith(FILESYSTEM_BROKER)


@cache
def get_settings() -> Settings:
    """Return the process's settings, read once from the environment."""
    return Settings()
