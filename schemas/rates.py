"""Rate agreements: what a client pays, as data, one version per effective date.

A version is in force from its `effective_from` (a date in the client's time zone) until the
next version's; the stop's own date picks the version that prices it. Money is exact: decimal
strings in JSON (a JSON number is refused), with no more decimals than the currency has (from
babel: none for JPY, two for GBP, three for BHD), never negative; `tax_rate` is a decimal
string in [0, 1] with at most six decimals.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any

from babel.numbers import get_currency_precision, is_currency
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from schemas import examples
from schemas.deliveries import ZONE
from schemas.enums import BillingCycle
from schemas.examples import example
from schemas.invoices import MoneyError, exact
from schemas.requests import decimal_string

EARLIEST_EFFECTIVE_FROM = dt.date(2000, 1, 1)
LATEST_EFFECTIVE_FROM = dt.date(2099, 12, 31)
MAX_ZONES = 500

_RATE = re.compile(r"\d(\.\d{1,6})?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def currency_minor_units(currency: str) -> int | None:
    """The currency's minor units (ISO 4217, from babel); None for an unknown currency."""
    return get_currency_precision(currency) if is_currency(currency) else None


def _rate_string(value: object) -> object:
    if isinstance(value, bool | int | float):
        raise ValueError('a rate is a decimal string, e.g. "0.20", never a JSON number')
    if isinstance(value, str) and not _RATE.fullmatch(value.strip()):
        raise ValueError(f'{value[:20]!r} is not a rate from "0" to "1" with at most 6 decimals')
    return value.strip() if isinstance(value, str) else value


def _date_string(value: object) -> object:
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not _DATE.fullmatch(value.strip()):
        raise ValueError("a date is a string YYYY-MM-DD, e.g. 2026-12-01")
    return value.strip()


Amount = Annotated[
    Decimal,
    BeforeValidator(decimal_string),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d{1,15}(\.\d{1,4})?$",
            "examples": ["3.50"],
            "description": "A decimal string in the agreement's currency (never a number), "
            "with no more decimals than the currency has; zero or more.",
        }
    ),
    Field(ge=0),
]
TaxRate = Annotated[
    Decimal,
    BeforeValidator(_rate_string),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^\d(\.\d{1,6})?$",
            "examples": ["0.20"],
            "description": "A decimal string from 0 to 1 (0.20 is 20%), at most 6 decimals.",
        }
    ),
    Field(ge=0, le=1),
]
Zone = Annotated[str, StringConstraints(pattern=ZONE)]
EffectiveDate = Annotated[
    dt.date,
    BeforeValidator(_date_string),
    Field(ge=EARLIEST_EFFECTIVE_FROM, le=LATEST_EFFECTIVE_FROM),
]

_MONEY_FIELDS = (
    "base_rate_per_stop",
    "residential_surcharge",
    "failed_attempt_fee",
    "minimum_charge_per_invoice",
)


def _exact_in(currency: str | None, amount: Decimal) -> Decimal:
    units = currency_minor_units(currency) if currency else None
    if units is None:
        return amount  # the currency's own error says what is wrong
    try:
        return abs(exact(amount, units))  # abs: "-0.00" is zero
    except MoneyError:
        raise ValueError(f"{amount} has more decimals than {currency} allows ({units})") from None


class RateAgreement(BaseModel):
    """One version of a client's rate agreement (the body of `PUT /clients/{id}/rate-agreement`
    and what the invoice arithmetic prices with).

    A delivered stop costs `base_rate_per_stop`, plus its zone's amount in `zone_rates`, plus
    `residential_surcharge` when residential; a failed attempt costs `failed_attempt_fee`.
    An invoice's subtotal is lifted to `minimum_charge_per_invoice`; tax is the subtotal times
    `tax_rate`."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, json_schema_extra=example(examples.rate_agreement)
    )

    effective_from: EffectiveDate = Field(
        description="The first day (in the client's time zone) this version prices."
    )
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217, e.g. GBP or JPY.")
    base_rate_per_stop: Amount = Field(description="Every delivered stop.")
    zone_rates: dict[Zone, Amount] = Field(
        default_factory=dict,
        max_length=MAX_ZONES,
        description="Zone -> amount added per delivered stop in it, e.g. {'B': '1.50', "
        "'C': '0.00'}. When the agreement names zones, every zone it is billed for must be "
        "named (a zero-rated zone as '0.00'); with none, zones do not change the price.",
    )
    residential_surcharge: Amount = Field(
        Decimal(0), validate_default=True, description="Added per delivered residential stop."
    )
    failed_attempt_fee: Amount = Field(description="Every failed attempt.")
    minimum_charge_per_invoice: Amount = Field(
        Decimal(0),
        validate_default=True,
        description="An invoice's subtotal below this is lifted to it (its own line).",
    )
    tax_rate: TaxRate = Field(description="Tax = subtotal x tax_rate.")
    billing_cycle: BillingCycle
    payment_terms_days: int = Field(
        30, ge=0, le=365, strict=True, description="Due date = the invoice's date + this."
    )

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        if currency_minor_units(value) is None:
            raise ValueError(f"unknown currency '{value}'")
        return value

    @field_validator(*_MONEY_FIELDS)
    @classmethod
    def _exact_in_currency(cls, value: Decimal, info: ValidationInfo) -> Decimal:
        return _exact_in(info.data.get("currency"), value)

    @field_validator("zone_rates")
    @classmethod
    def _zone_rates_exact(
        cls, value: dict[str, Decimal], info: ValidationInfo
    ) -> dict[str, Decimal]:
        currency = info.data.get("currency")
        checked: dict[str, Decimal] = {}
        for zone, amount in value.items():
            try:
                checked[zone] = _exact_in(currency, amount)
            except ValueError as err:
                raise ValueError(f"zone '{zone}': {err}") from None
        return checked

    def terms(self) -> dict[str, Any]:
        """Everything but the date, comparable: two versions with equal terms are the same."""
        return self.model_dump(exclude={"effective_from"})
