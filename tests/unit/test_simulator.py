import httpx
import pytest

from agents import load_catalog, parse_output, render_messages
from agents.output import response_format
from simulator.app import SimulatorConfig
from simulator.content import choose_option
from simulator.tokens import count_messages, count_text, truncate
from tests.support import simulator_stats, simulator_thread

AUTH = {"Authorization": "Bearer sk-test"}
COMPLAINT = {
    "company": "Harbor Recovery",
    "narrative": "A debt collector calls me every day about a debt I do not owe.",
}
CLAUSE = {
    "text": "This Agreement renews automatically for successive one-year terms unless terminated."
}


def test_token_counts() -> None:
    assert count_text("Hello, world!") == 4
    assert count_messages([{"role": "user", "content": "Hello, world!"}]) == 3 + 4 + 4
    assert truncate("one two three four", 2) == ("one two", True)
    assert truncate("one two", 5) == ("one two", False)


def test_enum_choice_follows_text() -> None:
    options = ["credit_reporting", "debt_collection", "mortgage", "other"]
    assert (
        choose_option(options, "The debt collector keeps calling about a collection")
        == "debt_collection"
    )
    assert choose_option(options, "Nothing relevant here") == "other"
    assert choose_option(["low", "medium", "high"], "They committed fraud") == "high"


@pytest.mark.parametrize(
    ("agent_name", "job_input"),
    [("triage", COMPLAINT), ("summarize", COMPLAINT), ("clause-review", CLAUSE)],
)
def test_replies_fit_agent_output(agent_name: str, job_input: dict[str, str]) -> None:
    agent = load_catalog()[agent_name]
    messages = render_messages(agent, job_input)
    body: dict[str, object] = {
        "model": "gpt-4o-mini",
        "messages": messages,
        "max_tokens": agent.max_tokens,
    }
    if (fmt := response_format(agent)) is not None:
        body["response_format"] = fmt
    with simulator_thread() as base:
        response = httpx.post(f"{base}/v1/chat/completions", json=body, headers=AUTH)
    assert response.status_code == 200
    reply = response.json()
    content = reply["choices"][0]["message"]["content"]
    assert parse_output(agent, content)
    usage = reply["usage"]
    assert usage["prompt_tokens"] == count_messages(messages)
    assert usage["completion_tokens"] == count_text(content)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0


def test_stats_count_every_call() -> None:
    body = {"model": "m1", "messages": [{"role": "user", "content": "Hello there."}]}
    with simulator_thread(SimulatorConfig(latency_ms=5, jitter_ms=5, seed=1)) as base:
        replies = [
            httpx.post(
                f"{base}/v1/chat/completions", json={**body, "model": m}, headers=AUTH
            ).json()
            for m in ("m1", "m1", "m2")
        ]
        httpx.post(f"{base}/v1/chat/completions", json={"model": "m1"}, headers=AUTH)
        stats = simulator_stats(base)
        reset = httpx.post(f"{base}/stats/reset").json()
    assert stats["calls"] == 3
    assert stats["faults"] == {"invalid_request": 1}
    assert stats["models"]["m1"]["calls"] == 2
    assert stats["models"]["m1"]["prompt_tokens"] == sum(
        r["usage"]["prompt_tokens"] for r in replies[:2]
    )
    assert stats["models"]["m2"]["completion_tokens"] == replies[2]["usage"]["completion_tokens"]
    assert reset == {"calls": 0, "faults": {}, "early_calls": 0, "max_in_flight": 0, "models": {}}


def test_bad_requests_get_openai_errors() -> None:
    with simulator_thread() as base:
        url = f"{base}/v1/chat/completions"
        no_auth = httpx.post(url, json={"model": "m", "messages": []})
        not_json = httpx.post(url, content=b"{", headers=AUTH)
        no_messages = httpx.post(url, json={"model": "m", "messages": []}, headers=AUTH)
    assert no_auth.status_code == 401
    assert no_auth.json()["error"]["message"] == "missing bearer token in the Authorization header"
    assert not_json.status_code == 400
    assert no_messages.status_code == 400
    assert no_messages.json()["error"]["message"] == "'messages' must be a non-empty list"


def test_max_tokens_cuts_reply() -> None:
    body = {
        "model": "m",
        "max_tokens": 3,
        "messages": [{"role": "user", "content": "A long complaint. " * 20}],
    }
    with simulator_thread() as base:
        reply = httpx.post(f"{base}/v1/chat/completions", json=body, headers=AUTH).json()
    assert reply["choices"][0]["finish_reason"] == "length"
    assert reply["usage"]["completion_tokens"] == 3


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"headers": ["x"]}', "headers must be an object"),
        ('{"status": "abc"}', "status must be a whole number"),
        ('{"status": 42}', "status 42 is not an HTTP status"),
        ('{"fault": "cut", "after_events": "x"}', "after_events must be a whole number"),
        ('{"usage": 5}', "usage must be an object of token counts"),
        ('{"usage": {"prompt_tokens": "many"}}', "usage prompt_tokens must be a whole number"),
        ('{"usage": {"tokens": 3}}', "unknown usage field 'tokens'"),
        ('{"fault": "boom"}', "unknown fault 'boom'"),
    ],
)
def test_script_lines_are_checked(line: str, message: str) -> None:
    from simulator.faults import ScriptError, parse_step

    with pytest.raises(ScriptError, match=message):
        parse_step(line, "script.jsonl line 1")
