"""`make run`'s pieces that can be checked quickly: the command lines it runs, the first-run
bootstrap (migrations, demo data, dev admin key) and the supervision of child processes.
The whole stack (dev server + worker + API) is exercised by the end-to-end tests."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import func, select

from core.bootstrap import DEMO_CLIENT_ID, DEMO_DEPOT_ID, bootstrap, dev_key_path
from core.db import make_engine, make_session_factory
from core.devstack import (
    BootstrapResult,
    Child,
    DevStack,
    DevStackError,
    api_command,
    banner,
    find_temporal_cli,
    split_address,
    start_child,
    temporal_command,
    worker_command,
    worker_metrics_address,
)
from core.security import hash_api_key
from core.settings import Settings
from core.temporal import SEARCH_ATTRIBUTES
from schemas.enums import ContactKind, Role
from schemas.tables import (
    ApiKey,
    Client,
    ClientContact,
    Depot,
    Driver,
    PickupPoint,
    RateAgreementVersion,
)


@pytest.fixture(autouse=True)
def _no_database_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "CASEDESK_DATABASE_URL", "CASEDESK_ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)


def dev_settings(data_dir: Path, database_url: str | None = None, **values: object) -> Settings:
    fields: dict[str, object] = {"data_dir": data_dir, "environment": "development", **values}
    if database_url:
        fields["DATABASE_URL"] = database_url
    return Settings(**fields)  # type: ignore[arg-type]


# --- command lines ---------------------------------------------------------------------------


def test_each_worker_serves_its_sdk_metrics_on_its_own_port(tmp_path: Path):
    on = dev_settings(tmp_path, worker_metrics_address="127.0.0.1:9464")

    assert [worker_metrics_address(on, n) for n in (1, 2, 3)] == [
        "127.0.0.1:9464",
        "127.0.0.1:9465",
        "127.0.0.1:9466",
    ]
    assert worker_metrics_address(dev_settings(tmp_path), 1) is None


def test_temporal_dev_server_persists_under_the_data_dir_with_our_search_attributes(
    tmp_path: Path,
) -> None:
    settings = dev_settings(tmp_path, temporal_address="127.0.0.1:17233", temporal_ui_port=18233)

    command = temporal_command(settings, "/opt/temporal")

    assert command[:3] == ["/opt/temporal", "server", "start-dev"]
    options = dict(zip(command[3::2], command[4::2], strict=False))
    assert options["--db-filename"] == str(tmp_path / "temporal.db")
    assert options["--ip"] == "127.0.0.1"
    assert options["--port"] == "17233"
    assert options["--ui-port"] == "18233"
    assert options["--namespace"] == "default"
    registered = {
        command[i + 1].split("=")[0] for i, arg in enumerate(command) if arg == "--search-attribute"
    }
    assert registered == {key.name for key in SEARCH_ATTRIBUTES}
    pragmas = [command[i + 1] for i, arg in enumerate(command) if arg == "--sqlite-pragma"]
    assert pragmas == ["journal_mode=wal", "synchronous=normal"]  # bursts of starts: WAL


def test_api_runs_the_app_factory_on_the_configured_address(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path, api_host="0.0.0.0", api_port=8123)  # noqa: S104

    command = api_command(settings)

    assert command[:3] == [sys.executable, "-m", "uvicorn"]
    assert "api.main:create_app" in command and "--factory" in command
    assert command[command.index("--host") + 1] == "0.0.0.0"  # noqa: S104
    assert command[command.index("--port") + 1] == "8123"


def test_worker_runs_with_the_same_interpreter(tmp_path: Path) -> None:
    assert worker_command(dev_settings(tmp_path)) == [sys.executable, "worker.py"]


def test_configured_temporal_cli_wins(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path, temporal_cli="/somewhere/temporal")

    assert find_temporal_cli(settings) == "/somewhere/temporal"


@pytest.mark.parametrize("address", ["7233", "localhost", "host:port"])
def test_a_temporal_address_without_a_port_is_refused(address: str) -> None:
    with pytest.raises(DevStackError, match="host:port"):
        split_address(address)


def test_banner_shows_the_urls_the_key_and_where_it_is_stored(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path)
    result = BootstrapResult(
        database_url="sqlite+aiosqlite:///x.db",
        seeded=True,
        api_key="cd_secret",
        api_key_path=tmp_path / "dev-api-key",
        api_key_created=True,
    )

    text = banner(settings, result, [])

    assert "http://127.0.0.1:8000/docs" in text
    assert "http://127.0.0.1:8233" in text
    assert "cd_secret" in text
    assert str(tmp_path / "dev-api-key") in text
    assert str(tmp_path.resolve()) in text


# --- bootstrap -------------------------------------------------------------------------------


async def _count(url: str, table: type) -> int:
    engine = make_engine(url)
    try:
        async with make_session_factory(engine)() as session:
            return (await session.exec(select(func.count()).select_from(table))).one()
    finally:
        await engine.dispose()


async def test_first_run_seeds_the_demo_data(tmp_path: Path, database_url: str) -> None:
    settings = dev_settings(tmp_path, database_url)

    result = await bootstrap(settings)

    assert result.seeded
    engine = make_engine(database_url)
    async with make_session_factory(engine)() as session:
        client = await session.get(Client, DEMO_CLIENT_ID)
        assert client is not None and client.name == "Demo Shop Ltd"
        assert client.timezone == "Europe/London"
        [agreement] = (await session.exec(select(RateAgreementVersion))).all()
        assert (agreement.client_id, agreement.currency) == (DEMO_CLIENT_ID, "GBP")
        assert agreement.base_rate_per_stop == Decimal("3.50")
        contacts = (await session.exec(select(ClientContact))).all()
        assert {contact.kind for contact in contacts} == set(ContactKind)
        depot = await session.get(Depot, DEMO_DEPOT_ID)
        assert depot is not None and depot.dispatcher_email and depot.timezone != "UTC"
        pickup_points = (await session.exec(select(PickupPoint))).all()
        drivers = (await session.exec(select(Driver))).all()
    await engine.dispose()
    assert len(pickup_points) == 2
    assert len(drivers) == 3
    emails = [c.email for c in contacts] + [d.email for d in drivers] + [depot.dispatcher_email]
    assert all(email.endswith("@example.com") for email in emails)


async def test_first_run_creates_a_dev_admin_key_readable_only_by_the_owner(
    tmp_path: Path,
) -> None:
    settings = dev_settings(tmp_path)

    result = await bootstrap(settings)

    path = dev_key_path(settings)
    assert result.api_key_created and result.api_key_path == path
    assert path.read_text().strip() == result.api_key
    assert path.stat().st_mode & 0o777 == 0o600
    engine = make_engine(settings.resolved_database_url)
    async with make_session_factory(engine)() as session:
        keys = (await session.exec(select(ApiKey))).all()
    await engine.dispose()
    assert len(keys) == 1
    assert keys[0].role == Role.ADMIN
    assert keys[0].key_hash == hash_api_key(result.api_key or "")
    assert result.api_key not in {keys[0].key_hash, keys[0].name}


async def test_second_run_reuses_the_key_and_seeds_nothing(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path)
    first = await bootstrap(settings)

    second = await bootstrap(settings)

    assert not second.seeded and not second.api_key_created
    assert second.api_key == first.api_key
    url = settings.resolved_database_url
    assert await _count(url, Client) == 1
    assert await _count(url, Driver) == 3
    assert await _count(url, ApiKey) == 1


async def test_a_key_file_unknown_to_the_database_is_replaced(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path)
    await bootstrap(settings)
    dev_key_path(settings).write_text("cd_not-a-key-we-issued\n")

    result = await bootstrap(settings)

    assert result.api_key_created
    assert result.api_key != "cd_not-a-key-we-issued"
    assert dev_key_path(settings).read_text().strip() == result.api_key
    assert await _count(settings.resolved_database_url, ApiKey) == 2


async def test_bootstrap_creates_the_link_secret_before_the_worker_and_the_api_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CASEDESK_LINK_SECRET", raising=False)
    settings = dev_settings(tmp_path)

    await bootstrap(settings)

    path = tmp_path / "link-secret"
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(path.read_text()) >= 32
    # What the worker and the API (their own Settings) will read.
    assert dev_settings(tmp_path).resolved_link_secret == path.read_bytes()


async def test_outside_development_only_migrations_run(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, environment="test")

    result = await bootstrap(settings)

    assert not result.seeded and result.api_key is None
    assert not dev_key_path(settings).exists()
    assert not (tmp_path / "link-secret").exists()
    assert await _count(settings.resolved_database_url, Client) == 0


# --- the link secret ------------------------------------------------------------------------


def _resolve_together(data_dir: Path, threads: int) -> list[bytes]:
    """`threads` processes' worth of Settings resolving the link secret at the same moment."""
    barrier = threading.Barrier(threads)
    found: list[bytes] = []

    def resolve() -> None:
        settings = dev_settings(data_dir)
        barrier.wait()
        found.append(settings.resolved_link_secret)

    workers = [threading.Thread(target=resolve) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    return found


def test_concurrent_first_uses_of_the_link_secret_agree_on_one_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CASEDESK_LINK_SECRET", raising=False)
    for attempt in range(30):
        data_dir = tmp_path / f"fresh-{attempt}" / "data"  # the directory does not exist yet

        found = _resolve_together(data_dir, threads=4)

        path = data_dir / "link-secret"
        assert len(found) == 4
        assert set(found) == {path.read_bytes().strip()}
        assert len(found[0]) >= 32
        assert path.stat().st_mode & 0o777 == 0o600


def test_link_secret_file_is_created_owner_only_even_with_a_permissive_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CASEDESK_LINK_SECRET", raising=False)
    created_modes: list[int] = []
    real_open = os.open

    def recording_open(path, flags, mode=0o777, *args, **kwargs):  # type: ignore[no-untyped-def]
        fd = real_open(path, flags, mode, *args, **kwargs)
        if str(path).endswith("link-secret") and flags & os.O_CREAT:
            created_modes.append(os.fstat(fd).st_mode & 0o777)  # before anything is written
        return fd

    monkeypatch.setattr(os, "open", recording_open)
    old_umask = os.umask(0)
    try:
        secret = dev_settings(tmp_path).resolved_link_secret
    finally:
        os.umask(old_umask)

    assert created_modes == [0o600]
    assert (tmp_path / "link-secret").stat().st_mode & 0o777 == 0o600
    assert dev_settings(tmp_path).resolved_link_secret == secret


def test_a_link_secret_still_being_written_is_waited_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CASEDESK_LINK_SECRET", raising=False)
    path = tmp_path / "link-secret"
    path.touch(mode=0o600)  # another process created it and has not written yet
    writer = threading.Timer(0.2, path.write_text, args=("secret-from-the-other-process",))
    writer.start()

    secret = dev_settings(tmp_path).resolved_link_secret
    writer.join()

    assert secret == b"secret-from-the-other-process"


def test_a_configured_link_secret_is_used_and_nothing_is_written(tmp_path: Path) -> None:
    settings = dev_settings(tmp_path, link_secret="x" * 40)

    assert settings.resolved_link_secret == b"x" * 40
    assert not (tmp_path / "link-secret").exists()


# --- supervision -----------------------------------------------------------------------------


def _python_child(tmp_path: Path, name: str, code: str) -> Child:
    return start_child(
        name,
        [sys.executable, "-c", code],
        tmp_path / f"{name}.log",
        echo=True,
        stop_signal=signal.SIGINT,  # what make run sends the worker and the API
    )


def test_when_a_child_dies_the_others_are_stopped_and_the_exit_is_non_zero(
    tmp_path: Path,
) -> None:
    stack = DevStack(dev_settings(tmp_path))
    long_running = _python_child(tmp_path, "server", "import time; time.sleep(60)")
    failing = _python_child(tmp_path, "worker", "print('boom'); raise SystemExit(3)")
    stack.children += [long_running, failing]

    status = stack._supervise()
    stack.stop()

    assert status == 1
    assert failing.process.returncode == 3
    assert not long_running.running
    assert "boom" in (tmp_path / "worker.log").read_text()


FAKE_WORKER = (
    "import os, signal, sys, time\n"
    "def stop(signum, frame):\n"
    "    print('stopped', time.time_ns(), flush=True); sys.exit(0)\n"
    "signal.signal(signal.SIGINT, stop)\n"
    "signal.signal(signal.SIGTERM, stop)\n"
    "print('polling', os.getpid(), flush=True)\n"
    "time.sleep(60)\n"
)


def _wait_for_line(log: Path, word: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines() if log.exists() else []:
            if line.startswith(word):
                return line
        time.sleep(0.05)
    raise AssertionError(f"{log} has no {word!r} line")


def test_one_worker_per_cpu_core_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CASEDESK_DEV_WORKERS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)

    assert dev_settings(tmp_path).resolved_dev_workers == 6
    assert dev_settings(tmp_path, dev_workers=2).resolved_dev_workers == 2


def test_every_worker_process_polls_the_same_queue_with_its_own_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands: list[list[str]] = []

    def fake_worker_command(settings: Settings) -> list[str]:
        commands.append(worker_command(settings))  # what each would really run
        return [sys.executable, "-c", FAKE_WORKER]

    monkeypatch.setattr("core.devstack.worker_command", fake_worker_command)
    stack = DevStack(dev_settings(tmp_path, dev_workers=3))

    stack._start_workers()
    try:
        logs = [stack.logs / f"worker-{n}.log" for n in (1, 2, 3)]
        pids = {_wait_for_line(log, "polling").split()[1] for log in logs}
    finally:
        stack.stop()

    assert [child.name for child in stack.children] == ["worker-1", "worker-2", "worker-3"]
    assert [child.log_path for child in stack.children] == logs
    assert len(pids) == 3  # three processes, each writing only its own log
    assert commands == [[sys.executable, "worker.py"]] * 3  # the same settings, the same queue
    assert not any(child.running for child in stack.children)
    assert all(child.process.returncode == 0 for child in stack.children)  # a clean stop


def test_stopping_stops_every_worker_and_the_api_before_temporal(tmp_path: Path) -> None:
    stack = DevStack(dev_settings(tmp_path))
    temporal = start_child(
        "temporal",
        [sys.executable, "-c", FAKE_WORKER],
        tmp_path / "temporal.log",
        echo=False,
        stop_signal=signal.SIGTERM,
    )
    apps = [_python_child(tmp_path, name, FAKE_WORKER) for name in ("worker-1", "worker-2", "api")]
    stack.children += [temporal, *apps]
    for child in stack.children:
        _wait_for_line(child.log_path, "polling")

    stack.stop()

    stopped_at = {
        child.name: int(_wait_for_line(child.log_path, "stopped").split()[1])
        for child in stack.children
    }
    assert not any(child.running for child in stack.children)
    assert stopped_at["temporal"] > max(stopped_at[app.name] for app in apps)


def test_make_run_refuses_cluster_connection_settings(tmp_path: Path) -> None:
    stack = DevStack(dev_settings(tmp_path, temporal_api_key="from-temporal-cloud"))

    with pytest.raises(DevStackError, match="local Temporal dev server, which speaks plain text"):
        stack.run()

    assert stack.children == []  # nothing was started


def test_banner_counts_the_worker_processes(tmp_path: Path) -> None:
    result = BootstrapResult(
        database_url="sqlite+aiosqlite:///x.db",
        seeded=False,
        api_key=None,
        api_key_path=tmp_path / "dev-api-key",
        api_key_created=False,
    )
    stack = DevStack(dev_settings(tmp_path))
    workers = [_python_child(tmp_path, f"worker-{n}", "pass") for n in (1, 2)]
    stack.children += workers

    text = banner(stack.settings, result, workers)
    stack.stop()

    assert "2 processes polling task queue casedesk" in text
    assert str(tmp_path / "worker-1.log") in text and str(tmp_path / "worker-2.log") in text


def test_a_child_ignoring_the_stop_signal_is_killed(tmp_path: Path) -> None:
    stubborn = _python_child(
        tmp_path,
        "stubborn",
        "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)",
    )
    log = tmp_path / "stubborn.log"
    deadline = time.monotonic() + 30
    while "ready" not in log.read_text().splitlines() and time.monotonic() < deadline:
        time.sleep(0.05)

    stubborn.stop(timeout=0.5)

    assert stubborn.process.returncode == -9


# --- documentation ---------------------------------------------------------------------------


def test_readme_documents_every_setting() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    prefix = Settings.model_config.get("env_prefix", "")
    for name, field in Settings.model_fields.items():
        aliases = getattr(field.validation_alias, "choices", None) or [f"{prefix}{name}"]
        assert any(f"`{alias.upper()}`" in readme for alias in aliases), (
            f"README.md's configuration table is missing {name}"
        )


def test_readme_starts_with_the_two_commands() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    first_block = readme.split("```sh", 1)[1].split("```", 1)[0]
    assert "make run" in first_block and "make test" in first_block
