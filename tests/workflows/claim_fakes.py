"""In-memory stand-ins for the claim activities (plus the shared record/message fakes)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from schemas.claims import (
    CompiledPackage,
    CompilePackageRequest,
    GatheredEvidence,
    GatherEvidenceRequest,
)
from schemas.documents import DocumentKind, DocumentRef
from tests.workflows.fakes import FakeWorld


def document(kind: DocumentKind, content_type: str = "application/pdf") -> DocumentRef:
    return DocumentRef(
        id=str(uuid.uuid4()),
        kind=kind,
        sha256=uuid.uuid4().hex * 2,
        content_type=content_type,
        size_bytes=1234,
        original_name_sanitized=None,
        stored_at=datetime.now(UTC),
    )


@dataclass
class ClaimWorld(FakeWorld):
    gathered: list[GatherEvidenceRequest] = field(default_factory=list)
    packages: list[CompilePackageRequest] = field(default_factory=list)
    gather_failure: str | None = None
    package_failures: int = 0  # how many compile attempts fail (non-retryably) first

    @activity.defn(name="gather_system_evidence")
    async def gather_system_evidence(self, request: GatherEvidenceRequest) -> GatheredEvidence:
        self.gathered.append(request)
        if self.gather_failure:
            raise ApplicationError(self.gather_failure, type="UnknownReference", non_retryable=True)
        return GatheredEvidence(documents=[document(kind) for kind in request.kinds])

    @activity.defn(name="compile_claim_package")
    async def compile_claim_package(self, request: CompilePackageRequest) -> CompiledPackage:
        self.packages.append(request)
        if self.package_failures:
            self.package_failures -= 1
            raise ApplicationError("document missing", type="DocumentMissing", non_retryable=True)
        return CompiledPackage(package=document(DocumentKind.OTHER, "application/zip"))

    def activities(self) -> list[Callable[..., object]]:
        return [*super().activities(), self.gather_system_evidence, self.compile_claim_package]
