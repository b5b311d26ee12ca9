"""Ready-made Temporal UI list views over the search attributes every case sets
(`core.temporal`): each is a visibility query and the UI's workflow-list URL that runs it.

The README's "Temporal UI views" lists the same queries; the console's case list links them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from core.settings import Settings
from core.temporal import CASE_STATUS, CASE_TYPE, CLIENT_ID, DEADLINE_AT, DEPOT_ID, ESCALATED
from schemas.case_types import spec_for
from schemas.enums import CaseStatus, CaseType

OPEN = (
    f"{CASE_STATUS.name} != '{CaseStatus.CLOSED.value}' "
    f"AND {CASE_STATUS.name} != '{CaseStatus.CANCELLED.value}'"
)
"""A case not closed or cancelled (a closed case keeps its last DeadlineAt)."""


@dataclass(frozen=True)
class TemporalView:
    title: str
    query: str
    url: str


def literal(value: str) -> str:
    """A visibility query string literal (single quotes; a quote inside is doubled)."""
    return "'" + value.replace("'", "''") + "'"


def list_url(settings: Settings, query: str) -> str:
    """The Temporal UI's workflow list running `query`, URL-encoded (spaces as %20)."""
    return (
        f"{settings.resolved_temporal_ui_url}/namespaces/{quote(settings.temporal_namespace)}"
        f"/workflows?query={quote(query, safe='')}"
    )


def overdue_query(now: datetime) -> str:
    at = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{OPEN} AND {DEADLINE_AT.name} < {literal(at)}"


def escalated_query(case_type: CaseType | None = None, client_id: str | None = None) -> str:
    parts = [f"{ESCALATED.name} = true", OPEN]
    if case_type:
        parts.insert(0, f"{CASE_TYPE.name} = {literal(case_type.value)}")
    if client_id:
        parts.insert(0, f"{CLIENT_ID.name} = {literal(client_id)}")
    return " AND ".join(parts)


def depot_query(depot_id: str) -> str:
    return f"{DEPOT_ID.name} = {literal(depot_id)} AND {OPEN}"


def waiting_query(case_type: CaseType) -> str:
    """The type's cases waiting on someone: every open status of the type but `open`."""
    waiting = [
        status.value
        for status in spec_for(case_type).statuses
        if status is not CaseStatus.OPEN and not status.is_terminal
    ]
    statuses = ", ".join(literal(status) for status in waiting)
    return f"{CASE_TYPE.name} = {literal(case_type.value)} AND {CASE_STATUS.name} IN ({statuses})"


def temporal_views(
    settings: Settings,
    now: datetime,
    *,
    client_id: str | None = None,
    case_type: CaseType | None = None,
    depot_ids: tuple[str, ...] = (),
) -> list[TemporalView]:
    """The views for the console's case list: overdue and escalated cases, the escalated
    claims of the client filtered on (or of every client), the waiting cases of the type
    filtered on (or of each type), and each depot's open cases."""
    views = [
        ("Overdue open cases (deadline before now)", overdue_query(now)),
        ("Escalated open cases", escalated_query()),
    ]
    claims = "Escalated damage claims" + (f" of {client_id}" if client_id else "")
    views.append((claims, escalated_query(CaseType.DAMAGE_CLAIM, client_id)))
    for kind in [case_type] if case_type else list(CaseType):
        views.append((f"Waiting {kind.value.replace('_', ' ')} cases", waiting_query(kind)))
    views += [(f"Open cases of depot {depot}", depot_query(depot)) for depot in depot_ids]
    return [TemporalView(title, query, list_url(settings, query)) for title, query in views]
