"""The driver-onboarding case: from a new driver to an active one, or an abandoned attempt.

The driver is emailed a welcome with the depot's route briefing pack attached and a signed
upload link listing what is still required (the checklist comes from the onboarding policy,
the depot and the vehicle type). Each upload waits for review; ops approve it (with the
expiry date for a licence, insurance or vehicle registration) or reject it (the driver hears
why, with a fresh link, and the item is requested again). The driver is reminded every 48 h
of what is still requested, the onboarding coordinator is told after 7 days, and a document
in review for over 24 h reminds the coordinator. After 30 days without completion the case
is abandoned: the driver record says so, the coordinator is told, the link stops working.

When every item is approved the driver record becomes active, the driver receives the
first-day instructions, the depot's dispatcher is told the driver can be scheduled from the
planned start date, the compliance watch for the driver's expiring documents starts, and
the case closes as activated. Ops may withdraw it (the driver record becomes withdrawn).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.drivers import DriverActivities
    from schemas.case_types import DRIVER_COMPLIANCE
    from schemas.cases import CaseSnapshot
    from schemas.documents import DocumentRef
    from schemas.enums import CaseStatus, CaseType, DriverStatus, Resolution
    from schemas.onboarding import (
        BriefingPackRequest,
        ChecklistItem,
        DriverComplianceInput,
        DriverOnboardingCarry,
        DriverOnboardingInput,
        ItemStatus,
        OnboardingDetails,
        OnboardingDocument,
        expiring,
        onboarding_reminders,
    )
    from schemas.openings import driver_onboarding_first_view
    from schemas.ui_text import case_details, case_summary

from workflows.case import DOCUMENT_OPTIONS, FollowUp
from workflows.driver_documents import DriverDocumentsCase

COLLECTING = "collecting-documents"  # where the run waits (`CaseCarry.stage`)


@workflow.defn
class DriverOnboardingWorkflow(DriverDocumentsCase):
    """One case per driver (`driver-onboarding-{driver_id}`)."""

    case_type = CaseType.DRIVER_ONBOARDING
    cancelled_as = (CaseStatus.CLOSED, Resolution.WITHDRAWN, "Withdrawn")
    carry_model = DriverOnboardingCarry
    _input: DriverOnboardingInput

    @workflow.init
    def __init__(self, input: DriverOnboardingInput) -> None:
        self._input = input
        self._policy = input.policy
        self._init_documents(input.driver_id, input.depot_id, input.driver, input.policy.compliance)
        self._checklist = [ChecklistItem(kind=kind) for kind in input.checklist]
        self._started_at = input.opened_at or workflow.now()
        self._compliance_case_id: str | None = None
        if input.carried is not None:
            self._resume(input.carried)
            return
        first = driver_onboarding_first_view(input, self._started_at)
        self._open_case(
            business_key=input.driver_id,
            client_id=None,
            depot_id=input.depot_id,
            subject=f"Onboarding driver {input.driver_id} ({input.vehicle_type.value}) "
            f"at {input.depot_id}",
            opened_at=self._started_at,
            deadline_at=first.deadline_at,
            next_step=first.step,
        )

    @workflow.run
    async def run(self, input: DriverOnboardingInput) -> CaseSnapshot:
        if input.carried is None:
            await self._opened(
                f"Onboarding opened for driver {input.driver_id} "
                f"({len(self._checklist)} documents required)",
                actor=input.opened_by,
                policy=input.policy,
            )
            await self._welcome()
        if await self._collect():
            await self._activate()
        elif not self._cancel_request:
            await self._abandon()
        return await self._finish()

    # --- the steps -----------------------------------------------------------------------------

    def _abandon_at(self) -> datetime:
        return self._started_at + self._policy.abandon_after

    async def _welcome(self) -> None:
        """The briefing pack, then the welcome with it attached and the upload link."""
        await self._set_status(
            CaseStatus.COLLECTING_DOCUMENTS,
            f"Collecting documents: {len(self._checklist)} requested",
            deadline_at=self._abandon_at(),
        )
        pack: list[DocumentRef] = []
        try:
            built = await workflow.execute_activity_method(
                DriverActivities.build_briefing_pack,
                BriefingPackRequest(
                    case_id=self._case.case_id,
                    depot_id=self._depot_id,
                    driver_id=self._driver_id,
                    planned_start_date=self._input.planned_start_date,
                    vehicle_type=self._input.vehicle_type,
                ),
                **DOCUMENT_OPTIONS,
            )
            pack = built.documents
        except ActivityError as err:
            reason = f"Could not build the briefing pack: {err.cause}"
            await self._escalate(reason, step="briefing-failed")
        welcome = self._to_driver(
            "welcome", "onboarding/welcome", link_until=self._abandon_at(), **self._facts()
        )
        welcome.attachments = pack
        await self._send(welcome, describe="the welcome and briefing pack to the driver")

    async def _collect(self) -> bool:
        """Wait until every item is approved (True), the case is withdrawn or it is abandoned
        (False), following the ladder: reminders, the coordinator's escalation, review
        reminders. Every upload or review recomputes what is still ahead."""
        while True:
            if self._complete():
                return True
            ladder = [FollowUp(at, label, self._remind) for label, at in self._reminder_times()] + [
                FollowUp(
                    self._started_at + self._policy.escalate_after,
                    "escalate to the onboarding coordinator",
                    self._escalate_incomplete,
                ),
                *self._review_reminders(),
            ]
            waited = await self._wait(
                self._changed_or(self._complete),
                stage=COLLECTING,
                follow_ups=ladder,
                give_up_at=self._abandon_at(),
                give_up_label="abandon the onboarding",
            )
            if self._cancel_request:
                return False
            if not waited:
                return False

    def _complete(self) -> bool:
        return all(item.status is ItemStatus.APPROVED for item in self._checklist)

    def _reminder_times(self) -> list[tuple[str, datetime]]:
        return onboarding_reminders(self._policy, self._started_at)

    async def _remind(self) -> None:
        if not self._requested():
            return  # everything is in, waiting for review: nothing to ask the driver
        reminders = sum(1 for key in self._fired if ":remind the driver" in key)
        await self._send(
            self._to_driver(
                f"reminder-{reminders}",
                "onboarding/reminder",
                link_until=self._abandon_at(),
                **self._facts(),
            ),
            describe="the reminder to the driver",
        )

    async def _escalate_incomplete(self) -> None:
        days = self._policy.escalate_after.days
        missing = ", ".join(k.value for k in self._requested()) or "none (all in review)"
        in_review = ", ".join(item.kind.value for item in self._in_review()) or "none"
        reason = (
            f"Driver {self._driver_id} not onboarded after {days} days; "
            f"still requested: {missing}; in review: {in_review}"
        )
        await self._escalate(
            reason,
            step="coordinator-escalation",
            numbered=False,
            template="onboarding/coordinator_escalation",
            **self._facts(),
        )

    async def _activate(self) -> None:
        await self._set_driver_status(DriverStatus.ACTIVE, "every document approved")
        await self._start_compliance_watch()
        facts = self._facts()
        await self._send(
            self._to_driver("first-day", "onboarding/first_day", link_until=None, **facts),
            describe="the first-day instructions to the driver",
        )
        await self._send(
            self._to_dispatcher("dispatcher-ready", "onboarding/dispatcher_ready", **facts),
            describe="the notice to the depot's dispatcher",
        )
        await self._close(
            Resolution.ACTIVATED,
            f"Activated: driver {self._driver_id} can be scheduled from "
            f"{self._input.planned_start_date.isoformat()}",
        )

    async def _start_compliance_watch(self) -> None:
        """The watch over the approved documents that expire: a workflow of its own that
        outlives this case (or the one already running for the driver)."""
        watch_id = DRIVER_COMPLIANCE.case_type.workflow_id(self._driver_id)
        try:
            await workflow.start_child_workflow(
                DRIVER_COMPLIANCE.workflow_type,
                DriverComplianceInput(
                    driver_id=self._driver_id,
                    depot_id=self._depot_id,
                    driver=self._driver,
                    documents=expiring(self._checklist),
                    policy=self._policy.compliance,
                    timezone=self._input.timezone,
                    opened_by=self._case.case_id,
                ),
                id=watch_id,
                static_summary=case_summary(DRIVER_COMPLIANCE.case_type, self._driver_id, None),
                static_details=case_details(
                    DRIVER_COMPLIANCE.case_type,
                    subject=f"Document expiry watch for driver {self._driver_id} "
                    f"(opened by {self._case.case_id})",
                    client_id=None,
                    depot_id=self._depot_id,
                    zone_name=self._input.timezone,
                    policy=self._policy.compliance,
                ),
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                parent_close_policy=ParentClosePolicy.ABANDON,
            )
            self._event("compliance_started", f"Compliance watch {watch_id} started")
        except WorkflowAlreadyStartedError:
            self._event("compliance_linked", f"Compliance watch {watch_id} already running")
        self._compliance_case_id = watch_id
        self._refresh_details()

    async def _abandon(self) -> None:
        days = self._policy.abandon_after.days
        reason = f"not completed within {days} days"
        await self._set_driver_status(DriverStatus.ABANDONED, reason)
        await self._send(
            self._message(
                "abandoned",
                "onboarding/abandoned",
                self._escalation_recipient(),
                **self._context(),
                **self._facts(),
            ),
            describe="the abandonment notice to the onboarding coordinator",
        )
        await self._close(Resolution.ABANDONED, f"Abandoned: {reason}")

    async def _on_cancel(self) -> None:
        assert self._cancel_request is not None
        await self._set_driver_status(DriverStatus.WITHDRAWN, self._cancel_request.reason)

    # --- state ---------------------------------------------------------------------------------

    def _items(self) -> list[ChecklistItem]:
        return self._checklist

    def _finishing(self) -> bool:
        return super()._finishing() or self._complete()

    def _facts(self) -> dict[str, Any]:
        return {
            "depot_name": self._input.depot_name,
            "vehicle_type": self._input.vehicle_type.value,
            "planned_start_date": self._input.planned_start_date.isoformat(),
        }

    def _event_budget(self) -> int:
        return self._policy.history_event_budget

    def _details(self) -> OnboardingDetails:
        return OnboardingDetails(
            driver_id=self._driver_id,
            depot_id=self._depot_id,
            vehicle_type=self._input.vehicle_type,
            planned_start_date=self._input.planned_start_date,
            checklist=[item.model_copy() for item in self._checklist],
            documents=[
                OnboardingDocument(id=doc.id, kind=doc.kind, sha256=doc.sha256)
                for doc in self._received
            ],
            compliance_case_id=self._compliance_case_id,
            policy=self._policy,
        )
