"""The container files agree with the code: commands, options, settings, ports, volumes, images.

No Docker engine runs here, so docker-compose.yml and the Dockerfile are parsed and checked
against the `claimpay` CLI, the `Settings` class and pyproject.toml.
"""

from __future__ import annotations

import importlib
import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import pytest
import typer
import yaml
from typer.core import TyperGroup

import cli.main
from claimpay.settings import Settings
from cli.flowerconf import flower_environment
from producer.routes import health

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

ALL_INTERFACES = "0.0.0.0"  # noqa: S104 (containers must listen beyond loopback)
APP_SERVICES = ("migrate", "api", "worker", "flower")
SECRETS = ("CLAIMPAY_API_KEYS", "CLAIMPAY_JWT_SECRET", "CLAIMPAY_FLOWER_BASIC_AUTH")
HOST_ENV = {
    "CLAIMPAY_API_KEYS": json.dumps({"compose-test-key-0123456789": ["demo"]}),
    "CLAIMPAY_JWT_SECRET": "compose-test-secret-" + "x" * 32,
    "CLAIMPAY_FLOWER_BASIC_AUTH": "ops:compose-test-password",
}

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariableError(Exception):
    """Raised when a `${VAR:?message}` variable is unset, as `docker compose` would refuse."""


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's variable substitution on every string of a parsed compose document."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda match: _substitute(match, env), value)
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    return value


def _substitute(match: re.Match[str], env: Mapping[str, str]) -> str:
    if match["escaped"]:
        return "$"
    name = match["braced"] or match["bare"]
    op, arg = match["op"] or "", match["arg"] or ""
    value = env.get(name)
    unset = value is None or (op.startswith(":") and value == "")
    if op.endswith("?") and unset:
        raise MissingVariableError(f"{name}: {arg}")
    if op.endswith("-") and unset:
        return arg
    return value or ""


def raw_compose() -> dict[str, Any]:
    return cast(dict[str, Any], yaml.safe_load(COMPOSE_FILE.read_text()))


@pytest.fixture
def compose() -> dict[str, Any]:
    """docker-compose.yml as `docker compose config` would see it with the secrets exported."""
    return cast(dict[str, Any], interpolate(raw_compose(), HOST_ENV))


@pytest.fixture
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return cast(dict[str, dict[str, Any]], compose["services"])


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending = f"{pending} {stripped}" if pending else stripped
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        keyword, _, arguments = pending.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def dockerfile_exec_form(instruction: str) -> list[str]:
    """The JSON (exec) form of the last ENTRYPOINT or CMD instruction."""
    values = [args for keyword, args in dockerfile_instructions() if keyword == instruction]
    assert values, f"the Dockerfile has no {instruction}"
    parsed = json.loads(values[-1])
    assert isinstance(parsed, list), f"{instruction} must use the exec (JSON) form"
    return [str(item) for item in parsed]


def console_scripts() -> dict[str, str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return cast(dict[str, str], pyproject["project"]["scripts"])


def service_argv(service: Mapping[str, Any]) -> list[str]:
    """The full argv a service runs: its entrypoint (else the image's) plus its command."""
    entrypoint = service.get("entrypoint", dockerfile_exec_form("ENTRYPOINT"))
    command = service.get("command", dockerfile_exec_form("CMD"))
    assert isinstance(entrypoint, list), "use the list form for entrypoint"
    assert isinstance(command, list), "use the list form for command"
    return [str(item) for item in [*entrypoint, *command]]


def resolve_cli(argv: list[str]) -> tuple[str, list[str]]:
    """The name of the `claimpay` subcommand argv runs, and its arguments, checked by parsing
    them with the real CLI (unknown options, missing ones and ill-typed values raise)."""
    assert argv[0] == "claimpay", f"{argv} does not run the claimpay console script"
    command = typer.main.get_command(cli.main.cli)
    rest = argv[1:]
    while isinstance(command, TyperGroup):
        assert rest, f"{argv} names a command group, not a command"
        sub = command.commands.get(rest[0])
        assert sub is not None, f"`claimpay` has no command {rest[0]!r} (in {argv})"
        command, rest = sub, rest[1:]
    known = {opt for param in command.params for opt in param.opts}
    for arg in rest:
        if arg.startswith("-"):
            assert arg.split("=", 1)[0] in known, f"`{command.name}` has no option {arg}"
    command.make_context(command.name, list(rest))
    return str(command.name), rest


def option_value(args: list[str], name: str) -> str:
    for index, arg in enumerate(args):
        if arg == name:
            return args[index + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"{name} not in {args}")


def published_container_ports(service: Mapping[str, Any]) -> set[int]:
    ports: set[int] = set()
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
        else:
            ports.add(int(str(entry).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def named_volumes(service: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            source = str(entry.get("source", "")) if entry.get("type") == "volume" else ""
        else:
            source = str(entry).split(":", 1)[0] if ":" in str(entry) else ""
        if source and not source.startswith(("/", ".", "~", "$")):
            names.add(source)
    return names


def test_compose_runs_the_expected_services(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) >= {"redis", "postgres", *APP_SERVICES}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_runs_a_real_claimpay_command(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    service = services[name]
    assert service.get("build") == ".", f"{name} builds the repository's Dockerfile"
    assert service.get("image") == "claimpay:local"
    resolve_cli(service_argv(service))


def test_image_default_command_is_a_real_claimpay_command() -> None:
    command, args = resolve_cli([*dockerfile_exec_form("ENTRYPOINT"), *dockerfile_exec_form("CMD")])
    assert command == "api"
    assert option_value(args, "--host") == ALL_INTERFACES


def test_migrate_is_a_one_shot_upgrade(services: dict[str, dict[str, Any]]) -> None:
    command, _ = resolve_cli(service_argv(services["migrate"]))
    assert command == "upgrade"
    assert services["migrate"].get("restart") == "no"


@pytest.mark.parametrize(("name", "command_name"), [("api", "api"), ("flower", "flower")])
def test_published_port_matches_the_port_the_command_binds(
    services: dict[str, dict[str, Any]], name: str, command_name: str
) -> None:
    command, args = resolve_cli(service_argv(services[name]))
    assert command == command_name
    port = int(option_value(args, "--port"))
    assert published_container_ports(services[name]) == {port}
    bind = "--host" if command_name == "api" else "--address"
    assert option_value(args, bind) == ALL_INTERFACES, f"{name} must listen beyond the container"


def test_api_healthcheck_probes_the_liveness_route_on_its_port(
    services: dict[str, dict[str, Any]],
) -> None:
    api = services["api"]
    _, args = resolve_cli(service_argv(api))
    probe = " ".join(api["healthcheck"]["test"])
    assert f"127.0.0.1:{option_value(args, '--port')}/health/ready" in probe
    paths = {getattr(route, "path", "") for route in health.router.routes}
    assert "/health/ready" in paths


def test_every_claimpay_variable_is_a_settings_field(services: dict[str, dict[str, Any]]) -> None:
    fields = {f"CLAIMPAY_{name.upper()}" for name in Settings.model_fields}
    for name, service in services.items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), f"{name}: use the mapping form for environment"
        unknown = {key for key in environment if key.startswith("CLAIMPAY_")} - fields
        assert not unknown, f"{name} sets variables Settings does not read: {sorted(unknown)}"
    image_env = " ".join(args for keyword, args in dockerfile_instructions() if keyword == "ENV")
    unknown = set(re.findall(r"\bCLAIMPAY_[A-Z0-9_]+", image_env)) - fields
    assert not unknown, f"the Dockerfile sets variables Settings does not read: {sorted(unknown)}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_environment_builds_valid_settings(
    services: dict[str, dict[str, Any]],
    name: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env file
    for key in Settings.model_fields:
        monkeypatch.delenv(f"CLAIMPAY_{key.upper()}", raising=False)
    for key, value in services[name]["environment"].items():
        monkeypatch.setenv(key, str(value))
    settings = Settings()
    assert settings.require_redis_url()
    assert settings.jwt_secret_value() == HOST_ENV["CLAIMPAY_JWT_SECRET"]


def test_databases_point_at_the_postgres_service(services: dict[str, dict[str, Any]]) -> None:
    postgres = services["postgres"]["environment"]
    for name in APP_SERVICES:
        databases = json.loads(services[name]["environment"]["CLAIMPAY_DATABASES"])
        assert databases, f"{name} configures no database"
        for url in databases.values():
            parts = urlsplit(url)
            assert parts.scheme == "postgresql+psycopg"
            assert parts.hostname == "postgres"
            assert parts.port in (None, 5432)
            assert parts.username == postgres["POSTGRES_USER"]
            assert parts.password == postgres["POSTGRES_PASSWORD"]
            assert parts.path == f"/{postgres['POSTGRES_DB']}"


def test_redis_url_points_at_the_redis_service(services: dict[str, dict[str, Any]]) -> None:
    for name in APP_SERVICES:
        parts = urlsplit(services[name]["environment"]["CLAIMPAY_REDIS_URL"])
        assert parts.scheme == "redis"
        assert parts.hostname == "redis"
        assert parts.port in (None, 6379)


def test_secrets_come_from_the_host_and_are_required() -> None:
    for name, service in raw_compose()["services"].items():
        environment = service.get("environment", {})
        for secret in SECRETS:
            if secret in environment:
                assert re.fullmatch(rf"\$\{{{secret}:\?[^}}]+\}}", environment[secret]), (
                    f"{name}: {secret} must be ${{{secret}:?message}}, never a literal"
                )
    for secret in SECRETS:
        host_env = {key: value for key, value in HOST_ENV.items() if key != secret}
        with pytest.raises(MissingVariableError, match=secret):
            interpolate(raw_compose(), host_env)


def test_flower_requires_basic_auth_from_the_environment(
    services: dict[str, dict[str, Any]],
) -> None:
    flower = services["flower"]["environment"]
    assert flower["CLAIMPAY_FLOWER_BASIC_AUTH"] == HOST_ENV["CLAIMPAY_FLOWER_BASIC_AUTH"]
    assert flower["CLAIMPAY_ENV"] == "prod", "prod: claimpay flower refuses to run without auth"
    assert not {key for key in flower if key.startswith("FLOWER_")}, "auth comes from settings"
    _, args = resolve_cli(service_argv(services["flower"]))
    settings = Settings.model_validate(
        {"flower_basic_auth": flower["CLAIMPAY_FLOWER_BASIC_AUTH"]}
    ).model_copy(update={"env": "prod"})
    assert flower_environment(settings, option_value(args, "--address")) == {
        "FLOWER_BASIC_AUTH": HOST_ENV["CLAIMPAY_FLOWER_BASIC_AUTH"]
    }


def test_redis_and_postgres_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    assert "redis-cli ping" in " ".join(services["redis"]["healthcheck"]["test"])
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])


def test_redis_persists_with_an_append_only_file(services: dict[str, dict[str, Any]]) -> None:
    command = services["redis"]["command"]
    assert option_value(command, "--appendonly") == "yes"
    assert option_value(command, "--appendfsync") == "everysec"
    assert any(volume.endswith(":/data") for volume in services["redis"]["volumes"])


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        missing = named_volumes(service) - declared
        assert not missing, f"{name} uses undeclared volumes {sorted(missing)}"
    assert declared, "redis and postgres keep their data in named volumes"


def test_depends_on_names_existing_services_with_sound_conditions(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        targets = depends_on if isinstance(depends_on, dict) else {key: {} for key in depends_on}
        for target, spec in targets.items():
            assert target in services, f"{name} depends on unknown service {target!r}"
            condition = (spec or {}).get("condition", "service_started")
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
            elif condition == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} is not one-shot"
            else:
                assert condition == "service_started"


@pytest.mark.parametrize("name", ["api", "worker"])
def test_consumers_wait_for_redis_and_migrations(
    services: dict[str, dict[str, Any]], name: str
) -> None:
    depends_on = services[name]["depends_on"]
    assert depends_on["redis"]["condition"] == "service_healthy"
    assert depends_on["migrate"]["condition"] == "service_completed_successfully"


def test_worker_can_scale(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    command, _ = resolve_cli(service_argv(worker))
    assert command == "worker"


def test_dockerfile_base_images_are_pinned() -> None:
    stages: set[str] = set()
    images: list[str] = []
    for keyword, arguments in dockerfile_instructions():
        if keyword != "FROM":
            continue
        words = [word for word in arguments.split() if not word.startswith("--")]
        image = words[0]
        if len(words) >= 3 and words[1].lower() == "as":
            stages.add(words[2])
        if image in stages:
            continue
        images.append(image)
        _, _, tag = image.partition(":")
        assert tag, f"{image} is not pinned to a tag"
        assert tag != "latest", f"{image} is not pinned to a tag"
        assert "@sha256:" in image or re.search(r"\d+\.\d+\.\d+", tag), f"{image}: pin a patch"
    assert len(images) >= 2, "a builder stage and a runtime stage"
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", images[-1]), images[-1]


def test_dockerfile_installs_runtime_dependencies_only_with_constraints() -> None:
    runs = " ".join(args for keyword, args in dockerfile_instructions() if keyword == "RUN")
    assert re.search(r"(-c|--constraint)\s+\S*constraints\.txt", runs)
    assert "[dev]" not in runs


def test_dockerfile_switches_to_a_created_non_root_user() -> None:
    instructions = dockerfile_instructions()
    user = [args for keyword, args in instructions if keyword == "USER"]
    assert user, "the image must not run as root"
    name = user[-1].split(":")[0]
    assert name not in ("root", "0")
    runs = " ".join(args for keyword, args in instructions if keyword == "RUN")
    created = re.search(r"(useradd|adduser)\b[^&;]*", runs)
    assert created, "the Dockerfile creates its user"
    assert re.search(rf"(--uid {name}\b|\s{name}$)", created[0].strip()), created[0]
    assert ("WORKDIR", "/app") in instructions


def test_dockerfile_entrypoint_is_the_console_script() -> None:
    entrypoint = dockerfile_exec_form("ENTRYPOINT")
    assert entrypoint == ["claimpay"]
    module, _, function = console_scripts()[entrypoint[0]].partition(":")
    assert callable(getattr(importlib.import_module(module), function))


def test_dockerfile_copies_every_package_of_the_wheel() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*").rstrip(".") for pattern in patterns}
    copied = {
        args.split()[0]
        for keyword, args in dockerfile_instructions()
        if keyword == "COPY" and not args.startswith("--")
    }
    assert packages <= copied, f"the image would miss {sorted(packages - copied)}"


def test_dockerignore_keeps_local_state_and_secrets_out() -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "var", ".env"} <= patterns
