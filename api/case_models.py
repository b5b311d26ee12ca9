"""What the case endpoints return (the bodies they take are in `schemas.requests`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from schemas.enums import CaseStatus, CaseType, MessageStatus, Resolution

# --- views --------------------------------------------------------------------------------


class CaseSort(StrEnum):
    """How `GET /cases` orders its list: a column, descending with a leading `-`."""

    OPENED_DESC = "-opened"
    OPENED = "opened"
    DEADLINE = "deadline"
    DEADLINE_DESC = "-deadline"
    UPDATED_DESC = "-updated"
    UPDATED = "updated"

    @property
    def descending(self) -> bool:
        return self.value.startswith("-")

    @property
    def column(self) -> str:
        return f"{self.value.removeprefix('-')}_at"


class CaseSummary(BaseModel):
    case_id: str
    type: CaseType
    status: CaseStatus
    resolution: Resolution | None
    business_key: str
    client_id: str | None = Field(description="The client the case is for (none for drivers).")
    depot_id: str | None = Field(None, description="The depot the case belongs to.")
    subject: str
    opened_at: datetime
    closed_at: datetime | None
    deadline_at: datetime | None
    overdue: bool = Field(description="The deadline has passed and the case is still open.")
    escalated: bool
    escalation_reason: str | None = None
    assignee: str | None
    next_step: str | None
    next_step_at: datetime | None
    trace_url: str = Field(description="The case's page in the Temporal Web UI.")
    updated_at: datetime | None = Field(
        None, description="When the case last changed (in lists; none in a case's detail)."
    )


class TimelineItem(BaseModel):
    seq: int
    at: datetime
    kind: str
    summary: str
    actor: str
    data: dict[str, Any] = Field(default_factory=dict)


class CaseMessage(BaseModel):
    id: uuid.UUID
    key: str
    template: str
    recipient_role: str
    recipient_email: str
    subject: str
    status: MessageStatus
    created_at: datetime
    sent_at: datetime | None


class CaseDetail(CaseSummary):
    details: dict[str, Any] = Field(default_factory=dict)
    allowed_actions: list[str] = Field(
        default_factory=list, description="Actions (`/cases/{id}/<action>`) allowed now."
    )
    timeline: list[TimelineItem] = Field(default_factory=list)
    messages: list[CaseMessage] = Field(default_factory=list)
    documents: list[dict[str, Any]] = Field(default_factory=list)
    live: bool = Field(
        description="True when read from the running case. False in the answer to an "
        "opening (built from its input: status, deadline, next step and allowed actions, no "
        "details or timeline yet) and when read from the index because no worker answered "
        "(allowed_actions is then empty)."
    )
