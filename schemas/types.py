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
import re
import unicodedata
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    EmailStr,
    Field,
    Strict,
    WithJsonSchema,
)

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


# --- text -------------------------------------------------------------------------------------

# Embeddings, overrides and isolates reorder what a reader sees ("invoice‮fdp.exe").
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _check_text(value: str, *, newlines: bool) -> str:
    if newlines:
        value = value.replace("\r\n", "\n")
    for char in value:
        category = unicodedata.category(char)
        if char == "\n" and newlines:
            continue
        if category in ("Cc", "Cs", "Zl", "Zp"):
            where = "" if newlines else " (a single line: no line breaks or tabs)"
            raise ValueError(f"must not contain control characters{where}")
        if char in _BIDI_CONTROLS:
            raise ValueError("must not contain bidirectional override characters")
    visible = [c for c in value if not c.isspace() and unicodedata.category(c) != "Cf"]
    if value and not visible:
        raise ValueError("must contain visible characters, not only invisible ones")
    return value


def _single_line(value: str) -> str:
    return _check_text(value, newlines=False)


def _multi_line(value: str) -> str:
    return _check_text(value, newlines=True)


SafeText = Annotated[str, AfterValidator(_single_line)]
"""One line of text (a name, an address line, a reason): no control characters (NUL, tabs,
CR/LF), no bidirectional overrides, not only zero-width characters. Lengths are the field's."""
LongText = Annotated[str, AfterValidator(_multi_line)]
"""Text that may run over lines (a note, a description): as `SafeText`, but newlines are
kept (CRLF read as LF)."""


# --- ids, numbers, email ---------------------------------------------------------------------

ID_PATTERN = r"^[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*$"
"""Letters, digits, '-', '_' and '.', with at least one that is not a dot (never `.` or
`..`: an id may end up in a path or a URL)."""

SafeId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=ID_PATTERN,
        description="Letters, digits, '-', '_' and '.' (not only dots); at most 64.",
    ),
]
"""An operator's own id (shipment, client, depot, driver, invoice, pickup point)."""
CaseIdText = Annotated[str, Field(min_length=1, max_length=128, pattern=ID_PATTERN)]
"""A case id (`failed-delivery-{shipment_id}`): a workflow id built from a `SafeId`."""

Email = Annotated[EmailStr, Field(max_length=254)]
"""An email address, checked by `email-validator` (the domain part normalized); the
OpenAPI schema says `format: email`."""

Count = Annotated[int, Strict()]
"""A whole number sent as a JSON number: `"2"` and `true` are refused, not coerced."""


# --- money ------------------------------------------------------------------------------------

_DECIMAL = re.compile(r"[+-]?\d{1,15}(\.\d{1,4})?")


def decimal_string(value: object) -> object:
    """Money is a decimal string in JSON (`"1234.50"`), never a JSON number: a float cannot
    hold most amounts exactly, so a number is refused rather than guessed at."""
    if isinstance(value, bool | int | float):
        raise ValueError('an amount is a decimal string, e.g. "1234.50", never a JSON number')
    if isinstance(value, str) and not _DECIMAL.fullmatch(value.strip()):
        raise ValueError(f'{value!r} is not a decimal amount, e.g. "1234.50"')
    return value.strip() if isinstance(value, str) else value


Money = Annotated[
    Decimal,
    BeforeValidator(decimal_string),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d{1,15}(\.\d{1,4})?$",
            "examples": ["1234.50"],
            "description": "A decimal string in the invoice's currency (never a number), with "
            "no more decimals than the currency has (none for JPY, two for GBP).",
        }
    ),
    Field(gt=0),
]
"""An amount in a body: a positive decimal string, exact in its currency (the route checks
the currency's minor units)."""
