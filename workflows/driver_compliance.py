"""The compliance watch: an active driver's expiring documents, for as long as they drive.

Started by the onboarding case at activation (`driver-compliance-{driver_id}`), it follows
each approved document that expires (licence, insurance, vehicle registration). 30 days
before an expiry the driver is asked for a replacement through a signed link, and reminded
every 7 days; 7 days before, the onboarding coordinator is told. If the date passes without
an approved replacement, the driver record becomes suspended and the depot's dispatcher is
told at once: the driver must not be routed. An approved replacement (reviewed like an
onboarding document) takes the old one's place; once nothing keeps the driver suspended the
record is active again and the dispatcher hears so.

The watch runs for years: it continues as new whenever its history grows past the policy's
budget, and ends only when the driver is offboarded (`POST /drivers/{id}/offboard`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.activities import MessageRequest
    from schemas.cases import CaseSnapshot, CaseState
    from schemas.contracts import ActionNotAllowed
    from schemas.documents import DocumentKind
    from schemas.enums import CaseStatus, CaseType, DriverStatus, Resolution
    from schemas.onboarding import (
        ChecklistItem,
        ComplianceDetails,
        DriverComplianceCarry,
        DriverComplianceInput,
        ItemStatus,
        OffboardInput,
        WatchedDocument,
    )

from workflows.case import FollowUp
from workflows.driver_documents import DriverDocumentsCase, expiry_moment

WATCHING = "watching"  # where the run waits (`CaseCarry.stage`)


@workflow.defn
class DriverComplianceWorkflow(DriverDocumentsCase):
    """One watch per driver (`driver-compliance-{driver_id}`)."""

    case_type = CaseType.DRIVER_COMPLIANCE
    carry_model = DriverComplianceCarry
    _input: DriverComplianceInput

    @workflow.init
    def __init__(self, input: DriverComplianceInput) -> None:
        self._input = input
        self._policy = input.policy
        self._init_documents(input.driver_id, input.depot_id, input.driver, input.policy)
        self._watched = list(input.documents)
        self._renewals: list[ChecklistItem] = []
        self._suspended_for: list[DocumentKind] = []
        self._offboard_request: OffboardInput | None = None
        if input.carried is not None:
            self._resume(input.carried)
            return
        ahead = self._ladder()
        self._open_case(
            business_key=input.driver_id,
            client_id=None,
            depot_id=input.depot_id,
            subject=f"Compliance watch for driver {input.driver_id} at {input.depot_id}",
            deadline_at=self._next_expiry(),
            next_step=(ahead[0].label, ahead[0].at) if ahead else None,
        )

    @workflow.run
    async def run(self, input: DriverComplianceInput) -> CaseSnapshot:
        if input.carried is None:
            await self._opened(
                f"Compliance watch opened for driver {input.driver_id} "
                f"({len(self._watched)} documents that expire)",
                actor=input.opened_by,
                policy=input.policy,
            )
            await self._set_status(
                CaseStatus.MONITORING,
                "Watching the driver's documents",
                deadline_at=self._next_expiry(),
            )
        while self._offboard_request is None:
            await self._wait(
                self._changed_or(lambda: self._offboard_request is not None),
                stage=WATCHING,
                follow_ups=self._ladder(),
                give_up_at=None,
            )
            await self._settle()
        request = self._offboard_request
        await self._set_driver_status(DriverStatus.OFFBOARDED, request.reason)
        await self._close(Resolution.OFFBOARDED, f"Offboarded: {request.reason}", actor=request.by)
        return await self._finish()

    # --- the ladder ----------------------------------------------------------------------------

    def _ladder(self) -> list[FollowUp]:
        """For each watched document: the renewal request, weekly reminders, the
        coordinator's warning and the expiry itself. Labels name the document's expiry date,
        so a renewed document starts a fresh ladder."""
        policy, steps = self._policy, []
        for doc in self._watched:
            expires_at = expiry_moment(doc.expires_on)
            name = f"{doc.kind.value} expiring {doc.expires_on.isoformat()}"
            notice_at = expires_at - policy.renewal_notice_before
            steps.append(FollowUp(notice_at, f"ask to renew {name}", self._ask_renewal(doc)))
            n, at = 1, notice_at + policy.renewal_reminder_every
            while at < expires_at:
                steps.append(FollowUp(at, f"reminder {n}: renew {name}", self._remind(doc, n)))
                n, at = n + 1, at + policy.renewal_reminder_every
            warn_at = expires_at - policy.coordinator_warning_before
            steps.append(FollowUp(warn_at, f"warn the coordinator: {name}", self._warn(doc)))
            steps.append(FollowUp(expires_at, f"suspend if not renewed: {name}", self._expire(doc)))
        steps.extend(self._review_reminders())
        return steps

    def _renewal(self, kind: DocumentKind) -> ChecklistItem | None:
        return next((item for item in self._renewals if item.kind is kind), None)

    def _ask_renewal(self, doc: WatchedDocument) -> Callable[[], Awaitable[None]]:
        async def ask() -> None:
            if self._renewal(doc.kind) is None:
                self._renewals.append(ChecklistItem(kind=doc.kind))
            self._refresh_details()
            if self._case.status is CaseStatus.MONITORING:
                await self._set_status(
                    CaseStatus.RENEWAL_REQUESTED,
                    f"Renewal asked for: {doc.kind.value} expires {doc.expires_on.isoformat()}",
                    deadline_at=self._next_expiry(),
                )
            await self._send(
                self._renewal_message(doc, "renewal-request", "compliance/renewal_request"),
                describe="the renewal request to the driver",
            )

        return ask

    def _remind(self, doc: WatchedDocument, number: int) -> Callable[[], Awaitable[None]]:
        async def remind() -> None:
            item = self._renewal(doc.kind)
            if item is None or item.status is not ItemStatus.REQUESTED:
                return  # a replacement is in review (or approved)
            await self._send(
                self._renewal_message(doc, f"reminder-{number}", "compliance/renewal_reminder"),
                describe="the renewal reminder to the driver",
            )

        return remind

    def _warn(self, doc: WatchedDocument) -> Callable[[], Awaitable[None]]:
        async def warn() -> None:
            if not self._still_due(doc):
                return
            await self._send(
                self._message(
                    f"{self._doc_key(doc)}/coordinator-warning",
                    "compliance/coordinator_warning",
                    self._escalation_recipient(),
                    **self._context(),
                    document_kind=doc.kind.value,
                    expires_on=doc.expires_on.isoformat(),
                ),
                describe="the expiry warning to the onboarding coordinator",
            )

        return warn

    def _expire(self, doc: WatchedDocument) -> Callable[[], Awaitable[None]]:
        async def expire() -> None:
            if not self._still_due(doc):
                return
            self._suspended_for.append(doc.kind)
            reason = f"{doc.kind.value} expired on {doc.expires_on.isoformat()}"
            await self._set_driver_status(DriverStatus.SUSPENDED, reason)
            await self._send(
                self._to_dispatcher(
                    f"{self._doc_key(doc)}/suspended",
                    "compliance/suspended",
                    document_kind=doc.kind.value,
                    expires_on=doc.expires_on.isoformat(),
                ),
                describe="the suspension notice to the depot's dispatcher",
            )
            await self._flag_escalation(f"Driver suspended: {reason}")
            self._refresh_details()
            await self._set_status(
                CaseStatus.SUSPENDED, f"Suspended: {reason}", deadline_at=self._next_expiry()
            )

        return expire

    def _still_due(self, doc: WatchedDocument) -> bool:
        """The document is still the one watched (no approved replacement yet)."""
        return any(w.document_id == doc.document_id for w in self._watched)

    def _doc_key(self, doc: WatchedDocument) -> str:
        return f"{doc.kind.value}-{doc.expires_on.isoformat()}"

    def _renewal_message(self, doc: WatchedDocument, step: str, template: str) -> MessageRequest:
        return self._to_driver(
            f"{self._doc_key(doc)}/{step}",
            template,
            link_until=expiry_moment(doc.expires_on) + timedelta(days=30),
            document_kind=doc.kind.value,
            expires_on=doc.expires_on.isoformat(),
        )

    # --- after a review ------------------------------------------------------------------------

    async def _settle(self) -> None:
        """Approved replacements take their old document's place; a driver nothing keeps
        suspended any more is reinstated."""
        approved = [item for item in self._renewals if item.status is ItemStatus.APPROVED]
        if not approved:
            self._refresh_details()
            return
        for item in approved:
            assert item.document is not None and item.expires_on is not None
            # The replaced document no longer counts: its record says so (runs from before
            # this record existed replay without it).
            if workflow.patched("record-superseded"):
                for old in [w for w in self._watched if w.kind is item.kind]:
                    await self._record_driver_document(
                        old.kind, old.document_id, ItemStatus.SUPERSEDED, expires_on=old.expires_on
                    )
            self._watched = [w for w in self._watched if w.kind is not item.kind]
            self._watched.append(
                WatchedDocument(
                    kind=item.kind,
                    document_id=item.document.id,
                    expires_on=item.expires_on,
                    sha256=item.document.sha256,
                )
            )
            self._renewals.remove(item)
            if item.kind in self._suspended_for:
                self._suspended_for.remove(item.kind)
        self._refresh_details()
        if self._case.status is CaseStatus.SUSPENDED and not self._suspended_for:
            await self._set_driver_status(DriverStatus.ACTIVE, "replacement approved")
            await self._send(
                self._to_dispatcher(
                    f"reinstated-{len(self._watched)}-{self._changes}",
                    "compliance/reinstated",
                ),
                describe="the reinstatement notice to the depot's dispatcher",
            )
        if not self._suspended_for:
            status = CaseStatus.RENEWAL_REQUESTED if self._renewals else CaseStatus.MONITORING
            if status is not self._case.status:
                await self._set_status(
                    status, "Replacement approved", deadline_at=self._next_expiry()
                )

    # --- state ---------------------------------------------------------------------------------

    def _items(self) -> list[ChecklistItem]:
        return self._renewals

    def _next_expiry(self) -> datetime | None:
        moments = [expiry_moment(doc.expires_on) for doc in self._watched]
        return min(moments) if moments else None

    def allowed_actions(self) -> list[str]:
        # The watch ends by offboarding the driver, never by cancelling it.
        return [action for action in super().allowed_actions() if action != "cancel"]

    def _finishing(self) -> bool:
        return super()._finishing() or self._offboard_request is not None

    def _event_budget(self) -> int:
        return self._policy.history_event_budget

    def _details(self) -> ComplianceDetails:
        return ComplianceDetails(
            driver_id=self._driver_id,
            depot_id=self._depot_id,
            documents=list(self._watched),
            renewals=[item.model_copy() for item in self._renewals],
            suspended_for=list(self._suspended_for),
            policy=self._policy,
        )

    # --- offboarding ---------------------------------------------------------------------------

    @workflow.update
    async def offboard(self, request: OffboardInput) -> CaseState:
        """The driver leaves: the watch ends (the run closes it and waits up to 10 s)."""
        self._offboard_request = request
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._case.status.is_terminal,
                timeout=timedelta(seconds=10),
                timeout_summary="offboard: up to 10 s for the case to close",
            )
        return self._ack()

    @offboard.validator
    def _validate_offboard(self, request: OffboardInput) -> None:
        if self._case.status.is_terminal or self._offboard_request is not None:
            raise ActionNotAllowed("the driver is already offboarded")
