"""The Temporal side of casedesk: client factory and the search attributes every case sets.

Search attributes are stored unencrypted and visible in the UI, so they carry ids, types,
statuses and dates only, never personal data."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter

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


async def connect(address: str, namespace: str, *, lazy: bool = False) -> Client:
    """A client with the pydantic data converter (workflow payloads are pydantic models)."""
    return await Client.connect(
        address, namespace=namespace, data_converter=pydantic_data_converter, lazy=lazy
    )
