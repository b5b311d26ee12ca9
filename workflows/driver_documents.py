"""What the two driver case types share: a checklist of documents that the driver (through a
signed link) or ops upload, and that ops approve (with an expiry date for documents that
expire) or reject (the item is asked for again). `DriverDocumentsCase` holds the checklist,
the `add_document` and `review_document` updates with their validators, the document records
in SQL and the driver's upload link; each type says what a review leads to.

No I/O here: records and messages are activities.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.drivers import DriverActivities
    from schemas import contracts
    from schemas.activities import MessageRequest, Recipient, SignedLink
    from schemas.cases import CaseState
    from schemas.claims import AddDocumentInput
    from schemas.contracts import ActionNotAllowed, InvalidRequest
    from schemas.documents import DocumentKind, DocumentRef
    from schemas.enums import DriverStatus
    from schemas.onboarding import (
        ChecklistItem,
        CompliancePolicy,
        DriverDocumentRecord,
        DriverProfile,
        DriverStatusChange,
        ItemStatus,
        ReviewDecision,
        ReviewDocumentInput,
    )

from workflows.case import RECORD_OPTIONS, CaseWorkflow, FollowUp

# A driver's link stays usable at least this long.
MIN_LINK_LIFETIME = timedelta(days=7)


class DriverDocumentsCase(CaseWorkflow):
    """Base of the driver case types (not a workflow itself)."""

    escalates_to = "the onboarding coordinator"

    def _init_documents(
        self, driver_id: str, depot_id: str, driver: DriverProfile, policy: CompliancePolicy
    ) -> None:
        self._driver_id, self._depot_id, self._driver = driver_id, depot_id, driver
        self._documents_policy = policy
        # Bumped by every upload and review: a waiting run recomputes its ladder.
        self._changes = 0
        self._received: list[DocumentRef] = []  # every upload, rejected ones included

    # --- the checklist -----------------------------------------------------------------------

    def _items(self) -> list[ChecklistItem]:
        """The items documents are taken for now."""
        raise NotImplementedError

    def _changed_or(self, done: Callable[[], bool]) -> Callable[[], bool]:
        """A wait condition: `done`, or any upload or review from now on."""
        seen = self._changes
        return lambda: done() or self._changes != seen

    def _item(self, kind: DocumentKind) -> ChecklistItem | None:
        return next((item for item in self._items() if item.kind is kind), None)

    def _requested(self) -> list[DocumentKind]:
        return [item.kind for item in self._items() if item.status is ItemStatus.REQUESTED]

    def _in_review(self) -> list[ChecklistItem]:
        return [item for item in self._items() if item.status is ItemStatus.IN_REVIEW]

    def _ui_facts(self) -> list[str]:
        """The documents still to come and those waiting for a review, by kind."""
        if self._case.status.is_terminal:
            return []
        facts = []
        if requested := self._requested():
            kinds = ", ".join(kind.value.replace("_", " ") for kind in requested)
            facts.append(f"Missing: {kinds}")
        if in_review := self._in_review():
            kinds = ", ".join(item.kind.value.replace("_", " ") for item in in_review)
            facts.append(f"To review: {kinds}")
        return facts

    def allowed_actions(self) -> list[str]:
        actions = super().allowed_actions()
        if self._case.status.is_terminal or self._finishing():
            return actions
        if self._requested():
            actions.append("documents")
        if self._in_review():
            actions.append("review")
        return actions

    # --- records and messages ----------------------------------------------------------------

    async def _record_document(self, item: ChecklistItem, status: ItemStatus) -> None:
        assert item.document is not None
        await self._record_driver_document(
            item.kind, item.document.id, status, expires_on=item.expires_on
        )

    async def _record_driver_document(
        self, kind: DocumentKind, document_id: str, status: ItemStatus, *, expires_on: date | None
    ) -> None:
        """The driver's record of one document (for `GET /drivers/{id}` and `expiring_before`)."""
        await workflow.execute_activity_method(
            DriverActivities.record_driver_document,
            DriverDocumentRecord(
                driver_id=self._driver_id,
                case_id=self._case.case_id,
                document_id=document_id,
                kind=kind,
                status=status,
                expires_on=expires_on,
                at=workflow.now(),
            ),
            **RECORD_OPTIONS,
        )

    async def _set_driver_status(self, status: DriverStatus, reason: str) -> None:
        await workflow.execute_activity_method(
            DriverActivities.set_driver_status,
            DriverStatusChange(
                driver_id=self._driver_id, status=status, case_id=self._case.case_id, reason=reason
            ),
            **RECORD_OPTIONS,
        )
        self._event("driver_status", f"Driver record: {status.value}", status=status.value)

    def _context(self) -> dict[str, Any]:
        return {
            "driver_id": self._driver_id,
            "driver_name": self._driver.name,
            "depot_id": self._depot_id,
            "items": [kind.value for kind in self._requested()],
        }

    def _escalation_recipient(self) -> Recipient:
        return Recipient(role="onboarding_coordinator")

    def _to_driver(
        self, step: str, template: str, *, link_until: datetime | None, **context: Any
    ) -> MessageRequest:
        """A message to the driver; with `link_until`, a signed link for what is requested."""
        request = self._message(
            step,
            template,
            Recipient(role="driver", driver_id=self._driver_id),
            **self._context(),
            **context,
        )
        if link_until is not None:
            request.link = SignedLink(
                purpose=contracts.DRIVER_UPLOAD_LINK,
                expires_at=max(link_until, workflow.now() + MIN_LINK_LIFETIME),
                data={"kinds": [kind.value for kind in self._requested()]},
            )
        return request

    def _to_dispatcher(self, step: str, template: str, **context: Any) -> MessageRequest:
        return self._message(
            step,
            template,
            Recipient(role="dispatcher", depot_id=self._depot_id),
            **self._context(),
            **context,
        )

    def _review_reminders(self) -> list[FollowUp]:
        """The coordinator's reminder for each document in review too long."""
        after = self._documents_policy.review_reminder_after
        return [
            FollowUp(
                item.received_at + after,
                f"review reminder {item.document.id}",
                self._review_reminder(item),
            )
            for item in self._in_review()
            if item.document is not None and item.received_at is not None
        ]

    def _review_reminder(self, item: ChecklistItem) -> Callable[[], Awaitable[None]]:
        async def remind() -> None:
            if item.status is not ItemStatus.IN_REVIEW or item.document is None:
                return  # reviewed meanwhile
            await self._send(
                self._message(
                    f"review-reminder-{item.document.id}",
                    "onboarding/review_reminder",
                    self._escalation_recipient(),
                    **self._context(),
                    in_review=[item.kind.value],
                ),
                describe="the review reminder to the onboarding coordinator",
            )

        return remind

    # --- updates -------------------------------------------------------------------------------

    @workflow.update
    async def add_document(self, upload: AddDocumentInput) -> CaseState:
        """A document for a requested item (from the driver's link or from ops)."""
        item = self._item(upload.document.kind)
        assert item is not None
        item.status, item.document = ItemStatus.IN_REVIEW, upload.document
        item.received_at, item.rejected_reason, item.expires_on = workflow.now(), None, None
        self._received.append(upload.document)
        self._changes += 1
        self._event(
            "document_added",
            f"{upload.document.kind.description.split(' (')[0]} received for review",
            actor=upload.by,
            document_id=upload.document.id,
            document_kind=upload.document.kind.value,
            sha256=upload.document.sha256,
        )
        self._refresh_details()
        await self._record_document(item, ItemStatus.IN_REVIEW)
        await self._sync()
        return self._ack()

    @add_document.validator
    def _validate_add_document(self, upload: AddDocumentInput) -> None:
        self._require("documents")
        kind = upload.document.kind
        item = self._item(kind)
        if item is None:
            wanted = ", ".join(k.value for k in self._requested())
            raise InvalidRequest("kind", f"'{kind.value}' is not asked for; requested: {wanted}")
        if item.status is not ItemStatus.REQUESTED:
            raise ActionNotAllowed(f"'{kind.value}' is {item.status.value}, not requested")

    @workflow.update
    async def review_document(self, review: ReviewDocumentInput) -> CaseState:
        """Ops approve or reject a document in review."""
        item = self._reviewed_item(review.document_id)
        approved = review.decision is ReviewDecision.APPROVED
        if approved:
            item.status, item.expires_on = ItemStatus.APPROVED, review.expires_on
        else:
            item.status, item.rejected_reason = ItemStatus.REQUESTED, review.reason
        self._changes += 1
        label = item.kind.description.split(" (")[0]
        self._event(
            "document_reviewed",
            f"{label} approved"
            + (f" (expires {review.expires_on.isoformat()})" if review.expires_on else "")
            if approved
            else f"{label} rejected: {review.reason}",
            actor=review.by,
            document_id=review.document_id,
            decision=review.decision.value,
        )
        self._refresh_details()
        await self._record_document(item, ItemStatus.APPROVED if approved else ItemStatus.REJECTED)
        await self._sync()
        if not approved:
            self._spawn(self._ask_again(item))
        return self._ack()

    @review_document.validator
    def _validate_review_document(self, review: ReviewDocumentInput) -> None:
        self._require("review")
        item = self._reviewed_item(review.document_id)
        if review.decision is not ReviewDecision.APPROVED:
            return
        if item.expires and review.expires_on is None:
            raise InvalidRequest(
                "expires_on", f"expires_on required to approve {item.kind.value} (it expires)"
            )
        if review.expires_on is not None:
            earliest = workflow.now().date() + self._documents_policy.min_validity
            if review.expires_on < earliest:
                raise InvalidRequest(
                    "expires_on",
                    f"expires_on must be {earliest.isoformat()} or later (valid at least "
                    f"{self._documents_policy.min_validity.days} days)",
                )

    def _reviewed_item(self, document_id: str) -> ChecklistItem:
        for item in self._in_review():
            if item.document is not None and item.document.id == document_id:
                return item
        raise ActionNotAllowed(f"document '{document_id}' is not waiting for review")

    async def _ask_again(self, item: ChecklistItem) -> None:
        """A rejected document: the driver hears why, with a fresh link."""
        rejected = item.document.id if item.document else str(self._changes)
        await self._send(
            self._to_driver(
                f"rejected-{rejected}",
                "onboarding/document_rejected",
                link_until=self._link_until(),
                document_kind=item.kind.value,
                rejected_reason=item.rejected_reason,
            ),
            describe="the rejection to the driver",
        )

    def _link_until(self) -> datetime:
        """How long the driver's link works (the case's deadline, or a week)."""
        return self._case.deadline_at or workflow.now() + MIN_LINK_LIFETIME


def expiry_moment(expires_on: date) -> datetime:
    """A document is valid through its expiry date: it has expired from the next midnight
    (UTC)."""
    return datetime.combine(expires_on + timedelta(days=1), time(0), tzinfo=UTC)
