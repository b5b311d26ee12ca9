"""The production compose file and Dockerfile cannot run on a machine without Docker, so these
tests check what matters in them: the start-up order, healthchecks, that no secret is
written down, that Temporal gets our search attributes, the API and worker replicas with their
shared document store, that the Temporal cluster settings pass through, and that every
command the images run points at code that exists."""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.temporal import SEARCH_ATTRIBUTES

ROOT = Path(__file__).resolve().parent.parent
SECRET_NAME = re.compile(r"PASSWORD|PWD|SECRET|API_KEY|TOKEN", re.IGNORECASE)
VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?P<op>:?[-?])?(?P<arg>[^}]*)\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def published_ports(service: dict[str, Any]) -> set[int]:
    # "8000:8000", "127.0.0.1:8233:8080", "8000-8001:8000": the published port (or range)
    # is the one before the target.
    ports: set[int] = set()
    for spec in service.get("ports", []):
        first, _, last = str(spec).split(":")[-2].partition("-")
        ports.update(range(int(first), int(last or first) + 1))
    return ports


def default_of(value: str) -> str | None:
    """The value compose uses when the variable is unset: `${X:-default}` gives `default`."""
    match = VARIABLE.fullmatch(value)
    if match is None:
        return value
    return match["arg"] if match["op"] == ":-" else None


def test_every_dependency_is_a_service(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown service {dependency}"


def test_dependencies_wait_for_health_or_completion(services: dict[str, Any]) -> None:
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions"
        for dependency, spec in depends_on.items():
            condition = spec["condition"]
            assert condition in {"service_healthy", "service_completed_successfully"}
            if condition == "service_healthy":
                assert "healthcheck" in services[dependency], (
                    f"{name} waits for {dependency} to be healthy, which has no healthcheck"
                )


@pytest.mark.parametrize("name", ["postgresql", "temporal", "api"])
def test_long_running_services_have_healthchecks(services: dict[str, Any], name: str) -> None:
    assert services[name]["healthcheck"]["test"]


def test_api_healthcheck_probes_healthz(services: dict[str, Any]) -> None:
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])


def test_api_worker_and_migrations_share_one_production_image(
    services: dict[str, Any],
) -> None:
    app = [services[name] for name in ("api", "worker", "migrate")]
    assert len({service["image"] for service in app}) == 1
    for service in app:
        env = environment(service)
        assert env["CASEDESK_ENVIRONMENT"] == "production"
        assert default_of(env["CASEDESK_TEMPORAL_ADDRESS"]) == "temporal:7233"
        for name in ("DATABASE_URL", "CASEDESK_LINK_SECRET", "CASEDESK_PUBLIC_BASE_URL"):
            assert env.get(name), f"production settings require {name}"


def test_app_starts_after_migrations_and_temporal_registration(
    services: dict[str, Any],
) -> None:
    for name in ("api", "worker"):
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully"
        assert depends_on["temporal-register"]["condition"] == "service_completed_successfully"


def test_no_secret_is_written_down(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key):
                assert VARIABLE.fullmatch(value), f"{name}.{key} must come from a variable"
        url = environment(service).get("DATABASE_URL", "")
        if "@" in url:
            credentials = url.split("://", 1)[1].rsplit("@", 1)[0]
            literal = VARIABLE.sub("", credentials)  # what is left once variables are gone
            assert ":" in literal and not literal.split(":", 1)[1], (
                f"{name}: the DATABASE_URL password must come from a variable"
            )


@pytest.mark.parametrize(
    "variable", ["CASEDESK_LINK_SECRET", "CASEDESK_CODEC_KEYS", "POSTGRES_PASSWORD"]
)
def test_required_secrets_have_no_default(services: dict[str, Any], variable: str) -> None:
    uses = [
        match
        for service in services.values()
        for value in environment(service).values()
        for match in VARIABLE.finditer(value)
        if match["name"] == variable
    ]
    assert uses, f"{variable} is not used"
    assert all(match["op"] == ":?" for match in uses), f"{variable} must be required (:?)"


def test_link_secret_comes_from_its_own_variable(services: dict[str, Any]) -> None:
    value = environment(services["api"])["CASEDESK_LINK_SECRET"]
    match = VARIABLE.fullmatch(value)
    assert match and match["name"] == "CASEDESK_LINK_SECRET"


def test_the_ui_decodes_through_the_apis_codec_server_with_credentials(
    services: dict[str, Any],
) -> None:
    ui = environment(services["temporal-ui"])
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == "${CASEDESK_PUBLIC_BASE_URL}/codec"
    assert ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"] == "true"
    assert "CASEDESK_CODEC_KEYS" in environment(services["worker"])


def test_registered_search_attributes_match_the_code(services: dict[str, Any]) -> None:
    script = " ".join(command_of(services["temporal-register"]))
    registered = dict(re.findall(r"--name\s+(\w+)\s+(?:\\\s*)?--type\s+(\w+)", script))
    kinds = {"KEYWORD": "Keyword", "DATETIME": "Datetime", "BOOL": "Bool"}
    expected = {key.name: kinds[key.indexed_value_type.name] for key in SEARCH_ATTRIBUTES}
    assert registered == expected


def test_temporal_runs_on_postgresql(services: dict[str, Any]) -> None:
    assert environment(services["temporal"])["DB"] == "postgres12"
    assert services["postgresql"]["image"].startswith("postgres:16")


def test_api_and_temporal_ui_are_published(services: dict[str, Any]) -> None:
    assert 8000 in published_ports(services["api"])
    assert 8233 in published_ports(services["temporal-ui"])


# --- replicas and a Temporal cluster -------------------------------------------------------


def test_two_workers_poll_the_task_queue(services: dict[str, Any]) -> None:
    assert services["worker"]["deploy"]["replicas"] == 2


def test_every_api_replica_has_its_own_host_port(services: dict[str, Any]) -> None:
    replicas = services["api"].get("deploy", {}).get("replicas", 1)

    assert replicas >= 2
    assert len(published_ports(services["api"])) == replicas
    assert published_ports(services["api"]) >= {8000}


def test_replicas_share_the_document_store(services: dict[str, Any]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    data_dir = re.search(r"CASEDESK_DATA_DIR=(\S+)", dockerfile)
    assert data_dir, "the image sets CASEDESK_DATA_DIR"
    for name in ("api", "worker"):
        mounts = {
            str(volume).split(":")[1]: str(volume).split(":")[0]
            for volume in services[name]["volumes"]
        }
        assert mounts.get(data_dir[1]) == "casedesk-data", f"{name} must mount the shared store"


@pytest.mark.parametrize(
    "variable",
    [
        "CASEDESK_TEMPORAL_ADDRESS",
        "CASEDESK_TEMPORAL_NAMESPACE",
        "CASEDESK_TEMPORAL_TLS",
        "CASEDESK_TEMPORAL_TLS_CLIENT_CERT_PATH",
        "CASEDESK_TEMPORAL_TLS_CLIENT_KEY_PATH",
        "CASEDESK_TEMPORAL_TLS_SERVER_CA_CERT_PATH",
        "CASEDESK_TEMPORAL_TLS_SERVER_NAME",
        "CASEDESK_TEMPORAL_API_KEY",
        "CASEDESK_DATABASE_POOL_SIZE",
        "CASEDESK_DATABASE_MAX_OVERFLOW",
        "CASEDESK_WORKER_MAX_CONCURRENT_WORKFLOW_TASKS",
        "CASEDESK_WORKER_MAX_CONCURRENT_ACTIVITIES",
        "CASEDESK_WORKER_MAX_CACHED_WORKFLOWS",
    ],
)
def test_cluster_settings_are_passed_through(services: dict[str, Any], variable: str) -> None:
    for name in ("api", "worker", "migrate"):
        match = VARIABLE.fullmatch(environment(services[name]).get(variable, ""))
        assert match and match["name"] == variable, f"{name} must take {variable} from outside"
        assert match["op"] == ":-", f"{variable} is optional in {name}"


def test_unset_cluster_settings_leave_the_bundled_server_in_plain_text(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.settings import Settings
    from core.temporal import connect_options

    env = environment(services["worker"])
    for key, value in env.items():
        default = default_of(value)
        if default is not None and not key.startswith("POSTGRES"):
            monkeypatch.setenv(key, default)
    monkeypatch.setenv("DATABASE_URL", "postgresql://casedesk@postgresql:5432/casedesk")
    monkeypatch.setenv("CASEDESK_LINK_SECRET", "x" * 40)
    monkeypatch.setenv("CASEDESK_CODEC_KEYS", "k=" + "A" * 43 + "=")
    monkeypatch.setenv("CASEDESK_PUBLIC_BASE_URL", "https://casedesk.example.com")

    options = connect_options(Settings())

    assert options.target_host == "temporal:7233"
    assert options.tls is False and options.api_key is None


# --- what the images run exists ----------------------------------------------------------


def dockerfile_cmd() -> list[str]:
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    cmd = [line for line in lines if line.startswith("CMD ")]
    assert len(cmd) == 1, "the Dockerfile needs one exec-form CMD"
    return json.loads(cmd[0].removeprefix("CMD "))


def python_target(argv: list[str]) -> tuple[Path, str | None]:
    """The file a `python ...` command line runs, and the attribute it needs there."""
    assert argv[0] == "python", f"not a python command: {argv}"
    if argv[1] != "-m":
        return ROOT / argv[1], "main" if argv[1] == "worker.py" else None
    module = argv[2]
    if module == "uvicorn":
        module, attribute = argv[3].split(":")
        return _module_file(module), attribute
    return _module_file(module), None


def _module_file(module: str) -> Path:
    base = ROOT.joinpath(*module.split("."))
    return base / "__main__.py" if base.is_dir() else base.with_suffix(".py")


def defines(path: Path, name: str) -> bool:
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name == name:
                return True
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return True
    return False


def app_commands(services: dict[str, Any]) -> dict[str, list[str]]:
    commands = {"Dockerfile CMD": dockerfile_cmd()}
    for name in ("api", "worker", "migrate"):
        commands[name] = command_of(services[name])
    return commands


def test_image_commands_point_at_code_that_exists(services: dict[str, Any]) -> None:
    for where, argv in app_commands(services).items():
        path, attribute = python_target(argv)
        assert path.exists(), f"{where} runs {path.relative_to(ROOT)}, which does not exist"
        if attribute:
            assert defines(path, attribute), f"{where}: {path.name} has no {attribute}"


def test_migrate_entry_point_runs_main() -> None:
    source = (ROOT / "core" / "migrate.py").read_text()
    assert 'if __name__ == "__main__":' in source and defines(ROOT / "core/migrate.py", "main")


def test_image_installs_without_dev_extras_and_runs_as_a_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert "[dev]" not in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE)


def test_secrets_and_local_state_stay_out_of_the_image() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".env", ".venv", ".data", ".git"} <= ignored
