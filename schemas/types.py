"""The annotated types every request body is built from, so that each field's rules are
written once: sane date ranges, text without control or formatting tricks, ids that cannot
be a path, strict numbers and booleans, validated email addresses.

A field declares what it is (`name: SafeName`, `attempted_at: BoundedDatetime`); the checks
and the JSON schema follow from the type. Checks that need the clock or the case's policy
(how far in the past an event may be) live in `schemas.bounds`, which the routes call with
the API's clock.
"""

from __future__ import annotations

import datetime as dt
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
"""No date casedesk handles (an attempt, an invoice, a licence's expiry) is outside this; a
date outside it is a typo or an attack (year 1 or 9999 overflows every deadline sum)."""


def _datetime_in_range(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"must be from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d}")
    return value


def _date_in_range(value: dt.date) -> dt.date:
    if not EARLIEST.date() <= value < LATEST.date():
        raise ValueError(f"must be from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d}")
    return value


BoundedDatetime = Annotated[AwareDatetime, AfterValidator(_datetime_in_range)]
"""A moment with its time zone offset, from 2000 to before 2100."""
BoundedDate = Annotated[dt.date, AfterValidator(_date_in_range)]
"""A calendar date from 2000 to before 2100."""
