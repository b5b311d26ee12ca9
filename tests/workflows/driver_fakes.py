"""In-memory stand-ins for the driver activities (plus the shared record/message fakes)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from temporalio import activity

from schemas.documents import DocumentKind, DocumentRef
from schemas.enums import DriverStatus
from schemas.onboarding import (
    BriefingPack,
    BriefingPackRequest,
    DriverDocumentRecord,
    DriverStatusChange,
)
from tests.workflows.fakes import FakeWorld


def upload(kind: DocumentKind, content_type: str = "application/pdf") -> DocumentRef:
    return DocumentRef(
        id=str(uuid.uuid4()),
        kind=kind,
        sha256=uuid.uuid4().hex * 2,
        content_type=content_type,
        size_bytes=2048,
        original_name_sanitized=None,
        stored_at=datetime.now(UTC),
    )


@dataclass
class DriverWorld(FakeWorld):
    driver_status: dict[str, list[DriverStatus]] = field(default_factory=dict)
    driver_documents: list[DriverDocumentRecord] = field(default_factory=list)
    briefings: list[BriefingPackRequest] = field(default_factory=list)

    @activity.defn(name="set_driver_status")
    async def set_driver_status(self, change: DriverStatusChange) -> None:
        self.driver_status.setdefault(change.driver_id, []).append(change.status)

    @activity.defn(name="record_driver_document")
    async def record_driver_document(self, record: DriverDocumentRecord) -> None:
        self.driver_documents.append(record)

    @activity.defn(name="build_briefing_pack")
    async def build_briefing_pack(self, request: BriefingPackRequest) -> BriefingPack:
        self.briefings.append(request)
        return BriefingPack(documents=[upload(DocumentKind.BRIEFING_PACK)])

    def activities(self) -> list[Callable[..., object]]:
        return [
            *super().activities(),
            self.set_driver_status,
            self.record_driver_document,
            self.build_briefing_pack,
        ]
