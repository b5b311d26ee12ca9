"""Claim activities: the evidence casedesk holds itself, and the compiled claim package.

Documents go to the document store and come back to the workflow as `DocumentRef`s only.
The store does blocking file I/O, so every call to it runs in a thread.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import jinja2
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.claim_package import build_claim_package, claim_package_templates
from activities.documents import load_document
from activities.errors import DOCUMENT_REJECTED
from activities.heartbeat import heartbeating
from activities.pdf import render_pdf
from activities.rendering import failure_reason_text, human_datetime
from core.db import SessionFactory
from core.documents import DocumentStore
from core.uploads import UploadRejected
from schemas.cases import TimelineEvent
from schemas.claims import (
    CompiledPackage,
    CompilePackageRequest,
    GatheredEvidence,
    GatherEvidenceRequest,
)
from schemas.documents import ClaimPackageInput, DocumentKind, DocumentRef
from schemas.enums import StopOutcome
from schemas.tables import DeliveryRecord, Shipment, TimelineEntry

SYSTEM_EVIDENCE = (DocumentKind.ATTEMPT_RECORD, DocumentKind.PROOF_OF_DELIVERY)
"""The kinds `gather_system_evidence` can produce; others are left to people."""


def _money(cents: int, currency: str) -> str:
    return f"{Decimal(cents) / 100:.2f} {currency}"


def _header(
    request: GatherEvidenceRequest, shipment: Shipment | None, as_of: datetime
) -> list[str]:
    produced = f"Produced by casedesk from its own records as of {human_datetime(as_of)}."
    if shipment is None:
        return [
            f"Case: {request.case_id}",
            f"Shipment: {request.shipment_id} (casedesk holds no record of this shipment)",
            produced,
            "",
        ]
    return [
        f"Case: {request.case_id}",
        f"Shipment: {shipment.id}",
        f"Client: {shipment.client_id}",
        f"Depot: {shipment.depot_id}",
        f"Shipment status: {shipment.status.value} ({shipment.status.description})",
        produced,
        "",
    ]


def _attempt_details(attempt: DeliveryRecord) -> list[str]:
    """What the failed-delivery case recorded with the attempt; an attempt only the routing
    system reported carries none of it."""
    if attempt.reason is None:
        return ["    Reported by the routing system (no reason, driver or fee recorded)."]
    lines = [
        f"    Reason: {attempt.reason} - {failure_reason_text(attempt.reason)}",
        f"    Driver: {attempt.driver_id}",
    ]
    if attempt.case_fee_cents is not None and attempt.case_fee_currency is not None:
        lines.append(f"    Fee: {_money(attempt.case_fee_cents, attempt.case_fee_currency)}")
    return lines


def attempt_record_pdf(
    request: GatherEvidenceRequest,
    shipment: Shipment | None,
    attempts: list[DeliveryRecord],
    as_of: datetime,
) -> bytes:
    """Every recorded failed attempt: time, number, reason, driver and the fee charged."""
    lines = _header(request, shipment, as_of)
    if not attempts:
        lines.append("No failed delivery attempt is on record for this shipment.")
    else:
        lines.append(f"{len(attempts)} failed delivery attempt(s) on record:")
        for attempt in attempts:
            lines += [
                "",
                f"Attempt {attempt.attempt_number} at {human_datetime(attempt.attempted_at)}",
                *_attempt_details(attempt),
            ]
    return render_pdf(lines, title=f"Delivery attempt record - shipment {request.shipment_id}")


def no_proof_of_delivery_pdf(
    request: GatherEvidenceRequest, shipment: Shipment | None, as_of: datetime
) -> bytes:
    """casedesk holds no signature, photo or GPS hand-over record: the carrier needs the
    statement that there is none, with the shipment's status."""
    lines = _header(request, shipment, as_of)
    title = f"Proof of delivery statement - shipment {request.shipment_id}"
    if shipment is None:
        lines.append(
            f"No proof of delivery is on record for shipment {request.shipment_id} "
            f"as of {human_datetime(as_of)}: casedesk has no record of the shipment."
        )
        return render_pdf(lines, title=title)
    lines += [
        f"No proof of delivery is on record for shipment {shipment.id} "
        f"as of {human_datetime(as_of)}.",
        "",
        f"The shipment's last recorded status is {shipment.status.value}: "
        f"{shipment.status.description}",
        f"Failed delivery attempts recorded: {shipment.failed_attempts}.",
        f"Shipment record last updated {human_datetime(shipment.updated_at)}.",
    ]
    return render_pdf(lines, title=title)


def _rejected(what: str, err: UploadRejected) -> ApplicationError:
    # The store refuses the same bytes every time (too large for the limit, say): do not retry.
    return ApplicationError(f"{what}: {err.reason}", type=DOCUMENT_REJECTED, non_retryable=True)


class ClaimActivities:
    """Built once in worker.py with the database sessions and the document store."""

    def __init__(
        self,
        *,
        sessions: SessionFactory,
        documents: DocumentStore,
        templates: jinja2.Environment | None = None,
    ) -> None:
        self._sessions = sessions
        self._documents = documents
        self._templates = templates or claim_package_templates()

    @activity.defn
    async def gather_system_evidence(self, request: GatherEvidenceRequest) -> GatheredEvidence:
        """Attempt records and the proof-of-delivery statement for the shipment, stored; any
        other kind asked for is skipped (the driver, customer or ops provide those)."""
        async with heartbeating():
            return await self._gather_system_evidence(request)

    async def _gather_system_evidence(self, request: GatherEvidenceRequest) -> GatheredEvidence:
        kinds = [kind for kind in dict.fromkeys(request.kinds) if kind in SYSTEM_EVIDENCE]
        async with self._sessions() as session:
            # No shipment record (a claim for a parcel we never attempted) is itself the
            # system's evidence: the statements say so instead of failing the claim.
            shipment = await session.get(Shipment, request.shipment_id)
            attempts = await self._attempts(session, request.shipment_id)
        as_of = datetime.now(UTC).replace(microsecond=0)

        documents: list[DocumentRef] = []
        for kind in kinds:
            if kind is DocumentKind.ATTEMPT_RECORD:
                data = attempt_record_pdf(request, shipment, attempts, as_of)
                name = f"attempt-record-{request.shipment_id}.pdf"
            else:
                data = no_proof_of_delivery_pdf(request, shipment, as_of)
                name = f"proof-of-delivery-statement-{request.shipment_id}.pdf"
            try:
                ref = await asyncio.to_thread(
                    self._documents.put, data, kind=kind, declared_name=name
                )
            except UploadRejected as err:
                raise _rejected(f"{kind.value} for {request.shipment_id}", err) from None
            documents.append(ref)
        activity.logger.info(
            "gathered %s for %s", [ref.kind.value for ref in documents], request.case_id
        )
        return GatheredEvidence(documents=documents)

    @activity.defn
    async def compile_claim_package(self, request: CompilePackageRequest) -> CompiledPackage:
        """The ZIP of the cover sheet and every document (each checked against its checksum
        first: a missing or altered one fails for good), stored in the document store."""
        async with heartbeating():
            return await self._compile_claim_package(request)

    async def _compile_claim_package(self, request: CompilePackageRequest) -> CompiledPackage:
        documents = [(ref, await load_document(self._documents, ref)) for ref in request.documents]
        summary = request.summary.model_copy(
            update={"timeline": await self._timeline(request.summary)}
        )
        package = await asyncio.to_thread(
            build_claim_package, summary, documents, templates=self._templates
        )
        name = f"claim-package-{request.summary.shipment_id}.zip"
        try:
            ref = await asyncio.to_thread(self._documents.put_package, package, name=name)
        except UploadRejected as err:
            raise _rejected(f"claim package for {request.summary.case_id}", err) from None
        return CompiledPackage(package=ref)

    async def _timeline(self, summary: ClaimPackageInput) -> list[TimelineEvent]:
        """The claim's whole timeline for the cover sheet: the projection's events (a
        workflow keeps only those not yet written) and the ones the request carries."""
        async with self._sessions() as session:
            rows = await session.exec(
                select(TimelineEntry).where(TimelineEntry.case_id == summary.case_id)
            )
            merged = {
                row.seq: TimelineEvent.model_validate(row, from_attributes=True)
                for row in rows.all()
            }
        merged.update({event.seq: event for event in summary.timeline})
        return [merged[seq] for seq in sorted(merged)]

    @staticmethod
    async def _attempts(session: AsyncSession, shipment_id: str) -> list[DeliveryRecord]:
        statement = (
            select(DeliveryRecord)
            .where(
                DeliveryRecord.shipment_id == shipment_id,
                DeliveryRecord.outcome == StopOutcome.FAILED,
            )
            .order_by(DeliveryRecord.attempt_number)  # type: ignore[arg-type]
        )
        return list((await session.exec(statement)).all())
