from pathlib import Path

import pytest

from agents import (
    CatalogError,
    InvalidInput,
    InvalidOutput,
    UnknownAgent,
    load_catalog,
    parse_catalog,
    parse_output,
    render_messages,
    validate_input,
)

VALID_AGENT = """
agents:
  echo:
    description: Repeat the text.
    model: fast
    max_tokens: 50
    time_limit_s: 10
    system_prompt: Repeat.
    prompt: "{{ text }}"
    input_schema:
      type: object
      required: [text]
      properties: {text: {type: string}}
    output: {format: text}
"""


def test_builtin_catalog_has_three_agents() -> None:
    catalog = load_catalog()
    assert sorted(catalog) == ["clause-review", "summarize", "triage"]
    assert catalog["triage"].queue == "agent.triage"
    assert catalog["clause-review"].queue == "agent.clause-review"


def test_unknown_agent_lists_known_ones() -> None:
    with pytest.raises(UnknownAgent) as caught:
        load_catalog()["triag"]
    assert (
        str(caught.value) == "unknown agent 'triag'; known agents: clause-review, summarize, triage"
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("max_tokens: 50", "max_tokens: 0"),
            "agent 'echo': field 'max_tokens': Input should be greater than 0",
        ),
        (
            ("max_tokens: 50", "max_tokens: many"),
            "field 'max_tokens': Input should be a valid integer",
        ),
        (
            ('prompt: "{{ text }}"', 'prompt: "{{ body }}"'),
            "prompt uses body, which input_schema.properties does not declare",
        ),
        (
            ('prompt: "{{ text }}"', 'prompt: "{{ text "'),
            "field 'prompt': template syntax error on line 1",
        ),
        (
            ("      type: object\n", "      type: array\n"),
            "field 'input_schema': must describe a JSON object",
        ),
        (
            ("output: {format: text}", "output: {format: json}"),
            "field 'output': format 'json' needs a 'schema'",
        ),
        (("    model: fast\n", ""), "field 'model': Field required"),
        (
            ("    model: fast\n", "    model: fast\n    colour: red\n"),
            "field 'colour': Extra inputs are not permitted",
        ),
    ],
)
def test_invalid_agent_names_agent_and_field(change: tuple[str, str], expected: str) -> None:
    text = VALID_AGENT.replace(*change)
    assert text != VALID_AGENT
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, "agents.yaml")
    assert str(caught.value).startswith("agent catalog agents.yaml: ")
    assert expected in str(caught.value)


def test_invalid_agent_name_is_reported() -> None:
    with pytest.raises(
        CatalogError, match="agent 'Echo!': field 'name': String should match pattern"
    ):
        parse_catalog(VALID_AGENT.replace("  echo:", "  Echo!:"), "agents.yaml")


def test_catalog_file_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"missing\.yaml: file not found"):
        load_catalog(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("agents: [unclosed", encoding="utf-8")
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog(broken)
    empty = tmp_path / "empty.yaml"
    empty.write_text("name: x\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="expected a top-level 'agents' mapping"):
        load_catalog(empty)


def test_catalog_file_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(VALID_AGENT, encoding="utf-8")
    catalog = load_catalog(path)
    assert list(catalog) == ["echo"]
    assert catalog.source == str(path)


def test_input_errors_name_the_field() -> None:
    triage = load_catalog()["triage"]
    with pytest.raises(InvalidInput) as caught:
        validate_input(triage, {"narrative": 7})
    assert (
        str(caught.value)
        == "invalid input for agent 'triage': narrative: 7 is not of type 'string'"
    )
    with pytest.raises(InvalidInput, match="'narrative' is a required property"):
        validate_input(triage, {"company": "Acme"})
    with pytest.raises(InvalidInput, match="expected a JSON object, got list"):
        validate_input(triage, ["narrative"])


def test_prompt_renders_input_fields() -> None:
    triage = load_catalog()["triage"]
    messages = render_messages(triage, {"narrative": "They charged me twice.", "company": "Acme"})
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == triage.system_prompt
    assert messages[1]["content"] == "Company: Acme\nComplaint:\nThey charged me twice."
    without_company = render_messages(triage, {"narrative": "x"})[1]["content"]
    assert without_company.startswith("Company: not given\n")


def test_output_is_checked_against_schema() -> None:
    catalog = load_catalog()
    reply = (
        '{"clause_type": "governing_law", "risk": "low", "rationale": "Standard choice of law."}'
    )
    assert parse_output(catalog["clause-review"], reply)["clause_type"] == "governing_law"
    assert parse_output(catalog["summarize"], "  A summary.\n") == "A summary."
    with pytest.raises(InvalidOutput, match="invalid JSON"):
        parse_output(catalog["clause-review"], "governing law")
    with pytest.raises(InvalidOutput, match="breaks its output schema: 'extreme' is not one of"):
        parse_output(catalog["clause-review"], reply.replace('"low"', '"extreme"'))
