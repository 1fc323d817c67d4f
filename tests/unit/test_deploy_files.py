"""Checks of the Dockerfile, docker-compose.yml and the Kubernetes manifests in deploy/.

No Docker engine or cluster is needed: the files are parsed and compared with what
they name in the code, the agent catalog, the settings, the Celery app and the CLI.
"""

import importlib
import os
import re
import shlex
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pytest
import yaml
from celery.bin.celery import celery as celery_cli
from flower.options import options as flower_options

from agentfleet.cli import cli
from agentfleet.fleet import load_agents
from agentfleet.settings import Settings
from agents import MAINTENANCE_QUEUE, AgentCatalog

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
SECRET_TEMPLATE = DEPLOY / "secret.template.yaml"
SOURCES = ("compose", "deploy")
POD_KINDS = ("Deployment", "Job")
ENV_PREFIX = "AGENTFLEET_"

Env = dict[str, str]


@pytest.fixture
def catalog() -> AgentCatalog:
    """The built-in catalog, because tests/conftest.py removes AGENTFLEET_* variables."""
    return load_agents(Settings())


def _clear_settings_env(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Remove every AGENTFLEET_* variable and change to a folder without a .env file."""
    monkeypatch.chdir(folder)
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)


# --- reading the files -------------------------------------------------------------


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _kustomization() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "kustomization.yaml").read_text(encoding="utf-8"))


def _manifests() -> list[dict[str, Any]]:
    docs = []
    for resource in _kustomization()["resources"]:
        text = (DEPLOY / resource).read_text(encoding="utf-8")
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


def _secrets() -> dict[str, Env]:
    docs = yaml.safe_load_all(SECRET_TEMPLATE.read_text(encoding="utf-8"))
    return {d["metadata"]["name"]: d["stringData"] for d in docs if d and d["kind"] == "Secret"}


def _of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _manifests() if d["kind"] == kind}


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]


def _pods() -> Iterator[dict[str, Any]]:
    for doc in _manifests():
        if doc["kind"] in POD_KINDS:
            yield doc


def _argv(command: str | list[Any]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def _compose_env(service: dict[str, Any]) -> Env:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {name: str(value) for name, value in env.items()}


def _container_env(container: dict[str, Any]) -> Env:
    """The variables a container gets, taken from the ConfigMaps and the Secret template."""
    config_maps = {name: doc["data"] for name, doc in _of_kind("ConfigMap").items()}
    secrets = _secrets()
    env: Env = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_maps[source["configMapRef"]["name"]])
        else:
            env.update(secrets[source["secretRef"]["name"]])
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = var["value"]
        elif "secretKeyRef" in var["valueFrom"]:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = secrets[ref["name"]][ref["key"]]
        else:
            ref = var["valueFrom"]["configMapKeyRef"]
            env[var["name"]] = config_maps[ref["name"]][ref["key"]]
    return {name: str(value) for name, value in env.items()}


@dataclass(frozen=True, repr=False)
class Process:
    """One program the files start: a compose service or a container of a Deployment or Job."""

    unit: str
    argv: list[str]
    env: Env

    def __repr__(self) -> str:
        return f"{self.unit}: {' '.join(self.argv)}"

    @property
    def celery_subcommand(self) -> str | None:
        if not self.argv or self.argv[0] != "celery":
            return None
        args = iter(self.argv[1:])
        for arg in args:
            if arg in ("-A", "--app"):
                next(args)
            elif not arg.startswith("-"):
                return arg
        return None

    @property
    def celery_app(self) -> str:
        for i, arg in enumerate(self.argv):
            if arg in ("-A", "--app"):
                return self.argv[i + 1]
            if arg.startswith("--app="):
                return arg.partition("=")[2]
        raise AssertionError(f"{self}: missing -A/--app")

    @property
    def queues(self) -> list[str]:
        for i, arg in enumerate(self.argv):
            if arg in ("-Q", "--queues"):
                return self.argv[i + 1].split(",")
            if arg.startswith("--queues="):
                return arg.partition("=")[2].split(",")
        raise AssertionError(f"{self}: missing -Q")

    def after(self, subcommand: str) -> list[str]:
        return self.argv[self.argv.index(subcommand) + 1 :]


def _processes(source: str) -> list[Process]:
    if source == "compose":
        return [
            Process(name, _argv(service["command"]), _compose_env(service))
            for name, service in _compose()["services"].items()
            if "command" in service
        ]
    return [
        Process(
            doc["metadata"]["name"],
            [*container.get("command", []), *container.get("args", [])],
            _container_env(container),
        )
        for doc in _pods()
        for container in _pod_spec(doc)["containers"]
    ]


def _celery(source: str, subcommand: str | None = None) -> list[Process]:
    found = [p for p in _processes(source) if p.celery_subcommand]
    return [p for p in found if subcommand is None or p.celery_subcommand == subcommand]


def _fleet(source: str) -> list[Process]:
    """The processes that load the agentfleet settings."""
    return [p for p in _processes(source) if p.celery_subcommand or p.argv[:1] == ["agentfleet"]]


def _check_options(process: Process, command: click.Command, args: list[str]) -> None:
    """Assert that each option in args is one of the command's, with an allowed choice."""
    params = {opt: p for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    positional = []
    rest = iter(args)
    for arg in rest:
        if not arg.startswith("-"):
            positional.append(arg)
            continue
        name, has_value, _ = arg.partition("=")
        assert name in params, f"{process}: {command.name} has no option {name}"
        param = params[name]
        if (isinstance(param, click.Option) and param.is_flag) or has_value:
            continue
        value = next(rest)
        if isinstance(param.type, click.Choice):
            assert value in param.type.choices, f"{process}: {name} {value} not in choices"
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    assert len(positional) <= len(arguments), f"{process}: unexpected arguments {positional}"


# --- checks shared by docker-compose.yml and deploy/ -------------------------------


@pytest.mark.parametrize("source", SOURCES)
def test_worker_queues_exist(source: str, catalog: AgentCatalog) -> None:
    known = {*catalog.queues, MAINTENANCE_QUEUE}
    workers = _celery(source, "worker")
    assert workers
    for worker in workers:
        assert set(worker.queues) <= known, f"{worker}: unknown queue"


@pytest.mark.parametrize("source", SOURCES)
def test_worker_per_queue(source: str, catalog: AgentCatalog) -> None:
    consumers: dict[str, list[str]] = {}
    for worker in _celery(source, "worker"):
        assert len(worker.queues) == 1, f"{worker}: one queue per worker"
        consumers.setdefault(worker.queues[0], []).append(worker.unit)
    for queue in [*catalog.queues, MAINTENANCE_QUEUE]:
        assert len(consumers.get(queue, [])) == 1, f"{queue}: workers {consumers.get(queue)}"


@pytest.mark.parametrize("source", SOURCES)
def test_celery_apps_import(source: str) -> None:
    processes = _celery(source)
    assert {p.celery_subcommand for p in processes} >= {"worker", "beat", "flower"}
    for process in processes:
        module = importlib.import_module(process.celery_app)
        assert hasattr(module, "app"), f"{process}: module has no Celery app"


@pytest.mark.parametrize("source", SOURCES)
def test_celery_options_exist(source: str) -> None:
    for process in _celery(source):
        subcommand = process.celery_subcommand
        assert subcommand in celery_cli.commands, f"{process}: no celery {subcommand}"
        args = process.after(subcommand)
        if subcommand == "flower":
            for arg in args:
                name = arg.partition("=")[0].removeprefix("--")
                assert name in flower_options, f"{process}: flower has no option {name}"
        else:
            _check_options(process, celery_cli.commands[subcommand], args)


@pytest.mark.parametrize("source", SOURCES)
def test_cli_subcommands_exist(source: str) -> None:
    processes = [p for p in _processes(source) if p.argv[:1] == ["agentfleet"]]
    assert any(p.argv[1:3] == ["db", "upgrade"] for p in processes)
    for process in processes:
        command: click.Command = cli
        args = process.argv[1:]
        while isinstance(command, click.Group):
            name, args = args[0], args[1:]
            assert name in command.commands, f"{process}: {command.name} has no {name}"
            command = command.commands[name]
        _check_options(process, command, args)


@pytest.mark.parametrize("source", SOURCES)
def test_env_names_are_settings(source: str) -> None:
    names = {name for p in _fleet(source) for name in p.env if name.startswith(ENV_PREFIX)}
    assert f"{ENV_PREFIX}BROKER_URL" in names
    for name in names:
        field = name.removeprefix(ENV_PREFIX).split("__")[0].lower()
        assert field in Settings.model_fields, f"{name}: no setting {field}"


@pytest.mark.parametrize("source", SOURCES)
def test_settings_validate(source: str, tmp_path: Path) -> None:
    processes = _fleet(source)
    assert processes
    for process in processes:
        with pytest.MonkeyPatch.context() as monkeypatch:
            _clear_settings_env(monkeypatch, tmp_path)
            for name, value in process.env.items():
                monkeypatch.setenv(name, value)
            settings = Settings()
            assert settings.broker_url == process.env[f"{ENV_PREFIX}BROKER_URL"]
            assert settings.broker_url.startswith("redis://"), process
            assert settings.database_url.startswith("postgresql+psycopg://"), process
            assert load_agents(settings).queues


# --- docker-compose.yml ------------------------------------------------------------


def test_compose_services_share_anchor() -> None:
    compose = _compose()
    shared = compose["x-agentfleet"]
    for process in _fleet("compose"):
        service = compose["services"][process.unit]
        assert service["image"] == shared["image"], process
        assert service["environment"] == shared["environment"], process


def test_compose_start_order() -> None:
    services = _compose()["services"]
    assert "healthcheck" in services["postgres"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for process in _celery("compose"):
        depends_on = services[process.unit]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", process
        assert "redis" in depends_on, process


def test_compose_flower_auth_from_env() -> None:
    (flower,) = _celery("compose", "flower")
    auth = [a.partition("=")[2] for a in flower.argv if a.startswith("--basic-auth=")]
    assert len(auth) == 1
    assert re.fullmatch(r"\$\{[A-Z_][A-Z0-9_]*:\?[^}]+\}", auth[0]), auth[0]


def test_compose_one_beat() -> None:
    (beat,) = _celery("compose", "beat")
    replicas = _compose()["services"][beat.unit].get("deploy", {}).get("replicas", 1)
    assert replicas == 1


# --- deploy/ -----------------------------------------------------------------------


def test_kustomize_resources_exist() -> None:
    resources = _kustomization()["resources"]
    for resource in resources:
        assert (DEPLOY / resource).is_file(), resource
    assert SECRET_TEMPLATE.name not in resources, "apply -k would overwrite the real Secrets"


def test_secret_template_placeholders() -> None:
    secrets = _secrets()
    assert secrets
    for name, data in secrets.items():
        for key, value in data.items():
            assert "REPLACE_ME" in value, f"{name}.{key} holds a value, not a placeholder"


def test_deploy_one_beat() -> None:
    (beat,) = _celery("deploy", "beat")
    deployment = _of_kind("Deployment")[beat.unit]
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    targets = {s["spec"]["scaleTargetRef"]["name"] for s in _of_kind("ScaledObject").values()}
    assert beat.unit not in targets


def test_keda_targets_and_lists(catalog: AgentCatalog) -> None:
    deployments = _of_kind("Deployment")
    workers = {w.unit: w for w in _celery("deploy", "worker")}
    scaled = {}
    for name, scaled_object in _of_kind("ScaledObject").items():
        assert scaled_object["apiVersion"] == "keda.sh/v1alpha1", name
        spec = scaled_object["spec"]
        target = spec["scaleTargetRef"]["name"]
        assert target in deployments, f"{name}: no Deployment {target}"
        assert "replicas" not in deployments[target]["spec"], f"{target}: apply resets replicas"
        assert spec["minReplicaCount"] >= 0, name
        assert spec["maxReplicaCount"] >= spec["minReplicaCount"], name
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "redis", name
        list_name = trigger["metadata"]["listName"]
        assert list_name in catalog.queues, f"{name}: {list_name} is no agent queue"
        assert workers[target].queues == [list_name], f"{name}: scales on another queue"
        assert int(trigger["metadata"]["listLength"]) > 0, name
        scaled[list_name] = target
    assert set(scaled) == set(catalog.queues)


def test_keda_reads_broker() -> None:
    workers = {w.unit: w for w in _celery("deploy", "worker")}
    for name, scaled_object in _of_kind("ScaledObject").items():
        worker = workers[scaled_object["spec"]["scaleTargetRef"]["name"]]
        metadata = scaled_object["spec"]["triggers"][0]["metadata"]
        broker = urlsplit(worker.env[f"{ENV_PREFIX}BROKER_URL"])
        assert worker.env[metadata["addressFromEnv"]] == f"{broker.hostname}:{broker.port}", name
        assert metadata["databaseIndex"] == (broker.path.strip("/") or "0"), name


def test_worker_grace_covers_deadline(catalog: AgentCatalog) -> None:
    deployments = _of_kind("Deployment")
    by_queue = {w.queues[0]: w.unit for w in _celery("deploy", "worker")}
    for agent in catalog.values():
        pod = _pod_spec(deployments[by_queue[agent.queue]])
        assert pod["terminationGracePeriodSeconds"] > agent.time_limit_s, agent.name


def test_flower_auth_from_secret() -> None:
    (flower,) = _celery("deploy", "flower")
    deployment = _of_kind("Deployment")[flower.unit]
    (container,) = _pod_spec(deployment)["containers"]
    auth = {var["name"]: var for var in container.get("env", [])}["FLOWER_BASIC_AUTH"]
    assert "secretKeyRef" in auth["valueFrom"]
    assert "basic_auth" in flower_options
    assert not any(a.startswith("--basic-auth") for a in flower.argv)
    assert re.fullmatch(r"[^:]+:.+", flower.env["FLOWER_BASIC_AUTH"])


def test_flower_service_selects_pod() -> None:
    (flower,) = _celery("deploy", "flower")
    pod_template = _of_kind("Deployment")[flower.unit]["spec"]["template"]
    ports = {p["name"] for c in pod_template["spec"]["containers"] for p in c.get("ports", [])}
    services = [s for s in _of_kind("Service").values() if s["spec"]["selector"]]
    (service,) = services
    assert service["spec"]["selector"].items() <= pod_template["metadata"]["labels"].items()
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports


def test_pods_run_as_image_user() -> None:
    user = re.findall(r"^USER\s+(\S+)", DOCKERFILE.read_text(encoding="utf-8"), re.M)[-1]
    uid = int(user.split(":")[0])
    assert uid != 0
    for doc in _pods():
        security = _pod_spec(doc)["securityContext"]
        assert security["runAsNonRoot"] is True, doc["metadata"]["name"]
        assert security["runAsUser"] == uid, doc["metadata"]["name"]


# --- Dockerfile --------------------------------------------------------------------


def test_dockerfile_copies_packages() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = set()
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.startswith("COPY "):
            copied.update(line.split()[1:-1])
    packages = {pattern.rstrip("*") for pattern in patterns}
    assert packages <= copied, packages - copied
    assert {"pyproject.toml", pyproject["project"]["readme"]} <= copied
