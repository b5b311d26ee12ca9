"""The radar's SQL reasons for one index row, at the edges of each threshold (the API tests
make each reason happen on real cases; these pin the boundaries)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.stuck import TimelineFacts, span, sql_reasons
from schemas.case_types import CASE_TYPES
from schemas.enums import CaseStatus, CaseType
from schemas.stuck import StuckKind
from schemas.tables import Case

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _row(**fields: object) -> Case:
    values: dict[str, object] = {
        "id": "failed-delivery-S-1",
        "type": CaseType.FAILED_DELIVERY,
        "status": CaseStatus.WAITING_ON_CUSTOMER,
        "business_key": "S-1",
        "subject": "Shipment S-1",
        "opened_at": NOW - 3 * HOUR,
        "next_step_at": NOW + HOUR,
    }
    values.update(fields)
    return Case.model_validate(values)


def _kinds(row: Case, facts: TimelineFacts | None = None) -> list[StuckKind]:
    return [reason.kind for reason in sql_reasons(row, facts or TimelineFacts(), NOW)]


def test_a_case_waiting_inside_its_window_with_a_step_ahead_has_no_reason():
    assert _kinds(_row()) == []


def test_the_waiting_window_counts_from_the_last_status_change_and_holds_at_its_end():
    window = CASE_TYPES[CaseType.FAILED_DELIVERY].stuck.waiting_windows[
        CaseStatus.WAITING_ON_CUSTOMER
    ]
    row = _row(opened_at=NOW - 10 * window)
    just_inside = TimelineFacts(status_since=NOW - window + timedelta(seconds=1))
    at_the_end = TimelineFacts(status_since=NOW - window)

    assert _kinds(row, just_inside) == []
    (reason,) = sql_reasons(row, at_the_end, NOW)
    assert reason.kind is StuckKind.WAITING_PAST_WINDOW and reason.since == NOW - window


def test_a_status_without_a_window_is_never_waiting_past_it():
    row = _row(status=CaseStatus.OPEN, opened_at=NOW - 300 * 24 * HOUR)

    assert StuckKind.WAITING_PAST_WINDOW not in _kinds(row, TimelineFacts(last_event_at=NOW))


def test_no_progress_needs_both_silence_and_no_step_ahead():
    silent = TimelineFacts(last_event_at=NOW - 25 * HOUR, status_since=NOW - 25 * HOUR)
    status = CaseStatus.REDELIVERY_SCHEDULED  # window 8 d: not waiting past it

    assert _kinds(_row(status=status, next_step_at=NOW + HOUR), silent) == []
    assert _kinds(_row(status=status, next_step_at=None), silent) == [StuckKind.NO_PROGRESS]
    (overdue,) = sql_reasons(_row(status=status, next_step_at=NOW - 2 * HOUR), silent, NOW)
    assert overdue.kind is StuckKind.NO_PROGRESS and "was due 2 h ago" in overdue.reason
    recent = TimelineFacts(last_event_at=NOW - 23 * HOUR, status_since=NOW - 25 * HOUR)
    assert _kinds(_row(status=status, next_step_at=None), recent) == []


def test_no_progress_uses_each_types_threshold():
    silent = TimelineFacts(last_event_at=NOW - 3 * 24 * HOUR)
    invoice = _row(
        id="unpaid-invoice-I-1",
        type=CaseType.UNPAID_INVOICE,
        status=CaseStatus.AWAITING_PAYMENT,
        next_step_at=None,
    )

    assert _kinds(invoice, silent) == []  # 7 days for invoices


def test_a_passed_deadline_and_an_unassigned_escalation_each_count_from_their_moment():
    escalated_at = NOW - 2 * HOUR
    row = _row(deadline_at=NOW - HOUR, escalated=True, escalation_reason="No answer")

    reasons = {r.kind: r for r in sql_reasons(row, TimelineFacts(escalated_at=escalated_at), NOW)}

    assert reasons[StuckKind.DEADLINE_PASSED].since == NOW - HOUR
    assert reasons[StuckKind.ESCALATED_UNASSIGNED].since == escalated_at
    assert "No answer" in reasons[StuckKind.ESCALATED_UNASSIGNED].reason
    assigned = _row(deadline_at=NOW + HOUR, escalated=True, assignee="sam")
    assert _kinds(assigned) == []


def test_spans_read_as_days_hours_or_minutes():
    assert span(timedelta(days=2)) == "2 d"
    assert span(timedelta(days=3, hours=4, minutes=5)) == "3 d 4 h"
    assert span(timedelta(hours=5, minutes=59)) == "5 h"
    assert span(timedelta(minutes=12)) == "12 min"
    assert span(timedelta(seconds=-5)) == "0 min"
