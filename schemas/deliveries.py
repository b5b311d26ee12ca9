"""Delivery records in (`POST /deliveries`): the routing system's stop outcomes, one record
per (shipment, attempt), the batch's limits and its answer.

A record's fields are parsed strictly, the same for a JSON list and a CSV file (the CSV
reader turns cells into these values first): no JSON number for a text, no string for a
number or a boolean, a timestamp only in ISO 8601 with its offset.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from schemas import examples
from schemas.enums import StopOutcome
from schemas.examples import example
from schemas.types import SafeId

MAX_BATCH_RECORDS = 10_000
"""More records than this in one batch is a 413: split the batch."""
MAX_BATCH_BYTES = 8 * 1024 * 1024
"""A body (JSON, CSV or the multipart form) larger than this is a 413 before it is parsed."""
CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future `attempted_at` may be (the routing system's clock may run ahead)."""
MAX_RECORD_AGE = timedelta(days=366)
"""How far in the past `attempted_at` may be: a year and a day covers every billing period
still open; anything older is a typo, or a backfill to be done with care outside the API."""
MAX_LISTED_ERRORS = 1_000
"""The errors listed in one answer; `errors_total` counts them all."""

COLUMNS = (
    "shipment_id",
    "client_id",
    "depot_id",
    "attempted_at",
    "outcome",
    "zone",
    "residential",
    "attempt_number",
)
"""Every CSV header row names all of these (in any order)..."""
OPTIONAL_COLUMNS = ("promised_on",)
"""... and may name these too; no other column."""

ZONE = r"^[A-Za-z0-9](?:[A-Za-z0-9 ._/-]{0,30}[A-Za-z0-9])?$"
"""A zone: letters, digits, spaces, '.', '_', '/' and '-', starting and ending with a letter or
a digit, at most 32 characters; compared exactly ("B" is not "b")."""

_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})"
)


def _timestamp(value: object) -> datetime:
    """ISO 8601 with an offset (`2026-11-21T09:30:00Z`, `…+01:00`); kept as aware UTC, to the
    microsecond (finer digits are cut)."""
    if not isinstance(value, str):
        raise ValueError(
            "a timestamp is an ISO 8601 string with an offset, e.g. 2026-11-21T09:30:00Z"
        )
    if not _TIMESTAMP.fullmatch(value):
        raise ValueError(
            f"{value[:40]!r} is not an ISO 8601 timestamp with an offset, e.g. "
            "2026-11-21T09:30:00Z or 2026-11-21T10:30:00+01:00"
        )
    try:
        parsed = datetime.fromisoformat(value)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"{value!r} is not a real date and time") from None


def _day(value: object) -> date:
    """A calendar date as ISO 8601 text (`2026-11-25`), never a number nor a timestamp."""
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("a date is ISO 8601 text, YYYY-MM-DD, e.g. 2026-11-25")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a real date") from None


Day = Annotated[
    date,
    BeforeValidator(_day),
    WithJsonSchema({"type": "string", "format": "date", "examples": ["2026-11-25"]}),
]


Timestamp = Annotated[
    datetime,
    BeforeValidator(_timestamp),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "examples": ["2026-11-21T09:30:00Z"],
            "description": "ISO 8601 with its offset (Z or ±HH:MM).",
        }
    ),
]


class DeliveryRecordIn(BaseModel):
    """One stop outcome as the routing system reports it. `zone` and `residential` may be
    left out (null, or an empty CSV cell); a later report of the same stop fills them in."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=example(examples.delivery_record))

    shipment_id: SafeId = Field(strict=True)
    client_id: SafeId = Field(strict=True, description="A known client.")
    depot_id: SafeId = Field(strict=True, description="A known depot.")
    attempted_at: Timestamp = Field(
        description="Not more than 5 minutes ahead of our clock, nor more than 366 days ago."
    )
    outcome: StopOutcome
    zone: str | None = Field(None, pattern=ZONE, strict=True)
    residential: bool | None = Field(None, strict=True)
    attempt_number: int = Field(ge=1, le=20, strict=True)
    promised_on: Day | None = Field(
        None,
        description="The day the client promised the customer, in the client's time zone "
        "(optional; the on-time rate of the client's reports counts only stops that carry it).",
    )

    @field_validator("attempted_at")
    @classmethod
    def _not_in_the_future_nor_ancient(cls, value: datetime, info: ValidationInfo) -> datetime:
        """With `context={"now": …}` (the API's clock) the timestamp must fall in the window."""
        now = (info.context or {}).get("now")
        if now is None:
            return value
        if value > now + CLOCK_SKEW:
            raise ValueError(f"{value.isoformat()} is in the future")
        if value < now - MAX_RECORD_AGE:
            raise ValueError(f"{value.isoformat()} is more than {MAX_RECORD_AGE.days} days ago")
        return value

    @property
    def key(self) -> tuple[str, int]:
        return self.shipment_id, self.attempt_number


class RowError(BaseModel):
    """A bad record: `row` is its 1-based position among the data rows (the CSV header row
    and blank lines are not counted; in a JSON list, its index plus one)."""

    row: int
    field: str = Field(description="The record's field or CSV column, or `row` for the whole.")
    message: str
    line: int | None = Field(
        None, description="CSV only: the line of the file where the row starts (header = 1)."
    )


class DeliveryBatchResult(BaseModel):
    """What a batch did: every record received is new, a duplicate, an update or rejected."""

    received: int = Field(description="Records in the batch.")
    new: int = Field(description="Recorded now for the first time.")
    duplicates: int = Field(
        description="Already recorded with the same facts (a re-sent batch): nothing changed."
    )
    updated: int = Field(
        description="Already recorded, and completed now: a zone or residential flag it "
        "lacked, or the routing system's confirmation of an attempt a failed-delivery case "
        "recorded (its time and facts stand from now on)."
    )
    rejected: int = Field(description="Records refused (listed in `errors`).")
    errors: list[RowError] = Field(
        default_factory=list, description=f"At most {MAX_LISTED_ERRORS}, in row order."
    )
    errors_total: int = 0
    not_billed: list[RowError] = Field(
        default_factory=list,
        description="New records kept, whose day falls in a period the client was already "
        f"invoiced for: no invoice will bill them. At most {MAX_LISTED_ERRORS}, in row order.",
    )
    not_billed_total: int = 0
