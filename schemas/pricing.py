"""The invoice arithmetic: a client's stops over a period, priced by its rate agreements.

Pure and deterministic (no I/O, no clock, no float): the invoicing activity reads the
delivery records and the agreement history and calls `price_period`; the same inputs always
give the same lines, in the same order. The formulas, as the README states them:

- a stop's date is the date of `attempted_at` in the client's time zone; the agreement that
  prices it is the version in force on that date (the latest `effective_from` on or before);
- a delivered stop = `base_rate_per_stop` + its zone's `zone_rates` amount + the
  `residential_surcharge` when residential; a failed attempt = `failed_attempt_fee`;
- the stops are grouped into invoice lines by (agreement version, kind, zone, residential):
  line amount = quantity x unit price, rounded half-up to the currency's minor unit (exact
  already: every rate is exact to the minor unit);
- subtotal = the sum of the lines; below the `minimum_charge_per_invoice` of the agreement in
  force on the period's last day, a "minimum charge" line lifts it to that minimum;
- tax = the sum over each tax rate of (the lines at that rate x the rate), each rounded
  half-up to the minor unit: with one rate, subtotal x tax_rate, rounded half-up;
- total = subtotal + tax.

What cannot be priced is a `PricingError` listing every problem at once (a stop before the
first agreement, an unpriced zone, a residential flag the price depends on but nobody sent,
agreements in different currencies in one period); nothing is guessed.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal, localcontext
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.enums import BillingCycle, DescribedEnum, StopOutcome
from schemas.rates import RateAgreement, currency_minor_units


class PricingError(ValueError):
    """The period cannot be invoiced as recorded; `problems` says why, one sentence each."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


class LineKind(DescribedEnum):
    DELIVERED_STOP = "delivered_stop", "Delivered stops at one unit price."
    FAILED_ATTEMPT = "failed_attempt", "Failed delivery attempts at the failed-attempt fee."
    MINIMUM_CHARGE = "minimum_charge", "Lifts the subtotal to the minimum charge per invoice."


class BillableStop(BaseModel):
    """A delivery record as the arithmetic sees it (built from a `DeliveryRecord` row)."""

    model_config = ConfigDict(from_attributes=True, frozen=True)

    shipment_id: str
    attempt_number: int
    attempted_at: AwareDatetime
    outcome: StopOutcome
    zone: str | None = None
    residential: bool | None = None


class StopLine(BaseModel):
    """One stop priced, with its components: a row of the invoice's CSV."""

    shipment_id: str
    attempt_number: int
    attempted_at: AwareDatetime
    local_date: dt.date = Field(description="The stop's date in the client's time zone.")
    outcome: StopOutcome
    zone: str | None
    residential: bool | None
    agreement_effective_from: dt.date
    base_rate: Decimal
    zone_rate: Decimal
    residential_surcharge: Decimal
    failed_attempt_fee: Decimal
    amount: Decimal


class InvoiceLine(BaseModel):
    kind: LineKind
    description: str
    agreement_effective_from: dt.date
    zone: str | None = None
    residential: bool | None = None
    quantity: int
    unit_price: Decimal
    amount: Decimal
    tax_rate: Decimal


class TaxLine(BaseModel):
    tax_rate: Decimal
    taxable: Decimal
    amount: Decimal


class InvoiceDraft(BaseModel):
    """The priced period; no lines means nothing to invoice."""

    timezone: str
    period_start: dt.date
    period_end: dt.date
    currency: str | None = Field(
        description="None only for an empty period with no agreement in force at its end."
    )
    minor_units: int | None
    lines: list[InvoiceLine]
    stop_lines: list[StopLine]
    subtotal: Decimal
    tax_lines: list[TaxLine]
    tax: Decimal
    total: Decimal
    billing_cycle: BillingCycle | None = Field(description="The closing agreement's.")
    payment_terms_days: int | None = Field(description="The closing agreement's.")
    agreements_used: list[dt.date] = Field(
        description="The effective dates of the versions that priced a stop, oldest first."
    )

    @property
    def is_empty(self) -> bool:
        return not self.lines


# --- dates --------------------------------------------------------------------------------


def local_date(at: dt.datetime, timezone: str) -> dt.date:
    """The date of an instant in a time zone (an aware datetime only)."""
    if at.tzinfo is None:
        raise ValueError("a stop's time must be timezone-aware")
    return at.astimezone(ZoneInfo(timezone)).date()


def period_bounds(
    period_start: dt.date, period_end: dt.date, timezone: str
) -> tuple[dt.datetime, dt.datetime]:
    """The period's days in the time zone as UTC instants [start, end): what to select the
    delivery records with (`start <= attempted_at < end`)."""
    zone = ZoneInfo(timezone)
    start = dt.datetime.combine(period_start, dt.time(0), tzinfo=zone)
    end = dt.datetime.combine(period_end + dt.timedelta(days=1), dt.time(0), tzinfo=zone)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def agreement_on(agreements: Sequence[RateAgreement], day: dt.date) -> RateAgreement | None:
    """The version in force on `day`: the latest effective on or before it."""
    in_force = [a for a in agreements if a.effective_from <= day]
    return max(in_force, key=lambda a: a.effective_from) if in_force else None


def round_half_up(amount: Decimal, minor_units: int) -> Decimal:
    with localcontext() as context:
        context.prec = 60  # far beyond any amount: quantize never runs out of digits
        return amount.quantize(Decimal(1).scaleb(-minor_units), rounding=ROUND_HALF_UP)


# --- pricing ------------------------------------------------------------------------------


def _money(amount: Decimal) -> str:
    return format(amount, "f")


def _zone_rate(agreement: RateAgreement, zone: str | None) -> Decimal | None:
    """The zone's amount; zero when the agreement does not price by zone; None when it does
    and this zone (or a stop without one) is not priced."""
    if not agreement.zone_rates:
        return Decimal(0)
    if zone is None:
        return None
    return agreement.zone_rates.get(zone)


def _check_inputs(
    stops: Sequence[BillableStop], period_start: dt.date, period_end: dt.date, timezone: str
) -> None:
    if period_end < period_start:
        raise ValueError(f"the period ends ({period_end}) before it starts ({period_start})")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {timezone!r}") from None
    seen: set[tuple[str, int]] = set()
    for stop in stops:
        key = (stop.shipment_id, stop.attempt_number)
        if key in seen:
            raise ValueError(f"attempt {key[1]} of shipment {key[0]} is given twice")
        seen.add(key)
        day = local_date(stop.attempted_at, timezone)
        if not period_start <= day <= period_end:
            raise ValueError(
                f"attempt {key[1]} of shipment {key[0]} is on {day}, outside the period "
                f"{period_start} to {period_end}"
            )


def _counted(problems: dict[str, int]) -> list[str]:
    return [f"{text} ({count} stop{'s' if count != 1 else ''})" for text, count in problems.items()]


def _price_stop(
    stop: BillableStop, day: dt.date, agreement: RateAgreement, units: int
) -> tuple[StopLine | None, str | None]:
    """The stop's line, or the reason it cannot be priced."""
    zero = round_half_up(Decimal(0), units)
    base = zone_rate = surcharge = fee = zero
    since = agreement.effective_from
    if stop.outcome is StopOutcome.FAILED:
        fee = agreement.failed_attempt_fee
    else:
        rate = _zone_rate(agreement, stop.zone)
        if rate is None:
            if stop.zone is None:
                return (
                    None,
                    f"delivered stops without a zone under the agreement from {since}, "
                    "which prices by zone",
                )
            return None, f"zone '{stop.zone}' is not in the agreement from {since}"
        if stop.residential is None and agreement.residential_surcharge > 0:
            return None, (
                f"delivered stops without a residential flag under the agreement from {since}, "
                f"which has a residential surcharge"
            )
        base, zone_rate = agreement.base_rate_per_stop, rate
        surcharge = agreement.residential_surcharge if stop.residential else zero
    amount = round_half_up(base + zone_rate + surcharge + fee, units)
    return (
        StopLine(
            shipment_id=stop.shipment_id,
            attempt_number=stop.attempt_number,
            attempted_at=stop.attempted_at,
            local_date=day,
            outcome=stop.outcome,
            zone=stop.zone,
            residential=stop.residential,
            agreement_effective_from=since,
            base_rate=round_half_up(base, units),
            zone_rate=round_half_up(zone_rate, units),
            residential_surcharge=round_half_up(surcharge, units),
            failed_attempt_fee=round_half_up(fee, units),
            amount=amount,
        ),
        None,
    )


def _group_key(line: StopLine) -> tuple[dt.date, int, str, int]:
    if line.outcome is StopOutcome.FAILED:
        return (line.agreement_effective_from, 1, "", 0)
    residential = {None: 0, False: 1, True: 2}[line.residential]
    return (line.agreement_effective_from, 0, line.zone or "", residential)


def _invoice_lines(
    stop_lines: Iterable[StopLine], by_date: dict[dt.date, RateAgreement], units: int, currency: str
) -> list[InvoiceLine]:
    groups: dict[tuple[dt.date, int, str, int], list[StopLine]] = defaultdict(list)
    for line in stop_lines:
        groups[_group_key(line)].append(line)
    lines: list[InvoiceLine] = []
    for key in sorted(groups):
        members = groups[key]
        first = members[0]
        agreement = by_date[first.agreement_effective_from]
        unit = first.amount  # every member of a group has the same price
        since = f"rates from {agreement.effective_from.isoformat()}"
        if first.outcome is StopOutcome.FAILED:
            kind, zone, residential = LineKind.FAILED_ATTEMPT, None, None
            description = f"Failed delivery attempts ({since})"
        else:
            kind, zone, residential = LineKind.DELIVERED_STOP, first.zone, first.residential
            parts = [f"base {_money(first.base_rate)}"]
            where = []
            if zone is not None:
                where.append(f"zone {zone}")
                parts.append(f"zone {_money(first.zone_rate)}")
            if residential:
                where.append("residential")
                parts.append(f"residential {_money(first.residential_surcharge)}")
            elif residential is False:
                where.append("non-residential")
            place = f", {', '.join(where)}" if where else ""
            description = f"Delivered stops{place}: {' + '.join(parts)} {currency} ({since})"
        lines.append(
            InvoiceLine(
                kind=kind,
                description=description,
                agreement_effective_from=agreement.effective_from,
                zone=zone,
                residential=residential,
                quantity=len(members),
                unit_price=unit,
                amount=round_half_up(unit * len(members), units),
                tax_rate=agreement.tax_rate,
            )
        )
    return lines


def _taxes(lines: Sequence[InvoiceLine], units: int) -> list[TaxLine]:
    taxable: dict[Decimal, Decimal] = defaultdict(Decimal)
    for line in lines:
        taxable[line.tax_rate] += line.amount
    return [
        TaxLine(tax_rate=rate, taxable=amount, amount=round_half_up(amount * rate, units))
        for rate, amount in sorted(taxable.items())
    ]


def price_period(
    *,
    stops: Sequence[BillableStop],
    agreements: Sequence[RateAgreement],
    timezone: str,
    period_start: dt.date,
    period_end: dt.date,
) -> InvoiceDraft:
    """Price the client's stops in [period_start, period_end] (dates in `timezone`, the
    client's) with its agreement history. ValueError for a caller's mistake (a stop outside
    the period or given twice, a naive time, a period that ends before it starts); a
    PricingError when the records and agreements cannot make an invoice."""
    _check_inputs(stops, period_start, period_end, timezone)
    by_date = {agreement.effective_from: agreement for agreement in agreements}
    if len(by_date) != len(agreements):
        raise ValueError("two agreement versions share an effective date")
    closing = agreement_on(agreements, period_end)

    problems: dict[str, int] = defaultdict(int)
    priced: list[tuple[BillableStop, dt.date, RateAgreement]] = []
    for stop in stops:
        day = local_date(stop.attempted_at, timezone)
        agreement = agreement_on(agreements, day)
        if agreement is None:
            first = min((a.effective_from for a in agreements), default=None)
            problems[
                f"stops before the first rate agreement (from {first})"
                if first
                else "the client has no rate agreement"
            ] += 1
        else:
            priced.append((stop, day, agreement))

    used = sorted({agreement.effective_from for _, _, agreement in priced})
    involved = [by_date[since] for since in used]
    if stops and closing is not None and closing.effective_from not in used:
        involved.append(closing)
    currencies = sorted({agreement.currency for agreement in involved})
    if len(currencies) > 1:
        versions = ", ".join(f"{a.currency} from {a.effective_from}" for a in involved)
        raise PricingError(
            [f"one invoice holds one currency; this period's agreements are in {versions}"]
            + _counted(problems)
        )
    currency = currencies[0] if currencies else (closing.currency if closing else None)
    units = currency_minor_units(currency) if currency else None
    if currency is not None and units is None:
        raise PricingError([f"unknown currency '{currency}'"])

    stop_lines: list[StopLine] = []
    for stop, day, agreement in priced:
        assert units is not None
        line, problem = _price_stop(stop, day, agreement, units)
        if problem is not None:
            problems[problem] += 1
        elif line is not None:
            stop_lines.append(line)
    if problems:
        raise PricingError(_counted(problems))

    empty = Decimal(0) if units is None else round_half_up(Decimal(0), units)
    if not stop_lines or units is None or currency is None or closing is None:
        return InvoiceDraft(
            timezone=timezone,
            period_start=period_start,
            period_end=period_end,
            currency=currency,
            minor_units=units,
            lines=[],
            stop_lines=[],
            subtotal=empty,
            tax_lines=[],
            tax=empty,
            total=empty,
            billing_cycle=closing.billing_cycle if closing else None,
            payment_terms_days=closing.payment_terms_days if closing else None,
            agreements_used=[],
        )

    stop_lines.sort(key=lambda line: (line.attempted_at, line.shipment_id, line.attempt_number))
    lines = _invoice_lines(stop_lines, by_date, units, currency)
    subtotal = sum((line.amount for line in lines), empty)
    minimum = closing.minimum_charge_per_invoice
    if subtotal < minimum:
        top_up = round_half_up(minimum - subtotal, units)
        lines.append(
            InvoiceLine(
                kind=LineKind.MINIMUM_CHARGE,
                description=f"Minimum charge per invoice: {_money(minimum)} {currency} "
                f"(rates from {closing.effective_from.isoformat()})",
                agreement_effective_from=closing.effective_from,
                quantity=1,
                unit_price=top_up,
                amount=top_up,
                tax_rate=closing.tax_rate,
            )
        )
        subtotal = minimum
    tax_lines = _taxes(lines, units)
    tax = sum((line.amount for line in tax_lines), empty)
    return InvoiceDraft(
        timezone=timezone,
        period_start=period_start,
        period_end=period_end,
        currency=currency,
        minor_units=units,
        lines=lines,
        stop_lines=stop_lines,
        subtotal=round_half_up(subtotal, units),
        tax_lines=tax_lines,
        tax=round_half_up(tax, units),
        total=round_half_up(subtotal + tax, units),
        billing_cycle=closing.billing_cycle,
        payment_terms_days=closing.payment_terms_days,
        agreements_used=used,
    )
