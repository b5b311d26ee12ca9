"""Policies are data: the deadlines and cadences a case runs by.

A workflow receives a snapshot of its policy at start, so changing a client's policy affects
new cases only and replay stays deterministic. Clients override any field through
`Client.policy_overrides[<case type>]`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


def event_budget(default: int = 10_000) -> Any:
    """A policy's `history_event_budget`: past this many history events a case continues as
    new (a fresh history, the same case) at its next wait."""
    return Field(
        default,
        ge=20,
        le=40_000,
        description="Continue as new (a fresh history, the same case) past this many events.",
    )


CLOCK_SKEW = timedelta(minutes=5)
"""How far ahead of our clock a reported event may be: the sender's clock may run fast."""


def event_time_problem(at: datetime, now: datetime, max_age: timedelta) -> str | None:
    """Why `at` cannot be when a reported event happened (None when it can): not in the
    future beyond `CLOCK_SKEW`, not longer ago than the policy's `max_age`."""
    if at > now + CLOCK_SKEW:
        return f"{at.isoformat()} is in the future"
    if at < now - max_age:
        return f"{at.isoformat()} is more than {max_age.days} days ago"
    return None


class FailedDeliveryPolicy(BaseModel):
    """Defaults from DESIGN.md: remind 24 h, escalate 48 h, 5-day window, 3 attempts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reminder_after: timedelta = Field(
        timedelta(hours=24), description="Remind the customer after this long without an answer."
    )
    escalate_after: timedelta = Field(
        timedelta(hours=48), description="Escalate to the depot's dispatcher after this long."
    )
    customer_window: timedelta = Field(
        timedelta(days=5), description="Return to sender after this long without an answer."
    )
    max_attempts: int = Field(
        3, ge=1, le=10, description="The attempt that fails at this number returns the parcel."
    )
    failed_attempt_fee_cents: int = Field(
        1700, ge=0, description="Charged to the client for each failed attempt."
    )
    currency: str = Field("USD", min_length=3, max_length=3)
    redelivery_horizon: timedelta = Field(
        timedelta(days=7), description="How far ahead a redelivery may be booked."
    )
    change_cutoff: timedelta = Field(
        timedelta(hours=6),
        ge=timedelta(0),
        le=timedelta(days=2),
        description="The customer (or ops) may change a booked redelivery until this long "
        "before its route day starts (00:00 in the depot's zone): by default 18:00 the evening "
        "before, when the depot plans the routes.",
    )
    outcome_grace: timedelta = Field(
        timedelta(hours=24),
        description="Escalate if no delivery outcome arrives this long after the booked window.",
    )
    attempt_max_age: timedelta = Field(
        timedelta(days=30),
        gt=timedelta(0),
        description="An attempt or outcome reported longer ago than this is refused.",
    )
    history_event_budget: int = event_budget()

    @model_validator(mode="after")
    def _ladder_in_order(self) -> FailedDeliveryPolicy:
        if not (timedelta(0) < self.reminder_after < self.escalate_after < self.customer_window):
            raise ValueError("need 0 < reminder_after < escalate_after < customer_window")
        return self


class ClaimPolicy(BaseModel):
    """Defaults from DESIGN.md: file within 72 h of the delivery event, reminders at 24 h and
    48 h, escalation 12 h before the deadline; decision follow-ups every 7 days."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    filing_window: timedelta = Field(timedelta(hours=72), description="Deadline after the event.")
    reminders_after: tuple[timedelta, ...] = Field(
        (timedelta(hours=24), timedelta(hours=48)),
        description="Remind whoever still owes an item this long after the delivery event.",
    )
    escalate_before_deadline: timedelta = Field(
        timedelta(hours=12), description="Escalate to the claims desk this long before it."
    )
    decision_follow_up: timedelta = Field(
        timedelta(days=7), description="Chase the claims contact this often while waiting."
    )
    event_max_age: timedelta = Field(
        timedelta(days=365),
        gt=timedelta(0),
        description="A claim whose delivery event is longer ago than this is refused (a late "
        "claim within it is opened, marked late and escalated).",
    )
    history_event_budget: int = event_budget()
