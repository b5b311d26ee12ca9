"""Driver activities: the driver record's status, its documents' projection, and the route
briefing pack (stored PDFs built from the depot's row)."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.briefing import DEFAULT_OPENING_HOURS
from activities.drivers import DriverActivities
from activities.errors import UNKNOWN_REFERENCE
from core.db import SessionFactory
from core.documents import LocalDocumentStore
from schemas.documents import DocumentKind, DocumentRef
from schemas.enums import DriverStatus, VehicleType
from schemas.onboarding import (
    BriefingPackRequest,
    DriverDocumentRecord,
    DriverStatusChange,
    ItemStatus,
)
from schemas.tables import Depot, Driver, DriverDocument
from tests.activities.conftest import DEPOT_ID, DRIVER_ID, OTHER_DEPOT_ID
from tests.activities.test_pdf import pdf_text

CASE_ID = f"driver-onboarding-{DRIVER_ID}"
DOCUMENT_ID = "0f8b5a52-5a1e-4c1e-9a51-3d8e2f6b7c10"
RECEIVED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> LocalDocumentStore:
    return LocalDocumentStore(tmp_path / "documents")


@pytest.fixture
def drivers(reference_data: SessionFactory, store: LocalDocumentStore) -> DriverActivities:
    return DriverActivities(reference_data, store)


async def driver_row(sessions: SessionFactory, driver_id: str = DRIVER_ID) -> Driver:
    async with sessions() as session:
        driver = await session.get(Driver, driver_id)
        assert driver is not None
        return driver


async def document_rows(sessions: SessionFactory) -> list[DriverDocument]:
    async with sessions() as session:
        return list((await session.exec(select(DriverDocument))).all())


def record(
    status: ItemStatus = ItemStatus.IN_REVIEW,
    at: datetime = RECEIVED,
    expires_on: date | None = None,
    **kw,
) -> DriverDocumentRecord:
    fields = {
        "driver_id": DRIVER_ID,
        "case_id": CASE_ID,
        "document_id": DOCUMENT_ID,
        "kind": DocumentKind.DRIVING_LICENCE,
        "status": status,
        "expires_on": expires_on,
        "at": at,
    } | kw
    return DriverDocumentRecord(**fields)


def briefing(depot_id: str = DEPOT_ID, **kw) -> BriefingPackRequest:
    fields = {
        "case_id": CASE_ID,
        "depot_id": depot_id,
        "driver_id": DRIVER_ID,
        "planned_start_date": date(2026, 12, 14),
        "vehicle_type": VehicleType.VAN,
    } | kw
    return BriefingPackRequest(**fields)


# --- set_driver_status --------------------------------------------------------------------


async def test_status_change_is_written_to_the_driver_record(
    reference_data, drivers, activity_env: ActivityEnvironment
):
    before = await driver_row(reference_data)

    await activity_env.run(
        drivers.set_driver_status,
        DriverStatusChange(
            driver_id=DRIVER_ID,
            status=DriverStatus.SUSPENDED,
            case_id=f"driver-compliance-{DRIVER_ID}",
            reason="driving licence expired",
        ),
    )

    after = await driver_row(reference_data)
    assert after.status is DriverStatus.SUSPENDED
    assert after.updated_at > before.updated_at


async def test_setting_the_same_status_again_is_harmless(reference_data, drivers, activity_env):
    change = DriverStatusChange(driver_id=DRIVER_ID, status=DriverStatus.ACTIVE, case_id=CASE_ID)

    await activity_env.run(drivers.set_driver_status, change)
    await activity_env.run(drivers.set_driver_status, change)

    assert (await driver_row(reference_data)).status is DriverStatus.ACTIVE


async def test_status_of_an_unknown_driver_fails_without_retry(drivers, activity_env):
    change = DriverStatusChange(driver_id="drv-nobody", status=DriverStatus.ACTIVE, case_id="c")

    with pytest.raises(ApplicationError) as failure:
        await activity_env.run(drivers.set_driver_status, change)

    assert failure.value.type == UNKNOWN_REFERENCE
    assert failure.value.non_retryable
    assert "'drv-nobody'" in failure.value.message


# --- record_driver_document ---------------------------------------------------------------


async def test_document_record_is_stored_once_however_often_it_is_retried(
    reference_data, drivers, activity_env
):
    await activity_env.run(drivers.record_driver_document, record())
    await activity_env.run(drivers.record_driver_document, record())

    [row] = await document_rows(reference_data)
    assert (row.driver_id, row.document_id, row.case_id) == (DRIVER_ID, DOCUMENT_ID, CASE_ID)
    assert (row.kind, row.status, row.expires_on) == (
        DocumentKind.DRIVING_LICENCE,
        ItemStatus.IN_REVIEW,
        None,
    )
    assert row.updated_at == RECEIVED


async def test_a_newer_record_moves_the_document_forward(reference_data, drivers, activity_env):
    approved_at = RECEIVED + timedelta(hours=3)

    await activity_env.run(drivers.record_driver_document, record())
    await activity_env.run(
        drivers.record_driver_document,
        record(ItemStatus.APPROVED, at=approved_at, expires_on=date(2029, 5, 31)),
    )

    [row] = await document_rows(reference_data)
    assert (row.status, row.expires_on, row.updated_at) == (
        ItemStatus.APPROVED,
        date(2029, 5, 31),
        approved_at,
    )


async def test_a_late_older_record_never_moves_the_document_back(
    reference_data, drivers, activity_env
):
    approved = record(
        ItemStatus.APPROVED, at=RECEIVED + timedelta(hours=3), expires_on=date(2029, 5, 31)
    )

    await activity_env.run(drivers.record_driver_document, approved)
    await activity_env.run(drivers.record_driver_document, record(ItemStatus.IN_REVIEW))

    [row] = await document_rows(reference_data)
    assert (row.status, row.expires_on) == (ItemStatus.APPROVED, date(2029, 5, 31))


async def test_each_document_of_a_driver_has_its_own_row(reference_data, drivers, activity_env):
    other = "5c7d9e11-2b3a-4f5e-8d6c-7b8a9f0e1d2c"

    await activity_env.run(drivers.record_driver_document, record())
    await activity_env.run(
        drivers.record_driver_document,
        record(document_id=other, kind=DocumentKind.TAX_FORM, status=ItemStatus.APPROVED),
    )

    rows = {row.document_id: row for row in await document_rows(reference_data)}
    assert rows[DOCUMENT_ID].kind is DocumentKind.DRIVING_LICENCE
    assert (rows[other].kind, rows[other].status) == (DocumentKind.TAX_FORM, ItemStatus.APPROVED)


async def test_document_of_an_unknown_driver_fails_without_retry(
    reference_data, drivers, activity_env
):
    with pytest.raises(ApplicationError) as failure:
        await activity_env.run(drivers.record_driver_document, record(driver_id="drv-nobody"))

    assert failure.value.type == UNKNOWN_REFERENCE
    assert failure.value.non_retryable
    assert await document_rows(reference_data) == []


# --- build_briefing_pack ------------------------------------------------------------------


def text_of(store: LocalDocumentStore, ref: DocumentRef) -> str:
    return "\n".join(pdf_text(store.get(ref.id)))


async def test_briefing_pack_is_stored_as_pdfs_of_the_briefing_kind(drivers, store, activity_env):
    pack = await activity_env.run(drivers.build_briefing_pack, briefing())

    assert len(pack.documents) == 2
    for ref in pack.documents:
        data = store.get(ref.id)
        assert ref.kind is DocumentKind.BRIEFING_PACK
        assert ref.content_type == "application/pdf" and data.startswith(b"%PDF-1.4")
        assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert [ref.original_name_sanitized for ref in pack.documents] == [
        f"route-briefing-{DEPOT_ID}.pdf",
        f"first-day-{DEPOT_ID}.pdf",
    ]


async def test_briefing_pack_states_the_depot_and_the_first_day(drivers, store, activity_env):
    pack = await activity_env.run(drivers.build_briefing_pack, briefing())

    briefing_text, first_day_text = (text_of(store, ref) for ref in pack.documents)
    assert "Route briefing: London East" in briefing_text
    assert "First-day instructions: London East" in first_day_text
    for text in (briefing_text, first_day_text):
        assert "1 Depot Way, London" in text
        assert "Mon 14 Dec 2026" in text
        assert "van" in text
    assert "Europe/London" in briefing_text
    assert "Dispatcher: Dana Dispatch" in briefing_text
    # The depot publishes no hours: the driver is told who confirms the time instead.
    assert DEFAULT_OPENING_HOURS.split(":")[0] in briefing_text
    assert "registration and insurance papers" in first_day_text


async def test_briefing_pack_uses_the_depots_own_hours_and_dispatcher_phone(
    reference_data, drivers, store, activity_env
):
    async with reference_data() as session:
        depot = await session.get(Depot, OTHER_DEPOT_ID)
        assert depot is not None
        depot.opening_hours = "Mon-Sat 06:30-19:00"
        depot.dispatcher_phone = "+1 212 555 0100"
        session.add(depot)
        await session.commit()

    pack = await activity_env.run(
        drivers.build_briefing_pack,
        briefing(OTHER_DEPOT_ID, vehicle_type=VehicleType.CARGO_BIKE),
    )

    briefing_text, first_day_text = (text_of(store, ref) for ref in pack.documents)
    assert "Route briefing: New York" in briefing_text
    assert "Opening hours: Mon-Sat 06:30-19:00" in briefing_text
    assert "Dispatcher: Max Dispatch, +1 212 555 0100" in briefing_text
    assert "America/New_York" in briefing_text
    assert "cargo bike" in first_day_text and "A helmet and a lock." in first_day_text
    assert "registration" not in first_day_text


async def test_briefing_pack_bytes_are_the_same_every_time(drivers, activity_env):
    first = await activity_env.run(drivers.build_briefing_pack, briefing())
    again = await activity_env.run(drivers.build_briefing_pack, briefing())

    assert [ref.sha256 for ref in first.documents] == [ref.sha256 for ref in again.documents]


async def test_briefing_pack_for_an_unknown_depot_fails_without_retry(
    drivers, store, activity_env, tmp_path
):
    with pytest.raises(ApplicationError) as failure:
        await activity_env.run(drivers.build_briefing_pack, briefing("nowhere"))

    assert failure.value.type == UNKNOWN_REFERENCE
    assert failure.value.non_retryable
    assert "'nowhere'" in failure.value.message
    assert not (tmp_path / "documents").exists()  # nothing was stored
