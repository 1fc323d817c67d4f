import pytest
from pydantic import ValidationError

from agentfleet.fleet import broker_config, load_agents, resolve_alias
from agentfleet.settings import Settings
from agents import CatalogError


def test_defaults_run_embedded() -> None:
    settings = Settings()
    assert settings.database_url == "sqlite:///.agentfleet/ledger.db"
    assert settings.uses_filesystem_broker
    assert [t.model for t in resolve_alias(settings, "balanced")] == ["gpt-4o-mini"]


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTFLEET_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("AGENTFLEET_PROVIDERS__OPENAI__BASE_URL", "https://api.openai.com/v1")
    monkeypatch.setenv("AGENTFLEET_PROVIDERS__OPENAI__API_KEY", "sk-live-123")
    settings = Settings()
    assert settings.providers["openai"].base_url == "https://api.openai.com/v1"
    assert settings.providers["openai"].api_key.get_secret_value() == "sk-live-123"
    assert "sk-live-123" not in repr(settings)
    config = broker_config(settings)
    assert config["broker_url"] == "redis://127.0.0.1:6379/0"
    assert config["broker_transport_options"]["visibility_timeout"] == 3600


def test_placeholder_key_rejected_for_remote_host() -> None:
    with pytest.raises(ValidationError, match="api_key is the simulator placeholder"):
        Settings(
            providers={"openai": {"base_url": "https://api.openai.com/v1", "api_key": "simulator"}}
        )


def test_alias_must_name_configured_provider() -> None:
    with pytest.raises(
        ValidationError, match="names provider 'mistral'; configured providers: anthropic, openai"
    ):
        Settings(model_aliases={"fast": "mistral:small"})
    with pytest.raises(ValidationError, match="expected 'provider:model'"):
        Settings(model_aliases={"fast": "gpt-4o"})
    with pytest.raises(ValidationError, match=r"model_aliases\['fast'\] is empty"):
        Settings(model_aliases={"fast": []})


def test_alias_lists_fallback_targets() -> None:
    settings = Settings(
        model_aliases={"fast": ["openai:gpt-4.1-nano", "anthropic:claude-haiku-4-5"]}
    )
    assert [str(t) for t in resolve_alias(settings, "fast")] == [
        "openai:gpt-4.1-nano",
        "anthropic:claude-haiku-4-5",
    ]


def test_one_provider_field_keeps_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTFLEET_PROVIDERS__OPENAI__BASE_URL", "http://127.0.0.1:9000/v1")
    monkeypatch.setenv("AGENTFLEET_PROVIDERS__OPENAI__API_KEY", "simulator")
    settings = Settings()
    assert settings.providers["openai"].base_url == "http://127.0.0.1:9000/v1"
    assert settings.providers["anthropic"].api == "anthropic"


def test_rate_limits_need_redis() -> None:
    with pytest.raises(ValidationError, match="rate_limits are enforced through Redis"):
        Settings(rate_limits={"openai:gpt-4o-mini": {"rpm": 100}})
    settings = Settings(
        broker_url="redis://127.0.0.1:6379/0", rate_limits={"openai:gpt-4o-mini": {"rpm": 100}}
    )
    assert settings.shared_redis_url == "redis://127.0.0.1:6379/0"
    assert settings.rate_limits["openai:gpt-4o-mini"].rpm == 100


def test_agent_overrides_apply() -> None:
    settings = Settings(agent_overrides={"triage": {"max_tokens": 42, "model": "smart"}})
    triage = load_agents(settings)["triage"]
    assert triage.max_tokens == 42
    assert [str(t) for t in resolve_alias(settings, triage.model)] == ["openai:gpt-4.1"]


def test_override_of_unknown_agent_rejected() -> None:
    with pytest.raises(CatalogError, match="agent_overrides names agent 'triag'"):
        load_agents(Settings(agent_overrides={"triag": {"max_tokens": 42}}))


def test_agent_with_unknown_alias_rejected() -> None:
    with pytest.raises(CatalogError, match="agent 'triage': unknown model alias 'huge'"):
        load_agents(Settings(agent_overrides={"triage": {"model": "huge"}}))


def test_setting_errors_name_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from agentfleet.errors import describe

    monkeypatch.setenv("AGENTFLEET_RATE_LIMITS", '{"openai:gpt-4o-mini": {"rpm": 5}')
    with pytest.raises(Exception) as broken:
        Settings()
    assert describe(broken.value, None) == (
        "invalid settings: AGENTFLEET_RATE_LIMITS is not valid JSON: Expecting ',' delimiter "
        "at line 1 column 34"
    )
    monkeypatch.setenv("AGENTFLEET_RATE_LIMITS", '{"openai:gpt-4o-mini": 5}')
    with pytest.raises(ValidationError) as wrong:
        Settings(broker_url="redis://127.0.0.1:6379/0")
    assert describe(wrong.value, None) == (
        "invalid settings: AGENTFLEET_RATE_LIMITS['openai:gpt-4o-mini']: Input should be a valid dictionary "
        "or instance of RateLimit"
    )
    monkeypatch.delenv("AGENTFLEET_RATE_LIMITS")
    monkeypatch.setenv("AGENTFLEET_PROVIDERS__ANTHROPIC__BASE_URL", "http://127.0.0.1:8088/v1")
    with pytest.raises(ValidationError) as anthropic_v1:
        Settings()
    assert describe(anthropic_v1.value, None) == (
        "invalid settings: AGENTFLEET_PROVIDERS__ANTHROPIC: base_url http://127.0.0.1:8088/v1 ends in /v1, "
        "but the anthropic client adds /v1/messages itself; give the API root, e.g. https://api.anthropic.com"
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "AGENTFLEET_AGENT_OVERRIDES__TRIAGE__TIME_LIMIT",
            "5",
            "AGENTFLEET_AGENT_OVERRIDES__TRIAGE__TIME_LIMIT: unknown key 'time_limit'; the keys "
            "are model, max_tokens, time_limit_s; did you mean 'time_limit_s'?",
        ),
        (
            "AGENTFLEET_RATE_LIMITS",
            '{"openai:gpt-4o-mini": {"rpn": 5}}',
            "AGENTFLEET_RATE_LIMITS['openai:gpt-4o-mini']['rpn']: unknown key 'rpn'; the keys "
            "are rpm, tpm; did you mean 'rpm'?",
        ),
    ],
)
def test_unknown_nested_key_suggests_field(
    variable: str, value: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentfleet.errors import describe

    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as raised:
        Settings()
    assert describe(raised.value, None) == f"invalid settings: {message}"
