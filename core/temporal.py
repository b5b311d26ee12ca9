"""The Temporal side of casedesk: client factory (every payload encrypted, `core.codec`) and
the search attributes every case sets.

Search attributes are stored unencrypted and visible in the UI, so they carry ids, types,
statuses and dates only, never personal data."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client, Interceptor
from temporalio.common import SearchAttributeKey
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from core.codec import EncryptionCodec, data_converter
from core.settings import Settings

CASE_TYPE = SearchAttributeKey.for_keyword("CaseType")
CASE_STATUS = SearchAttributeKey.for_keyword("CaseStatus")
CLIENT_ID = SearchAttributeKey.for_keyword("ClientId")
DEPOT_ID = SearchAttributeKey.for_keyword("DepotId")
DEADLINE_AT = SearchAttributeKey.for_datetime("DeadlineAt")
ESCALATED = SearchAttributeKey.for_bool("Escalated")
# Set by Temporal on every workflow a schedule starts: the action's nominal time.
SCHEDULED_START_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")

SEARCH_ATTRIBUTES: tuple[SearchAttributeKey, ...] = (
    CASE_TYPE,
    CASE_STATUS,
    CLIENT_ID,
    DEPOT_ID,
    DEADLINE_AT,
    ESCALATED,
)


def search_attribute_flags() -> list[str]:
    """`temporal server start-dev` flags that register our search attributes."""
    kinds = {"KEYWORD": "Keyword", "DATETIME": "Datetime", "BOOL": "Bool"}
    return [
        arg
        for key in SEARCH_ATTRIBUTES
        for arg in ("--search-attribute", f"{key.name}={kinds[key.indexed_value_type.name]}")
    ]


def converter_for(settings: Settings) -> DataConverter:
    """Pydantic models as payloads, encrypted with the configured codec keys."""
    return data_converter(EncryptionCodec(settings.resolved_codec_keys))


class TemporalConfigError(ValueError):
    """A Temporal connection setting that cannot be used; the message names it."""


@dataclass(frozen=True)
class ConnectOptions:
    """Where and how the API and the worker reach Temporal: a local dev server in plain
    text, a self-hosted cluster over TLS or mTLS, or Temporal Cloud with mTLS or an API key."""

    target_host: str
    namespace: str
    tls: TLSConfig | bool
    api_key: str | None = None

    def __repr__(self) -> str:  # never the API key or the private key, not even in a log
        if isinstance(self.tls, TLSConfig):
            tls = "mTLS" if self.tls.client_cert else "TLS with a configured CA or name"
        else:
            tls = "TLS" if self.tls else "plain text"
        auth = ", API key" if self.api_key else ""
        return f"ConnectOptions({self.target_host}, namespace {self.namespace}, {tls}{auth})"


def connect_options(settings: Settings) -> ConnectOptions:
    """The connection settings made into the SDK's options, certificate files read. Fails
    with TemporalConfigError naming the setting whose file is missing, unreadable or not
    PEM, so the process stops at start-up instead of retrying a connection forever."""
    tls: TLSConfig | bool = False
    if settings.temporal_uses_tls:
        files = {
            "CASEDESK_TEMPORAL_TLS_CLIENT_CERT_PATH": settings.temporal_tls_client_cert_path,
            "CASEDESK_TEMPORAL_TLS_CLIENT_KEY_PATH": settings.temporal_tls_client_key_path,
            "CASEDESK_TEMPORAL_TLS_SERVER_CA_CERT_PATH": settings.temporal_tls_server_ca_cert_path,
        }
        pem = {name: _read_pem(name, path) for name, path in files.items() if path}
        if pem or settings.temporal_tls_server_name:
            tls = TLSConfig(
                client_cert=pem.get("CASEDESK_TEMPORAL_TLS_CLIENT_CERT_PATH"),
                client_private_key=pem.get("CASEDESK_TEMPORAL_TLS_CLIENT_KEY_PATH"),
                server_root_ca_cert=pem.get("CASEDESK_TEMPORAL_TLS_SERVER_CA_CERT_PATH"),
                domain=settings.temporal_tls_server_name,
            )
        else:
            tls = True  # the system's root certificates, the address's host name
    api_key = settings.temporal_api_key
    return ConnectOptions(
        target_host=settings.temporal_address,
        namespace=settings.temporal_namespace,
        tls=tls,
        api_key=api_key.get_secret_value() if api_key else None,
    )


def _read_pem(setting: str, path: Path) -> bytes:
    try:
        content = path.read_bytes()
    except OSError as error:
        raise TemporalConfigError(
            f"{setting}: cannot read {path} ({error.strerror or error})"
        ) from None
    if b"-----BEGIN " not in content:
        raise TemporalConfigError(f"{setting}: {path} is not a PEM file (no -----BEGIN line)")
    return content


async def connect(
    settings: Settings,
    *,
    lazy: bool = False,
    interceptors: Sequence[Interceptor] = (),
    runtime: Runtime | None = None,
) -> Client:
    """A client for the configured server and namespace whose every payload is encrypted
    (the worker built on it encrypts what workflows and activities hand back, too). The API
    and the worker both connect here, so they reach Temporal the same way. `interceptors`
    (tracing, `core.telemetry`) are inherited by a worker built on it; `runtime` is where
    the SDK records its metrics (the default runtime records none)."""
    options = connect_options(settings)
    return await Client.connect(
        options.target_host,
        namespace=options.namespace,
        tls=options.tls,
        api_key=options.api_key,
        data_converter=converter_for(settings),
        lazy=lazy,
        interceptors=interceptors,
        runtime=runtime,
    )
