"""A deliberately incompatible version of the failed-delivery workflow, for the replay test
that proves replay catches such a change. Kept apart from the test module because the
workflow sandbox re-imports the module that defines a workflow."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.cases import CaseSnapshot, FailedDeliveryInput

from workflows.failed_delivery import FailedDeliveryWorkflow


@workflow.defn(name="FailedDeliveryWorkflow")
class SkipsTheAttemptRecord(FailedDeliveryWorkflow):
    """A known-bad change: the same workflow, but it no longer records the attempt first."""

    @workflow.run
    async def run(self, input: FailedDeliveryInput) -> CaseSnapshot:
        await workflow.sleep(timedelta(seconds=1))
        return await super().run(input)
