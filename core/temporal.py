"""The Temporal side of casedesk: client factory (every payload encrypted, `core.codec`) and
the search attributes every case sets.

Search attributes are stored unencrypted and visible in the UI, so they carry ids, types,
statuses and dates only, never personal data."""

from __future__ import annotations

from collections.abc import Sequence

from temporalio.client import Client, Interceptor
from temporalio.common import SearchAttributeKey
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime

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


async def connect(
    settings: Settings,
    *,
    lazy: bool = False,
    interceptors: Sequence[Interceptor] = (),
    runtime: Runtime | None = None,
) -> Client:
    """A client for the configured server and namespace whose every payload is encrypted
    (the worker built on it encrypts what workflows and activities hand back, too).
    `interceptors` (tracing, `core.telemetry`) are inherited by a worker built on it;
    `runtime` is where the SDK records its metrics (the default runtime records none)."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=converter_for(settings),
        lazy=lazy,
        interceptors=interceptors,
        runtime=runtime,
    )
