"""Starting a run (an invoicing run, a report run) on an HTTP request and waiting for its
answer within a bound: the one way both routes do it.

A run's workflow id is its business key; a second request while it runs joins it, and a
finished run may run again (it answers with what the first one made: every step of a run is
idempotent). The request waits up to `wait` for the result; a run that takes longer, or whose
result Temporal cannot give in time, is answered later (the route's 202 with a Location)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from api.errors import Problem, temporal_call
from core.temporal import CLIENT_ID

Result = TypeVar("Result", bound=BaseModel)


@dataclass(frozen=True)
class RunAnswer(Generic[Result]):
    """The run's result, or None while it is still running; `failure` when it failed."""

    result: Result | None = None
    failure: WorkflowFailureError | None = None

    @property
    def running(self) -> bool:
        return self.result is None and self.failure is None


async def start_and_wait(
    temporal: Client,
    *,
    workflow: str,
    arg: BaseModel,
    run_id: str,
    client_id: str,
    task_queue: str,
    result_type: type[Result],
    wait: timedelta,
    summary: str | None = None,
) -> RunAnswer[Result]:
    with temporal_call():
        handle = await temporal.start_workflow(
            workflow,
            arg,
            id=run_id,
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            search_attributes=TypedSearchAttributes([SearchAttributePair(CLIENT_ID, client_id)]),
            result_type=result_type,
            static_summary=summary,  # the Temporal UI's line for the run (ids and dates)
        )
    try:
        with temporal_call():
            result: Any = await asyncio.wait_for(handle.result(), wait.total_seconds())
    except TimeoutError:
        return RunAnswer()
    except WorkflowFailureError as err:
        return RunAnswer(failure=err)
    except Problem as problem:
        if problem.status != 503:
            raise
        return RunAnswer()  # started; Temporal could not give the answer in time
    return RunAnswer(result=result)
