"""Damage and loss claims: open one (`POST /cases/damage-claims`), file early (`/file`) and
record the decision (`/decision`). Evidence is added and downloaded through the routes every
case type with documents shares (`api.routes.documents`).

Workflow ID = `damage-claim-{shipment_id}`: one claim per shipment, a repeat open returns it."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from pydantic import ValidationError

from api.case_models import CaseDetail
from api.casework import CaseReader, Opening, Reader, open_case
from api.deps import OpsKey, TemporalDep
from api.errors import invalid, invalid_fields
from api.routes.cases import CaseAction, acting
from schemas import contracts
from schemas.case_types import DAMAGE_CLAIM, resolve_policy
from schemas.cases import Customer
from schemas.claims import DamageClaimInput, DecisionInput, FileClaimInput
from schemas.enums import CaseType
from schemas.policies import ClaimPolicy, event_time_problem
from schemas.requests import DamageClaimOpen, DecisionIn, FileClaimIn
from schemas.tables import Case, Client, Depot, Driver, Shipment

log = logging.getLogger("casedesk.api")

router = APIRouter(prefix="/cases", tags=["damage claims"])


# --- opening ------------------------------------------------------------------------------


def _shipment_customer(shipment: Shipment | None) -> Customer | None:
    if shipment is None:
        return None
    try:
        return Customer(
            name=shipment.customer_name,
            email=shipment.customer_email,
            phone=shipment.customer_phone,
        )
    except ValidationError:  # an unusable record: the claim goes on without a customer
        log.warning("shipment %s has no usable customer contact", shipment.id)
        return None


async def _claim_input(
    body: DamageClaimOpen, reader: CaseReader, opened_by: str
) -> DamageClaimInput:
    """Check every reference before anything reaches Temporal (nothing half-applied)."""
    session = reader.session
    client = await session.get(Client, body.client_id)
    driver = await session.get(Driver, body.driver_id) if body.driver_id else None
    shipment = await session.get(Shipment, body.shipment_id)
    errors: list[dict[str, str]] = []
    if client is None:
        errors.append({"field": "client_id", "message": f"unknown client '{body.client_id}'"})
    elif shipment is not None and shipment.client_id != client.id:
        message = f"shipment '{shipment.id}' is not a shipment of client '{client.id}'"
        errors.append({"field": "client_id", "message": message})
    if body.driver_id and driver is None:
        errors.append({"field": "driver_id", "message": f"unknown driver '{body.driver_id}'"})
    depot_id = driver.depot_id if driver else shipment.depot_id if shipment else None
    if depot_id is None and not body.driver_id:
        message = (
            f"no shipment record for '{body.shipment_id}' gives the depot: "
            "send the driver_id (the claim goes to the driver's depot)"
        )
        errors.append({"field": "driver_id", "message": message})
    if errors or client is None or depot_id is None:
        raise invalid_fields(errors)
    policy: ClaimPolicy = resolve_policy(DAMAGE_CLAIM.case_type, client.policy_overrides)
    problem = event_time_problem(body.delivery_event_at, reader.now, policy.event_max_age)
    if problem is not None:
        raise invalid("delivery_event_at", problem)
    linked = await session.get(Case, CaseType.FAILED_DELIVERY.workflow_id(body.shipment_id))
    depot = await session.get(Depot, depot_id)
    return DamageClaimInput(
        shipment_id=body.shipment_id,
        client_id=client.id,
        depot_id=depot_id,
        claim_type=body.claim_type,
        reported_by=body.reported_by,
        delivery_event_at=body.delivery_event_at,
        declared_value=body.declared_value,
        currency=body.currency,
        description=body.description,
        customer=body.customer or _shipment_customer(shipment),
        driver_id=driver.id if driver else None,
        linked_case_id=linked.id if linked else None,
        policy=policy,
        timezone=depot.timezone if depot else "UTC",
        opened_by=opened_by,
    )


@router.post(
    "/damage-claims",
    status_code=status.HTTP_201_CREATED,
    summary="Open a damage or loss claim",
    description="The filing deadline is the delivery event plus the filing window (72 h); a "
    "claim reported after it is still opened, marked late and escalated at once. The depot "
    "is the driver's, else the shipment record's. The claim runs on the client's claim "
    "policy (`policy_overrides.damage_claim`) over the defaults.",
    responses={200: {"description": "The shipment already has a claim; it is returned."}},
)
async def open_damage_claim(
    body: DamageClaimOpen,
    key: OpsKey,
    response: Response,
    temporal: TemporalDep,
    reader: Reader,
) -> CaseDetail:
    case_input = await _claim_input(body, reader, f"ops:{key.name}")
    opening = Opening(
        DAMAGE_CLAIM,
        case_input,
        business_key=body.shipment_id,
        client_id=case_input.client_id,
        depot_id=case_input.depot_id,
        subject=f"Claim for shipment {body.shipment_id}: {body.claim_type.value}",
    )
    # One claim per shipment: a repeat (or a second report) gets the existing case.
    return await open_case(opening, response=response, temporal=temporal, reader=reader)


# --- actions ------------------------------------------------------------------------------


@router.post(
    "/{case_id}/file",
    summary="File the claim now, saying why missing items are missing",
    description="Every checklist item still missing needs its reason in `missing_reasons` "
    "(422 otherwise). The claim package is compiled and sent after the answer.",
)
async def file_claim(
    body: FileClaimIn, key: OpsKey, act: Annotated[CaseAction, Depends(acting("file"))]
) -> CaseDetail:
    request = FileClaimInput(missing_reasons=body.missing_reasons, by=f"ops:{key.name}")
    return await act(contracts.FILE_CLAIM, request)


@router.post(
    "/{case_id}/decision",
    summary="Record the carrier's or insurer's decision",
    description="approved (with `amount`) closes the claim as paid, denied (with `reason`) "
    "as denied; more_information (with `requested`) sends it back to gathering them.",
)
async def record_decision(
    body: DecisionIn, key: OpsKey, act: Annotated[CaseAction, Depends(acting("decision"))]
) -> CaseDetail:
    decision = DecisionInput(**body.model_dump(), by=f"ops:{key.name}")
    return await act(contracts.RECORD_DECISION, decision)
