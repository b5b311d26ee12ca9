"""`POST /cases/driver-onboardings`: a new driver to onboard at a depot.

The driver id is the business key (`driver-onboarding-{driver_id}`): given by ops or generated
here, never made from a name or an email. Everything is checked before Temporal hears of it:
the depot, the start date, the depot's policy overrides. The driver record is created with
status `onboarding` (the case owns it from then on); the same driver again answers 200 with
the open case, and a driver who is past onboarding (active, offboarded, …) is a 409.

The compliance watch (`driver-compliance-{driver_id}`) shares this router in the registry: it
is opened by the onboarding case at activation, never over the API; its documents and reviews
go through the generic routes (`api.routes.documents`), its end through
`POST /drivers/{driver_id}/offboard`."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from api.case_models import CaseDetail
from api.casework import CaseReader, Opening, Reader, open_case
from api.deps import OpsKey, TemporalDep
from api.errors import Problem, invalid, invalid_fields
from schemas.case_types import DRIVER_ONBOARDING, resolve_policy
from schemas.enums import DriverStatus
from schemas.onboarding import DriverOnboardingInput, DriverProfile, OnboardingPolicy
from schemas.requests import DriverOnboardingOpen
from schemas.tables import Depot, Driver

router = APIRouter(prefix="/cases", tags=["drivers"])


def new_driver_id() -> str:
    """A fresh driver id: random, so it says nothing about the person."""
    return f"drv-{uuid.uuid4().hex[:12]}"


async def _depot_policy(body: DriverOnboardingOpen, reader: CaseReader) -> OnboardingPolicy:
    """The depot's onboarding policy; 422 naming the field for an unknown depot, a start date
    in the past (UTC) or a depot whose override does not validate."""
    depot = await reader.session.get(Depot, body.depot_id)
    errors: list[dict[str, str]] = []
    if depot is None:
        errors.append({"field": "depot_id", "message": f"unknown depot '{body.depot_id}'"})
    today = reader.now.date()
    if body.planned_start_date < today:
        message = f"{body.planned_start_date.isoformat()} is in the past (today is {today})"
        errors.append({"field": "planned_start_date", "message": message})
    if errors or depot is None:
        raise invalid_fields(errors)
    try:
        policy: OnboardingPolicy = resolve_policy(
            DRIVER_ONBOARDING.case_type, depot.policy_overrides
        )
    except ValidationError:
        raise invalid("depot_id", f"depot '{depot.id}' has an invalid policy override") from None
    return policy


async def _driver_record(body: DriverOnboardingOpen, driver_id: str, reader: CaseReader) -> None:
    """Create the driver record (status `onboarding`), or accept the one a repeat finds: a
    driver still onboarding. Anyone else with this id is a 409."""
    session = reader.session
    driver = await session.get(Driver, driver_id)
    if driver is None:
        record = body.model_dump(exclude={"driver_id"})
        session.add(Driver(id=driver_id, status=DriverStatus.ONBOARDING, **record))
        try:
            await session.commit()
            return
        except IntegrityError:  # created by a concurrent request: judge that one
            await session.rollback()
            driver = await session.get(Driver, driver_id)
            if driver is None:
                raise
    if driver.status is not DriverStatus.ONBOARDING:
        raise Problem(
            409,
            f"driver '{driver_id}' is {driver.status.value} ({driver.status.description}) and "
            "has no onboarding case open: a driver is onboarded once (offboarded drivers "
            "come back under a new id)",
            slug="driver-not-onboarding",
        )


@router.post(
    "/driver-onboardings",
    status_code=status.HTTP_201_CREATED,
    summary="Onboard a new driver",
    description="Creates the driver record (status `onboarding`) and opens "
    "`driver-onboarding-{driver_id}`: the welcome with the depot's briefing pack and an "
    "upload link for the checklist (the onboarding policy, less or plus the depot's and the "
    "vehicle type's changes). The deadline is the abandonment date (30 days by default). "
    "Without a `driver_id` one is generated. 422 for an unknown depot, a start date before "
    "today (UTC) or a malformed email; 409 for a driver id that is past onboarding.",
    responses={200: {"description": "The driver is being onboarded; the open case is returned."}},
)
async def open_driver_onboarding(
    body: DriverOnboardingOpen,
    key: OpsKey,
    response: Response,
    temporal: TemporalDep,
    reader: Reader,
) -> CaseDetail:
    policy = await _depot_policy(body, reader)
    driver_id = body.driver_id or new_driver_id()
    await _driver_record(body, driver_id, reader)
    depot = await reader.session.get(Depot, body.depot_id)  # checked above (identity map)
    case_input = DriverOnboardingInput(
        driver_id=driver_id,
        depot_id=body.depot_id,
        depot_name=depot.name if depot else None,
        driver=DriverProfile(name=body.name, email=body.email, phone=body.phone),
        vehicle_type=body.vehicle_type,
        planned_start_date=body.planned_start_date,
        checklist=policy.checklist_for(body.vehicle_type),
        policy=policy,
        timezone=depot.timezone if depot else "UTC",
        opened_by=f"ops:{key.name}",
    )
    opening = Opening(
        DRIVER_ONBOARDING,
        case_input,
        business_key=driver_id,
        client_id=None,
        depot_id=body.depot_id,
        # No personal data: the subject is in the case index and the Temporal UI.
        subject=f"Onboarding driver {driver_id} ({body.vehicle_type.value}) at {body.depot_id}",
    )
    return await open_case(opening, response=response, temporal=temporal, reader=reader)
