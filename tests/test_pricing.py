"""The invoice arithmetic (schemas/pricing.py), on hand-built records with exact figures:
every rate component, rounding at exactly a half, the minimum charge, a zero-rated zone, an
agreement that changes mid-period, an empty period, JPY, and what cannot be priced."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

import pytest

from schemas.enums import StopOutcome
from schemas.pricing import (
    BillableStop,
    InvoiceDraft,
    LineKind,
    PricingError,
    period_bounds,
    price_period,
)
from schemas.rates import RateAgreement

NOVEMBER = (dt.date(2026, 11, 1), dt.date(2026, 11, 30))
LONDON = "Europe/London"


def agreement(**fields: Any) -> RateAgreement:
    terms: dict[str, Any] = {
        "effective_from": "2026-11-01",
        "currency": "GBP",
        "base_rate_per_stop": "3.50",
        "zone_rates": {"A": "0.00", "B": "1.25", "C": "2.10"},
        "residential_surcharge": "0.75",
        "failed_attempt_fee": "4.00",
        "minimum_charge_per_invoice": "0.00",
        "tax_rate": "0.20",
        "billing_cycle": "monthly",
    }
    terms.update(fields)
    return RateAgreement.model_validate(terms)


_counter = iter(range(1, 1_000_000))


def stop(
    when: str,
    outcome: str = "delivered",
    zone: str | None = "A",
    residential: bool | None = False,
    shipment_id: str | None = None,
) -> BillableStop:
    return BillableStop(
        shipment_id=shipment_id or f"SHP-{next(_counter)}",
        attempt_number=1,
        attempted_at=dt.datetime.fromisoformat(when),
        outcome=StopOutcome(outcome),
        zone=zone,
        residential=residential,
    )


def price(
    stops: list[BillableStop],
    agreements: list[RateAgreement],
    *,
    timezone: str = LONDON,
    period: tuple[dt.date, dt.date] = NOVEMBER,
) -> InvoiceDraft:
    return price_period(
        stops=stops,
        agreements=agreements,
        timezone=timezone,
        period_start=period[0],
        period_end=period[1],
    )


def money(draft: InvoiceDraft) -> tuple[str, str, str]:
    return str(draft.subtotal), str(draft.tax), str(draft.total)


def face(draft: InvoiceDraft) -> list[tuple[str, str | None, bool | None, int, str, str]]:
    return [
        (
            line.kind.value,
            line.zone,
            line.residential,
            line.quantity,
            str(line.unit_price),
            str(line.amount),
        )
        for line in draft.lines
    ]


# --- every component ------------------------------------------------------------------------


def test_each_rate_component_priced_and_grouped_by_zone_and_residential():
    stops = [
        *[stop(f"2026-11-0{day}T10:00:00Z", zone="A") for day in (2, 3, 4)],
        *[stop(f"2026-11-1{day}T10:00:00Z", zone="B", residential=True) for day in (0, 1)],
        stop("2026-11-12T10:00:00Z", zone="C"),
        stop("2026-11-13T10:00:00Z", outcome="failed", zone=None, residential=None),
        stop("2026-11-14T10:00:00Z", outcome="failed", zone="B", residential=True),
    ]

    draft = price(stops, [agreement()])

    assert face(draft) == [
        ("delivered_stop", "A", False, 3, "3.50", "10.50"),  # base + zone A's 0.00
        ("delivered_stop", "B", True, 2, "5.50", "11.00"),  # 3.50 + 1.25 + 0.75
        ("delivered_stop", "C", False, 1, "5.60", "5.60"),  # 3.50 + 2.10
        ("failed_attempt", None, None, 2, "4.00", "8.00"),  # the fee, whatever the zone
    ]
    assert money(draft) == ("35.10", "7.02", "42.12")
    assert [(str(t.tax_rate), str(t.taxable), str(t.amount)) for t in draft.tax_lines] == [
        ("0.20", "35.10", "7.02")
    ]
    assert draft.lines[1].description == (
        "Delivered stops, zone B, residential: base 3.50 + zone 1.25 + residential 0.75 GBP "
        "(rates from 2026-11-01)"
    )
    assert (draft.currency, draft.minor_units, draft.payment_terms_days) == ("GBP", 2, 30)


def test_every_stop_has_its_own_line_with_its_components():
    residential_b = stop("2026-11-10T10:00:00Z", zone="B", residential=True, shipment_id="S-1")
    failed = stop("2026-11-09T10:00:00Z", outcome="failed", zone="B", shipment_id="S-2")

    draft = price([residential_b, failed], [agreement()])

    assert [
        (
            line.shipment_id,
            str(line.base_rate),
            str(line.zone_rate),
            str(line.residential_surcharge),
            str(line.failed_attempt_fee),
            str(line.amount),
        )
        for line in draft.stop_lines
    ] == [
        ("S-2", "0.00", "0.00", "0.00", "4.00", "4.00"),  # in time order
        ("S-1", "3.50", "1.25", "0.75", "0.00", "5.50"),
    ]
    assert sum(line.amount for line in draft.stop_lines) == draft.subtotal


def test_the_same_stops_in_any_order_give_the_same_invoice():
    stops = [
        stop(f"2026-11-{day:02d}T1{day % 10}:00:00Z", zone=zone, residential=day % 2 == 0)
        for day, zone in zip(range(1, 29), "ABC" * 10, strict=False)
    ]
    shuffled = stops[:]
    random.Random(7).shuffle(shuffled)

    assert price(shuffled, [agreement()]) == price(stops, [agreement()])


# --- rounding -----------------------------------------------------------------------------


def test_tax_at_exactly_a_half_rounds_up():
    # 10.05 x 0.5 = 5.025: half-up gives 5.03 (banker's rounding would give 5.02).
    terms = agreement(base_rate_per_stop="10.05", zone_rates={}, tax_rate="0.5")

    draft = price([stop("2026-11-05T10:00:00Z", zone=None)], [terms])

    assert money(draft) == ("10.05", "5.03", "15.08")


def test_tax_below_a_half_rounds_down_and_above_rounds_up():
    # 17.5% of 10.10 = 1.7675 -> 1.77; of 10.02 = 1.7535 -> 1.75.
    terms = agreement(zone_rates={}, tax_rate="0.175", residential_surcharge="0.00")
    up = agreement(**{**terms.model_dump(), "base_rate_per_stop": "10.10"})
    down = agreement(**{**terms.model_dump(), "base_rate_per_stop": "10.02"})

    assert money(price([stop("2026-11-05T10:00:00Z")], [up])) == ("10.10", "1.77", "11.87")
    assert money(price([stop("2026-11-05T10:00:00Z")], [down])) == ("10.02", "1.75", "11.77")


def test_jpy_has_no_minor_units_and_rounds_tax_half_up_to_the_yen():
    terms = agreement(
        currency="JPY",
        base_rate_per_stop="305",
        zone_rates={},
        residential_surcharge="50",
        failed_attempt_fee="495",
        minimum_charge_per_invoice="0",
        tax_rate="0.1",
    )
    stops = [
        stop("2026-11-02T01:00:00Z", residential=True),
        stop("2026-11-02T02:00:00Z", residential=False),
        stop("2026-11-02T03:00:00Z", outcome="failed"),
    ]

    draft = price(stops, [terms], timezone="Asia/Tokyo")

    # 355 + 305 + 495 = 1155; 10% = 115.5 -> 116.
    assert money(draft) == ("1155", "116", "1271")
    assert [str(line.amount) for line in draft.lines] == ["305", "355", "495"]
    assert draft.minor_units == 0


def test_three_decimal_currencies_keep_three():
    terms = agreement(
        currency="BHD",
        base_rate_per_stop="1.125",
        zone_rates={},
        tax_rate="0.1",
        residential_surcharge="0.000",
    )

    draft = price(
        [stop("2026-11-02T10:00:00Z"), stop("2026-11-03T10:00:00Z")],
        [terms],
        timezone="Asia/Bahrain",
    )

    assert money(draft) == ("2.250", "0.225", "2.475")


# --- the minimum charge -------------------------------------------------------------------


def test_a_subtotal_below_the_minimum_is_lifted_by_its_own_line():
    terms = agreement(minimum_charge_per_invoice="50.00")
    stops = [stop("2026-11-02T10:00:00Z", zone="B"), stop("2026-11-03T10:00:00Z", zone="C")]

    draft = price(stops, [terms])

    # 4.75 + 5.60 = 10.35, lifted by 39.65 to 50.00; tax 10.00.
    assert face(draft)[-1] == ("minimum_charge", None, None, 1, "39.65", "39.65")
    assert draft.lines[-1].description == (
        "Minimum charge per invoice: 50.00 GBP (rates from 2026-11-01)"
    )
    assert money(draft) == ("50.00", "10.00", "60.00")


def test_a_subtotal_at_the_minimum_needs_no_top_up():
    terms = agreement(minimum_charge_per_invoice="10.35")
    stops = [stop("2026-11-02T10:00:00Z", zone="B"), stop("2026-11-03T10:00:00Z", zone="C")]

    draft = price(stops, [terms])

    assert LineKind.MINIMUM_CHARGE not in [line.kind for line in draft.lines]
    assert money(draft) == ("10.35", "2.07", "12.42")


# --- zones ----------------------------------------------------------------------------------


def test_a_zero_rated_zone_costs_the_base_rate_only():
    terms = agreement(zone_rates={"CENTRAL": "0.00", "OUTER": "2.00"})
    stops = [
        stop("2026-11-02T10:00:00Z", zone="CENTRAL"),
        stop("2026-11-02T11:00:00Z", zone="OUTER"),
    ]

    draft = price(stops, [terms])

    assert face(draft) == [
        ("delivered_stop", "CENTRAL", False, 1, "3.50", "3.50"),
        ("delivered_stop", "OUTER", False, 1, "5.50", "5.50"),
    ]
    assert money(draft) == ("9.00", "1.80", "10.80")


def test_an_agreement_without_zones_prices_every_zone_alike():
    terms = agreement(zone_rates={})

    draft = price(
        [stop("2026-11-02T10:00:00Z", zone="Z9"), stop("2026-11-02T11:00:00Z", zone=None)], [terms]
    )

    assert [(line.zone, str(line.unit_price)) for line in draft.lines] == [
        (None, "3.50"),
        ("Z9", "3.50"),
    ]


# --- an agreement that changes mid-period ---------------------------------------------------


def test_each_stop_is_priced_by_the_agreement_in_force_on_its_own_date():
    old = agreement()
    new = agreement(
        effective_from="2026-11-16", base_rate_per_stop="4.00", zone_rates={"B": "1.50"}
    )
    stops = [
        stop("2026-11-10T10:00:00Z", zone="B"),
        stop("2026-11-15T23:30:00Z", zone="B"),  # still the 15th in London (GMT)
        stop("2026-11-16T00:30:00Z", zone="B"),  # the 16th
        stop("2026-11-20T10:00:00Z", zone="B"),
        stop("2026-11-21T10:00:00Z", zone="B"),
    ]

    draft = price(stops, [new, old])

    assert face(draft) == [
        ("delivered_stop", "B", False, 2, "4.75", "9.50"),  # 3.50 + 1.25
        ("delivered_stop", "B", False, 3, "5.50", "16.50"),  # 4.00 + 1.50
    ]
    assert [line.agreement_effective_from for line in draft.lines] == [
        dt.date(2026, 11, 1),
        dt.date(2026, 11, 16),
    ]
    assert money(draft) == ("26.00", "5.20", "31.20")
    assert draft.agreements_used == [dt.date(2026, 11, 1), dt.date(2026, 11, 16)]


def test_the_stops_date_is_the_date_in_the_clients_time_zone():
    old = agreement(zone_rates={})
    new = agreement(effective_from="2026-11-16", base_rate_per_stop="9.00", zone_rates={})
    # 03:00 UTC on the 16th is 22:00 on the 15th in New York: the old rate.
    late_evening = stop("2026-11-16T03:00:00Z")

    in_new_york = price([late_evening], [old, new], timezone="America/New_York")
    in_london = price([late_evening], [old, new])

    assert str(in_new_york.subtotal) == "3.50"
    assert in_new_york.stop_lines[0].local_date == dt.date(2026, 11, 15)
    assert str(in_london.subtotal) == "9.00"


def test_a_tax_rate_that_changes_mid_period_taxes_each_part_at_its_own_rate():
    old = agreement()
    new = agreement(effective_from="2026-11-16", tax_rate="0.175")
    stops = [
        *[stop("2026-11-10T10:00:00Z", zone="B") for _ in range(2)],
        *[stop("2026-11-20T10:00:00Z", zone="C", residential=True) for _ in range(3)],
    ]

    draft = price(stops, [old, new])

    # 2 x 4.75 = 9.50 at 20% = 1.90; 3 x 6.35 = 19.05 at 17.5% = 3.33375 -> 3.33.
    assert [(str(t.tax_rate), str(t.taxable), str(t.amount)) for t in draft.tax_lines] == [
        ("0.175", "19.05", "3.33"),
        ("0.20", "9.50", "1.90"),
    ]
    assert money(draft) == ("28.55", "5.23", "33.78")


def test_the_minimum_charge_is_the_one_in_force_on_the_periods_last_day():
    old = agreement(minimum_charge_per_invoice="100.00")
    new = agreement(effective_from="2026-11-16", minimum_charge_per_invoice="20.00")

    draft = price([stop("2026-11-10T10:00:00Z", zone="B")], [old, new])

    assert face(draft)[-1] == ("minimum_charge", None, None, 1, "15.25", "15.25")
    assert draft.lines[-1].agreement_effective_from == dt.date(2026, 11, 16)
    assert money(draft) == ("20.00", "4.00", "24.00")


# --- nothing to invoice, and what cannot be priced ---------------------------------------------


def test_an_empty_period_has_no_lines_and_no_minimum_charge():
    draft = price([], [agreement(minimum_charge_per_invoice="50.00")])

    assert draft.is_empty
    assert (draft.lines, draft.stop_lines, draft.tax_lines) == ([], [], [])
    assert money(draft) == ("0.00", "0.00", "0.00")


def test_an_empty_period_without_any_agreement_is_still_just_empty():
    draft = price([], [])

    assert draft.is_empty and draft.currency is None


def test_agreements_in_two_currencies_in_one_period_are_refused():
    old = agreement()
    new = agreement(effective_from="2026-11-16", currency="EUR")

    with pytest.raises(PricingError) as refused:
        price([stop("2026-11-10T10:00:00Z")], [old, new])

    assert refused.value.problems == [
        "one invoice holds one currency; this period's agreements are in GBP from "
        "2026-11-01, EUR from 2026-11-16"
    ]


def test_every_problem_is_reported_at_once_and_nothing_is_guessed():
    terms = agreement(effective_from="2026-11-05")
    stops = [
        stop("2026-11-02T10:00:00Z"),
        stop("2026-11-03T10:00:00Z"),
        stop("2026-11-10T10:00:00Z", zone="D"),
        stop("2026-11-10T11:00:00Z", zone=None),
        stop("2026-11-10T12:00:00Z", residential=None),
        stop("2026-11-10T13:00:00Z", outcome="failed", zone="D", residential=None),  # fine
    ]

    with pytest.raises(PricingError) as refused:
        price(stops, [terms])

    assert refused.value.problems == [
        "stops before the first rate agreement (from 2026-11-05) (2 stops)",
        "zone 'D' is not in the agreement from 2026-11-05 (1 stop)",
        "delivered stops without a zone under the agreement from 2026-11-05, which prices by "
        "zone (1 stop)",
        "delivered stops without a residential flag under the agreement from 2026-11-05, "
        "which has a residential surcharge (1 stop)",
    ]


def test_a_missing_residential_flag_is_fine_when_there_is_no_surcharge():
    terms = agreement(residential_surcharge="0.00")

    draft = price([stop("2026-11-10T10:00:00Z", residential=None)], [terms])

    assert money(draft) == ("3.50", "0.70", "4.20")


def test_a_client_without_any_agreement_cannot_be_invoiced():
    with pytest.raises(PricingError) as refused:
        price([stop("2026-11-10T10:00:00Z")], [])

    assert refused.value.problems == ["the client has no rate agreement (1 stop)"]


@pytest.mark.parametrize(
    ("stops", "period", "message"),
    [
        ([stop("2026-12-01T00:30:00Z")], NOVEMBER, "outside the period"),
        (
            [
                stop("2026-11-02T10:00:00Z", shipment_id="S"),
                stop("2026-11-03T10:00:00Z", shipment_id="S"),
            ],
            NOVEMBER,
            "given twice",
        ),
        ([], (dt.date(2026, 11, 30), dt.date(2026, 11, 1)), "ends"),
    ],
)
def test_a_callers_mistake_is_a_value_error(stops, period, message):
    with pytest.raises(ValueError, match=message) as raised:
        price(stops, [agreement()], period=period)

    assert not isinstance(raised.value, PricingError)


def test_period_bounds_are_the_clients_midnights_in_utc():
    assert period_bounds(*NOVEMBER, LONDON) == (
        dt.datetime(2026, 11, 1, 0, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 1, 0, 0, tzinfo=dt.UTC),
    )
    # New York leaves daylight saving time on 1 November 2026 at 02:00.
    assert period_bounds(*NOVEMBER, "America/New_York") == (
        dt.datetime(2026, 11, 1, 4, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 12, 1, 5, 0, tzinfo=dt.UTC),
    )


def test_no_float_anywhere_in_the_result():
    draft = price([stop("2026-11-10T10:00:00Z", zone="B", residential=True)], [agreement()])

    def walk(value: Any) -> None:
        assert not isinstance(value, float), value
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(draft.model_dump())
    assert all(isinstance(line.amount, Decimal) for line in draft.lines)


def test_the_readme_example():
    """README, "Invoicing arithmetic": the figures it states."""
    terms = agreement(zone_rates={"A": "0.00", "B": "1.25"}, minimum_charge_per_invoice="50.00")
    stops = [
        stop("2026-11-10T10:00:00Z", zone="B", residential=True),
        stop("2026-11-11T10:00:00Z", zone="B", residential=True),
        stop("2026-11-12T10:00:00Z", zone="A"),
        stop("2026-11-13T10:00:00Z", outcome="failed"),
    ]

    draft = price(stops, [terms])

    assert face(draft) == [
        ("delivered_stop", "A", False, 1, "3.50", "3.50"),
        ("delivered_stop", "B", True, 2, "5.50", "11.00"),
        ("failed_attempt", None, None, 1, "4.00", "4.00"),
        ("minimum_charge", None, None, 1, "31.50", "31.50"),
    ]
    assert money(draft) == ("50.00", "10.00", "60.00")
