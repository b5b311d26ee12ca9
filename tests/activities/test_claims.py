"""Claim activities: the evidence the system holds (attempt records, the proof-of-delivery
statement) and the compiled, stored claim package."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from activities.claims import ClaimActivities
from activities.errors import DOCUMENT_INTEGRITY, DOCUMENT_MISSING
from activities.rendering import human_datetime
from core.db import SessionFactory
from core.documents import LocalDocumentStore
from schemas.claims import CompilePackageRequest, GatherEvidenceRequest
from schemas.documents import ClaimPackageInput, ClaimType, DocumentKind, DocumentRef
from schemas.enums import RecordSource, ShipmentStatus, StopOutcome
from schemas.tables import DeliveryRecord, Shipment
from tests import files
from tests.activities.conftest import CLIENT_ID, DEPOT_ID, DRIVER_ID
from tests.activities.test_pdf import pdf_text

SHIPMENT_ID = "SHP-1"
CASE_ID = f"damage-claim-{SHIPMENT_ID}"
FIRST_ATTEMPT = datetime(2026, 11, 19, 10, 30, tzinfo=UTC)
PNG = files.png()


@pytest.fixture
async def shipment(reference_data: SessionFactory) -> SessionFactory:
    """SHP-1 failed twice (nobody home, then found damaged) and is back at the depot."""
    async with reference_data() as session:
        session.add(
            Shipment(
                id=SHIPMENT_ID,
                client_id=CLIENT_ID,
                depot_id=DEPOT_ID,
                status=ShipmentStatus.ATTEMPT_FAILED,
                customer_name="Ann Example",
                customer_email="ann@example.com",
                failed_attempts=2,
            )
        )
        await session.flush()
        session.add_all(
            [
                DeliveryRecord(
                    shipment_id=SHIPMENT_ID,
                    case_id=f"failed-delivery-{SHIPMENT_ID}",
                    client_id=CLIENT_ID,
                    depot_id=DEPOT_ID,
                    attempt_number=number,
                    outcome=StopOutcome.FAILED,
                    source=RecordSource.CASE,
                    reason=reason,
                    driver_id=DRIVER_ID,
                    attempted_at=FIRST_ATTEMPT + timedelta(days=number - 1),
                    case_fee_cents=fee,
                    case_fee_currency="GBP",
                )
                # Stored out of order: the record lists them by attempt number.
                for number, reason, fee in [(2, "damaged", 0), (1, "not_home", 450)]
            ]
        )
        await session.commit()
    return reference_data


@pytest.fixture
def store(tmp_path: Path) -> LocalDocumentStore:
    return LocalDocumentStore(tmp_path / "documents")


@pytest.fixture
def claims(shipment: SessionFactory, store: LocalDocumentStore) -> ClaimActivities:
    return ClaimActivities(sessions=shipment, documents=store)


def gather(*kinds: DocumentKind, shipment_id: str = SHIPMENT_ID) -> GatherEvidenceRequest:
    return GatherEvidenceRequest(case_id=CASE_ID, shipment_id=shipment_id, kinds=list(kinds))


# --- gather_system_evidence -----------------------------------------------------------------


async def test_attempt_record_is_a_stored_pdf_listing_every_attempt(claims, store, activity_env):
    gathered = await activity_env.run(
        claims.gather_system_evidence, gather(DocumentKind.ATTEMPT_RECORD)
    )

    [ref] = gathered.documents
    data = store.get(ref.id)
    text = pdf_text(data)
    assert data.startswith(b"%PDF-")
    assert (ref.kind, ref.content_type) == (DocumentKind.ATTEMPT_RECORD, "application/pdf")
    assert ref.original_name_sanitized == "attempt-record-SHP-1.pdf"
    assert "Delivery attempt record - shipment SHP-1" in text
    assert f"Case: {CASE_ID}" in text
    attempts = [line for line in text if line.startswith("Attempt ")]
    assert attempts == [
        "Attempt 1 at Thu 19 Nov 2026, 10:30 UTC",
        "Attempt 2 at Fri 20 Nov 2026, 10:30 UTC",
    ]
    details = [line.strip() for line in text if line.startswith("    ")]
    assert details == [
        "Reason: not_home - Nobody was there to receive the parcel.",
        f"Driver: {DRIVER_ID}",
        "Fee: 4.50 GBP",
        "Reason: damaged - The parcel was found damaged; recorded for a damage claim.",
        f"Driver: {DRIVER_ID}",
        "Fee: 0.00 GBP",
    ]


async def test_attempt_record_lists_failed_attempts_only_with_what_routing_reported(
    shipment, store, activity_env
):
    """The routing system's records share the table: its third (failed) attempt is listed
    without the case's details, its delivered fourth is not an attempt to list."""
    async with shipment() as session:
        session.add_all(
            DeliveryRecord(
                shipment_id=SHIPMENT_ID,
                client_id=CLIENT_ID,
                depot_id=DEPOT_ID,
                attempt_number=number,
                outcome=outcome,
                source=RecordSource.ROUTING,
                zone="B",
                residential=True,
                attempted_at=FIRST_ATTEMPT + timedelta(days=number - 1),
            )
            for number, outcome in [(3, StopOutcome.FAILED), (4, StopOutcome.DELIVERED)]
        )
        await session.commit()
    claims = ClaimActivities(sessions=shipment, documents=store)

    gathered = await activity_env.run(
        claims.gather_system_evidence, gather(DocumentKind.ATTEMPT_RECORD)
    )

    text = pdf_text(store.get(gathered.documents[0].id))
    assert [line for line in text if line.startswith("Attempt ")] == [
        "Attempt 1 at Thu 19 Nov 2026, 10:30 UTC",
        "Attempt 2 at Fri 20 Nov 2026, 10:30 UTC",
        "Attempt 3 at Sat 21 Nov 2026, 10:30 UTC",
    ]
    third = text.index("Attempt 3 at Sat 21 Nov 2026, 10:30 UTC")
    assert text[third + 1].strip() == (
        "Reported by the routing system (no reason, driver or fee recorded)."
    )


async def test_shipment_without_attempts_gets_a_record_saying_so(
    reference_data, store, activity_env
):
    async with reference_data() as session:
        session.add(
            Shipment(
                id="SHP-2",
                client_id=CLIENT_ID,
                depot_id=DEPOT_ID,
                status=ShipmentStatus.DELIVERED,
                customer_name="Bo",
                customer_email="bo@example.com",
            )
        )
        await session.commit()
    claims = ClaimActivities(sessions=reference_data, documents=store)

    gathered = await activity_env.run(
        claims.gather_system_evidence, gather(DocumentKind.ATTEMPT_RECORD, shipment_id="SHP-2")
    )

    [ref] = gathered.documents
    assert "No failed delivery attempt is on record for this shipment." in pdf_text(
        store.get(ref.id)
    )


async def test_proof_of_delivery_is_the_statement_that_none_is_on_record(
    claims, store, activity_env
):
    before = datetime.now(UTC)

    gathered = await activity_env.run(
        claims.gather_system_evidence, gather(DocumentKind.PROOF_OF_DELIVERY)
    )

    after = datetime.now(UTC)
    [ref] = gathered.documents
    data = store.get(ref.id)
    statement = " ".join(pdf_text(data))
    produced = {human_datetime(before), human_datetime(after)}
    assert data.startswith(b"%PDF-")
    assert ref.kind is DocumentKind.PROOF_OF_DELIVERY
    assert any(
        f"No proof of delivery is on record for shipment SHP-1 as of {at}." in statement
        for at in produced
    )
    assert "last recorded status is attempt_failed" in statement
    assert "Failed delivery attempts recorded: 2." in statement


async def test_kinds_the_system_cannot_produce_are_skipped(claims, activity_env):
    gathered = await activity_env.run(
        claims.gather_system_evidence,
        gather(
            DocumentKind.DAMAGE_PHOTOS,
            DocumentKind.ATTEMPT_RECORD,
            DocumentKind.CUSTOMER_ATTESTATION,
            DocumentKind.PROOF_OF_DELIVERY,
            DocumentKind.ATTEMPT_RECORD,
        ),
    )

    assert [ref.kind for ref in gathered.documents] == [
        DocumentKind.ATTEMPT_RECORD,
        DocumentKind.PROOF_OF_DELIVERY,
    ]


async def test_nothing_to_gather_stores_nothing(claims, tmp_path, activity_env):
    gathered = await activity_env.run(
        claims.gather_system_evidence, gather(DocumentKind.POLICE_REPORT)
    )

    assert gathered.documents == []
    assert not (tmp_path / "documents").exists()


async def test_a_shipment_without_a_record_gets_statements_saying_so(claims, store, activity_env):
    gathered = await activity_env.run(
        claims.gather_system_evidence,
        gather(DocumentKind.ATTEMPT_RECORD, DocumentKind.PROOF_OF_DELIVERY, shipment_id="SHP-404"),
    )

    attempt_record, statement = gathered.documents
    attempt_text = pdf_text(store.get(attempt_record.id))
    statement_text = pdf_text(store.get(statement.id))
    assert "Shipment: SHP-404 (casedesk holds no record of this shipment)" in attempt_text
    assert "No failed delivery attempt is on record for this shipment." in attempt_text
    assert any("casedesk has no record of the shipment" in line for line in statement_text)


# --- compile_claim_package ------------------------------------------------------------------


def summary() -> ClaimPackageInput:
    delivered = FIRST_ATTEMPT + timedelta(days=1)
    return ClaimPackageInput(
        case_id=CASE_ID,
        shipment_id=SHIPMENT_ID,
        client_id=CLIENT_ID,
        claim_type=ClaimType.DAMAGED,
        description="Kettle broken in transit",
        declared_value=Decimal("129.90"),
        currency="GBP",
        delivery_event_at=delivered,
        filing_deadline_at=delivered + timedelta(hours=72),
        compiled_at=delivered + timedelta(hours=30),
        missing_reasons={DocumentKind.PROOF_OF_VALUE: "The customer has no receipt."},
    )


async def gathered_and_photo(
    claims: ClaimActivities, store: LocalDocumentStore, activity_env
) -> list[DocumentRef]:
    gathered = await activity_env.run(
        claims.gather_system_evidence,
        gather(DocumentKind.ATTEMPT_RECORD, DocumentKind.PROOF_OF_DELIVERY),
    )
    photo = store.put(PNG, kind=DocumentKind.DAMAGE_PHOTOS, declared_name="box.png")
    return [*gathered.documents, photo]


async def test_package_is_a_stored_zip_with_cover_sheet_and_every_document(
    claims, store, activity_env
):
    documents = await gathered_and_photo(claims, store, activity_env)

    compiled = await activity_env.run(
        claims.compile_claim_package,
        CompilePackageRequest(summary=summary(), documents=documents),
    )

    ref = compiled.package
    data = store.get(ref.id)
    assert (ref.kind, ref.content_type) == (DocumentKind.OTHER, "application/zip")
    assert ref.original_name_sanitized == "claim-package-SHP-1.zip"
    assert ref.size_bytes == len(data)
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = archive.namelist()
    assert names[:3] == ["cover.html", "cover.txt", "manifest.json"]
    manifest = json.loads(archive.read("manifest.json"))
    assert {d["id"] for d in manifest["documents"]} == {d.id for d in documents}
    assert manifest["missing"][0] == {
        "kind": "customer_attestation",
        "reason": "No reason given.",
    }
    attempt_path = next(d["path"] for d in manifest["documents"] if d["kind"] == "attempt_record")
    assert archive.read(attempt_path) == store.get(documents[0].id)
    assert "The customer has no receipt." in archive.read("cover.txt").decode()


async def test_missing_document_fails_the_package_without_retry(claims, store, activity_env):
    documents = await gathered_and_photo(claims, store, activity_env)
    store.path_for(documents[-1].id).unlink()

    with pytest.raises(ApplicationError) as failure:
        await activity_env.run(
            claims.compile_claim_package,
            CompilePackageRequest(summary=summary(), documents=documents),
        )

    assert failure.value.type == DOCUMENT_MISSING
    assert failure.value.non_retryable
    assert documents[-1].id in str(failure.value)


async def test_altered_document_fails_the_package_without_retry(claims, store, activity_env):
    documents = await gathered_and_photo(claims, store, activity_env)
    store.path_for(documents[-1].id).write_bytes(PNG + b"tampered")

    with pytest.raises(ApplicationError) as failure:
        await activity_env.run(
            claims.compile_claim_package,
            CompilePackageRequest(summary=summary(), documents=documents),
        )

    assert failure.value.type == DOCUMENT_INTEGRITY
    assert failure.value.non_retryable


async def test_same_documents_compile_to_the_same_package_bytes(claims, store, activity_env):
    documents = await gathered_and_photo(claims, store, activity_env)
    request = CompilePackageRequest(summary=summary(), documents=documents)

    first = await activity_env.run(claims.compile_claim_package, request)
    second = await activity_env.run(claims.compile_claim_package, request)

    # A retried activity stores a second copy, byte for byte the same.
    assert first.package.id != second.package.id
    assert first.package.sha256 == second.package.sha256
