"""The baseline every bench ratio is measured against: a bare Temporal workflow with one
no-op activity. Its own module because the workflow sandbox re-imports a workflow's module."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn
async def noop(value: str) -> str:
    return value


@workflow.defn
class BareWorkflow:
    @workflow.run
    async def run(self, value: str) -> str:
        return await workflow.execute_activity(
            noop, value, start_to_close_timeout=timedelta(seconds=30)
        )


@workflow.defn
class BareWaitingWorkflow:
    """The memory baseline: one activity, then wait (as an open case does)."""

    @workflow.run
    async def run(self, value: str) -> str:
        await workflow.execute_activity(noop, value, start_to_close_timeout=timedelta(seconds=30))
        await workflow.wait_condition(lambda: False, timeout=timedelta(days=30))
        return value
