"""The machinery every case type shares.

A case workflow owns its status, timeline, deadline and escalation flag. Each change is
published three ways: the `state` query (live detail), search attributes plus the current
details (the Temporal UI), and the SQL projection written by the `record_case` activity
(listing and search in the API). Ops actions common to every case type (note, assign,
escalate, cancel) are updates whose validators refuse them when the case's state does not
allow them, before anything enters history.

No I/O here: everything that touches the world is an activity.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    # pydantic imports email-validator lazily, on the first email checked (schemas.types.Email):
    # passed through here, so that the sandbox does not re-import it inside a workflow task.
    import email_validator  # noqa: F401
    from pydantic import BaseModel

    from activities.errors import PERMANENT_MESSAGE_FAILURES
    from activities.messaging import MessagingActivities
    from activities.records import RecordActivities
    from core.temporal import (
        CASE_STATUS,
        CASE_TYPE,
        CLIENT_ID,
        DEADLINE_AT,
        DEPOT_ID,
        ESCALATED,
    )
    from schemas.activities import MessageRequest, Recipient
    from schemas.cases import (
        AssignInput,
        CancelInput,
        CaseCarry,
        CaseRecord,
        CaseSnapshot,
        CaseState,
        EscalateInput,
        NoteInput,
        TimelineEvent,
    )
    from schemas.contracts import ActionNotAllowed
    from schemas.enums import CaseStatus, CaseType, ContactKind, Resolution
    from schemas.ui_text import WAITING_ON, local_time

# Database writes retry until the database is back: a case never skips a record. An attempt
# may take several statements each waiting up to the database's lock timeout (10 s,
# core.db.LOCK_TIMEOUT_SECONDS), so its limit sits well above that.
RECORD_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=60),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(minutes=1)),
}
# Building documents (evidence PDFs, the claim package, briefing packs): the activity
# heartbeats, so one lost with its worker is retried within seconds.
DOCUMENT_OPTIONS: dict[str, Any] = {
    **RECORD_OPTIONS,
    "start_to_close_timeout": timedelta(minutes=5),
    "heartbeat_timeout": timedelta(seconds=15),
}
# Email retries with backoff (SendGrid 429/5xx/timeouts) for up to 12 hours, then a person
# is told; permanent refusals are non-retryable and reach a person at once. The activity
# heartbeats while it sends: a send lost with its worker is retried within seconds (its
# outbox row, keyed by the message, keeps the retry from sending twice).
MESSAGE_OPTIONS: dict[str, Any] = {
    "start_to_close_timeout": timedelta(minutes=1),
    "heartbeat_timeout": timedelta(seconds=15),
    "schedule_to_close_timeout": timedelta(hours=12),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=10)
    ),
}


CASE_CARRY_FIELDS = frozenset(CaseCarry.model_fields)


@dataclass(frozen=True)
class FollowUp:
    """A step of a waiting ladder: at `at`, run `action` (a reminder, an escalation).

    `label` names the step in the case's state and in its record of steps run (so it never
    changes for a step that exists); `summary` is what the Temporal UI shows on the step's
    timer, the label when not given."""

    at: datetime
    label: str
    action: Callable[[], Awaitable[None]]
    summary: str | None = None


class CaseWorkflow:
    """Base class of every case workflow (not a workflow itself)."""

    case_type: ClassVar[CaseType]
    escalates_to: ClassVar[str]
    """Who escalations go to, in words ("the depot's dispatcher")."""
    cancelled_as: ClassVar[tuple[CaseStatus, Resolution, str]] = (
        CaseStatus.CANCELLED,
        Resolution.CANCELLED,
        "Cancelled",
    )
    """How `cancel` closes this type: status, resolution and the timeline's word."""
    carry_model: ClassVar[type[CaseCarry]]
    """What the type carries across continue-as-new (its input's `carried`)."""
    _input: BaseModel  # the opening input, kept by every case type

    def _open_case(
        self,
        *,
        business_key: str,
        client_id: str | None,
        depot_id: str | None,
        subject: str,
        opened_at: datetime | None = None,
        deadline_at: datetime | None = None,
        next_step: tuple[str, datetime] | None = None,
    ) -> None:
        """Called from the subclass's `@workflow.init`: the state exists before any handler,
        and already says what the case knows at open (its deadline, its first step), so the
        API's answer to the opening shows them. A continued run calls `_resume` instead."""
        # Notifications started by update handlers run beside the handler (an update must
        # not wait on an email that may retry for hours); the run awaits them before ending.
        self._background: list[asyncio.Task[None]] = []
        self._case = CaseSnapshot(
            case_id=workflow.info().workflow_id,
            case_type=self.case_type,
            status=CaseStatus.OPEN,
            business_key=business_key,
            client_id=client_id,
            depot_id=depot_id,
            subject=subject,
            opened_at=opened_at or workflow.now(),
            deadline_at=deadline_at,
            next_step=next_step[0] if next_step else None,
            next_step_at=next_step[1] if next_step else None,
        )
        # Only the events not yet in the SQL projection stay in memory (and in the `state`
        # query); the API reads the whole timeline from the projection.
        self._timeline: list[TimelineEvent] = []
        self._next_seq = 1
        self._fired: set[str] = set()  # ladder steps already run: "{scope}:{label}"
        self._cancel_request: CancelInput | None = None
        self._stage = "opening"  # where the run waits; a continued run resumes there
        self._runs = 1
        self._published_attributes: tuple[object, ...] | None = None
        self._refresh_details()

    def _resume(self, carried: CaseCarry) -> None:
        """Called from the subclass's `@workflow.init` in a continued run: the state the
        previous run carried. The type's own fields (those of its `carry_model` beyond
        `CaseCarry`'s) are restored to the attributes of the same name with a leading `_`."""
        self._background = []
        for name in self._own_carried_fields():
            setattr(self, f"_{name}", getattr(carried, name))
        self._case = carried.snapshot.model_copy(deep=True)
        self._timeline = list(carried.timeline)
        self._next_seq = carried.next_seq
        self._fired = set(carried.fired)
        self._cancel_request = carried.cancel_request
        self._stage = carried.stage
        self._runs = carried.runs + 1
        case = self._case  # the search attributes carry over to the new run as they were
        self._published_attributes = (case.status, case.escalated, case.deadline_at)

    def _details(self) -> BaseModel:
        """The case type's typed details (`CaseTypeSpec.details`), policy snapshot included."""
        raise NotImplementedError

    def _refresh_details(self) -> None:
        self._case.details = self._details().model_dump(mode="json")

    # --- what may be done now --------------------------------------------------------------

    def allowed_actions(self) -> list[str]:
        """Action names (as in the API's `/cases/{id}/<action>`) allowed in the current state.
        Subclasses add their own to the common ones."""
        if self._case.status.is_terminal:
            return []
        actions = ["notes", "assign", "escalate"]
        if not self._finishing():
            actions.append("cancel")
        return actions

    def _finishing(self) -> bool:
        """True once the case is on its way to closing and can no longer be cancelled."""
        return self._cancel_request is not None

    def _require(self, action: str) -> None:
        if action not in self.allowed_actions():
            case = self._case
            if case.resolution:
                state = f"{case.status.value} ({case.resolution.value})"
            elif self._finishing():
                state = f"{case.status.value} and closing"
            else:
                state = case.status.value
            raise ActionNotAllowed(f"'{action}' is not allowed while the case is {state}")

    # --- publishing state ------------------------------------------------------------------

    def _event(self, kind: str, summary: str, *, actor: str = "system", **data: Any) -> int:
        """Record a timeline event; returns its seq (unique within the case, across runs)."""
        seq = self._next_seq
        self._next_seq += 1
        self._timeline.append(
            TimelineEvent(
                seq=seq,
                at=workflow.now(),
                kind=kind,
                summary=summary,
                actor=actor,
                data=data,
            )
        )
        return seq

    def _publish_to_temporal(self) -> None:
        """Search attributes and the UI's current details, each only when it changed (every
        upsert is a history event)."""
        case = self._case
        published = (case.status, case.escalated, case.deadline_at)
        if published != self._published_attributes:
            self._published_attributes = published
            updates: list[SearchAttributeUpdate[Any]] = [
                CASE_TYPE.value_set(case.case_type.value),
                CASE_STATUS.value_set(case.status.value),
                ESCALATED.value_set(case.escalated),
            ]
            if case.client_id:
                updates.append(CLIENT_ID.value_set(case.client_id))
            if case.depot_id and workflow.patched("depot-search-attribute"):
                updates.append(DEPOT_ID.value_set(case.depot_id))
            # DeadlineAt is set, never unset: an emptied datetime attribute breaks
            # `describe()` in the Python SDK. A closed case keeps its last deadline there;
            # filter on CaseStatus too ("DeadlineAt < now AND CaseStatus != 'closed'").
            if case.deadline_at:
                updates.append(DEADLINE_AT.value_set(case.deadline_at))
            workflow.upsert_search_attributes(updates)
        workflow.set_current_details(self._current_details())

    def _time_zone(self) -> str:
        """The IANA zone this case's times are shown in (its input's `timezone`: the depot's
        or the client's, set at open); UTC when the input has none (older cases)."""
        return str(getattr(self._input, "timezone", None) or "UTC")

    def _current_details(self) -> str:
        """The Temporal UI's current details: status, whom the case waits on, the next step
        and when (local time), the deadline, the escalation and the type's own facts (missing
        items). Ids, words and times only: no personal data."""
        case, zone_name = self._case, self._time_zone()
        status_words = case.status.value.replace("_", " ").capitalize()
        lines = [f"**{status_words}**: {case.status.description}"]
        if case.resolution:
            lines.append(f"Resolution: {case.resolution.description}")
        elif waiting_on := WAITING_ON.get(case.status):
            lines.append(f"Waiting on {waiting_on}")
        if case.next_step and case.next_step_at:
            lines.append(f"Next: {case.next_step}, {local_time(case.next_step_at, zone_name)}")
        if case.deadline_at:
            lines.append(f"Deadline: {local_time(case.deadline_at, zone_name)}")
        if case.escalated:
            lines.append(f"Escalated: {case.escalation_reason}")
        lines.extend(self._ui_facts())
        return "\n\n".join(lines)

    def _ui_facts(self) -> list[str]:
        """What this case type adds to the Temporal UI's current details (one line each)."""
        return []

    async def _sync(self) -> None:
        """Publish the current state: search attributes, UI details, and the SQL projection
        with every timeline event not yet written."""
        self._publish_to_temporal()
        self._case.version += 1
        events = list(self._timeline)
        record = CaseRecord(snapshot=self._case.model_copy(deep=True), events=events)
        await workflow.execute_activity_method(
            RecordActivities.record_case,
            record,
            summary=f"record: {self._case.status.value}, v{self._case.version}",
            **RECORD_OPTIONS,
        )
        # Written: let them go (events added while the write ran stay for the next one).
        written = {event.seq for event in events}
        self._timeline = [e for e in self._timeline if e.seq not in written]

    async def _set_status(
        self,
        status: CaseStatus,
        summary: str,
        *,
        actor: str = "system",
        resolution: Resolution | None = None,
        deadline_at: datetime | None = None,
        **data: Any,
    ) -> None:
        case = self._case
        case.status = status
        case.deadline_at = None if status.is_terminal else deadline_at
        if status.is_terminal:
            case.resolution = resolution
            case.closed_at = workflow.now()
            case.next_step = case.next_step_at = None
        self._event("status", summary, actor=actor, status=status.value, **data)
        # The status only: the summary may name people. The logger adds the workflow's ids.
        workflow.logger.info("case status %s", status.value)
        await self._sync()

    async def _flag_escalation(self, reason: str, *, actor: str = "system") -> int:
        """Mark the case escalated; returns the event's seq (unique: use it in message keys,
        taken before any await so concurrent escalations never share one)."""
        self._case.escalated = True
        self._case.escalation_reason = reason
        seq = self._event("escalated", reason, actor=actor)
        await self._sync()
        return seq

    async def _escalate(
        self,
        reason: str,
        *,
        step: str,
        numbered: bool = True,
        template: str = "case/escalation",
        actor: str = "system",
        **context: Any,
    ) -> None:
        """Flag the case escalated and tell the person this type escalates to (message key
        `{step}-{seq}`, or `{step}` when not `numbered`)."""
        seq = await self._flag_escalation(reason, actor=actor)
        await self._notify_escalation(
            reason, key=f"{step}-{seq}" if numbered else step, template=template, **context
        )

    async def _opened(self, summary: str, *, actor: str, policy: BaseModel, **data: Any) -> None:
        """The first timeline event, with the policy snapshot the case runs on."""
        self._event("opened", summary, actor=actor, policy=policy.model_dump(mode="json"), **data)
        self._refresh_details()
        await self._sync()

    async def _close(self, resolution: Resolution, summary: str, **kwargs: Any) -> None:
        await self._set_status(CaseStatus.CLOSED, summary, resolution=resolution, **kwargs)

    # --- waiting with reminders and escalations -------------------------------------------

    async def _wait(
        self,
        condition: Callable[[], bool],
        *,
        stage: str,
        follow_ups: Sequence[FollowUp] = (),
        give_up_at: datetime | None,
        give_up_label: str = "give up",
    ) -> bool:
        """Wait for `condition` (or a cancellation); at each follow-up's time run its action
        (once per case: a step that fired is never run again, in this run or a continued
        one); return False if `give_up_at` passes first (wait forever when it is None).

        This is where a case continues as new when its history has grown enough: `stage`
        names this wait so that the continued run resumes in it."""

        def done() -> bool:
            return condition() or self._cancel_request is not None

        self._stage = stage
        scope = self._scope()
        steps = sorted(
            (step for step in follow_ups if f"{scope}:{step.label}" not in self._fired),
            key=lambda step: step.at,
        )
        for step in [*steps, None]:
            at = step.at if step else give_up_at
            label = step.label if step else (give_up_label if at else None)
            self._case.next_step = label
            timer_summary = (step.summary or step.label) if step else label
            self._case.next_step_at = at
            await self._sync()  # the next step, and what the last one did, reach SQL now
            if self._continue_due() and not done():
                await self._continue_as_new(done)  # returns only if the wait ended meanwhile
                return True
            timeout = (at - workflow.now()) if at else None
            if timeout is None or timeout > timedelta(0):
                try:
                    await workflow.wait_condition(
                        done, timeout=timeout, timeout_summary=timer_summary
                    )
                    return True
                except TimeoutError:
                    pass
            elif done():
                return True
            if step is None:
                return False
            self._fired.add(f"{scope}:{step.label}")
            await step.action()
        return False  # pragma: no cover  (the loop always returns)

    # --- staying small: continue-as-new ------------------------------------------------------

    def _skip_past(self, follow_ups: Sequence[FollowUp]) -> list[FollowUp]:
        """The steps still ahead; those already past are marked as done without running
        (they are never run late, in this run or a continued one)."""
        now, scope = workflow.now(), self._scope()
        for step in follow_ups:
            if step.at <= now:
                self._fired.add(f"{scope}:{step.label}")
        return [step for step in follow_ups if step.at > now]

    def _scope(self) -> str:
        """What a ladder step's label is unique within (an attempt, a gathering round)."""
        return ""

    def _event_budget(self) -> int:
        """The policy's `history_event_budget`."""
        raise NotImplementedError

    def _continue_due(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._event_budget()
        )

    def _own_carried_fields(self) -> list[str]:
        return [name for name in self.carry_model.model_fields if name not in CASE_CARRY_FIELDS]

    def _carry(self) -> BaseModel:
        """The workflow input of the continued run: the opening input with `carried` set."""
        carried = self.carry_model(
            snapshot=self._case.model_copy(deep=True),
            next_seq=self._next_seq,
            timeline=list(self._timeline),
            fired=sorted(self._fired),
            cancel_request=self._cancel_request,
            stage=self._stage,
            runs=self._runs,
            **{name: getattr(self, f"_{name}") for name in self._own_carried_fields()},
        )
        return self._input.model_copy(update={"carried": carried})

    async def _continue_as_new(self, done: Callable[[], bool]) -> None:
        """Continue as new from the wait in `self._stage`, once every handler and background
        notification has finished and everything is written to the projection. Returns
        (without continuing) if the wait ended (`done`) meanwhile."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        await asyncio.gather(*self._background)
        self._background.clear()
        if done():
            return
        if self._timeline:
            await self._sync()
        if done():
            return
        workflow.continue_as_new(self._carry())

    # --- messaging -------------------------------------------------------------------------

    async def _send(self, request: MessageRequest, *, describe: str) -> bool:
        """Send one message; a permanent failure (no recipient, refused by the provider, or
        retries exhausted) escalates the case to a person instead of being swallowed."""
        try:
            result = await workflow.execute_activity_method(
                MessagingActivities.send_message,
                request,
                summary=f"send: {describe} ({request.key.removeprefix(f'{self._case.case_id}/')})",
                **MESSAGE_OPTIONS,
            )
        except ActivityError as err:
            cause = err.cause
            kind = cause.type if isinstance(cause, ApplicationError) else None
            why = str(cause) if kind in PERMANENT_MESSAGE_FAILURES else "retries exhausted"
            reason = f"Could not send {describe}: {why}"
            await self._flag_escalation(reason)
            to_escalation = request.to.role == self._escalation_recipient().role
            if not to_escalation and request.template != "case/escalation":
                step = request.key.removeprefix(f"{self._case.case_id}/")
                await self._notify_escalation(reason, key=f"{step}/failed")
            return False
        self._event(
            "message",
            f"Sent {describe}" if not result.duplicate else f"{describe} was already sent",
            template=request.template,
            message_key=request.key,
            message_id=result.message_id,
        )
        return True

    def _message(self, step: str, template: str, to: Recipient, **context: Any) -> MessageRequest:
        case = self._case
        return MessageRequest(
            key=f"{case.case_id}/{step}",
            case_id=case.case_id,
            template=template,
            to=to,
            context={"subject": case.subject, **context},
        )

    def _context(self) -> dict[str, Any]:
        """What every message of this case type is rendered with."""
        raise NotImplementedError

    def _escalation_recipient(self) -> Recipient:
        """The person (by role) this case type escalates to."""
        raise NotImplementedError

    def _client_contact(self, kind: ContactKind) -> Recipient:
        assert self._case.client_id, "only a client's case has client contacts"
        return Recipient(role="client_contact", client_id=self._case.client_id, contact_kind=kind)

    async def _notify_escalation(
        self, reason: str, *, key: str, template: str = "case/escalation", **context: Any
    ) -> None:
        """Tell the person this case type escalates to."""
        await self._send(
            self._message(
                key,
                template,
                self._escalation_recipient(),
                **self._context(),
                escalation_reason=reason,
                **context,
            ),
            describe=f"the escalation to {self.escalates_to}",
        )

    # --- queries and the common updates ----------------------------------------------------

    @workflow.query
    def state(self) -> CaseState:
        return CaseState(
            **self._case.model_dump(),
            allowed_actions=self.allowed_actions(),
            timeline=list(self._timeline),
        )

    def _ack(self) -> CaseState:
        """What an update returns: the state without the timeline. Every update result is
        stored in history, so returning the whole timeline would grow it quadratically; the
        `state` query has the timeline."""
        return CaseState(**self._case.model_dump(), allowed_actions=self.allowed_actions())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        self._background.append(asyncio.create_task(work))

    @workflow.update
    async def add_note(self, note: NoteInput) -> CaseState:
        self._event("note", note.text, actor=note.by)
        await self._sync()
        return self._ack()

    @add_note.validator
    def _validate_add_note(self, note: NoteInput) -> None:
        self._require("notes")

    @workflow.update
    async def assign(self, assignment: AssignInput) -> CaseState:
        self._case.assignee = assignment.assignee
        summary = f"Assigned to {assignment.assignee}" if assignment.assignee else "Unassigned"
        self._event("assigned", summary, actor=assignment.by, assignee=assignment.assignee)
        await self._sync()
        return self._ack()

    @assign.validator
    def _validate_assign(self, assignment: AssignInput) -> None:
        self._require("assign")

    @workflow.update
    async def escalate(self, escalation: EscalateInput) -> CaseState:
        seq = await self._flag_escalation(escalation.reason, actor=escalation.by)
        self._spawn(self._notify_escalation(escalation.reason, key=f"escalation-{seq}"))
        return self._ack()

    @escalate.validator
    def _validate_escalate(self, escalation: EscalateInput) -> None:
        self._require("escalate")

    @workflow.update
    async def cancel(self, request: CancelInput) -> CaseState:
        """Ask the case to stop. The run loop closes it at its next step; this waits up to
        10 s for that and otherwise returns the accepted request (the case is then closing:
        `cancel` is no longer allowed and it closes as soon as the step in flight ends)."""
        self._cancel_request = request
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._case.status.is_terminal,
                timeout=timedelta(seconds=10),
                timeout_summary="cancel: up to 10 s for the case to close",
            )
        return self._ack()

    @cancel.validator
    def _validate_cancel(self, request: CancelInput) -> None:
        self._require("cancel")

    async def _on_cancel(self) -> None:
        """What a type does in the world when it is cancelled, before it closes."""

    async def _finish(self) -> CaseSnapshot:
        """End of run: close a cancelled case the way its type closes, let in-flight
        handlers and their notifications complete, return the final snapshot."""
        if self._cancel_request and not self._case.status.is_terminal:
            await self._on_cancel()
            status, resolution, word = self.cancelled_as
            await self._set_status(
                status,
                f"{word}: {self._cancel_request.reason}",
                actor=self._cancel_request.by,
                resolution=resolution,
            )
        await workflow.wait_condition(workflow.all_handlers_finished)
        await asyncio.gather(*self._background)
        return self._case
