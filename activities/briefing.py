"""What a new driver is told before the first day, in one place: the briefing pack's PDFs
(`activities.drivers`) and the first-day email (`templates/email/onboarding/first_day`) say
the same thing."""

from __future__ import annotations

from typing import Any

from schemas.enums import VehicleType

DEFAULT_OPENING_HOURS = (
    "The depot has not published its opening hours yet: the dispatcher will confirm the "
    "time to arrive before your first day."
)

_BRING_FOR_VEHICLE: dict[VehicleType, tuple[str, ...]] = {
    VehicleType.VAN: (
        "The van you will drive, fuelled, with its registration and insurance papers.",
        "Your driving licence (the original, not a copy).",
    ),
    VehicleType.CAR: (
        "The car you will drive, fuelled, with its registration and insurance papers.",
        "Your driving licence (the original, not a copy).",
    ),
    VehicleType.CARGO_BIKE: (
        "Your cargo bike in working order: brakes, lights, a charged battery if it has one.",
        "A helmet and a lock.",
    ),
    VehicleType.BIKE: (
        "Your bike in working order: brakes and lights, with a rack or bag for parcels.",
        "A helmet and a lock.",
    ),
}
_ALWAYS_BRING = (
    "A photo ID.",
    "A smartphone, fully charged, with a charger or power bank.",
    "Weather-appropriate clothing and closed, sturdy shoes.",
)


def what_to_bring(vehicle_type: Any) -> list[str]:
    """The first-day list for a vehicle type (the general items only, for an unknown one)."""
    try:
        vehicle = VehicleType(getattr(vehicle_type, "value", vehicle_type))
    except ValueError:
        return list(_ALWAYS_BRING)
    return [*_BRING_FOR_VEHICLE[vehicle], *_ALWAYS_BRING]
