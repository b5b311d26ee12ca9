"""The compiled claim package: cover sheet, manifest, documents, and identical bytes per input."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from activities.claim_package import build_claim_package
from activities.errors import DOCUMENT_INTEGRITY
from core.documents import LocalDocumentStore
from schemas.cases import TimelineEvent
from schemas.documents import ClaimPackageInput, ClaimType, DocumentKind, DocumentRef
from tests import files

DELIVERED = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PNG = files.png()
PDF = files.pdf()
ATTESTATION = b"The box arrived crushed and the kettle was broken.\n"

Documents = list[tuple[DocumentRef, bytes]]


def summary(**overrides: Any) -> ClaimPackageInput:
    fields: dict[str, Any] = {
        "case_id": "damage-claim-SHP-1",
        "shipment_id": "SHP-1",
        "client_id": "acme",
        "claim_type": ClaimType.DAMAGED,
        "description": "Kettle broken in transit",
        "declared_value": Decimal("129.90"),
        "currency": "EUR",
        "delivery_event_at": DELIVERED,
        "filing_deadline_at": DELIVERED + timedelta(hours=72),
        "compiled_at": DELIVERED + timedelta(hours=30),
        "timeline": [
            TimelineEvent(seq=1, at=DELIVERED, kind="opened", summary="Claim opened", actor="ops"),
            TimelineEvent(
                seq=2,
                at=DELIVERED + timedelta(hours=2),
                kind="document",
                summary="Damage photos received",
                actor="driver drv-7",
            ),
        ],
        "missing_reasons": {
            DocumentKind.ATTEMPT_RECORD: "Delivered on the first attempt; no attempt to record.",
        },
    }
    return ClaimPackageInput(**{**fields, **overrides})


@pytest.fixture
def documents(tmp_path: Path) -> Documents:
    """Photos (two), the attestation and proof of value; attempt record and POD missing."""
    store = LocalDocumentStore(tmp_path)
    uploads = [
        (PNG, DocumentKind.DAMAGE_PHOTOS, "../../box front.png"),
        (PNG + b"2", DocumentKind.DAMAGE_PHOTOS, None),
        (ATTESTATION, DocumentKind.CUSTOMER_ATTESTATION, "statement.txt"),
        (PDF, DocumentKind.PROOF_OF_VALUE, "receipt.png"),
    ]
    refs = [store.put(data, kind=kind, declared_name=name) for data, kind, name in uploads]
    # Distinct upload times: two uploads within one clock tick must not reorder the photos.
    refs = [
        ref.model_copy(update={"stored_at": DELIVERED + timedelta(minutes=n)})
        for n, ref in enumerate(refs)
    ]
    return [(ref, store.get(ref.id)) for ref in refs]


def open_zip(package: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(package))


def manifest(package: bytes) -> dict[str, Any]:
    return json.loads(open_zip(package).read("manifest.json"))


def test_package_holds_cover_manifest_and_documents(documents: Documents) -> None:
    names = open_zip(build_claim_package(summary(), documents)).namelist()
    assert names == [
        "cover.html",
        "cover.txt",
        "manifest.json",
        "documents/damage_photos/1-box front.png",
        "documents/damage_photos/2-damage_photos.png",
        "documents/customer_attestation/1-statement.txt",
        "documents/proof_of_value/1-receipt.pdf",
    ]


def test_extension_follows_the_real_content_not_the_declared_name(documents: Documents) -> None:
    # receipt.png was declared, the bytes are a PDF
    paths = [d["path"] for d in manifest(build_claim_package(summary(), documents))["documents"]]
    assert "documents/proof_of_value/1-receipt.pdf" in paths


def test_documents_in_the_zip_match_their_checksums(documents: Documents) -> None:
    package = build_claim_package(summary(), documents)
    archive = open_zip(package)
    for entry in manifest(package)["documents"]:
        assert hashlib.sha256(archive.read(entry["path"])).hexdigest() == entry["sha256"]


def test_manifest_lists_every_document_with_id_kind_checksum_and_size(
    documents: Documents,
) -> None:
    listed = {
        d["id"]: (d["kind"], d["sha256"], d["size_bytes"])
        for d in manifest(build_claim_package(summary(), documents))["documents"]
    }
    assert listed == {ref.id: (ref.kind.value, ref.sha256, ref.size_bytes) for ref, _ in documents}


def test_manifest_lists_missing_items_with_reasons(documents: Documents) -> None:
    assert manifest(build_claim_package(summary(), documents))["missing"] == [
        {
            "kind": "attempt_record",
            "reason": "Delivered on the first attempt; no attempt to record.",
        },
        {"kind": "proof_of_delivery", "reason": "No reason given."},
    ]


def test_cover_lists_missing_items_with_the_reason_ops_gave(documents: Documents) -> None:
    cover = open_zip(build_claim_package(summary(), documents)).read("cover.txt").decode()
    assert (
        "- attempt_record: MISSING: Delivered on the first attempt; no attempt to record." in cover
    )
    assert "- proof_of_delivery: MISSING: No reason given." in cover


def test_cover_lists_present_items_with_path_and_checksum(documents: Documents) -> None:
    cover = open_zip(build_claim_package(summary(), documents)).read("cover.html").decode()
    for ref, _ in documents:
        assert ref.sha256 in cover
    assert "documents/proof_of_value/1-receipt.pdf" in cover


def test_cover_states_the_claim_summary(documents: Documents) -> None:
    cover = open_zip(build_claim_package(summary(), documents)).read("cover.txt").decode()
    assert "Shipment:         SHP-1" in cover
    assert "Client:           acme" in cover
    assert "Claim type:       damaged" in cover
    assert "Declared value:   129.90 EUR" in cover
    assert "Delivery event:   Fri 20 Nov 2026, 09:00 UTC" in cover
    assert "Filing deadline:  Mon 23 Nov 2026, 09:00 UTC" in cover
    assert "Filed:            On time" in cover


def test_cover_says_when_no_value_is_declared_yet(documents: Documents) -> None:
    package = build_claim_package(summary(declared_value=None, currency=None), documents)
    archive = open_zip(package)
    assert "Declared value:   not declared yet" in archive.read("cover.txt").decode()
    assert "not declared yet" in archive.read("cover.html").decode()


def test_cover_marks_a_late_claim(documents: Documents) -> None:
    package = build_claim_package(summary(late=True), documents)
    assert "LATE: after the filing deadline" in open_zip(package).read("cover.txt").decode()


def test_cover_shows_the_timeline_in_order(documents: Documents) -> None:
    cover = open_zip(build_claim_package(summary(), documents)).read("cover.txt").decode()
    opened = cover.index("Fri 20 Nov 2026, 09:00 UTC  [ops]  Claim opened")
    photos = cover.index("Fri 20 Nov 2026, 11:00 UTC  [driver drv-7]  Damage photos received")
    assert opened < photos


def test_theft_cover_asks_for_a_police_report(documents: Documents) -> None:
    package = build_claim_package(summary(claim_type=ClaimType.THEFT), documents)
    assert (
        "- police_report: MISSING: No reason given." in open_zip(package).read("cover.txt").decode()
    )


def test_document_outside_the_checklist_is_listed_as_additional(documents: Documents) -> None:
    package = build_claim_package(summary(claim_type=ClaimType.LOST), documents)
    assert "- damage_photos (additional): present" in open_zip(package).read("cover.txt").decode()


def test_html_cover_escapes_a_hostile_description(documents: Documents) -> None:
    hostile = summary(description='<script>alert("x")</script>')
    cover = open_zip(build_claim_package(hostile, documents)).read("cover.html").decode()
    assert "<script>" not in cover
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in cover


def test_html_cover_escapes_a_hostile_missing_reason(documents: Documents) -> None:
    hostile = summary(missing_reasons={DocumentKind.PROOF_OF_DELIVERY: "<img src=x onerror=1>"})
    cover = open_zip(build_claim_package(hostile, documents)).read("cover.html").decode()
    assert "<img" not in cover
    assert "&lt;img src=x onerror=1&gt;" in cover


def test_same_input_gives_the_same_bytes(documents: Documents) -> None:
    assert build_claim_package(summary(), documents) == build_claim_package(summary(), documents)


def test_order_of_the_documents_given_does_not_change_the_bytes(documents: Documents) -> None:
    assert build_claim_package(summary(), documents) == build_claim_package(
        summary(), list(reversed(documents))
    )


def test_entries_carry_a_fixed_timestamp(documents: Documents) -> None:
    infos = open_zip(build_claim_package(summary(), documents)).infolist()
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_document_whose_bytes_do_not_match_its_checksum_is_refused(
    documents: Documents,
) -> None:
    ref, _ = documents[0]
    with pytest.raises(ApplicationError) as refused:
        build_claim_package(summary(), [(ref, b"\x89PNG\r\n\x1a\ntampered")])
    assert refused.value.type == DOCUMENT_INTEGRITY
    assert refused.value.non_retryable
