"""The stuck-case radar's vocabulary: why an open case needs a person, and the thresholds.

Every reason has a stable `StuckKind`. Each case type's `StuckPolicy` (in the registry,
`CaseTypeSpec.stuck`) says when a case of that type counts as stuck; the defaults are sane for
every type, and `GET /case-types` publishes them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

from schemas.enums import CaseStatus, DescribedEnum


class StuckKind(DescribedEnum):
    ACTIVITY_RETRYING = (
        "activity_retrying",
        "An activity (an email, a database write, a document) keeps failing: Temporal retries "
        "it and it is on its Nth attempt.",
    )
    WORKFLOW_TASK_FAILING = (
        "workflow_task_failing",
        "The case's workflow code raises: its workflow task fails and is retried, the case "
        "cannot move until the code is fixed.",
    )
    WORKFLOW_NOT_RUNNING = (
        "workflow_not_running",
        "The index says the case is open, but its workflow no longer runs (terminated, failed, "
        "timed out) or Temporal has none: nothing will move the case.",
    )
    WAITING_PAST_WINDOW = (
        "waiting_past_window",
        "The case has waited on someone (customer, driver, client, carrier) longer than its "
        "policy's window.",
    )
    DEADLINE_PASSED = "deadline_passed", "The case's deadline has passed and it is still open."
    ESCALATED_UNASSIGNED = (
        "escalated_unassigned",
        "The case is escalated and nobody is assigned to it.",
    )
    NO_PROGRESS = (
        "no_progress",
        "Nothing has happened on the case for longer than its policy allows, and nothing is "
        "scheduled.",
    )

    @property
    def from_temporal(self) -> bool:
        """Whether the reason comes from Temporal's view of the workflow (not the SQL index)."""
        return self in (
            StuckKind.ACTIVITY_RETRYING,
            StuckKind.WORKFLOW_TASK_FAILING,
            StuckKind.WORKFLOW_NOT_RUNNING,
        )


class StuckPolicy(BaseModel):
    """When a case of one type counts as stuck on the radar (`GET /cases/stuck`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    activity_attempts: int = Field(
        3, ge=2, le=100, description="An activity on this attempt or later is listed."
    )
    no_progress_after: timedelta = Field(
        timedelta(hours=24),
        gt=timedelta(0),
        description="Listed when no timeline event for this long and no next step is ahead.",
    )
    waiting_windows: Mapping[CaseStatus, timedelta] = Field(
        default_factory=dict,
        description="Per waiting status: listed once the case has been in it this long.",
    )


DEFAULT_STUCK_POLICY = StuckPolicy()
