"""In-memory stand-in for the invoice activity (plus the shared record/message fakes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from temporalio import activity

from schemas.invoices import ClientDepots, ClientDepotsRequest, DispatchHoldChange
from tests.workflows.fakes import FakeWorld


@dataclass
class InvoiceWorld(FakeWorld):
    holds: list[DispatchHoldChange] = field(default_factory=list)
    depots: list[str] = field(default_factory=lambda: ["depot-north", "depot-south"])

    @activity.defn(name="set_dispatch_hold")
    async def set_dispatch_hold(self, change: DispatchHoldChange) -> None:
        self.holds.append(change)

    @activity.defn(name="client_depots")
    async def client_depots(self, request: ClientDepotsRequest) -> ClientDepots:
        return ClientDepots(depot_ids=list(self.depots))

    def activities(self) -> list[Callable[..., object]]:
        return [*super().activities(), self.set_dispatch_hold, self.client_depots]
