"""record_case, record_failed_attempt and update_shipment_status."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select
from temporalio.exceptions import ApplicationError

from activities.errors import UNKNOWN_REFERENCE
from activities.records import RecordActivities
from api.delivery_batch import ParsedRow, parse_json
from api.delivery_ingest import record_deliveries
from api.errors import Problem
from core.db import SessionFactory, make_engine, make_session_factory
from schemas.activities import AttemptRecord, ShipmentStatusUpdate
from schemas.cases import (
    Address,
    CaseRecord,
    CaseSnapshot,
    Customer,
    FailedAttempt,
    TimelineEvent,
)
from schemas.enums import (
    CaseStatus,
    CaseType,
    FailureReason,
    RecordSource,
    ShipmentStatus,
    StopOutcome,
)
from schemas.pricing import BillableStop, LineKind, period_bounds, price_period
from schemas.rates import RateAgreement
from schemas.tables import Case, DeliveryRecord, Shipment, TimelineEntry
from tests.activities.conftest import CLIENT_ID, DEPOT_ID, DRIVER_ID

OPENED = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
CASE_ID = "failed-delivery-SHP-1"
NOW = OPENED + timedelta(days=10)  # the API's clock, for the routing records' time window


def snapshot(version: int, status: CaseStatus = CaseStatus.OPEN, **kw) -> CaseSnapshot:
    return CaseSnapshot(
        case_id=CASE_ID,
        case_type=CaseType.FAILED_DELIVERY,
        status=status,
        business_key="SHP-1",
        client_id=CLIENT_ID,
        subject="Failed delivery SHP-1",
        opened_at=OPENED,
        version=version,
        **kw,
    )


def event(seq: int, kind: str = "opened") -> TimelineEvent:
    return TimelineEvent(seq=seq, at=OPENED + timedelta(minutes=seq), kind=kind, summary=kind)


def attempt_record(number: int = 1, fee_cents: int = 1700, **kw: Any) -> AttemptRecord:
    fields = {
        "case_id": CASE_ID,
        "shipment_id": "SHP-1",
        "client_id": CLIENT_ID,
        "depot_id": DEPOT_ID,
        "customer": Customer(name="Ann Example", email="ann@example.com"),
        "address": Address(line1="1 Main St", city="London", postal_code="E1 1AA", country="GB"),
        "attempt": FailedAttempt(
            attempt_number=number,
            reason=FailureReason.NOT_HOME,
            driver_id=DRIVER_ID,
            attempted_at=OPENED + timedelta(days=number),
        ),
        "fee_cents": fee_cents,
        "currency": "usd",
    }
    return AttemptRecord(**(fields | kw))


async def rows(sessions: SessionFactory, table: type) -> list:
    async with sessions() as session:
        return list((await session.exec(select(table))).all())


@pytest.fixture
def records(reference_data: SessionFactory) -> RecordActivities:
    return RecordActivities(reference_data)


# --- record_case --------------------------------------------------------------------------


async def test_record_case_creates_the_case_index_row(records, reference_data, activity_env):
    deadline = OPENED + timedelta(days=5)
    await activity_env.run(
        records.record_case, CaseRecord(snapshot=snapshot(1, deadline_at=deadline))
    )

    [case] = await rows(reference_data, Case)
    assert (case.id, case.type, case.status, case.version) == (
        CASE_ID,
        CaseType.FAILED_DELIVERY,
        CaseStatus.OPEN,
        1,
    )
    assert case.deadline_at == deadline and case.opened_at == OPENED


async def test_record_case_ignores_an_older_version(records, reference_data, activity_env):
    newer = snapshot(3, CaseStatus.REDELIVERY_SCHEDULED)
    await activity_env.run(records.record_case, CaseRecord(snapshot=newer))
    await activity_env.run(records.record_case, CaseRecord(snapshot=snapshot(2)))

    [case] = await rows(reference_data, Case)
    assert (case.status, case.version) == (CaseStatus.REDELIVERY_SCHEDULED, 3)


async def test_record_case_applies_a_newer_version(records, reference_data, activity_env):
    await activity_env.run(records.record_case, CaseRecord(snapshot=snapshot(1)))
    newer = snapshot(2, CaseStatus.WAITING_ON_CUSTOMER, escalated=True, details={"attempt": 1})
    await activity_env.run(records.record_case, CaseRecord(snapshot=newer))

    [case] = await rows(reference_data, Case)
    assert (case.status, case.escalated, case.details) == (
        CaseStatus.WAITING_ON_CUSTOMER,
        True,
        {"attempt": 1},
    )


async def test_timeline_events_recorded_twice_are_stored_once(
    records, reference_data, activity_env
):
    first = CaseRecord(snapshot=snapshot(1), events=[event(1), event(2, "message")])
    again = CaseRecord(snapshot=snapshot(2), events=[event(2, "message"), event(3, "reminder")])
    await activity_env.run(records.record_case, first)
    await activity_env.run(records.record_case, first)
    await activity_env.run(records.record_case, again)

    entries = sorted(await rows(reference_data, TimelineEntry), key=lambda e: e.seq)
    assert [(e.seq, e.kind) for e in entries] == [(1, "opened"), (2, "message"), (3, "reminder")]


async def test_concurrent_records_of_two_versions_always_keep_the_newer(
    records, reference_data, activity_env
):
    # The newer write starts first, so an unguarded read-compare-write lets the older one,
    # which read the row before the newer one committed, overwrite it.
    await activity_env.run(records.record_case, CaseRecord(snapshot=snapshot(1)))
    stored = []
    for newer in range(3, 43, 2):
        await asyncio.gather(
            activity_env.run(
                records.record_case,
                CaseRecord(snapshot=snapshot(newer, CaseStatus.WAITING_ON_CUSTOMER)),
            ),
            activity_env.run(records.record_case, CaseRecord(snapshot=snapshot(newer - 1))),
        )
        [case] = await rows(reference_data, Case)
        stored.append((case.version, case.status))

    assert stored == [(v, CaseStatus.WAITING_ON_CUSTOMER) for v in range(3, 43, 2)]


async def test_concurrent_first_records_of_a_case_create_one_row_with_the_newer_version(
    records, reference_data, activity_env
):
    for n in range(10):
        case_id = f"failed-delivery-SHP-C{n}"
        await asyncio.gather(
            *(
                activity_env.run(
                    records.record_case,
                    CaseRecord(
                        snapshot=snapshot(version).model_copy(update={"case_id": case_id}),
                        events=[event(1), event(version, "message")],
                    ),
                )
                for version in (2, 1)
            )
        )

    cases = await rows(reference_data, Case)
    entries = await rows(reference_data, TimelineEntry)
    assert sorted(case.version for case in cases) == [2] * 10
    assert sorted((e.case_id, e.seq) for e in entries) == sorted(
        (f"failed-delivery-SHP-C{n}", seq) for n in range(10) for seq in (1, 2)
    )


async def test_record_case_clips_long_texts_to_their_columns(records, reference_data, activity_env):
    long = snapshot(1, assignee="a" * 500, next_step="n" * 500).model_copy(
        update={"subject": "s" * 400}
    )
    timeline = [event(1).model_copy(update={"kind": "k" * 100, "summary": "x" * 2000})]

    await activity_env.run(records.record_case, CaseRecord(snapshot=long, events=timeline))
    await activity_env.run(
        records.record_case, CaseRecord(snapshot=long.model_copy(update={"version": 2}))
    )

    [case] = await rows(reference_data, Case)
    [entry] = await rows(reference_data, TimelineEntry)
    assert (len(case.subject), len(case.assignee), len(case.next_step)) == (300, 200, 300)
    assert case.version == 2
    assert (len(entry.kind), len(entry.summary)) == (64, 1000)


# --- record_failed_attempt ----------------------------------------------------------------


async def test_failed_attempt_creates_the_shipment_and_the_attempt_with_its_fee(
    records, reference_data, activity_env
):
    await activity_env.run(records.record_failed_attempt, attempt_record())

    [shipment] = await rows(reference_data, Shipment)
    [attempt] = await rows(reference_data, DeliveryRecord)
    assert (shipment.status, shipment.failed_attempts) == (ShipmentStatus.ATTEMPT_FAILED, 1)
    assert shipment.address["line1"] == "1 Main St"
    assert (attempt.attempt_number, attempt.case_fee_cents, attempt.case_fee_currency) == (
        1,
        1700,
        "USD",
    )
    assert (attempt.reason, attempt.case_id, attempt.driver_id) == ("not_home", CASE_ID, DRIVER_ID)
    assert (attempt.outcome, attempt.source) == (StopOutcome.FAILED, RecordSource.CASE)
    assert (attempt.client_id, attempt.depot_id) == (CLIENT_ID, DEPOT_ID)
    assert attempt.attempted_at == OPENED + timedelta(days=1)
    assert (attempt.zone, attempt.residential) == (None, None)


async def test_failed_attempt_recorded_twice_is_stored_once(records, reference_data, activity_env):
    await activity_env.run(records.record_failed_attempt, attempt_record())
    await activity_env.run(records.record_failed_attempt, attempt_record())

    assert len(await rows(reference_data, DeliveryRecord)) == 1
    assert len(await rows(reference_data, Shipment)) == 1


async def test_a_late_older_attempt_does_not_lower_the_attempt_count(
    records, reference_data, activity_env
):
    await activity_env.run(records.record_failed_attempt, attempt_record(2))
    await activity_env.run(records.record_failed_attempt, attempt_record(1))

    [shipment] = await rows(reference_data, Shipment)
    assert shipment.failed_attempts == 2
    assert len(await rows(reference_data, DeliveryRecord)) == 2


@pytest.mark.parametrize("field", ["client_id", "depot_id"])
async def test_failed_attempt_for_an_unknown_client_or_depot_fails_without_retry(
    records, reference_data, activity_env, field
):
    with pytest.raises(ApplicationError) as failure:
        await activity_env.run(
            records.record_failed_attempt, attempt_record().model_copy(update={field: "unknown"})
        )

    assert failure.value.type == UNKNOWN_REFERENCE
    assert failure.value.non_retryable
    assert await rows(reference_data, Shipment) == []


# --- one delivery record per (shipment, attempt), whoever reports it first -----------------


def routing_batch(*records: dict[str, Any]) -> list[ParsedRow]:
    """What POST /deliveries hands the ingest: the routing system's records, parsed."""
    return parse_json(json.dumps(list(records)).encode(), now=NOW)


def routing_record(number: int = 1, **fields: Any) -> dict[str, Any]:
    return {
        "shipment_id": "SHP-1",
        "client_id": CLIENT_ID,
        "depot_id": DEPOT_ID,
        "attempted_at": (OPENED + timedelta(days=number, seconds=30)).isoformat(),
        "outcome": "failed",
        "zone": "C",
        "residential": True,
        "attempt_number": number,
        **fields,
    }


async def routing_reports(sessions: SessionFactory, *records: dict[str, Any]):
    async with sessions() as session:
        return await record_deliveries(session, routing_batch(*records), partial=False, now=NOW)


async def test_the_routing_systems_later_report_of_a_cases_attempt_is_the_same_row(
    records, reference_data, activity_env
):
    await activity_env.run(records.record_failed_attempt, attempt_record())

    result = await routing_reports(reference_data, routing_record())
    again = await routing_reports(reference_data, routing_record())

    assert (result.new, result.updated, result.duplicates) == (0, 1, 0)
    assert (again.new, again.updated, again.duplicates) == (0, 0, 1)
    [row] = await rows(reference_data, DeliveryRecord)
    assert (row.zone, row.residential, row.source) == ("C", True, RecordSource.ROUTING)
    # The routing system's time stands; what the case recorded with the attempt stays.
    assert row.attempted_at == OPENED + timedelta(days=1, seconds=30)
    assert (row.case_id, row.reason, row.case_fee_cents) == (CASE_ID, "not_home", 1700)


async def test_a_cases_attempt_after_the_routing_systems_report_adds_to_that_row(
    records, reference_data, activity_env
):
    await routing_reports(reference_data, routing_record())

    await activity_env.run(records.record_failed_attempt, attempt_record())
    await activity_env.run(records.record_failed_attempt, attempt_record())  # a retry

    [row] = await rows(reference_data, DeliveryRecord)
    assert (row.source, row.zone, row.residential) == (RecordSource.ROUTING, "C", True)
    assert row.attempted_at == OPENED + timedelta(days=1, seconds=30)
    assert (row.case_id, row.reason, row.driver_id, row.case_fee_cents) == (
        CASE_ID,
        "not_home",
        DRIVER_ID,
        1700,
    )
    assert len(await rows(reference_data, Shipment)) == 1


async def test_a_cases_failed_attempt_never_rewrites_a_stop_the_routing_system_saw_delivered(
    records, reference_data, activity_env
):
    await routing_reports(reference_data, routing_record(outcome="delivered"))

    await activity_env.run(records.record_failed_attempt, attempt_record())

    [row] = await rows(reference_data, DeliveryRecord)
    assert (row.outcome, row.source, row.case_id) == (
        StopOutcome.DELIVERED,
        RecordSource.ROUTING,
        None,
    )


async def test_routing_says_delivered_where_a_case_recorded_a_failure_is_refused(
    records, reference_data, activity_env
):
    await activity_env.run(records.record_failed_attempt, attempt_record())

    with pytest.raises(Problem) as refused:
        await routing_reports(reference_data, routing_record(outcome="delivered"))

    assert refused.value.status == 422
    assert refused.value.errors == [
        {
            "row": 1,
            "field": "outcome",
            "message": f"attempt 1 of shipment SHP-1 is already recorded (by case {CASE_ID}) "
            "with outcome failed",
        }
    ]
    [row] = await rows(reference_data, DeliveryRecord)
    assert (row.outcome, row.source) == (StopOutcome.FAILED, RecordSource.CASE)


async def test_a_case_and_the_routing_system_recording_one_stop_at_once_make_one_row(
    records, reference_data, activity_env
):
    for number in range(1, 6):  # several rounds: either may win the race
        await asyncio.gather(
            activity_env.run(records.record_failed_attempt, attempt_record(number)),
            routing_reports(reference_data, routing_record(number)),
        )

    stored = await rows(reference_data, DeliveryRecord)
    assert sorted(row.attempt_number for row in stored) == [1, 2, 3, 4, 5]
    for row in stored:
        assert (row.source, row.zone, row.case_id, row.reason) == (
            RecordSource.ROUTING,
            "C",
            CASE_ID,
            "not_home",
        )
        assert row.attempted_at == OPENED + timedelta(days=row.attempt_number, seconds=30)


async def test_a_cases_failed_attempt_is_billed_at_the_agreements_failed_attempt_fee(
    records, reference_data, activity_env
):
    """From the case's activity to the invoice arithmetic: the attempt the failed-delivery
    case recorded is a failed-attempt line, priced from the rate agreement (the case's own
    fee, from its policy, is what it quoted, not what is billed)."""
    await activity_env.run(records.record_failed_attempt, attempt_record(1))
    await routing_reports(
        reference_data, routing_record(2, outcome="delivered", zone="B", residential=False)
    )
    agreement = RateAgreement.model_validate(
        {
            "effective_from": "2026-11-01",
            "currency": "GBP",
            "base_rate_per_stop": "3.50",
            "zone_rates": {"B": "1.25"},
            "failed_attempt_fee": "4.00",
            "tax_rate": "0.20",
            "billing_cycle": "monthly",
        }
    )
    start, end = period_bounds(dt.date(2026, 11, 1), dt.date(2026, 11, 30), "Europe/London")
    async with reference_data() as session:
        stored = (
            await session.exec(
                select(DeliveryRecord).where(
                    DeliveryRecord.client_id == CLIENT_ID,
                    DeliveryRecord.attempted_at >= start,
                    DeliveryRecord.attempted_at < end,
                )
            )
        ).all()

    draft = price_period(
        stops=[BillableStop.model_validate(row) for row in stored],
        agreements=[agreement],
        timezone="Europe/London",
        period_start=dt.date(2026, 11, 1),
        period_end=dt.date(2026, 11, 30),
    )

    assert [(line.kind, line.quantity, str(line.amount)) for line in draft.lines] == [
        (LineKind.DELIVERED_STOP, 1, "4.75"),
        (LineKind.FAILED_ATTEMPT, 1, "4.00"),
    ]
    assert (str(draft.subtotal), str(draft.tax), str(draft.total)) == ("8.75", "1.75", "10.50")
    [failed] = [line for line in draft.stop_lines if line.outcome is StopOutcome.FAILED]
    assert (failed.shipment_id, failed.attempt_number) == ("SHP-1", 1)


# --- update_shipment_status ---------------------------------------------------------------


async def test_shipment_status_is_updated(records, reference_data, activity_env):
    await activity_env.run(records.record_failed_attempt, attempt_record())
    at = OPENED + timedelta(days=3)
    update = ShipmentStatusUpdate(
        case_id=CASE_ID, shipment_id="SHP-1", status=ShipmentStatus.DELIVERED, at=at
    )

    await activity_env.run(records.update_shipment_status, update)

    [shipment] = await rows(reference_data, Shipment)
    assert (shipment.status, shipment.updated_at) == (ShipmentStatus.DELIVERED, at)


async def test_status_of_an_unknown_shipment_fails_without_retry(records, activity_env):
    update = ShipmentStatusUpdate(
        case_id=CASE_ID, shipment_id="nope", status=ShipmentStatus.DELIVERED, at=OPENED
    )

    with pytest.raises(ApplicationError) as failure:
        await activity_env.run(records.update_shipment_status, update)

    assert failure.value.type == UNKNOWN_REFERENCE
    assert failure.value.non_retryable


async def test_database_errors_are_left_for_temporal_to_retry(activity_env, tmp_path):
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    update = ShipmentStatusUpdate(
        case_id=CASE_ID, shipment_id="SHP-1", status=ShipmentStatus.DELIVERED, at=OPENED
    )

    records = RecordActivities(make_session_factory(engine))
    try:
        with pytest.raises(Exception) as failure:  # no tables: OperationalError, not a verdict
            await activity_env.run(records.update_shipment_status, update)
    finally:
        await engine.dispose()

    assert not isinstance(failure.value, ApplicationError)
