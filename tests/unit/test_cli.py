import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from agentfleet.cli import cli
from agentfleet.settings import get_settings
from tests.support import simulator_thread
from workers.runner import JobRunner
from workers.runtime import WorkerRuntime

COMPLAINTS = [
    {
        "id": "c1",
        "company": "Acme Bank",
        "narrative": "They charged me a fee twice for one transfer.",
    },
    {"id": "c2", "narrative": "The collector calls my workplace every day about a debt I paid."},
    {"id": "c3", "narrative": "My credit report shows an account that is not mine."},
]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def broker_messages(queue: str) -> list[Path]:
    return sorted(Path(".agentfleet/broker/messages").glob(f"*.{queue}.msg"))


@pytest.fixture
def ready(tmp_path: Path) -> Path:
    """An upgraded embedded ledger with plan 'std' and tenant 'acme'; returns a complaints file."""
    assert run("db", "upgrade").exit_code == 0
    assert (
        run("plans", "create", "std", "--rate", "input=0.30", "--rate", "output=1.20").exit_code
        == 0
    )
    assert run("tenants", "create", "acme", "--plan", "std").exit_code == 0
    return write_jsonl(tmp_path / "complaints.jsonl", COMPLAINTS)


def jobs_json(*filters: str) -> list[dict[str, object]]:
    result = run("jobs", "--format", "json", *filters)
    assert result.exit_code == 0, result.output
    return list(json.loads(result.output))


def test_db_upgrade_loads_prices_once() -> None:
    first = run("db", "upgrade")
    assert first.exit_code == 0
    assert first.output.startswith("ledger at revision 0005; ")
    assert " 0 new price rows" not in first.output
    assert run("db", "upgrade").output == "ledger at revision 0005; 0 new price rows\n"
    assert run("db", "current").output == "current: 0005; head: 0005\n"


def test_submit_prints_ids_and_routes_to_queue(ready: Path) -> None:
    result = run("submit", "--tenant", "acme", "--agent", "triage", str(ready))
    assert result.exit_code == 0, result.output
    ids = result.stdout.split()
    assert len(ids) == 3
    assert "submitted 3 new jobs for tenant acme to agent triage" in result.stderr
    assert {job["id"] for job in jobs_json()} == set(ids)
    assert {job["status"] for job in jobs_json()} == {"queued"}
    assert len(broker_messages("agent.triage")) == 3
    assert broker_messages("celery") == []


def test_key_field_makes_resubmission_safe(ready: Path) -> None:
    first = run("submit", "--tenant", "acme", "--agent", "triage", "--key-field", "id", str(ready))
    second = run("submit", "--tenant", "acme", "--agent", "triage", "--key-field", "id", str(ready))
    assert first.stdout == second.stdout
    assert (
        "submitted 0 new jobs for tenant acme to agent triage; 3 already existed under their idempotency keys"
        in second.stderr
    )
    assert len(broker_messages("agent.triage")) == 3
    assert len(jobs_json()) == 3
    limited = run("jobs", "--limit", "2", "--format", "json")
    assert len(json.loads(limited.stdout)) == 2
    assert "showing the newest 2 jobs; more match (raise --limit)" in limited.stderr
    assert "more match" not in run("jobs", "--limit", "3").stderr


@pytest.mark.parametrize(
    ("lines", "args", "message"),
    [
        (
            COMPLAINTS,
            ("--agent", "triag"),
            "Error: unknown agent 'triag'; known agents: clause-review, summarize, triage",
        ),
        (
            [COMPLAINTS[0], {"company": "x"}],
            (),
            "line 2: invalid input for agent 'triage': 'narrative' is a required property",
        ),
        (
            [COMPLAINTS[0], ["not", "an", "object"]],
            (),
            "line 2: invalid input for agent 'triage': expected a JSON object, got list",
        ),
        (
            [COMPLAINTS[0], {"narrative": "x"}],
            ("--key-field", "id"),
            "line 2: has no 'id' field, which --key-field needs in every line",
        ),
        (
            COMPLAINTS,
            ("--tenant", "nobody"),
            "Error: unknown tenant 'nobody'; create it with 'agentfleet tenants create nobody --plan PLAN'",
        ),
    ],
)
def test_bad_submission_stores_nothing(
    ready: Path, lines: list[object], args: tuple[str, ...], message: str
) -> None:
    write_jsonl(ready, lines)
    options = {"--tenant": "acme", "--agent": "triage"}
    extra = list(args)
    for flag in list(options):
        if flag in extra:
            options.pop(flag)
    command = ["submit", *[x for pair in options.items() for x in pair], *extra, str(ready)]
    result = run(*command)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert jobs_json() == []
    assert broker_messages("agent.triage") == []


def test_unreadable_files_are_reported(ready: Path, tmp_path: Path) -> None:
    missing = run("submit", "--tenant", "acme", "--agent", "triage", str(tmp_path / "nope.jsonl"))
    assert missing.exit_code == 1
    assert "nope.jsonl: file not found" in missing.stderr
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"narrative": "ok"}\n{"narrative": \n', encoding="utf-8")
    invalid = run("submit", "--tenant", "acme", "--agent", "triage", str(broken))
    assert "broken.jsonl line 2: invalid JSON: Expecting value at column 15" in invalid.stderr
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\xff\xfe\x00")
    assert (
        "not UTF-8 text"
        in run("submit", "--tenant", "acme", "--agent", "triage", str(binary)).stderr
    )
    blank = write_jsonl(tmp_path / "blank.jsonl", [])
    assert (
        "no job inputs found"
        in run("submit", "--tenant", "acme", "--agent", "triage", str(blank)).stderr
    )
    assert jobs_json() == []


def test_commands_before_upgrade_explain_fix(tmp_path: Path) -> None:
    result = run("jobs")
    assert result.exit_code == 1
    assert (
        result.stderr
        == "Error: no ledger at .agentfleet/ledger.db; run 'agentfleet db upgrade' to create it\n"
    )
    assert not Path(".agentfleet").exists()
    (tmp_path / "empty.db").touch()
    empty = run("--database", f"sqlite:///{tmp_path / 'empty.db'}", "jobs")
    assert "has no tables yet; run 'agentfleet db upgrade' first" in empty.stderr


def test_invalid_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTFLEET_MAX_ATTEMPTS", "0")
    result = run("jobs")
    assert result.exit_code == 1
    assert (
        "invalid settings: AGENTFLEET_MAX_ATTEMPTS: '0' is not allowed; input should be greater "
        "than or equal to 1" in result.stderr
    )


def test_plan_and_tenant_errors(ready: Path) -> None:
    assert (
        "unknown plan 'gold'; known plans: std"
        in run("tenants", "create", "x", "--plan", "gold").stderr
    )
    assert (
        "tenant 'acme' already exists" in run("tenants", "create", "acme", "--plan", "std").stderr
    )
    assert (
        "tenant id 'Bad Name' is invalid"
        in run("tenants", "create", "Bad Name", "--plan", "std").stderr
    )
    assert "plan 'std' already exists" in run("plans", "create", "std", "--markup", "1.2").stderr
    bad_rate = run("plans", "create", "p2", "--rate", "input=cheap")
    assert bad_rate.exit_code == 2
    assert "'cheap' is not a decimal number" in bad_rate.stderr
    assert (
        "KIND one of input, cached_input"
        in run("plans", "create", "p3", "--rate", "tokens=1").stderr
    )
    assert (
        "give either rates per million tokens or a markup"
        in run(
            "plans", "create", "p4", "--rate", "input=1", "--rate", "output=2", "--markup", "1.1"
        ).stderr
    )
    listed = json.loads(run("plans", "list", "--format", "json").output)
    assert listed == [
        {
            "name": "std",
            "kind": "per_mtok",
            "currency": "USD",
            "markup": None,
            "rates_per_mtok": {"input": "0.300000", "output": "1.200000"},
        }
    ]


def test_wait_times_out(ready: Path) -> None:
    ids = run("submit", "--tenant", "acme", "--agent", "triage", str(ready)).stdout.split()
    result = run("wait", "--timeout", "0.2", *ids)
    assert result.exit_code == 3
    assert "timed out: 3 jobs still pending after 0.2 s" in result.stderr
    assert "job 'no-such-id' not found" in run("wait", "no-such-id").stderr
    assert run("wait").exit_code == 2


def test_results_rollup_and_invoices(ready: Path) -> None:
    ids = run("submit", "--tenant", "acme", "--agent", "summarize", str(ready)).stdout.split()
    with simulator_thread() as base:
        runtime = WorkerRuntime(
            get_settings().model_copy(
                update={
                    "providers": {
                        "openai": get_settings()
                        .providers["openai"]
                        .model_copy(update={"base_url": f"{base}/v1"})
                    }
                }
            )
        )
        try:
            for job_id in ids:
                assert JobRunner(runtime).run(job_id, "summarize") == "succeeded"
        finally:
            runtime.close()

    waited = run("wait", "--format", "json", *ids)
    assert waited.exit_code == 0
    assert [job["status"] for job in json.loads(waited.stdout)] == ["succeeded"] * 3
    shown = json.loads(run("job", ids[0]).output)
    assert shown["result"].startswith("The consumer reports:")
    assert [(a["number"], a["target"], a["status"]) for a in shown["attempt_log"]] == [
        (1, "openai:gpt-4.1-nano", "succeeded")
    ]
    assert "not found" in run("job", ids[0], "--tenant", "globex").stderr

    usage = json.loads(run("usage", "--format", "json").output)
    assert [(row["group"], row["calls"], row["billable_calls"]) for row in usage] == [
        ("openai/gpt-4.1-nano", 3, 3)
    ]
    rolled = json.loads(run("rollup", "--format", "json").output)
    assert [(row["tenant"], row["lines"]) for row in rolled] == [("acme", 1)]
    invoices = json.loads(run("invoices", "--format", "json").output)
    assert [(i["tenant"], i["status"]) for i in invoices] == [("acme", "draft")]
    invoice = json.loads(run("invoices", "show", str(invoices[0]["id"]), "--format", "json").output)
    line = invoice["lines"][0]
    assert (line["agent"], line["model"], line["calls"]) == ("summarize", "gpt-4.1-nano", 3)
    assert line["input_tokens"] == usage[0]["prompt_tokens"]
    assert invoice["total"] == line["amount"]
    recomputed = json.loads(run("rollup", "--full", "--format", "json").output)
    assert [(row["tenant"], row["total"]) for row in recomputed] == [("acme", invoice["total"])]
    assert "invoice 999 not found" in run("invoices", "show", "999").stderr
    assert "invalid period '2026-1'" in run("rollup", "--period", "2026-1").stderr


def test_cancel_stops_queued_jobs(ready: Path) -> None:
    ids = run("submit", "--tenant", "acme", "--agent", "triage", str(ready)).stdout.split()
    cancelled = json.loads(run("cancel", "--format", "json", ids[0], ids[1]).output)
    assert [(job["status"], job["error"]) for job in cancelled] == [
        ("cancelled", "cancelled by request")
    ] * 2
    statuses = {job["id"]: job["status"] for job in jobs_json()}
    assert statuses == {ids[0]: "cancelled", ids[1]: "cancelled", ids[2]: "queued"}
    assert "not found" in run("cancel", "--tenant", "globex", ids[2]).stderr
    assert jobs_json("--status", "queued")[0]["id"] == ids[2]
    assert run("wait", ids[0]).exit_code == 1


def test_key_conflict_across_agents(ready: Path) -> None:
    run("submit", "--tenant", "acme", "--agent", "triage", "--key-field", "id", str(ready))
    clash = run(
        "submit", "--tenant", "acme", "--agent", "summarize", "--key-field", "id", str(ready)
    )
    assert clash.exit_code == 1
    assert "idempotency key 'c1' of tenant 'acme' already names job" in clash.stderr
    assert (
        "of agent 'triage', not 'summarize'; give each agent's jobs their own keys" in clash.stderr
    )
    prefixed = run(
        "submit",
        "--tenant",
        "acme",
        "--agent",
        "summarize",
        "--key-field",
        "id",
        "--key-prefix",
        "summarize-",
        str(ready),
    )
    assert prefixed.exit_code == 0
    agents = sorted(job["agent"] for job in jobs_json())
    assert agents == ["summarize"] * 3 + ["triage"] * 3


def test_submit_reads_stdin_and_bom(ready: Path) -> None:
    text = "\ufeff" + ready.read_text(encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["submit", "--tenant", "acme", "--agent", "triage", "-"], input=text.encode()
    )
    assert result.exit_code == 0, result.output
    assert len(result.stdout.split()) == 3


def test_unknown_tenant_filters_are_errors(ready: Path) -> None:
    for command in (("rollup",), ("invoices",), ("jobs",)):
        result = run(*command, "--tenant", "nobody")
        assert result.exit_code == 1
        assert "unknown tenant 'nobody'" in result.stderr


def test_plan_values_must_fit(ready: Path) -> None:
    cases = [
        (
            ("--rate", "input=0.1234567", "--rate", "output=1"),
            "input rate 0.1234567 has more than 6 decimal places",
        ),
        (("--rate", "input=1e9", "--rate", "output=1"), "input rate 1E+9 must be below 1000000"),
        (("--markup", "5000"), "markup 5000 must be below 1000"),
        (("--markup", "-1"), "--markup: '-1' must be a number greater than 0"),
        (("--rate", "input=1", "--rate", "input=2"), "input is given twice"),
    ]
    for options, message in cases:
        result = run("plans", "create", "p9", *options)
        assert result.exit_code in (1, 2)
        assert message in result.stderr, result.stderr
    assert "plan name '' is invalid" in run("plans", "create", "", "--markup", "1.2").stderr
    assert "plan name" in run("plans", "create", "x" * 65, "--markup", "1.2").stderr
    assert [p["name"] for p in json.loads(run("plans", "list", "--format", "json").output)] == [
        "std"
    ]


def test_settings_mistakes_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTFLEET_MAX_ATTEMTPS", "3")
    typo = run("jobs")
    assert (
        "unknown setting AGENTFLEET_MAX_ATTEMTPS; did you mean AGENTFLEET_MAX_ATTEMPTS?"
        in typo.stderr
    )
    monkeypatch.delenv("AGENTFLEET_MAX_ATTEMTPS")
    Path(".env").write_text("AGENTFLEET_RECOVERY_INTERVALS=5\n", encoding="utf-8")
    in_file = run("jobs")
    assert (
        "unknown setting AGENTFLEET_RECOVERY_INTERVALS in .env; "
        "did you mean AGENTFLEET_RECOVERY_INTERVAL_S?"
    ) in in_file.stderr
    Path(".env").unlink()
    monkeypatch.setenv("AGENTFLEET_BROKER_URL", "htp://x")
    broker = run("jobs")
    assert "AGENTFLEET_BROKER_URL: 'htp://x' is not a supported broker URL" in broker.stderr
    monkeypatch.setenv("AGENTFLEET_BROKER_URL", "filesystem://")
    monkeypatch.setenv("AGENTFLEET_PROVIDERS", "{bad json")
    bad_json = run("jobs")
    assert bad_json.exit_code == 1
    assert "invalid settings:" in bad_json.stderr
    assert "Traceback" not in bad_json.output
    monkeypatch.setenv("AGENTFLEET_PROVIDERS", "{}")
    monkeypatch.setenv("AGENTFLEET_MODEL_ALIASES", '{"fast": "nope"}')
    alias = run("jobs")
    assert (
        "invalid settings: model_aliases['fast'] target 'nope'; expected 'provider:model'"
        in alias.stderr
    )


def test_simulator_busy_port_is_named() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = CliRunner().invoke(cli, ["simulator", "--port", str(port)])

    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "choose another port" in result.output
    assert "simulator on" not in result.output
