"""The dunning ladder and exact money, as data (the unpaid-invoice case builds on these)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from schemas.invoices import DunningPolicy, DunningStep, MoneyError, exact, opening_plan

DUE = date(2026, 12, 31)


def test_the_default_ladder_falls_on_the_designed_days_at_nine():
    ladder = DunningPolicy().ladder(DUE)

    assert [(s.step.name, s.at) for s in ladder] == [
        ("before-due", datetime(2026, 12, 28, 9, tzinfo=UTC)),
        ("due", datetime(2026, 12, 31, 9, tzinfo=UTC)),
        ("overdue-7", datetime(2027, 1, 7, 9, tzinfo=UTC)),
        ("overdue-14", datetime(2027, 1, 14, 9, tzinfo=UTC)),
        ("final-notice", datetime(2027, 1, 21, 9, tzinfo=UTC)),
        ("dispatch-hold", datetime(2027, 1, 30, 9, tzinfo=UTC)),
    ]
    assert [s.step.copy_account_manager for s in ladder] == [False] * 3 + [True, False, False]
    assert ladder[-1].step.hold_dispatches and ladder[-1].step.escalate


def test_an_invoice_opened_part_way_down_sends_only_the_latest_due_step():
    ladder = DunningPolicy().ladder(DUE)
    now = datetime(2027, 1, 15, 12, tzinfo=UTC)  # 15 days overdue

    send_now, skipped, ahead = opening_plan(ladder, now)

    assert send_now is not None and send_now.step.name == "overdue-14"
    assert [s.step.name for s in skipped] == ["before-due", "due", "overdue-7"]
    assert [s.step.name for s in ahead] == ["final-notice", "dispatch-hold"]
    assert opening_plan(ladder, datetime(2026, 12, 1, tzinfo=UTC))[0] is None


def test_a_ladder_out_of_order_or_with_repeated_names_is_refused():
    step = DunningStep(name="a", offset=timedelta(days=1), template="dunning/overdue")
    with pytest.raises(ValidationError, match="increasing order"):
        DunningPolicy(steps=(step, step.model_copy(update={"name": "b", "offset": timedelta(0)})))
    with pytest.raises(ValidationError, match="unique"):
        DunningPolicy(steps=(step, step.model_copy(update={"offset": timedelta(days=2)})))


@pytest.mark.parametrize(
    ("amount", "minor_units", "expected"),
    [("1234.5", 2, Decimal("1234.50")), ("1500", 0, Decimal("1500")), ("0.10", 2, Decimal("0.10"))],
)
def test_amounts_are_exact_in_their_currency(amount, minor_units, expected):
    value = exact(amount, minor_units)
    assert value == expected and str(value) == str(expected)


@pytest.mark.parametrize(
    ("amount", "minor_units"), [("0.5", 0), ("1.234", 2), ("abc", 2), ("NaN", 2), ("Infinity", 0)]
)
def test_amounts_finer_than_the_currency_or_not_numbers_are_refused(amount, minor_units):
    with pytest.raises(MoneyError):
        exact(amount, minor_units)
