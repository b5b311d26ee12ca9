"""The damage / loss claim case: evidence against a filing deadline, then a decision.

The filing deadline is the delivery event plus the policy's filing window (72 h). The case
gathers what the system holds itself (attempt records, proof of delivery or the statement that
there is none), asks the driver for damage photos and the customer for an attestation and
proof of value by email with a signed upload link, reminds whoever still owes an item 24 h and
48 h after the delivery event, and escalates to the claims desk 12 h before the deadline if
anything is missing. A claim reported after the deadline is opened, marked late and escalated
at once; a deadline that passes with items missing is escalated and the case keeps waiting for
the evidence or for ops to file.

When the checklist is complete, or ops file early and say why items are missing, the claim
package (cover sheet + documents) is compiled and emailed to the client's claims contact.
The case then waits for the decision, following up every 7 days: approved closes it as paid,
denied as denied; more information sends it back to gathering. Withdrawing closes it as
withdrawn.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.claims import ClaimActivities
    from schemas import contracts
    from schemas.activities import MessageRequest, Recipient, SignedLink
    from schemas.cases import CaseSnapshot, CaseState
    from schemas.claims import (
        AddDocumentInput,
        ClaimDecision,
        ClaimDocument,
        CompiledPackage,
        CompilePackageRequest,
        DamageClaimCarry,
        DamageClaimDetails,
        DamageClaimInput,
        DecisionInput,
        FileClaimInput,
        GatherEvidenceRequest,
    )
    from schemas.contracts import InvalidRequest
    from schemas.documents import (
        CLAIM_CHECKLISTS,
        EVIDENCE_SOURCES,
        ClaimPackageInput,
        DocumentKind,
        DocumentRef,
    )
    from schemas.enums import CaseStatus, CaseType, ContactKind, Resolution
    from schemas.openings import claim_deadline, claim_follow_ups, damage_claim_first_view
    from schemas.ui_text import local_time

from workflows.case import DOCUMENT_OPTIONS, CaseWorkflow, FollowUp

# Where a run waits, and a continued run resumes (`CaseCarry.stage`).
GATHERING = "gathering-evidence"
OVERDUE = "past-filing-deadline"
DECIDING = "awaiting-decision"

# An upload link stays usable at least this long, even when the deadline is closer.
MIN_LINK_LIFETIME = timedelta(hours=48)


def _step_summary(label: str) -> str:
    """What the Temporal UI shows on a ladder step's timer (the labels stay as they were:
    they key the steps already run)."""
    if label.startswith("reminder "):
        return f"{label} to the driver and customer (evidence)"
    return f"{label}, before the filing deadline"


@workflow.defn
class DamageClaimWorkflow(CaseWorkflow):
    """One claim per shipment (`damage-claim-{shipment_id}`)."""

    case_type = CaseType.DAMAGE_CLAIM
    escalates_to = "the claims desk"
    cancelled_as = (CaseStatus.CLOSED, Resolution.WITHDRAWN, "Withdrawn")
    carry_model = DamageClaimCarry
    _input: DamageClaimInput

    @workflow.init
    def __init__(self, input: DamageClaimInput) -> None:
        self._input = input
        self._policy = input.policy
        self._round = 1
        self._anchor = input.delivery_event_at  # reminders count from here (round 1)
        self._deadline = claim_deadline(input)
        self._checklist: list[DocumentKind] = list(CLAIM_CHECKLISTS[input.claim_type])
        self._documents: dict[DocumentKind, list[DocumentRef]] = {}
        self._file_request: FileClaimInput | None = None
        self._decision: DecisionInput | None = None
        self._package: DocumentRef | None = None
        self._filed_at: datetime | None = None
        # Set when the package could not be built: wait for a person (a new document or a
        # new file request) instead of compiling the same inputs again.
        self._package_failed = False
        self._follow_ups_sent = 0
        self._next_follow_up_at: datetime | None = None
        opened_at = input.opened_at or workflow.now()
        self._late = opened_at >= self._deadline
        if input.carried is not None:
            self._resume(input.carried)
            return
        first = damage_claim_first_view(input, opened_at)
        self._open_case(
            business_key=input.shipment_id,
            client_id=input.client_id,
            depot_id=input.depot_id,
            subject=f"Claim for shipment {input.shipment_id}: {input.claim_type.value}",
            opened_at=opened_at,
            deadline_at=first.deadline_at,
            next_step=first.step,
        )

    def _scope(self) -> str:
        return f"r{self._round}"

    def _event_budget(self) -> int:
        return self._policy.history_event_budget

    @workflow.run
    async def run(self, input: DamageClaimInput) -> CaseSnapshot:
        # A continued run resumes in the wait it continued from (see the stages above).
        stage = input.carried.stage if input.carried else None
        if stage is None:
            await self._opened(
                f"Claim opened ({input.claim_type.description}) reported by "
                f"{input.reported_by.value}",
                actor=input.opened_by,
                policy=input.policy,
                linked_case_id=input.linked_case_id,
            )
            if self._late:
                deadline = local_time(self._deadline, self._input.timezone)
                reason = f"Reported after the filing deadline ({deadline})"
                await self._escalate(reason, step="late")
        while not self._cancel_request:
            if stage != DECIDING:
                await self._gather(resume=stage)
                stage = None
                if self._cancel_request:
                    break
                if not await self._file():
                    continue  # the package could not be built (escalated): gather again
            decision = await self._await_decision(resume=stage == DECIDING)
            stage = None
            if decision is None:
                break
            if decision.decision is ClaimDecision.APPROVED:
                await self._close(
                    Resolution.PAID,
                    f"Approved: {decision.amount} {self._input.currency or ''} to be paid",
                    actor=decision.by,
                )
                break
            if decision.decision is ClaimDecision.DENIED:
                await self._close(
                    Resolution.DENIED, f"Denied: {decision.reason}", actor=decision.by
                )
                break
            self._reopen(decision)
        return await self._finish()

    # --- gathering -------------------------------------------------------------------------

    def _missing(self) -> list[DocumentKind]:
        return [kind for kind in self._checklist if not self._documents.get(kind)]

    def _ui_facts(self) -> list[str]:
        """The evidence still missing (while it is being gathered) and the filing state."""
        if self._case.status is not CaseStatus.GATHERING_EVIDENCE:
            return []
        missing = self._missing()
        if not missing:
            return [f"Evidence: all {len(self._checklist)} items present"]
        kinds = ", ".join(kind.value.replace("_", " ") for kind in missing)
        return [f"Missing ({len(missing)} of {len(self._checklist)}): {kinds}"]

    async def _gather(self, *, resume: str | None = None) -> None:
        """Collect evidence until the checklist is complete or ops file (or withdraw).
        `resume`: the stage a continued run resumes in (the requests were sent before)."""

        def ready() -> bool:
            complete = not self._missing() and not self._package_failed
            return complete or self._file_request is not None

        if resume != OVERDUE:
            plan = [
                FollowUp(at, label, action, summary=_step_summary(label))
                for label, at, action in self._follow_up_plan()
            ]
            if resume is None:
                await self._ask_for_evidence()
                # Steps already in the past (a late claim, a second gathering) are skipped; a
                # continued run keeps the ones not yet run, whatever the time (`_fired` knows
                # which ran).
                plan = self._skip_past(plan)
            deadline_ahead = self._deadline > workflow.now() or resume == GATHERING
            if await self._wait(
                ready,
                stage=GATHERING,
                follow_ups=plan,
                give_up_at=self._deadline if deadline_ahead else None,
                give_up_label="filing deadline",
            ):
                return
            missing = ", ".join(k.value for k in self._missing())
            reason = f"The filing deadline passed with items missing: {missing}"
            await self._escalate(reason, step=f"r{self._round}/deadline")
        await self._wait(ready, stage=OVERDUE, give_up_at=None)

    async def _ask_for_evidence(self) -> None:
        """Open the round: gather what the system holds, ask the driver and the customer."""
        self._file_request = None
        self._refresh_details()
        await self._set_status(
            CaseStatus.GATHERING_EVIDENCE,
            f"Gathering evidence: {len(self._missing())} of {len(self._checklist)} items missing",
            deadline_at=self._deadline,
        )
        system_kinds = self._owed_by("system")
        if system_kinds:
            try:
                gathered = await workflow.execute_activity_method(
                    ClaimActivities.gather_system_evidence,
                    GatherEvidenceRequest(
                        case_id=self._case.case_id,
                        shipment_id=self._input.shipment_id,
                        kinds=system_kinds,
                    ),
                    **DOCUMENT_OPTIONS,
                )
            except ActivityError as err:
                # e.g. no shipment record: a person supplies these items instead.
                reason = f"Could not gather the system's evidence: {err.cause}"
                await self._escalate(reason, step=f"r{self._round}/gather-failed")
            else:
                for document in gathered.documents:
                    self._add(document, by="system")
        await self._request_evidence("request")

    def _follow_up_plan(self) -> list[tuple[str, datetime, Callable[[], Awaitable[None]]]]:
        """This round's reminders and the claims-desk escalation: (label, when, action)."""
        times = claim_follow_ups(self._policy, self._anchor, self._deadline)
        actions = [self._reminder(i) for i in range(1, len(times))] + [self._escalate_missing]
        return [(label, at, act) for (label, at), act in zip(times, actions, strict=True)]

    def _owed_by(self, source: str) -> list[DocumentKind]:
        return [k for k in self._missing() if EVIDENCE_SOURCES[k] == source]

    async def _request_evidence(self, step: str) -> None:
        """Ask the driver and the customer for what they still owe (one email each)."""
        link_until = max(self._deadline, workflow.now() + MIN_LINK_LIFETIME)

        def template_for(who: str) -> str:
            return (
                f"claims/evidence_request_{who}"
                if step == "request"
                else "claims/evidence_reminder"
            )

        photos = self._owed_by("driver")
        if photos and self._input.driver_id:
            await self._send(
                self._evidence_message(
                    f"r{self._round}/{step}/driver",
                    template_for("driver"),
                    Recipient(role="driver", driver_id=self._input.driver_id),
                    photos,
                    link_until,
                ),
                describe=f"the evidence {step} to the driver",
            )
        customer_items = self._owed_by("customer")
        customer = self._input.customer
        if customer_items and customer:
            await self._send(
                self._evidence_message(
                    f"r{self._round}/{step}/customer",
                    template_for("customer"),
                    Recipient(role="customer", email=customer.email, name=customer.name),
                    customer_items,
                    link_until,
                ),
                describe=f"the evidence {step} to the customer",
            )

    def _evidence_message(
        self,
        step: str,
        template: str,
        to: Recipient,
        kinds: list[DocumentKind],
        link_until: datetime,
    ) -> MessageRequest:
        request = self._message(
            step,
            template,
            to,
            **self._context(),
            missing=[kind.description for kind in kinds],
        )
        request.link = SignedLink(
            purpose=contracts.CLAIM_UPLOAD_LINK,
            expires_at=link_until,
            data={"kinds": [kind.value for kind in kinds], "round": self._round},
        )
        return request

    def _reminder(self, number: int) -> Callable[[], Awaitable[None]]:
        async def remind() -> None:
            await self._request_evidence(f"reminder-{number}")

        return remind

    async def _escalate_missing(self) -> None:
        if not self._missing():
            return
        hours = self._policy.escalate_before_deadline / timedelta(hours=1)
        missing = ", ".join(k.value for k in self._missing())
        reason = f"{hours:g} h before the filing deadline, items are missing: {missing}"
        await self._escalate(
            reason,
            step=f"r{self._round}/claims-desk",
            template="claims/claims_desk_escalation",
            missing=[k.description for k in self._missing()],
        )

    def _add(self, document: DocumentRef, *, by: str) -> None:
        self._package_failed = False
        self._documents.setdefault(document.kind, []).append(document)
        self._event(
            "document_added",
            f"{document.kind.description.split(' (')[0]} added",
            actor=by,
            document_id=document.id,
            document_kind=document.kind.value,
            sha256=document.sha256,
        )
        self._refresh_details()

    # --- filing and the decision -----------------------------------------------------------

    async def _file(self) -> bool:
        """Compile the package and send it to the claims contact; False (escalated) when the
        package cannot be built, e.g. a stored document is missing or corrupt."""
        reasons = self._file_request.missing_reasons if self._file_request else {}
        documents = [ref for refs in self._documents.values() for ref in refs]
        try:
            compiled = await self._compile(reasons, documents)
        except ActivityError as err:
            reason = f"Could not compile the claim package: {err.cause}"
            await self._escalate(reason, step=f"r{self._round}/package-failed")
            self._package_failed = True
            return False
        self._package = compiled.package
        self._filed_at = workflow.now()
        self._refresh_details()
        filing = self._message(
            f"r{self._round}/filed",
            "claims/claim_filed",
            self._client_contact(ContactKind.CLAIMS),
            **self._context(),
            filed_at=self._filed_at.isoformat(),
            missing=[f"{k.value}: {reasons.get(k, '')}" for k in self._missing()],
        )
        filing.attachments = [compiled.package]
        await self._send(filing, describe="the claim package to the claims contact")
        await self._set_status(
            CaseStatus.AWAITING_DECISION,
            "Filed"
            + (f" with {len(self._missing())} items missing" if self._missing() else " complete")
            + "; waiting for the decision",
            actor=self._file_request.by if self._file_request else "system",
            package_id=compiled.package.id,
        )
        return True

    async def _compile(
        self, reasons: dict[DocumentKind, str], documents: list[DocumentRef]
    ) -> CompiledPackage:
        return await workflow.execute_activity_method(
            ClaimActivities.compile_claim_package,
            CompilePackageRequest(
                summary=ClaimPackageInput(
                    case_id=self._case.case_id,
                    shipment_id=self._input.shipment_id,
                    client_id=self._input.client_id,
                    claim_type=self._input.claim_type,
                    description=self._input.description,
                    declared_value=self._input.declared_value,
                    currency=self._input.currency,
                    delivery_event_at=self._input.delivery_event_at,
                    filing_deadline_at=self._deadline,
                    late=self._late,
                    reported_by=self._input.reported_by.value,
                    reported_at=self._case.opened_at,
                    compiled_at=workflow.now(),
                    timeline=list(self._timeline),
                    missing_reasons={k: reasons.get(k, "") for k in self._missing()},
                ),
                documents=documents,
            ),
            **DOCUMENT_OPTIONS,
        )

    async def _await_decision(self, *, resume: bool = False) -> DecisionInput | None:
        """Wait for the decision, following up every `decision_follow_up`; None if withdrawn.
        `resume`: a continued run, whose next follow-up is already set."""
        if not resume:
            self._follow_ups_sent = 0
        while True:
            if not resume or self._next_follow_up_at is None:
                self._next_follow_up_at = workflow.now() + self._policy.decision_follow_up
            resume = False
            answered = await self._wait(
                lambda: self._decision is not None,
                stage=DECIDING,
                give_up_at=self._next_follow_up_at,
                give_up_label="follow up with the claims contact",
            )
            if self._cancel_request:
                return None
            if answered:
                decision, self._decision = self._decision, None
                return decision
            self._follow_ups_sent += 1
            follow_up = self._follow_ups_sent
            await self._send(
                self._message(
                    f"r{self._round}/follow-up-{follow_up}",
                    "claims/decision_follow_up",
                    self._client_contact(ContactKind.CLAIMS),
                    **self._context(),
                    filed_at=self._filed_at.isoformat() if self._filed_at else None,
                    days_waiting=(workflow.now() - self._filed_at).days if self._filed_at else 0,
                ),
                describe=f"follow-up {follow_up} to the claims contact",
            )

    def _reopen(self, decision: DecisionInput) -> None:
        """More information requested: those items are gathered again, with a fresh window."""
        self._round += 1
        self._anchor = workflow.now()
        self._deadline = self._anchor + self._policy.filing_window
        for kind in decision.requested:
            if kind not in self._checklist:
                self._checklist.append(kind)
            self._documents.pop(kind, None)
        self._package = None
        self._event(
            "more_information",
            "More information requested: " + ", ".join(k.value for k in decision.requested),
            actor=decision.by,
            reason=decision.reason,
        )

    # --- messages and state ----------------------------------------------------------------

    def _context(self) -> dict[str, object]:
        inp = self._input
        return {
            "shipment_id": inp.shipment_id,
            "claim_type": inp.claim_type.value,
            "declared_value": str(inp.declared_value) if inp.declared_value else None,
            "currency": inp.currency,
            "deadline": self._deadline.isoformat(),
            "late": self._late,
            "description": inp.description,
        }

    def _escalation_recipient(self) -> Recipient:
        return Recipient(role="claims_desk")

    def _details(self) -> DamageClaimDetails:
        inp = self._input
        return DamageClaimDetails(
            shipment_id=inp.shipment_id,
            depot_id=inp.depot_id,
            claim_type=inp.claim_type,
            reported_by=inp.reported_by,
            declared_value=str(inp.declared_value) if inp.declared_value else None,
            currency=inp.currency,
            delivery_event_at=inp.delivery_event_at,
            late=self._late,
            round=self._round,
            checklist={
                kind: "present" if self._documents.get(kind) else "missing"
                for kind in self._checklist
            },
            documents=[
                ClaimDocument(id=ref.id, kind=ref.kind, sha256=ref.sha256)
                for refs in self._documents.values()
                for ref in refs
            ],
            package_id=self._package.id if self._package else None,
            filed_at=self._filed_at,
            linked_case_id=inp.linked_case_id,
            policy=self._policy,
        )

    def allowed_actions(self) -> list[str]:
        actions = super().allowed_actions()
        if self._case.status.is_terminal or self._finishing():
            return actions
        status = self._case.status
        if status is CaseStatus.GATHERING_EVIDENCE and self._file_request is None:
            actions += ["documents", "file"]
        elif status is CaseStatus.AWAITING_DECISION and self._decision is None:
            actions.append("decision")
        return actions

    def _finishing(self) -> bool:
        decided = self._decision is not None and self._decision.decision in (
            ClaimDecision.APPROVED,
            ClaimDecision.DENIED,
        )
        return super()._finishing() or decided

    # --- updates ---------------------------------------------------------------------------

    @workflow.update
    async def add_document(self, upload: AddDocumentInput) -> CaseState:
        """A stored document for a checklist item (from ops, the driver or the customer)."""
        self._add(upload.document, by=upload.by)
        await self._sync()
        return self._ack()

    @add_document.validator
    def _validate_add_document(self, upload: AddDocumentInput) -> None:
        self._require("documents")

    @workflow.update
    async def file_claim(self, request: FileClaimInput) -> CaseState:
        """Ops file now, with the reason for every missing item."""
        self._file_request = request
        self._package_failed = False
        self._event("file_requested", "Ops asked to file now", actor=request.by)
        return self._ack()

    @file_claim.validator
    def _validate_file_claim(self, request: FileClaimInput) -> None:
        self._require("file")
        unexplained = [
            k.value for k in self._missing() if not request.missing_reasons.get(k, "").strip()
        ]
        if unexplained:
            raise InvalidRequest(
                "missing_reasons",
                f"missing_reasons must say why each missing item is missing: "
                f"{', '.join(unexplained)}",
            )

    @workflow.update
    async def record_decision(self, decision: DecisionInput) -> CaseState:
        """The carrier's or insurer's decision."""
        self._decision = decision
        self._event(
            "decision",
            f"Decision: {decision.decision.description.split(';')[0]}",
            actor=decision.by,
            decision=decision.decision.value,
            amount=str(decision.amount) if decision.amount is not None else None,
            reason=decision.reason,
        )
        return self._ack()

    @record_decision.validator
    def _validate_record_decision(self, decision: DecisionInput) -> None:
        self._require("decision")
        if decision.decision is ClaimDecision.APPROVED and decision.amount is None:
            raise InvalidRequest("amount", "amount required when decision is approved")
